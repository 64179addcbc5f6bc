"""Table-3-style comparison of the acoustic models a recipe trained and decoded.

For each model dir `exp/am_<tag>/` it gathers: FLOPs per output frame (and the ratio to the
baseline), parameters, CV frame accuracy and training throughput (`summary.json` from
`asr.train`), test WER and real-time factor (`decode_<set>/wer.json`, `decode.json` from
`asr.decode`/`asr.score`). Writes `report.json`, `report.md` and `report.png` in the exp dir and
prints the table.

Every test set (`--test-sets test test_heldout`; the first is the one `wer` refers to) gets each
model's tuned WER with a 95% bootstrap interval (`wer_by_set`), and each model after the
baseline a paired bootstrap test against it (difference, interval, p-value; `paired` holds the
first such model, `paired_by_model` all of them), with a sentence saying whether the two are
separable. `test_sets` describes each set: words, utterances, OOV rate against the graph's
words.txt and the LM's perplexity (kaldingram) on its text.

Test WER is given three ways: at the LM weight and insertion penalty that scored best on the
tuning set (`--tune-set dev`: the honest figure, and `wer` in report.json when given), at the
decoder's own setting (LM weight 1/acoustic scale, no penalty), and the best of the sweep on
the test set itself (Kaldi's RESULTS convention; optimistic).

    python -m asr.report --exp exp --models am_resnet22 am_bl_resnet22_a2_b3 \
        --test-sets test test_heldout --tune-set dev --lm data/lang_test/lm.arpa \
        --words-txt exp/tri2/graph/words.txt
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from asr.utils import atomic_write_text, setup_logging

logger = logging.getLogger("asr.report")


def read_stage_times(path: Path) -> dict[str, float]:
    """Wall time (seconds) per stage from a `stage_times` file (`N NAME... SECONDS` lines).

    Returns {stage number as str: seconds summed over every completed run of that stage in
    this exp dir}; a stage skipped because it was done adds ~0 s, and the part of a stage cut
    short by a kill is not counted (its stage_end never ran).
    """
    times: dict[str, float] = {}
    if not path.exists():
        return times
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 3 or not parts[0].isdigit():
            raise ValueError(f"{path}:{lineno}: expected 'STAGE NAME... SECONDS', got {line!r}")
        times[parts[0]] = times.get(parts[0], 0.0) + float(parts[-1])
    return times


def _load_json(path: Path) -> dict:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (did the stage that writes it run?)")
    return json.loads(path.read_text())


def model_row(model_dir: Path, test_set: str, tune_set: str | None = None) -> dict:
    """One report row for a trained and decoded model dir (tuned on `tune_set` if given)."""
    import torch

    from asr import flops
    from asr.models import create_model

    ckpt = torch.load(model_dir / "final.pt", map_location="cpu", weights_only=False)
    model = create_model(ckpt["model_name"], **ckpt["model_kwargs"])
    cost = flops.count(model)
    summary = _load_json(model_dir / "summary.json")
    decode_dir = model_dir / f"decode_{test_set}"
    wer = _load_json(decode_dir / "wer.json")
    decode = _load_json(decode_dir / "decode.json")
    scale = float(decode["acoustic_scale"])
    if decode.get("sweep_mode") == "none" and tune_set:  # decoded at the tuned setting: the default is the tune set's
        scale = float(_load_json(model_dir / f"decode_{tune_set}" / "decode.json")["acoustic_scale"])
    fixed = default_setting_wer(wer, scale)
    swept = int(decode.get("num_settings", 0)) > 1  # a sweep on the test set itself (lattice or research)
    row = {
        "model": ckpt["model_name"],
        "dir": str(model_dir),
        "flops_per_frame": int(cost["flops"]),
        "flops_per_frame_no_output": int(cost["flops_no_output"]),
        "params": int(cost["params"]),
        "params_no_output": int(cost["params_no_output"]),
        "cv_frame_acc": float(summary["cv_frame_acc"]),
        "wer": fixed,
        "wer_default_setting": fixed,
        "wer_best_sweep": float(wer["wer"]) if swept else None,
        "best_setting": wer.get("best_setting"),
        "rtf": float(decode["rtf"]),
        "rtf_nn": float(decode["rtf_nn"]),
        "rtf_search": float(decode["rtf_search"]),
        "search": decode.get("search", decode.get("sweep_mode")),
        "train_frames_per_s": float(summary["train_frames_per_s"]),
        "tag": summary.get("tag", ckpt["model_name"]),   # asr.train: name plus changed kwargs
        "hparams": summary.get("hparams", {}),            # resolved alpha, beta, bl_stages, ...
    }
    if tune_set:
        row.update(tuned_wer(wer, _load_json(model_dir / f"decode_{tune_set}" / "wer.json"),
                             f"{decode_dir}/wer.json"))
        row["wer"] = row["wer_tuned"]
    if row["wer"] is None:
        raise ValueError(f"{decode_dir}: no WER at the default setting and no tuning set to pick one")
    return row


def tuned_wer(test: dict, tune: dict, where: str) -> dict:
    """Test WER (%) at the setting that scored best on the tuning set, and that set's WER there.

    `test`, `tune`: `wer.json` dicts from asr.score over the same LM-weight x penalty sweep.
    """
    setting = tune["best_setting"]
    entry = test.get("settings", {}).get(setting)
    if entry is None or entry.get("wer") is None:
        raise ValueError(f"{where}: no scored setting {setting!r} (best on the tuning set); "
                         f"decode both sets with the same LM weights and penalties")
    return {"tuned_setting": setting, "wer_tuned": float(entry["wer"]), "wer_tune_set": float(tune["wer"])}


def default_setting_wer(wer: dict, acoustic_scale: float) -> float | None:
    """WER (%) at the decoder's own setting: LM weight 1/acoustic_scale, no insertion penalty
    (None when that setting was not decoded, e.g. a 1-best decode at the tuned setting).

    This is the figure not tuned on the test set; the sweep's best is reported beside it.
    """
    settings = wer.get("settings", {})
    lm_weight = 1.0 / acoustic_scale
    for entry in settings.values():
        lmwt, wip = entry.get("lm_weight"), entry.get("wip")
        if lmwt is None and wip is None:  # the 1-best hyp.txt, decoded at that setting
            return float(entry["wer"])
        if lmwt is not None and abs(float(lmwt) - lm_weight) < 1e-6 and not wip:
            return float(entry["wer"])
    return None


def format_hparams(row: dict) -> str:
    """`tag: alpha 2, beta 3, bl_stages 3, merge add, branches 2x2x2, widths 32x32x32x32`."""
    hp = row.get("hparams") or {}
    fmt = lambda v: ("x".join(map(str, v)) or "-") if isinstance(v, list) else str(v)  # noqa: E731
    keys = ("alpha", "beta", "bl_stages", "merge", "branches", "widths")
    return f"{row.get('tag', row['model'])}: " + ", ".join(f"{k} {fmt(hp[k])}" for k in keys if k in hp)


def format_table(rows: list[dict]) -> str:
    """Markdown table; FLOPs ratio relative to the first row (the baseline)."""
    base = rows[0]["flops_per_frame"] if rows else 1
    tuned = bool(rows) and all("wer_tuned" in r for r in rows)
    cols = ["model", "MFLOPs/frame", "ratio", "params (M)", "CV frame acc (%)"]
    cols += ["test WER (%), tuned", "tuned setting"] if tuned else []
    cols += ["test WER (%), default setting", "test WER (%), best on test", "RTF network", "RTF search",
             "RTF total (1 core)", "train frames/s", "hyper-parameters"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [r["model"], f"{r['flops_per_frame'] / 1e6:.2f}", f"{r['flops_per_frame'] / base:.2f}",
                 f"{r['params'] / 1e6:.3f}", f"{100 * r['cv_frame_acc']:.2f}"]
        cells += [f"{r['wer_tuned']:.2f}", r["tuned_setting"]] if tuned else []
        na = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731  (not decoded that way)
        cells += [na(r["wer_default_setting"]), na(r["wer_best_sweep"]), f"{r['rtf_nn']:.4f}",
                  f"{r['rtf_search']:.4f}", f"{r['rtf']:.4f}", f"{r['train_frames_per_s']:.0f}", format_hparams(r)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    """Bar charts of FLOPs ratio, test WER and training throughput per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["model"] for r in rows]
    base = rows[0]["flops_per_frame"]
    panels = [
        ("FLOPs / frame (ratio to baseline)", [r["flops_per_frame"] / base for r in rows]),
        ("test WER (%)" + (", tuned" if "wer_tuned" in rows[0] else ""), [r["wer"] for r in rows]),
        ("CV frame accuracy (%)", [100 * r["cv_frame_acc"] for r in rows]),
        ("training frames/s", [r["train_frames_per_s"] for r in rows]),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.5))
    for ax, (title, values) in zip(axes, panels):
        bars = ax.bar(range(len(names)), values, color=["#777777"] + ["#2a7ab9"] * (len(names) - 1))
        ax.bar_label(bars, fmt="%.2f" if max(values) < 100 else "%.0f", fontsize=8)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    with_tmp = path.with_suffix(".tmp.png")
    fig.savefig(with_tmp, dpi=110)
    plt.close(fig)
    with_tmp.replace(path)


