"""Scoring inputs: STM references, Kaldi-text and CTM hypotheses, hypotheses mapped onto STM segments."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from asr.utils import read_kaldi_map


@dataclass
class RefUtt:
    """One scored reference unit (an utterance, or an STM segment)."""

    key: str
    speaker: str
    text: str
    file: str = ""
    channel: str = ""
    begin: float = 0.0
    end: float = 0.0



def file_and_channel(reco: str, reco2fc: dict[str, str] | None, where: str) -> tuple[str, str]:
    """The STM (file, channel) of a recording: from reco2file_and_channel, else `<file>-<channel>`."""
    if reco2fc is None:
        f, _, ch = reco.rpartition("-")
        return f, ch
    if reco not in reco2fc:
        raise ValueError(f"{where}: recording '{reco}' missing from reco2file_and_channel")
    f, ch = reco2fc[reco].split()
    return f, ch

def read_stm(path: str | Path) -> list[RefUtt]:
    """STM lines `file channel speaker begin end [<labels>] words...`; `;;` comments."""
    out = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";;"):
            continue
        parts = line.split(maxsplit=5)
        if len(parts) < 5:
            raise ValueError(f"{path}:{lineno}: STM line needs 'file channel speaker begin end': {line!r}")
        f, ch, spk, b, e = parts[:5]
        text = parts[5] if len(parts) > 5 else ""
        if text.startswith("<"):
            text = text.split(">", 1)[1] if ">" in text else ""
        if spk.lower().startswith("inter_segment_gap") or "ignore_time_segment_in_scoring" in text.lower():
            continue
        out.append(RefUtt(f"{f}_{ch}_{float(b):09.2f}", spk, text, f, ch, float(b), float(e)))
    return out


def stm_hypotheses(refs: list[RefUtt], hyp: dict[str, str], segments: dict[str, str],
                   reco2fc: dict[str, str] | None, where: str) -> dict[str, str]:
    """Assign each hypothesis utterance to the STM segment (same file/channel) holding its midpoint.

    `segments`: Kaldi `utt reco begin end`; `reco2fc`: `reco file channel` (default: reco
    `file-channel`). Returns STM key -> hypothesis text. An utterance outside every segment is an error.
    """
    by_fc: dict[tuple[str, str], list[RefUtt]] = {}
    for r in refs:
        by_fc.setdefault((r.file, r.channel), []).append(r)
    found: dict[str, list[tuple[float, str]]] = {}
    for utt, text in hyp.items():
        if utt not in segments:
            raise ValueError(f"{where}: utterance '{utt}' has no line in the segments file")
        reco, b, e = segments[utt].split()
        f, ch = file_and_channel(reco, reco2fc, where)
        mid = 0.5 * (float(b) + float(e))
        cands = [r for r in by_fc.get((f, ch), []) if r.begin <= mid <= r.end]
        if not cands:
            raise ValueError(f"{where}: utterance '{utt}' ({f} {ch} {mid:.2f}s) lies in no STM segment")
        found.setdefault(cands[0].key, []).append((float(b), text))
    return {k: " ".join(t for _, t in sorted(v)) for k, v in found.items()}


def read_hyp(path: str | Path) -> dict[str, str]:
    """Kaldi text `utt words...` (an utterance with no words may have an empty line)."""
    return read_kaldi_map(path, allow_empty_value=True)



def load_references(ref: Path, glm_rules, utt2spk: Path | None) -> tuple[list[RefUtt], bool]:
    """References from an STM or a Kaldi text; returns (units, is_stm)."""
    if ref.suffix == ".stm" or ref.name == "stm":
        return read_stm(ref), True
    texts = read_kaldi_map(ref, allow_empty_value=True)
    if utt2spk is None and (ref.parent / "utt2spk").exists():
        utt2spk = ref.parent / "utt2spk"
    spk = read_kaldi_map(utt2spk) if utt2spk else {}
    return [RefUtt(u, spk.get(u, u), t) for u, t in sorted(texts.items())], False


@dataclass
class CtmWord:
    """One CTM line `name channel start dur word [conf]` (seconds)."""

    name: str
    channel: str
    start: float
    dur: float
    word: str
    conf: float | None = None


def read_ctm(path: str | Path) -> list[CtmWord]:
    """CTM lines `name channel start dur word [conf]`; `;;` comments; a bad line is an error naming it."""
    out = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";;"):
            continue
        f = line.split()
        if len(f) not in (5, 6):
            raise ValueError(f"{path}:{lineno}: CTM line needs 'name channel start dur word [conf]': {line!r}")
        try:
            out.append(CtmWord(f[0], f[1], float(f[2]), float(f[3]), f[4], float(f[5]) if len(f) == 6 else None))
        except ValueError:
            raise ValueError(f"{path}:{lineno}: non-numeric start/duration/confidence: {line!r}") from None
    return out


def ctm_utterance_text(words: list[CtmWord]) -> dict[str, str]:
    """Utterance-level CTM (first field = utterance id) -> `utt -> words in time order`."""
    by: dict[str, list[CtmWord]] = {}
    for w in words:
        by.setdefault(w.name, []).append(w)
    return {u: " ".join(w.word for w in sorted(ws, key=lambda w: w.start)) for u, ws in by.items()}


def ctm_stm_hypotheses(refs: list[RefUtt], words: list[CtmWord], segments: dict[str, str] | None,
                       reco2fc: dict[str, str] | None, where: str) -> dict[str, str]:
    """CTM words -> STM key -> text: each word goes to the segment (same file/channel) holding its
    midpoint, as sclite assigns them. Utterance-level CTM lines (name in `segments`) are first moved
    to recording time; words in no scored segment (ignored regions, gaps) are dropped and counted."""
    by_fc: dict[tuple[str, str], list[RefUtt]] = {}
    for r in refs:
        by_fc.setdefault((r.file, r.channel), []).append(r)
    found: dict[str, list[tuple[float, str]]] = {}
    dropped = 0
    for w in words:
        f, ch, t0 = w.name, w.channel, w.start
        if segments is not None and w.name in segments:
            reco, b, _e = segments[w.name].split()
            t0 += float(b)
            f, ch = file_and_channel(reco, reco2fc, where)
        mid = t0 + 0.5 * w.dur
        cands = [r for r in by_fc.get((f, ch), []) if r.begin <= mid < r.end] or \
                [r for r in by_fc.get((f, ch), []) if r.begin <= mid <= r.end]
        if not cands:
            dropped += 1
            continue
        found.setdefault(cands[0].key, []).append((t0, w.word))
    if dropped:
        logging.getLogger("asr.score").info("%s: %d CTM word(s) outside every scored STM segment", where, dropped)
    return {k: " ".join(t for _, t in sorted(v)) for k, v in found.items()}
