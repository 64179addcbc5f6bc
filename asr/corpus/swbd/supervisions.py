"""Supervisions the Kaldi way: conversation-side ids, text normalisation, Hub5'00 segments from the stm."""

from __future__ import annotations

import logging
import re
from pathlib import Path


from asr.corpus.swbd_text import IGNORE_SEGMENT, normalize_eval2000

log = logging.getLogger(__name__)




# ------------------------------------------------------------------------- supervisions

def _side(channel: int) -> str:
    return "AB"[channel]


def kaldi_ids(reco: str, channel: int, start: float, end: float) -> tuple[str, str]:
    """(utterance id, speaker id) in Kaldi's Switchboard style: sw02001-A_000098-001156."""
    spk = f"{reco}-{_side(channel)}"
    return f"{spk}_{round(start * 100):06d}-{round(end * 100):06d}", spk


def renormalize(sups, normalize, corpus: str):
    """Kaldi-style ids, conversation-side speakers and normalised text for lhotse supervisions.

    Segments whose text normalises to nothing are dropped, and duplicated ids (two segments
    with the same side and times) keep the first; both are counted in the log.
    """
    from lhotse import SupervisionSegment

    out, seen = [], set()
    empty = dup = 0
    for s in sups:
        text = normalize(s.text or "")
        if not text:
            empty += 1
            continue
        channel = s.channel if isinstance(s.channel, int) else s.channel[0]
        uid, spk = kaldi_ids(s.recording_id, channel, s.start, s.end)
        if uid in seen:
            dup += 1
            continue
        seen.add(uid)
        out.append(SupervisionSegment(
            id=uid, recording_id=s.recording_id, start=s.start, duration=s.duration,
            channel=channel, text=text, language="English", speaker=spk,
            custom={"corpus": corpus, "orig_text": s.text},
        ))
    log.info("%s: %d segments kept, %d empty after normalisation dropped, %d duplicate ids dropped",
             corpus, len(out), empty, dup)
    return out


def _stm_entries(stm: Path):
    """(line number, file, side, start, end, words) for each stm segment (`;;` comments skipped)."""
    with open(stm, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith(";;"):
                continue
            parts = line.split()
            if len(parts) < 5:
                raise ValueError(f"{stm}:{lineno}: expected 'file channel speaker start end "
                                 f"[<label>] words', got: {line.rstrip()}")
            fname, chan, _spk, start, end, *rest = parts
            side = {"1": "A", "2": "B"}.get(chan, chan.upper())
            if side not in ("A", "B"):
                raise ValueError(f"{stm}:{lineno}: channel '{chan}' is not A/B/1/2")
            try:
                t0, t1 = float(start), float(end)
            except ValueError:
                raise ValueError(f"{stm}:{lineno}: bad times '{start} {end}'") from None
            if rest and rest[0].startswith("<") and rest[0].endswith(">"):
                rest = rest[1:]
            yield lineno, fname, side, t0, t1, " ".join(rest)


def stm_supervisions(stm: Path, recordings) -> list:
    """eval2000 supervisions segmented as the stm (as Kaldi does), with normalised text."""
    from lhotse import SupervisionSegment

    out, ignored, empty = [], 0, 0
    seen = set()
    for lineno, fname, side, t0, t1, words in _stm_entries(stm):
        if IGNORE_SEGMENT in words.lower():
            ignored += 1
            continue
        if fname not in recordings:
            raise ValueError(f"{stm}:{lineno}: no recording '{fname}' in the eval2000 audio")
        # A segment of only optional words, "(%HESITATION)", keeps its stm words: it must still
        # be decoded (words recognised there count as insertions).
        text = normalize_eval2000(words) or words.lower()
        if not text:
            empty += 1
            continue
        channel = "AB".index(side)
        uid, spk = kaldi_ids(fname, channel, t0, t1)
        if uid in seen:
            raise ValueError(f"{stm}:{lineno}: duplicate segment {uid}")
        seen.add(uid)
        out.append(SupervisionSegment(
            id=uid, recording_id=fname, start=t0, duration=round(t1 - t0, 4), channel=channel,
            text=text, language="English", speaker=spk,
            custom={"corpus": "eval2000", "orig_text": words},
        ))
    log.info("eval2000: %d stm segments kept, %d IGNORE_TIME_SEGMENT_IN_SCORING left out",
             len(out), ignored)
    if empty:
        log.warning("eval2000: %d stm segments have no words and are left out of the data dir "
                    "(not decoded, so insertions there are not scored)", empty)
    return out


def fix_stm(text: str) -> str:
    """The stm as scored: `((` -> `(` and no <B_ASIDE>/<E_ASIDE> (hubscr-style scoring trips on them)."""
    text = text.replace("((", "(")
    return re.sub(r"<[BE]_ASIDE>", "", text, flags=re.IGNORECASE)