def set_results(model_dir: Path, set_name: str, tune_set: str | None) -> dict:
    """Tuned WER of one model on one set with its 95% interval and per-utterance counts.

    Returns {wer, ci, setting, keys, errors, words}; `setting` is the tuning set's best one
    (else this set's own best)."""
    from asr.significance import utterance_counts, wer_ci

    wer = _load_json(model_dir / f"decode_{set_name}" / "wer.json")
    setting = (_load_json(model_dir / f"decode_{tune_set}" / "wer.json")["best_setting"]
               if tune_set else wer["best_setting"])
    entry = wer.get("settings", {}).get(setting)
    if entry is None:
        raise ValueError(f"{model_dir}/decode_{set_name}/wer.json: no scored setting {setting!r}")
    keys, errors, words = utterance_counts(wer["ref"], entry["hyp"])
    ci = wer_ci(errors, words)
    if abs(ci["wer"] - float(entry["wer"])) > 0.011:
        raise ValueError(f"{model_dir}/decode_{set_name}: re-scored WER {ci['wer']} differs from "
                         f"the scored {entry['wer']} at {setting}")
    return {"wer": float(entry["wer"]), "ci": ci["ci"], "setting": setting,
            "keys": keys, "errors": errors, "words": words}


def test_set_stats(ref_text: Path, words_txt: Path | None, arpa: Path | None) -> dict:
    """{words, utterances, oov_rate (%), perplexity} of a Kaldi `text` reference."""
    lines = [ln.split()[1:] for ln in ref_text.read_text(encoding="utf-8").splitlines() if ln.strip()]
    n_words = sum(len(w) for w in lines)
    if not n_words:
        raise ValueError(f"{ref_text}: empty reference (no words)")
    out: dict = {"words": n_words, "utterances": len(lines), "oov_rate": None, "perplexity": None}
    if words_txt is not None:
        vocab = {ln.split()[0] for ln in words_txt.read_text(encoding="utf-8").splitlines() if ln.strip()}
        out["oov_rate"] = round(100.0 * sum(w not in vocab for ws in lines for w in ws) / n_words, 3)
    if arpa is not None:
        from kaldingram.ppl import compute_ppl
        from kaldingram.prune import ArpaParser

        lm = ArpaParser().loadf(str(arpa), encoding="utf-8")[0]
        stats = compute_ppl(lm, [" ".join(ws) for ws in lines])
        out["perplexity"] = round(float(stats["ppl"]), 2)
    return out


