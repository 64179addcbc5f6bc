"""Kaldi data dirs: write from lhotse manifests, read, and validate.

A data dir holds `wav.scp` (`rec path` or `rec command |`), `segments` (`utt rec start end`,
seconds), `text` (`utt word ...`), `utt2spk`, `spk2utt`; all sorted in C-locale order, and the
utterance ids sort the same way by utterance and by speaker (speaker-id prefixes). Feature dirs
add `feats.scp` and `cmvn.scp`; eval sets may add `stm`, `glm`, `reco2file_and_channel`.

    python -m asr.corpus.datadir write --manifests data/manifests --prefix synth --set train \
        --out data/train [--lexicon data/local/dict/lexicon.txt]
    python -m asr.corpus.datadir validate data/train [--no-audio]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from asr.utils import read_kaldi_map, setup_logging, write_kaldi_map

log = logging.getLogger(__name__)

DATA_FILES = ("wav.scp", "segments", "text", "utt2spk", "spk2utt")
OPTIONAL_FILES = ("stm", "glm", "reco2file_and_channel")
CHANNEL_NAMES = "ABCDEFGH"


class DataDirError(ValueError):
    """A data dir problem; the message names the file and the offending id."""


@dataclass
class DataDir:
    """An in-memory Kaldi data dir (dicts keyed by id; segments values are (rec, start, end))."""

    wav_scp: dict[str, str]
    text: dict[str, str]
    utt2spk: dict[str, str]
    segments: dict[str, tuple[str, float, float]] | None = None

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for utt in sorted(self.utt2spk):
            out.setdefault(self.utt2spk[utt], []).append(utt)
        return out


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------
def default_wav_entry(recording, channel: int | None) -> str:
    """wav.scp value for one lhotse Recording (and channel, for multi-channel recordings)."""
    if len(recording.sources) != 1:
        raise DataDirError(f"recording '{recording.id}': {len(recording.sources)} audio sources; "
                           "pass a wav_entry function for this corpus")
    src = recording.sources[0]
    if src.type == "command":
        return src.source.rstrip().rstrip("|").rstrip() + " |"
    if src.type != "file":
        raise DataDirError(f"recording '{recording.id}': source type '{src.type}' has no "
                           "wav.scp form")
    if channel is None:
        return src.source
    if src.source.lower().endswith(".sph"):
        return f"sph2pipe -f wav -p -c {channel + 1} {src.source} |"
    raise DataDirError(f"recording '{recording.id}': multi-channel {src.source} needs a "
                       "wav_entry function (Kaldi wav.scp has no channel field)")


def datadir_from_manifests(recordings, supervisions, *, vocab: set[str] | None = None,
                           wav_entry: Callable = default_wav_entry) -> tuple[DataDir, dict]:
    """Build a DataDir from lhotse RecordingSet/SupervisionSet; returns (datadir, skip counts).

    Multi-channel recordings become one Kaldi recording per channel, `<rec>-A`, `<rec>-B`...
    Supervisions with an empty transcript, and (when `vocab` is given) whose words are all
    out of `vocab`, are skipped, counted and logged by id.
    """
    recs = {r.id: r for r in recordings}
    wav_scp: dict[str, str] = {}
    text: dict[str, str] = {}
    utt2spk: dict[str, str] = {}
    segments: dict[str, tuple[str, float, float]] = {}
    skipped = {"empty_text": [], "all_oov": []}
    for sup in supervisions:
        if sup.recording_id not in recs:
            raise DataDirError(f"supervisions: utterance '{sup.id}' refers to unknown recording "
                               f"'{sup.recording_id}'")
        rec = recs[sup.recording_id]
        words = (sup.text or "").split()
        if not words:
            skipped["empty_text"].append(sup.id)
            continue
        if vocab is not None and not any(w in vocab for w in words):
            skipped["all_oov"].append(sup.id)
            continue
        if sup.speaker is None:
            raise DataDirError(f"supervisions: utterance '{sup.id}' has no speaker")
        if not sup.id.startswith(sup.speaker):
            raise DataDirError(f"supervisions: utterance id '{sup.id}' does not start with its "
                               f"speaker id '{sup.speaker}' (Kaldi sorting convention)")
        if rec.num_channels > 1:
            ch = sup.channel if isinstance(sup.channel, int) else sup.channel[0]
            rec_id = f"{rec.id}-{CHANNEL_NAMES[ch]}"
            wav_scp[rec_id] = wav_entry(rec, ch)
        else:
            rec_id = rec.id
            wav_scp[rec_id] = wav_entry(rec, None)
        if sup.id in text:
            raise DataDirError(f"supervisions: duplicate utterance id '{sup.id}'")
        text[sup.id] = " ".join(words)
        utt2spk[sup.id] = sup.speaker
        segments[sup.id] = (rec_id, round(sup.start, 3), round(sup.end, 3))
    for why, ids in skipped.items():
        if ids:
            log.warning("skipped %d utterances (%s): %s%s", len(ids), why.replace("_", " "),
                        " ".join(ids[:10]), " ..." if len(ids) > 10 else "")
    return DataDir(wav_scp, text, utt2spk, segments), {k: len(v) for k, v in skipped.items()}


def write_datadir(dd: DataDir, out_dir: str | os.PathLike) -> None:
    """Write the Kaldi files of `dd` into `out_dir` (sorted, atomic)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_kaldi_map(out / "wav.scp", dd.wav_scp)
    write_kaldi_map(out / "text", dd.text)
    write_kaldi_map(out / "utt2spk", dd.utt2spk)
    write_kaldi_map(out / "spk2utt", {s: " ".join(u) for s, u in dd.spk2utt.items()})
    if dd.segments is not None:
        write_kaldi_map(out / "segments",
                        {u: f"{r} {s:.3f} {e:.3f}" for u, (r, s, e) in dd.segments.items()})


