"""sclite-style report files of one scored setting: score.sys/.raw (per speaker), .pra, .dtl, confusions."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from pathlib import Path

from asr.score.align import Counts
from asr.utils import atomic_write_text

# `SettingResult` in annotations is asr.score.result's (not imported: result imports this module).


def _sys_table(title: str, res: SettingResult, percent: bool) -> str:
    """sclite `.sys` (percent) or `.raw` (counts) per-speaker summary."""
    by_spk: dict[str, Counts] = {}
    for u in res.utts:
        by_spk.setdefault(u.speaker, Counts()).add(u.counts)
    total = res.total()
    spk_w = max([7] + [len(s) for s in by_spk])

    def row(label: str, c: Counts) -> str:
        if percent:
            vals = [c.pct(c.corr), c.pct(c.sub), c.pct(c.dele), c.pct(c.ins), c.pct(c.err),
                    100.0 * c.snt_err / c.snt if c.snt else 0.0]
            body = " ".join(f"{v:6.1f}" for v in vals)
        else:
            body = " ".join(f"{v:6d}" for v in (c.corr, c.sub, c.dele, c.ins, c.err, c.snt_err))
        return f"| {label:<{spk_w}} | {c.snt:5d} {c.ref:7d} | {body} |"

    head = f"| {'SPKR':<{spk_w}} | # Snt   # Wrd | {'Corr':>6} {'Sub':>6} {'Del':>6} {'Ins':>6} {'Err':>6} {'S.Err':>6} |"
    width = len(head)
    sep = "|" + "-" * (spk_w + 2) + "+" + "-" * 15 + "+" + "-" * (width - spk_w - 21) + "|"
    dbl = "|" + "=" * (width - 2) + "|"
    lines = [("SYSTEM SUMMARY PERCENTAGES by SPEAKER" if percent else "SYSTEM SUMMARY COUNTS by SPEAKER").center(width), "",
             "," + "-" * (width - 2) + ".", "|" + title.center(width - 2) + "|", "|" + "-" * (width - 2) + "|",
             head, sep]
    for spk in sorted(by_spk):
        lines += [row(spk, by_spk[spk]), sep]
    lines[-1] = dbl
    lines += [row("Sum/Avg", total), dbl]
    # Mean / S.D. / Median over speakers, as sclite prints them.
    stats_cols = []
    for c in by_spk.values():
        if percent:
            stats_cols.append([c.snt, c.ref, c.pct(c.corr), c.pct(c.sub), c.pct(c.dele), c.pct(c.ins),
                               c.pct(c.err), 100.0 * c.snt_err / c.snt if c.snt else 0.0])
        else:
            stats_cols.append([c.snt, c.ref, c.corr, c.sub, c.dele, c.ins, c.err, c.snt_err])
    cols = list(zip(*stats_cols)) if stats_cols else [[0.0]] * 8
    for label, fn in (("Mean", statistics.fmean),
                      ("S.D.", lambda v: statistics.stdev(v) if len(v) > 1 else 0.0),
                      ("Median", statistics.median)):
        vals = [fn([x for x in col if math.isfinite(x)] or [0.0]) for col in cols]
        lines.append(f"| {label:<{spk_w}} | {vals[0]:5.1f} {vals[1]:7.1f} | " + " ".join(f"{v:6.1f}" for v in vals[2:]) + " |")
    lines.append("`" + "-" * (width - 2) + "'")
    return "\n".join("     " + ln if ln and not ln.startswith("SYSTEM") else ln for ln in lines) + "\n"


def _pra(res: SettingResult) -> str:
    """Per-utterance alignments (sclite `.pra`): correct words lower case, errors upper case."""
    out = []
    for u in res.utts:
        c = u.counts
        refs, hyps, evals = [], [], []
        for r, h, op in u.pairs:
            if op == "I":
                rr, hh, ev = "*" * len(h or ""), (h or "").upper(), "I"
            elif op == "D":
                rr, hh, ev = (r or "").upper(), "*" * len(r or ""), "D"
            elif op == "C":
                rr, hh, ev = r or "", h or "", ""
            else:
                rr, hh, ev = (r or "").upper(), (h or "").upper(), "S"
            w = max(len(rr), len(hh), len(ev))
            refs.append(rr.ljust(w))
            hyps.append(hh.ljust(w))
            evals.append(ev.ljust(w))
        out.append(f"id: ({u.speaker}-{u.key})\nScores: (#C #S #D #I) {c.corr} {c.sub} {c.dele} {c.ins}\n"
                   f"REF:  {' '.join(refs).rstrip()}\nHYP:  {' '.join(hyps).rstrip()}\n"
                   f"Eval: {' '.join(evals).rstrip()}\n\n")
    return "".join(out)


def confusions(res: SettingResult) -> tuple[Counter, Counter, Counter]:
    """(substitution pairs, insertions, deletions) counters."""
    subs, ins, dels = Counter(), Counter(), Counter()
    for u in res.utts:
        for r, h, op in u.pairs:
            if op == "I":
                ins[h] += 1
            elif op == "D":
                dels[r] += 1
            elif op == "S":
                subs[(r, h)] += 1
    return subs, ins, dels


def _dtl(title: str, res: SettingResult) -> str:
    """sclite `.dtl`-style detail: totals, confusion pairs, insertions, deletions."""
    c = res.total()
    subs, ins, dels = confusions(res)
    hyp_words = sum(1 for u in res.utts for _, h, _ in u.pairs if h is not None)
    lines = [f"DETAILED OVERALL REPORT FOR THE SYSTEM: {title}", "",
             "SENTENCE RECOGNITION PERFORMANCE", "",
             f" sentences                          {c.snt:7d}",
             f" with errors                {100.0 * c.snt_err / max(c.snt, 1):5.1f}%   ({c.snt_err:5d})", "",
             "WORD RECOGNITION PERFORMANCE", "",
             f"Percent Total Error       =  {c.wer:5.1f}%   ({c.err:5d})", "",
             f"Percent Correct           =  {c.pct(c.corr):5.1f}%   ({c.corr:5d})", "",
             f"Percent Substitution      =  {c.pct(c.sub):5.1f}%   ({c.sub:5d})",
             f"Percent Deletions         =  {c.pct(c.dele):5.1f}%   ({c.dele:5d})",
             f"Percent Insertions        =  {c.pct(c.ins):5.1f}%   ({c.ins:5d})",
             f"Percent Word Accuracy     =  {100.0 - c.wer:5.1f}%", "",
             f"Ref. words                =           ({c.ref:5d})",
             f"Hyp. words                =           ({hyp_words:5d})",
             f"Aligned words             =           ({sum(len(u.pairs) for u in res.utts):5d})", ""]

    def block(name: str, items: list[tuple[str, int]]) -> list[str]:
        total = sum(n for _, n in items)
        rows = [f"{name}\t\tTotal                 ({total})", f"\t\tWith >=  1 occurances ({len(items)})", ""]
        rows += [f"{i:4d}:  {n:4d}  ->  {label}" for i, (label, n) in enumerate(items, 1)]
        rows += ["     -------", f"      {total:4d}", ""]
        return rows

    def ordered(counter: Counter, fmt) -> list[tuple[str, int]]:
        return [(fmt(k), n) for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))]

    lines += block("CONFUSION PAIRS", ordered(subs, lambda k: f"{k[0]} ==> {k[1]}"))
    lines += block("INSERTIONS", ordered(ins, str))
    lines += block("DELETIONS", ordered(dels, str))
    return "\n".join(lines) + "\n"


def write_setting_files(out_dir: Path, title: str, res: SettingResult) -> None:
    """`score.sys`, `score.raw`, `score.pra`, `score.dtl`, `confusion_pairs`, `per_utt` under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "score.sys", _sys_table(title, res, percent=True))
    atomic_write_text(out_dir / "score.raw", _sys_table(title, res, percent=False))
    atomic_write_text(out_dir / "score.pra", _pra(res))
    atomic_write_text(out_dir / "score.dtl", _dtl(title, res))
    subs, _, _ = confusions(res)
    atomic_write_text(out_dir / "confusion_pairs",
                      "".join(f"{n} {r} {h}\n" for (r, h), n in sorted(subs.items(), key=lambda kv: (-kv[1], kv[0]))))
    atomic_write_text(out_dir / "per_utt",
                      "".join(f"{u.key} #csid {u.counts.corr} {u.counts.sub} {u.counts.dele} {u.counts.ins}\n" for u in res.utts))