def seed_dirs(model_dir: str, seeds: int) -> list[str]:
    """The dirs of a model's training runs: `am_<tag>` (seed 1), `am_<tag>_seed<k>` (k = 2 .. seeds)."""
    return [model_dir] + [f"{model_dir}_seed{k}" for k in range(2, seeds + 1)]


def seeds_section(exp: Path, model_dirs: list[str], test_sets: list[str], tune_set: str | None,
                  seeds: int, first: dict) -> dict:
    """Per model over its `seeds` training runs: mean and standard deviation (and range) of CV frame
    accuracy and of the tuned WER of every test set, and the pooled paired test of each model
    against the baseline (asr.significance.pooled_paired_test) with its verdict. `first`: the
    seed-1 dirs' `set_results` already computed, {dir: {set: ...}}."""
    import numpy as np

    from asr.significance import pooled_paired_test, verdict

    def spread(values: list[float]) -> dict:
        v = np.asarray(values, np.float64)
        return {"mean": round(float(v.mean()), 2), "sd": round(float(v.std(ddof=1)) if len(v) > 1 else 0.0, 2),
                "min": round(float(v.min()), 2), "max": round(float(v.max()), 2), "values": [round(x, 2) for x in values]}

    out: dict = {"seeds": seeds, "models": {}, "pooled": {}}
    errors: dict = {}
    base_name = None
    for d in model_dirs:
        runs = seed_dirs(d, seeds)
        name = _load_json(exp / d / "summary.json")["model"]
        base_name = base_name or name
        entry = {"dirs": runs, "cv_frame_acc": spread([100 * float(_load_json(exp / r / "summary.json")["cv_frame_acc"])
                                                       for r in runs]), "wer": {}}
        errors[d] = {}
        for s_name in test_sets:
            res = [first[d][s_name]] + [set_results(exp / r, s_name, tune_set) for r in runs[1:]]
            if any(x["keys"] != res[0]["keys"] for x in res):
                raise ValueError(f"{exp}/{d}: the seeds' decodes of {s_name} cover different utterances")
            entry["wer"][s_name] = spread([x["wer"] for x in res])
            errors[d][s_name] = (res[0]["keys"], np.stack([x["errors"] for x in res]), res[0]["words"])
        out["models"][name] = entry
        if d != model_dirs[0]:
            out["pooled"][name] = {}
            for s_name in test_sets:
                ka, ea, words = errors[model_dirs[0]][s_name]
                kb, eb, _ = errors[d][s_name]
                if ka != kb:
                    raise ValueError(f"{exp}/{d}/decode_{s_name}: not the utterances of {model_dirs[0]}")
                pair = pooled_paired_test(ea, eb, words)
                pair["verdict"] = verdict(pair, base_name, name, s_name) + f" (pooled over {seeds} seeds each)"
                out["pooled"][name][s_name] = pair
    return out