def read_datadir(path: str | os.PathLike) -> DataDir:
    """Read a Kaldi data dir (segments optional)."""
    d = Path(path)
    for name in ("wav.scp", "text", "utt2spk"):
        if not (d / name).exists():
            raise DataDirError(f"{d / name}: missing")
    segments = None
    if (d / "segments").exists():
        segments = {}
        for utt, value in read_kaldi_map(d / "segments").items():
            parts = value.split()
            try:
                if len(parts) != 3:
                    raise ValueError
                segments[utt] = (parts[0], float(parts[1]), float(parts[2]))
            except ValueError:
                raise DataDirError(f"{d / 'segments'}: utterance '{utt}': expected "
                                   f"'utt rec start end', got '{utt} {value}'") from None
    return DataDir(read_kaldi_map(d / "wav.scp"), read_kaldi_map(d / "text", allow_empty_value=True),
                   read_kaldi_map(d / "utt2spk"), segments)


def copy_datadir(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """Copy the data-dir files (and eval extras) of `src` into `dst`."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    for name in DATA_FILES + OPTIONAL_FILES:
        if (Path(src) / name).exists():
            shutil.copyfile(Path(src) / name, dst / name)


# ---------------------------------------------------------------------------------------------
# Audio access
# ---------------------------------------------------------------------------------------------
def read_wav_entry(entry: str) -> tuple[np.ndarray, int]:
    """Audio of a wav.scp value (a path, or a `command |` writing a wav to stdout).

    Returns (float32 samples in [-1, 1], sample rate); multi-channel audio keeps channel 0.
    Raises DataDirError naming the entry when it cannot be read.
    """
    import soundfile as sf

    try:
        if entry.rstrip().endswith("|"):
            proc = subprocess.run(entry.rstrip()[:-1], shell=True, capture_output=True, check=True)
            data, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
        else:
            data, sr = sf.read(entry, dtype="float32", always_2d=True)
    except subprocess.CalledProcessError as e:
        raise DataDirError(f"'{entry}': command failed: {e.stderr.decode(errors='replace')[-300:]}"
                           ) from None
    except Exception as e:  # soundfile raises several types for corrupt files
        raise DataDirError(f"'{entry}': cannot read audio ({e})") from None
    if data.shape[0] == 0:
        raise DataDirError(f"'{entry}': empty audio (0 samples)")
    return data[:, 0], int(sr)


def _entry_files(entry: str) -> list[str]:
    """Audio file paths mentioned in a wav.scp value (the path, or file-like pipe arguments)."""
    if not entry.rstrip().endswith("|"):
        return [entry]
    toks = shlex.split(entry.rstrip()[:-1])
    return [t for t in toks[1:] if Path(t).suffix.lower() in (".wav", ".sph", ".flac")]


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
def _check_sorted(path: Path) -> list[str]:
    """Keys of a Kaldi map file; raise if not sorted (C order) or duplicated."""
    keys = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                raise DataDirError(f"{path}:{lineno}: empty line")
            keys.append(line.split(maxsplit=1)[0])
    for i in range(1, len(keys)):
        if keys[i] == keys[i - 1]:
            raise DataDirError(f"{path}: duplicate id '{keys[i]}'")
        if keys[i].encode() < keys[i - 1].encode():
            raise DataDirError(f"{path}: not sorted (C locale): '{keys[i]}' after '{keys[i - 1]}'")
    return keys


def _same_ids(path_a: Path, a: set, path_b: Path, b: set, what: str = "utterance") -> None:
    only_a, only_b = sorted(a - b), sorted(b - a)
    if only_a:
        raise DataDirError(f"{path_a}: {what} '{only_a[0]}' is not in {path_b} "
                           f"({len(only_a)} such ids)")
    if only_b:
        raise DataDirError(f"{path_b}: {what} '{only_b[0]}' is not in {path_a} "
                           f"({len(only_b)} such ids)")


def validate_datadir(path: str | os.PathLike, *, check_audio: bool = True,
                     tolerance_s: float = 0.02) -> dict:
    """Check a Kaldi data dir in the spirit of Kaldi's validate_data_dir.sh.

    Checks: required files present, sorted, no duplicate ids, no empty transcripts, utterance
    ids equal across text/utt2spk/segments (and feats.scp), spk2utt matches utt2spk, utt2spk
    sorts the same by speaker, segments refer to wav.scp recordings with 0 <= start < end, audio
    files exist and (with `check_audio`) segments end within the recording (header read only).
    Raises DataDirError naming the file and offending id; returns counts on success.
    """
    d = Path(path)
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        if not (d / name).exists():
            raise DataDirError(f"{d / name}: missing")
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "segments", "feats.scp", "cmvn.scp"):
        if (d / name).exists():
            _check_sorted(d / name)
    text = read_kaldi_map(d / "text", allow_empty_value=True)
    for utt, words in text.items():
        if not words.strip():
            raise DataDirError(f"{d / 'text'}: utterance '{utt}' has an empty transcript")
    utt2spk = read_kaldi_map(d / "utt2spk")
    _same_ids(d / "text", set(text), d / "utt2spk", set(utt2spk))
    spk2utt = read_kaldi_map(d / "spk2utt")
    derived: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        derived.setdefault(utt2spk[utt], []).append(utt)
    _same_ids(d / "spk2utt", set(spk2utt), d / "utt2spk", set(derived), what="speaker")
    for spk, utts in derived.items():
        if spk2utt[spk].split() != utts:
            raise DataDirError(f"{d / 'spk2utt'}: speaker '{spk}' lists "
                               f"{spk2utt[spk].split()[:3]}... but utt2spk gives {utts[:3]}...")
    by_spk = sorted(utt2spk, key=lambda u: (utt2spk[u].encode(), u.encode()))
    for a, b in zip(by_spk, sorted(utt2spk, key=str.encode)):
        if a != b:
            raise DataDirError(f"{d / 'utt2spk'}: utterance '{b}' sorts differently by speaker "
                               f"than by utterance id (prefix utterance ids with the speaker id)")
    wav = read_kaldi_map(d / "wav.scp")
    if (d / "segments").exists():
        dd = read_datadir(d)
        segs = dd.segments
        _same_ids(d / "segments", set(segs), d / "text", set(text))
        for utt, (rec, start, end) in segs.items():
            if rec not in wav:
                raise DataDirError(f"{d / 'segments'}: utterance '{utt}' refers to recording "
                                   f"'{rec}' missing from {d / 'wav.scp'}")
            if not (0.0 <= start < end):
                raise DataDirError(f"{d / 'segments'}: utterance '{utt}': bad times "
                                   f"start={start} end={end}")
    else:
        segs = None
        _same_ids(d / "wav.scp", set(wav), d / "text", set(text))
    durations: dict[str, float] = {}
    for rec, entry in wav.items():
        for f in _entry_files(entry):
            if not Path(f).exists():
                raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}': file {f} does not exist")
        if check_audio and not entry.rstrip().endswith("|"):
            import soundfile as sf

            try:
                info = sf.info(entry)
            except Exception as e:
                raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}': cannot read {entry} "
                                   f"({e})") from None
            if info.frames == 0:
                raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}': {entry} is empty")
            durations[rec] = info.frames / info.samplerate
    if segs is not None:
        for utt, (rec, start, end) in segs.items():
            if rec in durations and end > durations[rec] + tolerance_s:
                raise DataDirError(f"{d / 'segments'}: utterance '{utt}' ends at {end:.3f} s, "
                                   f"after the end of recording '{rec}' ({durations[rec]:.3f} s)")
    if (d / "feats.scp").exists():
        _same_ids(d / "feats.scp", set(read_kaldi_map(d / "feats.scp")), d / "text", set(text))
    if (d / "cmvn.scp").exists():
        _same_ids(d / "cmvn.scp", set(read_kaldi_map(d / "cmvn.scp")), d / "spk2utt",
                  set(spk2utt), what="speaker")
    counts = {"utterances": len(text), "speakers": len(spk2utt), "recordings": len(wav)}
    log.info("validated %s: %s", d, counts)
    return counts


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def load_manifests(manifest_dir: str | os.PathLike, prefix: str, set_name: str):
    """(RecordingSet, SupervisionSet) from `<prefix>_{recordings,supervisions}_<set>.jsonl.gz`."""
    from lhotse import load_manifest

    manifest_dir = Path(manifest_dir)
    rec = manifest_dir / f"{prefix}_recordings_{set_name}.jsonl.gz"
    sup = manifest_dir / f"{prefix}_supervisions_{set_name}.jsonl.gz"
    for f in (rec, sup):
        if not f.exists():
            raise FileNotFoundError(f"{f}: missing manifest")
    return load_manifest(rec), load_manifest(sup)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Kaldi data dirs: write from manifests, validate")
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write", help="data dir from lhotse manifests")
    w.add_argument("--manifests", required=True, help="folder of <prefix>_*_<set>.jsonl.gz")
    w.add_argument("--prefix", required=True, help="corpus prefix, e.g. synth")
    w.add_argument("--set", required=True, nargs="+", help="set name(s), e.g. train dev test")
    w.add_argument("--out", required=True, nargs="+", help="output data dir(s), one per set")
    w.add_argument("--lexicon", help="lexicon.txt: skip utterances whose words are all OOV")
    v = sub.add_parser("validate", help="check a data dir")
    v.add_argument("dirs", nargs="+")
    v.add_argument("--no-audio", action="store_true", help="do not open audio headers")
    args = p.parse_args(argv)
    setup_logging(log_file=Path((args.out if args.cmd == "write" else args.dirs)[0]).parent / "log" / f"datadir_{args.cmd}.log")
    if args.cmd == "write":
        if len(args.set) != len(args.out):
            p.error("give one --out per --set")
        vocab = None
        if args.lexicon:
            from asr.corpus.lexicon import SPECIAL_WORDS, read_lexicon

            vocab = set(read_lexicon(args.lexicon)) - set(SPECIAL_WORDS)
        for set_name, out in zip(args.set, args.out):
            recordings, supervisions = load_manifests(Path(args.manifests), args.prefix, set_name)
            dd, skipped = datadir_from_manifests(recordings, supervisions, vocab=vocab)
            write_datadir(dd, out)
            log.info("wrote %s: %d utterances, %d speakers, %d recordings; skipped %s", out,
                     len(dd.text), len(dd.spk2utt), len(dd.wav_scp), skipped)
    else:
        for d in args.dirs:
            validate_datadir(d, check_audio=not args.no_audio)


if __name__ == "__main__":
    main()
