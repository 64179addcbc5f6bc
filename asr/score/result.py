"""Scored settings: per-utterance results of one hypothesis set, and the scoring of several settings."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from asr.score.align import Counts, align, count_alignment
from asr.score.glm import HESITATION, GlmRule, bare, is_optional, normalize_hypothesis, parse_reference, read_glm
from asr.score.inputs import (RefUtt, ctm_stm_hypotheses, ctm_utterance_text, load_references, read_ctm, read_hyp,
                              stm_hypotheses)
from asr.score.reports import write_setting_files
from asr.utils import atomic_write_text, read_kaldi_map

logger = logging.getLogger("asr.score")


@dataclass
class UttResult:
    key: str
    speaker: str
    pairs: list[tuple[str | None, str | None, str]]  # (ref, hyp, C/S/D/I)
    counts: Counts


@dataclass
class SettingResult:
    name: str
    utts: list[UttResult] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def total(self, prefix: str = "") -> Counts:
        c = Counts()
        for u in self.utts:
            if u.key.startswith(prefix):
                c.add(u.counts)
        return c


def _required(slot) -> list:
    """Per alternative of a slot: a word it requires (None if the branch is empty or optional only)."""
    return [next((w for w in alt if not is_optional(w)), None) for alt in slot]


def score_setting(name: str, refs: list[RefUtt], hyp: dict[str, str], rules: list[GlmRule] | None,
                  require_all: bool = False, where: str = "hyp") -> SettingResult:
    """Align every reference unit with its hypothesis (missing -> empty hypothesis)."""
    ref_keys = {r.key for r in refs}
    extra = sorted(set(hyp) - ref_keys)
    if extra:
        raise ValueError(f"{where}: {len(extra)} hypothesis utterance(s) not in the reference, e.g. '{extra[0]}'")
    res = SettingResult(name)
    for r in refs:
        slots = parse_reference(r.text, rules, where=f"reference of '{r.key}'")
        if r.key not in hyp and any(all(w is not None for w in _required(slot)) for slot in slots):
            # (a segment of optional words only, e.g. `(%hesitation)`, needs no hypothesis)
            res.missing.append(r.key)
        hwords = normalize_hypothesis(hyp.get(r.key, "").split(), rules)
        pairs = align(slots, hwords)
        res.utts.append(UttResult(r.key, r.speaker, pairs, count_alignment(pairs)))
    if res.missing:
        msg = (f"{where}: {len(res.missing)} reference utterance(s) have no hypothesis, e.g. "
               f"{', '.join(repr(k) for k in res.missing[:5])}")
        if require_all:
            raise ValueError(msg)
        logger.warning("%s -- scored as all deletions", msg)
    return res



_SETTING_RE = re.compile(r"lmwt_?(?P<lmwt>[0-9.]+)(?:_wip_?(?P<wip>-?[0-9.]+))?")


def setting_name(path: Path) -> str:
    """`hyp_lmwt10_wip0.5.txt` (or `.ctm`) -> `lmwt10_wip0.5`; `hyp.txt` -> `hyp`."""
    stem = path.name
    for ext in (".txt", ".ctm"):
        stem = stem[: -len(ext)] if stem.endswith(ext) else stem
    return stem[4:] if stem.startswith("hyp_") else stem


def parse_setting(name: str) -> dict:
    """LM weight / insertion penalty encoded in a setting name (None where absent)."""
    m = _SETTING_RE.search(name)
    if not m:
        return {"lm_weight": None, "wip": None}
    return {"lm_weight": float(m.group("lmwt").rstrip(".")),
            "wip": float(m.group("wip")) if m.group("wip") else None}


def summarize(res: SettingResult, subsets: list[str]) -> dict:
    """Counts over everything, each subset prefix, and the mean of the subset WERs."""
    d = res.total().to_dict()
    if subsets:
        subs = {p: res.total(p).to_dict() for p in subsets}
        d["subsets"] = subs
        wers = [s["wer"] for s in subs.values() if s["wer"] is not None]
        d["subset_avg_wer"] = round(sum(wers) / len(wers), 4) if wers else None
    return d


def check_vocabulary(refs: list[RefUtt], words_txt: Path, rules: list[GlmRule] | None, mode: str) -> dict:
    """Reference words absent from `words.txt`: an error (mode 'error') or a warning + counts."""
    vocab = {line.split()[0].lower() for line in words_txt.read_text().splitlines() if line.strip()}
    oov: Counter = Counter()
    first: dict[str, str] = {}
    n = 0
    for r in refs:
        for slot in parse_reference(r.text, rules, where=r.key):
            for w in map(bare, slot[0]):
                n += 1
                if w not in vocab and w != HESITATION and not w.endswith("-") and not w.startswith("-"):
                    oov[w] += 1
                    first.setdefault(w, r.key)
    if oov and mode == "error":
        w = sorted(oov)[0]
        raise ValueError(f"{words_txt}: {len(oov)} reference word(s) not in the vocabulary, e.g. "
                         f"'{w}' in utterance '{first[w]}'")
    if oov:
        logger.warning("%d reference word types (%d tokens) not in %s, e.g. %s", len(oov), sum(oov.values()),
                       words_txt, ", ".join(sorted(oov)[:5]))
    return {"oov_types": len(oov), "oov_tokens": sum(oov.values()),
            "oov_rate_pct": round(100.0 * sum(oov.values()) / max(n, 1), 4)}


def score_files(ref: Path, hyps: list[Path], out_dir: Path, glm: Path | None = None, utt2spk: Path | None = None,
                segments: Path | None = None, reco2fc: Path | None = None, subsets: list[str] | None = None,
                words_txt: Path | None = None, oov_mode: str = "warn", require_all: bool = False) -> dict:
    """Score each hypothesis file (a setting); write per-setting files, `wer-summary`, `wer.json`."""
    rules = read_glm(glm) if glm else None
    refs, is_stm = load_references(ref, rules, utt2spk)
    if not refs:
        raise ValueError(f"{ref}: no reference utterances (nothing to score against)")
    n_words = sum(len(parse_reference(r.text, rules, where=r.key)) for r in refs)
    if n_words == 0:
        raise ValueError(f"{ref}: the {len(refs)} reference utterance(s) have no scored words (WER would be 0/0)")
    if not hyps:
        raise ValueError("no hypothesis files to score")
    subsets = subsets or []
    if is_stm:
        if segments is None and (ref.parent / "segments").exists():
            segments = ref.parent / "segments"
        if reco2fc is None and (ref.parent / "reco2file_and_channel").exists():
            reco2fc = ref.parent / "reco2file_and_channel"
        if segments is None and any(h.suffix != ".ctm" for h in hyps):
            raise ValueError(f"{ref}: scoring Kaldi-text hypotheses against an STM needs --segments "
                             "(utt reco begin end)")
        seg_map = read_kaldi_map(segments) if segments else None
        fc_map = read_kaldi_map(reco2fc) if reco2fc else None
    oov = check_vocabulary(refs, words_txt, rules, oov_mode) if words_txt else None
    summary: dict = {"ref": str(ref), "glm": str(glm) if glm else None, "settings": {}}
    results = {}
    for hyp_path in hyps:
        name = setting_name(hyp_path)
        if hyp_path.suffix == ".ctm":
            ctm = read_ctm(hyp_path)
            hyp = (ctm_stm_hypotheses(refs, ctm, seg_map, fc_map, str(hyp_path)) if is_stm
                   else ctm_utterance_text(ctm))
        else:
            hyp = read_hyp(hyp_path)
            if is_stm:
                hyp = stm_hypotheses(refs, hyp, seg_map, fc_map, str(hyp_path))
        res = score_setting(name, refs, hyp, rules, require_all=require_all, where=str(hyp_path))
        results[name] = res
        write_setting_files(out_dir / name if len(hyps) > 1 else out_dir, hyp_path.name, res)
        entry = summarize(res, subsets) | parse_setting(name) | {"hyp": str(hyp_path), "missing_utts": res.missing}
        summary["settings"][name] = entry
        logger.info("%s: WER %.2f%% [ %d / %d, %d ins, %d del, %d sub ]", name, res.total().wer, res.total().err,
                    res.total().ref, res.total().ins, res.total().dele, res.total().sub)
    ranked = sorted(summary["settings"].items(), key=lambda kv: (kv[1]["wer"] is None, kv[1]["wer"] or 0.0, kv[0]))
    best_name, best = ranked[0]
    summary.update({k: v for k, v in best.items() if k != "hyp"})
    summary["best_setting"] = best_name
    if oov is not None:
        summary["oov"] = oov
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "wer.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out_dir / "wer-summary", "settings\tWER\n" + "".join(
        f"{n}\t{e['wer']:.2f}\n" if e["wer"] is not None else f"{n}\tinf\n" for n, e in ranked))
    c = results[best_name].total()
    line = f"%WER {c.wer:.2f} [ {c.err} / {c.ref}, {c.ins} ins, {c.dele} del, {c.sub} sub ] {best_name}"
    for p in subsets:
        s = best["subsets"][p]
        line += f"\n%WER {s['wer'] if s['wer'] is not None else float('inf'):.2f} [ {s['err']} / {s['ref_words']} ] {p}"
    if subsets:
        line += f"\n%WER {best['subset_avg_wer']:.2f} average of {' '.join(subsets)}"
    atomic_write_text(out_dir / "best_wer", line + "\n")
    return summary