def format_seeds(sec: dict, test_sets: list[str]) -> str:
    """Markdown: mean ± sd [min, max] over seeds per model, then the pooled verdicts."""
    fmt = lambda e: f"{e['mean']:.2f} ± {e['sd']:.2f} [{e['min']:.2f}, {e['max']:.2f}]"  # noqa: E731
    lines = [f"## Over {sec['seeds']} training seeds\n",
             "| model | CV frame acc (%) | " + " | ".join(f"`{s}` WER (%), tuned" for s in test_sets) + " |",
             "|---|---|" + "---|" * len(test_sets)]
    for name, e in sec["models"].items():
        lines.append(f"| {name} | {fmt(e['cv_frame_acc'])} | " + " | ".join(fmt(e["wer"][s]) for s in test_sets) + " |")
    lines.append("\nMean ± standard deviation over seeds [lowest, highest]. Pooled comparison: the difference of "
                 "the mean WERs over seeds, 95% interval and p from a two-level bootstrap (utterances resampled, "
                 "the same draw for every run; seeds resampled per model), 10,000 replicates:\n")
    lines += [f"- {p['verdict']}" for by_set in sec["pooled"].values() for p in by_set.values()]
    return "\n".join(lines) + "\n"


def build_report(exp: Path, model_dirs: list[str], test_sets: list[str], tune_set: str | None = None,
                 arpa: Path | None = None, words_txt: Path | None = None, seeds: int = 1) -> dict:
    """Collect rows, significance and test-set facts; write report.json/.md/.png under `exp`.
    With `seeds` > 1, also every model's spread over its training runs and the pooled tests."""
    from asr.significance import paired_test, verdict

    test_set = test_sets[0]
    rows = [model_row(exp / d, test_set, tune_set) for d in model_dirs]
    per_set = {d: {s: set_results(exp / d, s, tune_set) for s in test_sets} for d in model_dirs}
    for row, d in zip(rows, model_dirs):
        row["wer_by_set"] = {s: {k: r[k] for k in ("wer", "ci", "setting")} for s, r in per_set[d].items()}
    sets_info = {}
    for s in test_sets:
        ref = Path(_load_json(exp / model_dirs[0] / f"decode_{s}" / "wer.json")["ref"])
        sets_info[s] = test_set_stats(ref, words_txt, arpa)
    paired_by_model: dict = {}
    base = per_set[model_dirs[0]]
    for row, d in zip(rows[1:], model_dirs[1:]):
        paired_by_model[row["model"]] = {}
        for s in test_sets:
            a, b = base[s], per_set[d][s]
            if a["keys"] != b["keys"]:
                raise ValueError(f"{exp}/{d}/decode_{s}: not the utterances of {model_dirs[0]}")
            pair = paired_test(a["errors"], b["errors"], a["words"])
            pair["verdict"] = verdict(pair, rows[0]["model"], row["model"], s)
            paired_by_model[row["model"]][s] = pair
    stage_times = read_stage_times(exp / "stage_times")
    report = {"wall_s": sum(stage_times.values()), "stage_times_s": stage_times, "test_set": test_set,
              "test_sets": sets_info, "tune_set": tune_set, "models": rows,
              "paired": next(iter(paired_by_model.values()), {}), "paired_by_model": paired_by_model}
    if seeds > 1:
        report["over_seeds"] = seeds_section(exp, model_dirs, test_sets, tune_set, seeds, per_set)
    atomic_write_text(exp / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(exp / "report.md", format_markdown(report))
    plot(rows, exp / "report.png")
    return report


def format_sets_table(report: dict) -> str:
    """Markdown: one row per model, tuned WER [95% CI] per test set; then the test sets."""
    sets = list(report["test_sets"])
    lines = ["| model | " + " | ".join(f"`{s}` WER (%) [95% CI]" for s in sets) + " |",
             "|---|" + "---|" * len(sets)]
    for r in report["models"]:
        cells = [f"{r['wer_by_set'][s]['wer']:.2f} [{r['wer_by_set'][s]['ci'][0]:.2f}, "
                 f"{r['wer_by_set'][s]['ci'][1]:.2f}]" for s in sets]
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    lines += ["", "| test set | utterances | words | OOV rate (%) | LM perplexity |", "|---|---|---|---|---|"]
    for s, info in report["test_sets"].items():
        lines.append(f"| `{s}` | {info['utterances']} | {info['words']} | {info['oov_rate']} | {info['perplexity']} |")
    return "\n".join(lines) + "\n"


def format_markdown(report: dict) -> str:
    """The whole report.md: the Table-3-style table, WER per set with intervals, verdicts."""
    test_set, tune_set = report["test_set"], report["tune_set"]
    tuned = (f"Tuned: the LM weight and insertion penalty that scored best on `{tune_set}`, applied "
             f"to each test set (`wer` of report.json is `{test_set}`). " if tune_set else "")
    verdicts = [p["verdict"] for by_set in report["paired_by_model"].values() for p in by_set.values()]
    return (
        f"# Acoustic models on `{test_set}`\n\n{format_table(report['models'])}\n"
        f"## WER on every test set\n\n{format_sets_table(report)}\n"
        f"## Are the models separable?\n\nPaired bootstrap over utterances (10,000 replicates), "
        f"difference to the baseline in % absolute:\n\n" + "".join(f"- {v}\n" for v in verdicts) +
        f"\nFLOPs: multiply-adds of conv and linear layers per output frame (asr.flops), output layer "
        f"included. {tuned}Default setting: the decoder's LM weight 1/acoustic scale, no insertion "
        f"penalty. Best on test: the best of the LM-weight x penalty grid on the test set itself "
        f"(Kaldi's RESULTS convention, optimistic). Intervals: 95% bootstrap over utterances "
        f"(asr.significance). RTF: process time per second of audio on one core of the network pass "
        f"(features, network, log-likelihoods), of the search, and of both (one decoding pass); the "
        f"search of the test set is {report['models'][0].get('search')}. Train frames/s: output frames per second of training "
        f"wall time, all processes. Whole run: {report['wall_s']:.0f} s of stage wall time.\n\n"
        f"![report](report.png)\n"
        + (f"\n{format_seeds(report['over_seeds'], list(report['test_sets']))}" if "over_seeds" in report else "")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp", type=Path, required=True, help="experiment dir holding the model dirs")
    parser.add_argument("--models", nargs="+", required=True, help="model dirs under --exp, baseline first")
    parser.add_argument("--test-sets", nargs="+", default=["test"],
                        help="decode_<set> dirs to report; the first is the `wer` of report.json")
    parser.add_argument("--tune-set", default=None,
                        help="decode_<set> dir whose best LM weight/penalty picks the reported test WER")
    parser.add_argument("--lm", type=Path, help="ARPA LM: its perplexity on each test set")
    parser.add_argument("--words-txt", type=Path, help="the graph's words.txt: OOV rate of each test set")
    parser.add_argument("--seeds", type=int, default=1, help="training runs per model: <dir>, <dir>_seed2, ...")
    args = parser.parse_args(argv)
    setup_logging()
    report = build_report(args.exp, args.models, args.test_sets, args.tune_set or None, args.lm,
                          args.words_txt, args.seeds)
    print(format_table(report["models"]))
    print(format_sets_table(report))
    for by_set in report["paired_by_model"].values():
        for pair in by_set.values():
            print(pair["verdict"])
    if "over_seeds" in report:
        print(format_seeds(report["over_seeds"], args.test_sets))
    print(f"whole run: {report['wall_s']:.0f} s; written {args.exp / 'report.json'}")


if __name__ == "__main__":
    main()
