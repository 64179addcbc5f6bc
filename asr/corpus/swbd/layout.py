"""Switchboard/Fisher/Hub5'00 inputs: corpora.yaml (`load_corpora`), the LDC directory layouts found
below it (`resolve_layout`), and the problems that stop preparation before any work."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from asr.corpus.swbd.supervisions import _stm_entries

log = logging.getLogger(__name__)

STM_NAME = "hub5e00.english.000405.stm"
GLM_NAME = "en20000405_hub5.glm"
MANIFEST_PREFIX = "swbd"


# ------------------------------------------------------------------------- config and layout

@dataclass
class Corpora:
    """Paths from corpora.yaml. `fisher_*` empty = Switchboard-only (300 h) training."""

    swbd_audio: Path
    swbd_transcripts: Path
    eval2000_audio: Path
    eval2000_transcripts: Path
    fisher_audio: list[Path] = field(default_factory=list)
    fisher_transcripts: list[Path] = field(default_factory=list)
    dev_conversations: int = 0


def load_corpora(path: str | os.PathLike) -> Corpora:
    """Read corpora.yaml. Raises ValueError naming the file and the missing key."""
    cfg = yaml.safe_load(Path(path).read_text()) or {}

    def get(section: str, key: str, *, optional: bool = False):
        sec = cfg.get(section)
        value = sec.get(key) if isinstance(sec, dict) else None
        if value in (None, "", []) and not optional:
            raise ValueError(f"{path}: '{section}.{key}' is not set")
        return value

    def as_list(v) -> list[Path]:
        if v in (None, "", []):
            return []
        return [Path(p) for p in (v if isinstance(v, list) else [v])]

    fa = as_list(get("fisher", "audio", optional=True))
    ft = as_list(get("fisher", "transcripts", optional=True))
    if bool(fa) != bool(ft):
        raise ValueError(f"{path}: give both 'fisher.audio' and 'fisher.transcripts', or neither")
    return Corpora(
        swbd_audio=Path(get("swbd", "audio")),
        swbd_transcripts=Path(get("swbd", "transcripts")),
        eval2000_audio=Path(get("eval2000", "audio")),
        eval2000_transcripts=Path(get("eval2000", "transcripts")),
        fisher_audio=fa,
        fisher_transcripts=ft,
        dev_conversations=int(cfg.get("dev_conversations") or 0),
    )


@dataclass
class Layout:
    """Where each input was found (after resolving the optional LDC sub-levels)."""

    swbd_sph: list[Path] = field(default_factory=list)
    swbd_trans: list[Path] = field(default_factory=list)
    fisher_partitions: list[Path] = field(default_factory=list)  # dirs holding audio/
    fisher_trans_roots: list[Path] = field(default_factory=list)  # dirs holding data/trans, doc/
    eval_audio_root: Path | None = None  # dir holding english/
    eval_trans_root: Path | None = None  # dir holding reference/
    problems: list[str] = field(default_factory=list)

    @property
    def stm(self) -> Path:
        return self.eval_trans_root / "reference" / STM_NAME

    @property
    def glm(self) -> Path:
        return self.eval_trans_root / "reference" / GLM_NAME


def _files_below(root: Path, pattern: str, key: str, problems: list[str]) -> list[Path]:
    """Sorted files matching `pattern` below `root`; a missing dir or no match is a problem named by `key`."""
    if not root.is_dir():
        problems.append(f"{key}: no such directory: {root}")
        return []
    files = sorted(root.rglob(pattern))
    if not files:
        problems.append(f"{key}: no {pattern} files below {root}")
    return files


def _find_level(root: Path, marker: str, sublevels: list[str]) -> Path | None:
    """`root` or `root/<sub>` (first match) that contains `marker`."""
    for cand in [root] + [root / s for s in sublevels]:
        if (cand / marker).exists():
            return cand
    return None


def resolve_layout(c: Corpora) -> Layout:
    """Check every input path; collect what is missing in `Layout.problems` (never raises)."""
    lay = Layout()
    p = lay.problems

    # Switchboard-1
    lay.swbd_sph = _files_below(c.swbd_audio, "*.sph", "swbd.audio", p)
    lay.swbd_trans = _files_below(c.swbd_transcripts, "*trans.text", "swbd.transcripts", p)

    # Fisher
    for d in c.fisher_audio:
        if not d.is_dir():
            p.append(f"fisher.audio: no such directory: {d}")
            continue
        parts = [d] if (d / "audio").is_dir() else sorted(
            x for x in d.iterdir() if (x / "audio").is_dir())
        if not parts:
            p.append(f"fisher.audio: no <partition>/audio/ directories in {d}")
        lay.fisher_partitions += parts
    for d in c.fisher_transcripts:
        if not d.is_dir():
            p.append(f"fisher.transcripts: no such directory: {d}")
            continue
        subs = sorted(x.name for x in d.iterdir() if x.is_dir())
        root = _find_level(d, "data/trans", subs)
        if root is None:
            p.append(f"fisher.transcripts: no data/trans/ in {d} or its subdirectories")
            continue
        if not list((root / "doc").glob("*_calldata.tbl")):
            p.append(f"fisher.transcripts: no doc/*_calldata.tbl in {root}")
        lay.fisher_trans_roots.append(root)

    # Hub5'00
    if not c.eval2000_audio.is_dir():
        p.append(f"eval2000.audio: no such directory: {c.eval2000_audio}")
    else:
        lay.eval_audio_root = _find_level(c.eval2000_audio, "english", ["hub5e_00"])
        if lay.eval_audio_root is None:
            p.append(f"eval2000.audio: no english/ (or hub5e_00/english/) in {c.eval2000_audio}")
    if not c.eval2000_transcripts.is_dir():
        p.append(f"eval2000.transcripts: no such directory: {c.eval2000_transcripts}")
    else:
        root = _find_level(c.eval2000_transcripts, "reference", ["2000_hub5_eng_eval_tr"])
        lay.eval_trans_root = root
        if root is None:
            p.append(f"eval2000.transcripts: no reference/ in {c.eval2000_transcripts}")
        else:
            for f in (root / "reference" / "english", lay.stm, lay.glm):
                if not f.exists():
                    p.append(f"eval2000.transcripts: missing {f}")
    if not p:
        p += _pairing_problems(lay)
    return lay


def _pairing_problems(lay: Layout) -> list[str]:
    """Every audio file needs its transcripts and vice versa (lhotse would fail unhelpfully)."""
    p: list[str] = []
    sides = {t.name.split("-")[0]: t for t in lay.swbd_trans}  # sw2001A
    for sph in lay.swbd_sph:
        name = sph.stem.replace("sw0", "sw")
        for side in "AB":
            if name + side not in sides:
                p.append(f"swbd: no transcript {name}{side}-ms98-a-trans.text for audio {sph}")
    have = {s.stem.replace("sw0", "sw") for s in lay.swbd_sph}
    unused = sorted(t for k, t in sides.items() if k[:-1] not in have)
    if unused:  # e.g. a partial copy of LDC97S62: not an error, but said
        log.warning("swbd: %d transcript files have no audio and are not used, e.g. %s",
                    len(unused), unused[0])
    audio = {s.stem for part in lay.fisher_partitions for s in (part / "audio").rglob("*.sph")}
    trans = {t.stem: t for r in lay.fisher_trans_roots for t in (r / "data" / "trans").rglob("*.txt")}
    for name in sorted(set(trans) - audio):
        p.append(f"fisher: transcript {trans[name]} has no audio {name}.sph")
    for name in sorted(audio - set(trans)):
        p.append(f"fisher: audio {name}.sph has no transcript {name}.txt")
    if lay.eval_audio_root is not None and lay.eval_trans_root is not None:
        eval_audio = {s.stem for s in (lay.eval_audio_root / "english").rglob("*.sph")}
        if not eval_audio:
            p.append(f"eval2000: no *.sph in {lay.eval_audio_root / 'english'}")
        try:
            for lineno, f, *_ in _stm_entries(lay.stm):
                if f not in eval_audio:
                    p.append(f"eval2000: {lay.stm}:{lineno} names '{f}' but there is no {f}.sph")
                    break
        except ValueError as e:
            p.append(f"eval2000: {e}")
    return p


_TIMES = r"\d+(?:\.\d*)?"
_SWBD_LINE = re.compile(rf"^\S+\s+{_TIMES}\s+{_TIMES}\s+\S")
_FISHER_LINE = re.compile(rf"^{_TIMES}\s+{_TIMES}\s+[AB]:")


def transcript_problems(lay: Layout) -> list[str]:
    """Lines lhotse's parsers would choke on (or silently misread), by file and line number."""
    p: list[str] = []
    for t in lay.swbd_trans:
        for lineno, line in enumerate(t.read_text(errors="replace").splitlines(), 1):
            if line.strip() and not _SWBD_LINE.match(line):
                p.append(f"{t}:{lineno}: expected 'id start end words...', got: {line!r}")
    calls: set[str] = set()
    for root in lay.fisher_trans_roots:
        for tbl in (root / "doc").glob("*_calldata.tbl"):
            calls |= {ln.split(",")[0] for ln in tbl.read_text(errors="replace").splitlines()[1:]}
        for t in sorted((root / "data" / "trans").rglob("*.txt")):
            lines = t.read_text(encoding="utf-8", errors="replace").splitlines()
            if len(lines) < 3 or not lines[0].startswith("#") or any(
                    x.strip() and not x.startswith("#") for x in lines[1:3]):
                p.append(f"{t}: expected a 3-line header ('# {t.stem}.sph', '# ...', blank)")
            for lineno, line in enumerate(lines[3:], 4):
                if line.strip() and not _FISHER_LINE.match(line):
                    p.append(f"{t}:{lineno}: expected 'start end A|B: words', got: {line!r}")
            if t.stem.split("_")[-1] not in calls:
                p.append(f"{t}: call {t.stem.split('_')[-1]} is not in {root / 'doc'}/*_calldata.tbl")
    return p
