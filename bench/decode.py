"""Decoding cost side by side: the LM-weight x penalty sweep by re-search vs from lattices; beams.

    .venv/bin/python bench/decode.py --model-dir exp/am_resnet22 --graph-dir exp/tri2/graph \
        --feats data/test_logmel [--ref data/test/text] [--lexicon data/local/dict/lexicon.txt]
    .venv/bin/python bench/decode.py --mode beams --beams 8 10 11 13 16 ... --ref data/dev/text

`--mode sweep` (default) decodes the feature set twice with the same options, Kaldi's 33 settings
(LM weights 7..17 x penalties 0, 0.5, 1.0) by default: once with one 1-best search per setting
(`--sweep research`, the old way) and once with one lattice search per utterance whose lattice
is rescored per setting (`--sweep lattice`). Prints, per way, the main pass RTF (network + main
search), the sweep RTF, their total, the lattice bytes per second of audio, and with `--ref` the
best WER of each sweep (and whether the 33 hypothesis sets are identical).

`--mode beams` decodes once per `--beams` value (the lattice search with the sweep by default,
`--beam-search 1best` for the 1-best one) and prints the main pass RTF and the WER of `hyp.txt`
(the decoder's own setting) against the widest beam's WER, so a default beam can be chosen on a held-out set
(e.g. RTF <= 0.1 per core at < 0.2 absolute WER loss).

RTFs are process-seconds per audio second on one core (`--nj 1`, one torch thread).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "1")

from asr import decode as D  # noqa: E402
from asr.score import score_files  # noqa: E402

KALDI_LMWTS = [7.0, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]
KALDI_WIPS = [0.0, 0.5, 1.0]


def _cfg(a, **over) -> D.DecodeConfig:
    opts = D.SearchOptions(over.pop("beam", a.beam), a.max_active, a.min_active,
                           over.pop("lattice_beam", a.lattice_beam))
    return D.DecodeConfig(a.model_dir, a.graph_dir, a.feats, a.acoustic_scale, opts, a.chunk_frames, a.batch_frames,
                          lexicon=a.lexicon, **over)


def _wer(ref: Path | None, hyps: list[Path], out: Path) -> dict | None:
    if ref is None:
        return None
    return score_files(ref, hyps, out)


def sweep_mode(a, work: Path) -> dict:
    rows = {}
    for way in ("research", "lattice"):
        d = work / way
        info = D.decode_dir(_cfg(a, lm_weights=list(a.lm_weights), word_ins_penalties=list(a.word_ins_penalties),
                                 sweep=way), d, nj=1)
        hyps = sorted(d.glob("hyp_lmwt*.txt"))
        w = _wer(a.ref, hyps, d / "scoring")
        rows[way] = {"rtf_main": info["rtf"], "rtf_nn": info["rtf_nn"], "rtf_search": info["rtf_search"],
                     "rtf_sweep": info["rtf_sweep"], "rtf_total": round(info["rtf"] + info["rtf_sweep"], 5),
                     "settings": info["num_settings"], "audio_s": info["audio_s"],
                     "lattice_bytes_per_audio_s": info["lattice_bytes_per_audio_s"],
                     "best_wer": w["wer"] if w else None, "best_setting": w["best_setting"] if w else None}
    same = all((work / "research" / p.name).read_text() == p.read_text()
               for p in sorted((work / "lattice").glob("hyp_lmwt*.txt")))
    r, l_ = rows["research"], rows["lattice"]
    return {"mode": "sweep", "research": r, "lattice": l_, "identical_hypotheses": same,
            "lattice_sweep_over_main_pass": round(l_["rtf_sweep"] / l_["rtf_main"], 3),
            "total_speedup": round(r["rtf_total"] / l_["rtf_total"], 2)}


def beams_mode(a, work: Path) -> dict:
    rows = []
    for beam in sorted(a.beams, reverse=True):
        d = work / f"beam{beam:g}"
        sweep = dict(lm_weights=list(a.lm_weights), word_ins_penalties=list(a.word_ins_penalties),
                     sweep="lattice") if a.beam_search == "lattice" else {}
        info = D.decode_dir(_cfg(a, beam=beam, lattice_beam=min(a.lattice_beam, beam), **sweep), d, nj=1)
        w = _wer(a.ref, [d / "hyp.txt"], d / "scoring")
        rows.append({"beam": beam, "rtf": info["rtf"], "rtf_search": info["rtf_search"], "rtf_sweep": info["rtf_sweep"],
                     "wer": w["wer"] if w else None})
    widest = rows[0]["wer"]
    for r in rows:
        r["wer_loss"] = round(r["wer"] - widest, 4) if widest is not None and r["wer"] is not None else None
    ok = [r for r in rows if r["rtf"] <= a.max_rtf and (r["wer_loss"] is None or r["wer_loss"] < a.max_wer_loss)]
    return {"mode": "beams", "search": a.beam_search, "rows": rows, "widest_beam": rows[0]["beam"],
            "chosen_beam": max(ok, key=lambda r: r["beam"])["beam"] if ok else None,
            "rule": f"widest beam with RTF <= {a.max_rtf} and WER loss < {a.max_wer_loss} (abs %)"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-dir", required=True)
    p.add_argument("--graph-dir", required=True)
    p.add_argument("--feats", required=True)
    p.add_argument("--ref", type=Path, help="Kaldi text of the set: WERs too")
    p.add_argument("--lexicon", help="also time the CTM output")
    p.add_argument("--mode", choices=["sweep", "beams"], default="sweep")
    p.add_argument("--acoustic-scale", type=float, default=0.1)
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--min-active", type=int, default=200)
    p.add_argument("--lattice-beam", type=float, default=8.0)
    p.add_argument("--chunk-frames", type=int, default=512)
    p.add_argument("--batch-frames", type=int, default=1024)
    p.add_argument("--lm-weights", type=float, nargs="+", default=KALDI_LMWTS)
    p.add_argument("--word-ins-penalties", type=float, nargs="+", default=KALDI_WIPS)
    p.add_argument("--beams", type=float, nargs="+", default=[8.0, 10.0, 11.0, 12.0, 13.0, 15.0, 18.0])
    p.add_argument("--beam-search", choices=["lattice", "1best"], default="lattice",
                   help="beams mode: the lattice search (what a sweep uses) or the 1-best search")
    p.add_argument("--max-rtf", type=float, default=0.1)
    p.add_argument("--max-wer-loss", type=float, default=0.2)
    p.add_argument("--work", type=Path, help="keep the decode dirs here (default: a temporary dir)")
    a = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="bench_decode_") as tmp:
        work = a.work or Path(tmp)
        out = sweep_mode(a, work) if a.mode == "sweep" else beams_mode(a, work)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
