"""Switchboard-1 + Fisher training data and Hub5'00 (eval2000) test data, via lhotse's recipes.

Inputs (paths in `egs/swbd/conf/corpora.yaml`, see `load_corpora`):

- Switchboard-1 Release 2 (LDC97S62): `*.sph` anywhere below `swbd.audio`; the ISIP MS-98
  word alignments (`swb_ms98_transcriptions`, `*trans.text`) below `swbd.transcripts`.
- Fisher English (optional): audio dirs LDC2004S13/LDC2005S13 (`<partition>/audio/<nnn>/fe_03_*.sph`),
  transcript dirs LDC2004T19/LDC2005T19 (`[fe_03_p?_tran/]data/trans/<nnn>/*.txt` and
  `doc/*_calldata.tbl`).
- Hub5'00: LDC2002S09 (`[hub5e_00/]english/*.sph`) and LDC2002T43
  (`[2000_hub5_eng_eval_tr/]reference/{english/*.txt, hub5e00.english.000405.stm, en20000405_hub5.glm}`).

lhotse's `prepare_switchboard`, `prepare_fisher_english` and `prepare_eval2000` read the audio
headers and parse the transcripts; this module checks the layouts first (clear errors), links
them into the layout lhotse expects, then renames everything the Kaldi way (conversation-side
speakers `sw02001-A`, utterances `sw02001-A_000098-001156`), normalises the text
(`asr.corpus.swbd_text`) and writes the manifests and Kaldi data dirs:

    data/manifests/swbd_{recordings,supervisions,cuts}_{train,dev,eval2000}.jsonl.gz
    data/train      Switchboard (less the dev conversations) + Fisher
    data/dev        the first `dev_conversations` Switchboard conversations (if > 0)
    data/eval2000   segmented as the stm (the scoring reference), plus stm, glm,
                    reco2file_and_channel; sw_* / en_* ids are the Switchboard / CallHome halves
    data/local/dict the lexicon (asr.corpus.lexicon, CMUdict + the noise words)

Reading SPHERE: lhotse reads `.sph` with the `sph2pipe` program when it is on PATH (needed for
shorten-compressed files, as LDC ships Switchboard and Hub5'00). Without it, uncompressed
SPHERE (PCM or mu-law) is read by libsndfile: `sph_audio_backend()` picks, and the recipe
exports `LHOTSE_AUDIO_BACKEND` so every later stage reads the audio the same way.

CLI: `python -m asr.corpus.swbd --config conf/corpora.yaml --data data [--nj 8] [--dry-run]`.
wav.scp uses Kaldi's `sph2pipe -f wav -p -c N file.sph |` when sph2pipe is installed, else
`python egs/swbd/local/sph2wav.py -c N file.sph |`.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from asr.corpus.swbd_text import (
    EXTRA_LEXICON,
    IGNORE_SEGMENT,
    normalize_eval2000,
    normalize_fisher,
    normalize_swbd,
)
from asr.utils import atomic_write_text, setup_logging, write_kaldi_map

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
    if not c.swbd_audio.is_dir():
        p.append(f"swbd.audio: no such directory: {c.swbd_audio}")
    else:
        lay.swbd_sph = sorted(c.swbd_audio.rglob("*.sph"))
        if not lay.swbd_sph:
            p.append(f"swbd.audio: no *.sph files below {c.swbd_audio}")
    if not c.swbd_transcripts.is_dir():
        p.append(f"swbd.transcripts: no such directory: {c.swbd_transcripts}")
    else:
        lay.swbd_trans = sorted(c.swbd_transcripts.rglob("*trans.text"))
        if not lay.swbd_trans:
            p.append(f"swbd.transcripts: no *trans.text files below {c.swbd_transcripts}")

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


# ------------------------------------------------------------------------- audio reading

def sph2pipe_available() -> bool:
    return shutil.which("sph2pipe") is not None


def sph_audio_backend() -> str:
    """lhotse backend for .sph: its default (sph2pipe) when installed, else libsndfile."""
    return "default" if sph2pipe_available() else "LibsndfileBackend"


def sph_coding(path: Path) -> str:
    """The `sample_coding` field of a NIST SPHERE header ("pcm" when absent)."""
    with open(path, "rb") as f:
        head = f.read(1024)
    if not head.startswith(b"NIST_1A"):
        raise ValueError(f"{path}: not a NIST SPHERE file (no NIST_1A header)")
    m = re.search(rb"sample_coding -s\d+ (\S+)", head)
    return m.group(1).decode() if m else "pcm"


def check_sph_readable(paths: list[Path]) -> list[str]:
    """Problems reading the first .sph of each corpus with the backend in use."""
    if sph2pipe_available():
        return []
    p = []
    for path in paths:
        coding = sph_coding(path)
        if "shorten" in coding:
            p.append(f"{path}: SPHERE coding '{coding}' is shorten-compressed: put sph2pipe on PATH "
                     "(Kaldi's tools/sph2pipe_v2.5, or `lhotse install-sph2pipe`), or convert the "
                     "corpus to uncompressed SPHERE/WAV")
    return p


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


# ------------------------------------------------------------------------- lhotse recipes

def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.resolve(), target_is_directory=True)


def _realpaths(recordings):
    """Point each recording at the real file (not the staging symlinks)."""
    for r in recordings:
        for src in r.sources:
            if src.type == "file":
                src.source = os.path.realpath(src.source)
    return recordings


def prepare_swbd_lhotse(lay: Layout, c: Corpora):
    from lhotse import RecordingSet, SupervisionSet
    from lhotse.recipes import prepare_switchboard

    t0 = time.time()
    m = prepare_switchboard(c.swbd_audio, c.swbd_transcripts, output_dir=None,
                            omit_silence=True, absolute_paths=True)
    recs = m["recordings"]
    sups = renormalize(m["supervisions"], normalize_swbd, "swbd")
    log.info("swbd: %d recordings in %.1fs", len(recs), time.time() - t0)
    return RecordingSet.from_recordings(_realpaths(recs)), SupervisionSet.from_segments(sups)


def prepare_fisher_lhotse(lay: Layout, work: Path, nj: int):
    from lhotse import RecordingSet, SupervisionSet
    from lhotse.recipes import prepare_fisher_english

    t0 = time.time()
    if work.exists():
        shutil.rmtree(work)  # lhotse reuses *_notfixed manifests found here: start clean
    trans_dirs = []
    for i, part in enumerate(lay.fisher_partitions):  # one dir of partitions, as lhotse walks it
        _link(part, work / "links" / "audio" / f"p{i:02d}")
    audio_dirs = [str(work / "links" / "audio")]
    for i, root in enumerate(lay.fisher_trans_roots):
        _link(root, work / "links" / f"trans{i}")
        trans_dirs.append(str(work / "links" / f"trans{i}"))
    m = prepare_fisher_english(work, work / "lhotse", audio_dirs=audio_dirs,
                               transcript_dirs=trans_dirs, absolute_paths=True, num_jobs=nj)
    recs = RecordingSet.from_recordings(_realpaths(list(m["recordings"])))
    sups = renormalize(m["supervisions"], normalize_fisher, "fisher")
    audio = sorted(x for part in lay.fisher_partitions for x in (part / "audio").rglob("*.sph"))
    lost = [str(x) for x in audio if x.stem not in recs]
    if lost:  # lhotse leaves out files sph2pipe fails on, and their transcripts with them
        log.warning("fisher: %d audio files could not be read and were left out with their "
                    "transcripts: %s%s", len(lost), " ".join(lost[:5]), " ..." if len(lost) > 5 else "")
    log.info("fisher: %d recordings in %.1fs", len(recs), time.time() - t0)
    shutil.rmtree(work)  # staging links and lhotse's intermediate manifests
    return recs, SupervisionSet.from_segments(sups)


def prepare_eval2000_lhotse(lay: Layout, work: Path):
    from lhotse import Recording, RecordingSet, SupervisionSet
    from lhotse.recipes import prepare_eval2000

    t0 = time.time()
    if work.exists():
        shutil.rmtree(work)
    _link(lay.eval_audio_root, work / "LDC2002S09" / "hub5e_00")
    _link(lay.eval_trans_root, work / "LDC2002T43")
    try:
        m = prepare_eval2000(work, work / "lhotse", absolute_paths=True)
        recs = RecordingSet.from_recordings(_realpaths(list(m["recordings"])))
        log.info("eval2000: %d recordings, %d transcript segments from reference/english/*.txt "
                 "(the data dir follows the stm instead)", len(recs), len(m["supervisions"]))
    except Exception as e:  # its reference/english/*.txt parse is not what we use: go on
        log.warning("eval2000: lhotse's prepare_eval2000 failed (%s: %s); the data dir follows "
                    "the stm, so reading the audio headers directly", type(e).__name__, e)
        recs = RecordingSet.from_recordings(_realpaths(
            [Recording.from_file(x) for x in sorted((lay.eval_audio_root / "english").rglob("*.sph"))]))
    sups = SupervisionSet.from_segments(stm_supervisions(lay.stm, recs))
    shutil.rmtree(work)
    log.info("eval2000: done in %.1fs", time.time() - t0)
    return recs, sups


# ------------------------------------------------------------------------- outputs

def write_manifests(recs, sups, manifest_dir: Path, set_name: str):
    """Write recordings, supervisions and cuts; return the CutSet."""
    from lhotse import CutSet

    manifest_dir.mkdir(parents=True, exist_ok=True)
    recs.to_file(manifest_dir / f"{MANIFEST_PREFIX}_recordings_{set_name}.jsonl.gz")
    sups.to_file(manifest_dir / f"{MANIFEST_PREFIX}_supervisions_{set_name}.jsonl.gz")
    cuts = CutSet.from_manifests(recordings=recs, supervisions=sups)
    cuts.to_file(manifest_dir / f"{MANIFEST_PREFIX}_cuts_{set_name}.jsonl.gz")
    return cuts


SPH2WAV = Path(__file__).resolve().parents[2] / "egs" / "swbd" / "local" / "sph2wav.py"


def sph_wav_entry(recording, channel: int | None) -> str:
    """wav.scp value for one channel of a SPHERE file: Kaldi's sph2pipe command when sph2pipe is
    installed, else `egs/swbd/local/sph2wav.py` (libsndfile; uncompressed SPHERE only)."""
    from asr.corpus.datadir import default_wav_entry

    src = recording.sources[0].source
    if sph2pipe_available() or not src.lower().endswith(".sph") or channel is None:
        return default_wav_entry(recording, channel)
    return f"{sys.executable} {SPH2WAV} -c {channel + 1} {src} |"


def write_kaldi_dir(recs, sups, out_dir: Path) -> None:
    """Kaldi data dir via asr.corpus.datadir (+ reco2file_and_channel), then validated."""
    from asr.corpus import datadir

    dd, skipped = datadir.datadir_from_manifests(recs, sups, wav_entry=sph_wav_entry)
    datadir.write_datadir(dd, out_dir)
    r2fc = {}
    for rec_id in dd.wav_scp:  # sw02001-A -> sw02001 A (datadir names channels <rec>-A, -B)
        base, side = rec_id.rsplit("-", 1)
        r2fc[rec_id] = f"{base} {side}"
    write_kaldi_map(out_dir / "reco2file_and_channel", r2fc)
    datadir.validate_datadir(out_dir)
    log.info("%s: %d utterances written; skipped %s", out_dir, len(dd.text), skipped)


def write_dict(sups, out_dir: Path) -> set[str]:
    """Kaldi dict dir (asr.corpus.lexicon: CMUdict + noise/hesitation words) for the training
    words; returns the in-lexicon words (special words excluded)."""
    from collections import Counter

    from asr.corpus.lexicon import SPECIAL_WORDS, build_lexicon, write_dict_dir

    counts = Counter(w for s in sups for w in s.text.split())
    lex, oov = build_lexicon(counts, EXTRA_LEXICON)
    write_dict_dir(out_dir, lex, oov)
    n = sum(counts.values())
    log.info("dict %s: %d word types, %d in lexicon, %d OOV types (%d of %d tokens, %.2f%%: "
             "partial words and rare names; they map to <unk>)%s", out_dir, len(counts), len(lex),
             len(oov), sum(oov.values()), n, 100.0 * sum(oov.values()) / max(n, 1),
             (": " + " ".join(w for w, _ in oov.most_common(10))) if oov else "")
    return set(lex) - set(SPECIAL_WORDS)


def drop_all_oov(sups, vocab: set[str], name: str):
    """Training segments with no in-lexicon word (only fragments, <unk>, ...) teach nothing:
    drop them, counted and logged (the manifests and the data dir stay the same set)."""
    from lhotse import SupervisionSet

    keep = [s for s in sups if any(w in vocab for w in s.text.split())]
    dropped = [s.id for s in sups if not any(w in vocab for w in s.text.split())]
    if dropped:
        log.warning("%s: dropped %d segments whose words are all out of the lexicon: %s%s", name,
                    len(dropped), " ".join(dropped[:10]), " ..." if len(dropped) > 10 else "")
    return SupervisionSet.from_segments(keep)


def write_eval2000_extras(lay: Layout, out_dir: Path) -> None:
    """stm (with the two known fixes), glm (verbatim) for scoring."""
    atomic_write_text(out_dir / "stm", fix_stm(lay.stm.read_text(encoding="utf-8", errors="replace")))
    shutil.copyfile(lay.glm, out_dir / "glm")


def split_dev(recs, sups, n_conv: int):
    """Hold out the first `n_conv` Switchboard conversations (sorted ids) as dev."""
    from lhotse import RecordingSet, SupervisionSet

    swbd_ids = sorted(r.id for r in recs if r.id.startswith("sw"))
    dev_ids = set(swbd_ids[:n_conv])
    dev = (RecordingSet.from_recordings(r for r in recs if r.id in dev_ids),
           SupervisionSet.from_segments(s for s in sups if s.recording_id in dev_ids))
    train = (RecordingSet.from_recordings(r for r in recs if r.id not in dev_ids),
             SupervisionSet.from_segments(s for s in sups if s.recording_id not in dev_ids))
    return train, dev


def plan(c: Corpora, lay: Layout, data: Path) -> str:
    """Human-readable plan of what stage 0 reads and writes."""
    lines = [
        "stage 0 plan (Switchboard/Fisher/Hub5'00 data preparation):",
        f"  swbd      audio {c.swbd_audio} ({len(lay.swbd_sph)} .sph), "
        f"transcripts {c.swbd_transcripts} ({len(lay.swbd_trans)} *trans.text)",
        "  fisher    " + (f"{len(lay.fisher_partitions)} audio partitions in "
                          f"{' '.join(map(str, c.fisher_audio))}, {len(lay.fisher_trans_roots)} "
                          f"transcript dirs" if c.fisher_audio
                          else "not used (Switchboard-only training)"),
        f"  eval2000  audio {lay.eval_audio_root or c.eval2000_audio}, "
        f"transcripts {lay.eval_trans_root or c.eval2000_transcripts}",
        f"  reading .sph with {'sph2pipe' if sph2pipe_available() else 'libsndfile (no sph2pipe on PATH)'}",
        f"  writes    {data}/manifests/{MANIFEST_PREFIX}_*_{{train,dev,eval2000}}.jsonl.gz, "
        f"{data}/train, " + (f"{data}/dev ({c.dev_conversations} swbd conversations), "
                             if c.dev_conversations else "") +
        f"{data}/eval2000 (+stm, glm, reco2file_and_channel), {data}/local/dict",
    ]
    return "\n".join(lines)


def prepare(config: str | os.PathLike, data: str | os.PathLike, nj: int = 1) -> None:
    """Run all of stage 0. Raises ValueError listing every missing/bad input."""
    t0 = time.time()
    c = load_corpora(config)
    data = Path(data)
    lay = resolve_layout(c)
    problems = lay.problems or transcript_problems(lay)
    if not problems:  # one file per corpus tells the coding
        firsts = lay.swbd_sph[:1] + [next((p / "audio").rglob("*.sph"), None)
                                     for p in lay.fisher_partitions[:1]]
        firsts.append(next((lay.eval_audio_root / "english").rglob("*.sph"), None))
        problems = check_sph_readable([x for x in firsts if x is not None])
    if problems:
        raise ValueError("stage 0 inputs are not usable:\n  " + "\n  ".join(problems))
    from lhotse import audio_backend

    backend = sph_audio_backend()
    log.info("reading .sph with lhotse backend %s", backend)
    old_env = os.environ.get("LHOTSE_AUDIO_BACKEND")
    os.environ["LHOTSE_AUDIO_BACKEND"] = backend  # for lhotse's worker processes too
    try:
        with audio_backend(backend):
            _prepare(c, lay, data, nj)
    finally:
        if old_env is None:
            os.environ.pop("LHOTSE_AUDIO_BACKEND", None)
        else:
            os.environ["LHOTSE_AUDIO_BACKEND"] = old_env
    log.info("stage 0 done in %.1fs", time.time() - t0)


def _prepare(c: Corpora, lay: Layout, data: Path, nj: int) -> None:
    from lhotse import RecordingSet, SupervisionSet

    recs, sups = prepare_swbd_lhotse(lay, c)
    if c.fisher_audio:
        frecs, fsups = prepare_fisher_lhotse(lay, data / "local" / "lhotse_fisher", nj)
        recs = RecordingSet.from_recordings(list(recs) + list(frecs))
        sups = SupervisionSet.from_segments(list(sups) + list(fsups))
    (trecs, tsups), (drecs, dsups) = split_dev(recs, sups, c.dev_conversations)
    erecs, esups = prepare_eval2000_lhotse(lay, data / "local" / "lhotse_eval2000")

    manifests = data / "manifests"
    vocab = write_dict(list(tsups) + list(dsups), data / "local" / "dict")
    tsups, dsups = (drop_all_oov(s, vocab, n) for s, n in ((tsups, "train"), (dsups, "dev")))
    sets = [("train", trecs, tsups), ("eval2000", erecs, esups)]
    if c.dev_conversations:
        sets.insert(1, ("dev", drecs, dsups))
    for name, r, s in sets:
        write_manifests(r, s, manifests, name)
        write_kaldi_dir(r, s, data / name)
        log.info("%s: %d recordings, %d utterances, %.1f h", name, len(r), len(s),
                 sum(x.duration for x in s) / 3600)
    write_eval2000_extras(lay, data / "eval2000")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="corpora.yaml with the LDC paths")
    ap.add_argument("--data", default="data", help="output data directory (default: data)")
    ap.add_argument("--nj", type=int, default=1, help="parallel jobs for reading Fisher audio headers")
    ap.add_argument("--dry-run", action="store_true",
                    help="check that every input exists, print the plan, exit 1 naming what is missing")
    args = ap.parse_args(argv)
    setup_logging(log_file=Path(args.data) / "log" / "swbd_prep.log")
    try:
        c = load_corpora(args.config)
    except (ValueError, OSError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    if args.dry_run:
        lay = resolve_layout(c)
        print(plan(c, lay, Path(args.data)))
        if lay.problems:
            print("MISSING:\n  " + "\n  ".join(lay.problems), file=sys.stderr)
            return 1
        print("all stage 0 inputs found")
        return 0
    prepare(args.config, args.data, args.nj)
    return 0


if __name__ == "__main__":
    sys.exit(main())
