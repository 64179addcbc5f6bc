"""Summary of one decode dir: `report.md` + `report.png` (+ `wer.json` at the decode-dir level).

Reads `DIR/decode.json` (asr.decode) and `DIR/scoring/wer.json` (asr.score) and writes:
  report.md    model, FLOPs per frame, WER (all / per subset / subset average) of the best
               setting, every setting of the LM-weight sweep, real-time factor split NN vs search
  report.png   WER per sweep setting, and the RTF split
  wer.json     copy of scoring/wer.json where asr.report (the cross-model table) reads it

    python -m asr.decode_report --dir exp/am_resnet22/decode_test
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from asr.utils import atomic_path, atomic_write_text, setup_logging

logger = logging.getLogger("asr.decode_report")


def _fmt(v, spec: str = ".2f") -> str:
    return "n/a" if v is None else format(v, spec)


def build(decode_dir: str | Path, scoring: str = "scoring") -> str:
    """Write the report files of `decode_dir`; return the markdown."""
    d = Path(decode_dir)
    for f in (d / "decode.json", d / scoring / "wer.json"):
        if not f.exists():
            raise FileNotFoundError(f"{f}: missing (run asr.decode, then asr.score --dir {d / scoring})")
    dec = json.loads((d / "decode.json").read_text())
    wer = json.loads((d / scoring / "wer.json").read_text())
    atomic_write_text(d / "wer.json", json.dumps(wer, indent=2) + "\n")

    flops = dec.get("flops_per_frame")
    lines = [f"# Decode `{d}`", "",
             f"- model: `{dec['model_name']}` from `{dec['model_dir']}`"
             + (f", {dec['params'] / 1e6:.3f} M parameters" if dec.get("params") else ""),
             f"- FLOPs per output frame: {flops / 1e6:.3f} M (multiply-adds, asr.flops)" if flops is not None
             else "- FLOPs: not counted (asr.flops unavailable for this model)",
             f"- graph: `{dec['graph_dir']}`; features: `{dec['feats']}`",
             f"- search: acoustic scale {dec['acoustic_scale']}, beam {dec['beam']}, max-active "
             f"{dec['max_active']}, lattice beam {dec['lattice_beam']}; chunk {dec['chunk_frames']} frames",
             f"- {dec['num_utts']} utterances, {dec['audio_s']:.1f} s of audio, {dec['nj']} job(s)", "",
             "## WER (best setting)", "",
             f"Best setting `{wer['best_setting']}` (LM weight {_fmt(wer.get('lm_weight'), 'g')}, "
             f"insertion penalty {_fmt(wer.get('wip'), 'g')}).", "",
             "| subset | WER (%) | ref words | corr | sub | del | ins | S.Err (%) |", "|---|---|---|---|---|---|---|---|"]

    def row(name: str, c: dict) -> str:
        return (f"| {name} | {_fmt(c['wer'])} | {c['ref_words']} | {c['corr']} | {c['sub']} | {c['del']} "
                f"| {c['ins']} | {_fmt(c['sent_err_pct'], '.1f')} |")

    lines.append(row("all", wer))
    for name, c in (wer.get("subsets") or {}).items():
        lines.append(row(name, c))
    if wer.get("subsets"):
        lines.append(f"| average of {', '.join(wer['subsets'])} | {_fmt(wer.get('subset_avg_wer'))} | | | | | | |")
    lines += ["", "## Settings", "", "| setting | WER (%) |", "|---|---|"]
    settings = sorted(wer["settings"].items(), key=lambda kv: (kv[1]["wer"] is None, kv[1]["wer"] or 0))
    lines += [f"| {n} | {_fmt(s['wer'])} |" for n, s in settings]
    lines += ["", "## Speed", "",
              f"Real-time factor {_fmt(dec['rtf'], '.4f')} per core for one decoding pass (process time per "
              f"audio second: NN {_fmt(dec['rtf_nn'], '.4f')} + search {_fmt(dec['rtf_search'], '.4f')}); "
              + (f"the sweep's {len(dec.get('settings', []))} setting(s), rescored from one lattice per utterance "
                 f"({_fmt(dec.get('lattice_bytes_per_audio_s'), '.0f')} lattice bytes per audio second), add "
                 f"{_fmt(dec['rtf_sweep'], '.4f')}. " if dec.get("sweep_mode") == "lattice" else
                 f"the sweep's {len(dec.get('settings', []))} extra search(es) add {_fmt(dec['rtf_sweep'], '.4f')}. ")
              + (f"{dec['num_skipped']} utterance(s) skipped (NaN/inf features): "
                 f"{', '.join(sorted(dec['skipped_utts']))}. " if dec.get("num_skipped") else "")
              + f"Whole run: {dec['wall_s']:.1f} s wall for {dec['audio_s']:.1f} s of audio with {dec['nj']} "
              f"job(s), start-up included (RTF {_fmt(dec['rtf_wall'], '.4f')}).", "",
              "![report](report.png)", ""]
    md = "\n".join(lines)
    atomic_write_text(d / "report.md", md)
    _plot(d / "report.png", dec, settings, wer)
    return md


def _plot(path: Path, dec: dict, settings: list, wer: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6), gridspec_kw={"width_ratios": [3, 1]})
    names = [n for n, _ in settings]
    vals = [s["wer"] if s["wer"] is not None else 0.0 for _, s in settings]
    bars = a1.bar(range(len(names)), vals, color=["#2a7ab9"] + ["#999999"] * (len(names) - 1))
    a1.bar_label(bars, fmt="%.2f", fontsize=7)
    a1.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
    a1.set_ylabel("WER (%)")
    a1.set_title(f"{dec['model_name']}: WER by setting (best first)", fontsize=9)
    parts = [("NN", dec.get("rtf_nn") or 0.0), ("search", dec.get("rtf_search") or 0.0),
             ("sweep", dec.get("rtf_sweep") or 0.0)]
    a2.bar([p[0] for p in parts], [p[1] for p in parts], color=["#d98c1f", "#5a9e4b", "#999999"])
    a2.set_title(f"process s / audio s (RTF {_fmt(dec['rtf'], '.3f')})", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, help="decode dir (decode.json, scoring/wer.json)")
    p.add_argument("--scoring", default="scoring", help="scoring subdir name")
    a = p.parse_args(argv)
    setup_logging(log_file=Path(a.dir) / "log" / "decode_report.log")
    print(build(a.dir, a.scoring))


if __name__ == "__main__":
    main()
