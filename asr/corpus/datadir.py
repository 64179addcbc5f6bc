"""Kaldi data dirs: write from lhotse manifests, read, and validate.

A data dir holds `wav.scp` (`rec path` or `rec command |`), `segments` (`utt rec start end`,
seconds), `text` (`utt word ...`), `utt2spk`, `spk2utt`; all sorted in C-locale order, and the
utterance ids sort the same way by utterance and by speaker (speaker-id prefixes). Feature dirs
add `feats.scp` and `cmvn.scp`; eval sets may add `stm`, `glm`, `reco2file_and_channel`.

    python -m asr.corpus.datadir write --manifests data/manifests --prefix synth --set train \
        --out data/train [--lexicon data/local/dict/lexicon.txt]
    python -m asr.corpus.datadir validate data/train [--no-audio] [--no-pipes] \
        [--words data/lang/words.txt]

wav.scp values may be shell commands ending in `|` (Kaldi's convention, e.g. `sph2pipe -f wav
-p -c 1 x.sph |`): each one run is logged, and `--no-pipes` (features: `allow_pipes: false`)
refuses them for data from others.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from asr.corpus.wav_entry import (DataDirError, _check_truncation, _entry_files, is_pipe,  # noqa: F401
                                  read_wav_entry, wav_truncation)
from asr.utils import read_kaldi_map, read_utf8_text, setup_logging, write_kaldi_map

log = logging.getLogger(__name__)

DATA_FILES = ("wav.scp", "segments", "text", "utt2spk", "spk2utt")
OPTIONAL_FILES = ("stm", "glm", "reco2file_and_channel")
CHANNEL_NAMES = "ABCDEFGH"


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
        for utt, value in _read_map(d / "segments").items():
            parts = value.split()
            try:
                if len(parts) != 3:
                    raise ValueError
                segments[utt] = (parts[0], float(parts[1]), float(parts[2]))
            except ValueError:
                raise DataDirError(f"{d / 'segments'}: utterance '{utt}': expected "
                                   f"'utt rec start end', got '{utt} {value}'") from None
    return DataDir(_read_map(d / "wav.scp"), _read_map(d / "text", allow_empty_value=True),
                   _read_map(d / "utt2spk"), segments)


def _read_map(path: Path, allow_empty_value: bool = False) -> dict[str, str]:
    """read_kaldi_map, its errors (BOM, bad UTF-8, duplicates) as DataDirError."""
    try:
        return read_kaldi_map(path, allow_empty_value=allow_empty_value)
    except ValueError as e:
        raise DataDirError(str(e)) from None


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
# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------
# Kaldi key-value files checked for strict UTF-8 and order (stm and glm are NIST files, read
# tolerantly by asr.score: the LDC glm is copied verbatim)
TEXT_FILES = DATA_FILES + ("reco2file_and_channel", "feats.scp", "cmvn.scp", "utt2num_frames",
                           "utt2dur")
# files keyed by utterance id, besides text (which every data dir has)
UTT_FILES = ("utt2spk", "segments", "feats.scp", "utt2num_frames", "utt2dur")


def _check_sorted(path: Path) -> list[str]:
    """Keys of a Kaldi map file; raise if not UTF-8, not sorted (C order) or duplicated."""
    try:
        lines = read_utf8_text(path).split("\n")
    except ValueError as e:
        raise DataDirError(str(e)) from None
    if lines and lines[-1] == "":
        lines.pop()
    keys = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            raise DataDirError(f"{path}:{lineno}: empty line")
        keys.append(line.split(maxsplit=1)[0])
    for i in range(1, len(keys)):
        if keys[i] == keys[i - 1]:
            raise DataDirError(f"{path}: duplicate id '{keys[i]}'")
        if keys[i].encode() < keys[i - 1].encode():
            raise DataDirError(f"{path}: not sorted (C locale): '{keys[i]}' after '{keys[i - 1]}'")
    return keys


def _first(ids: list[str], n: int = 3) -> str:
    return ", ".join(f"'{i}'" for i in ids[:n]) + (", ..." if len(ids) > n else "")


def _same_ids(path_a: Path, a: set, path_b: Path, b: set, what: str = "utterance") -> None:
    """Error naming the first ids missing from each side when two files' id sets differ."""
    only_a, only_b = sorted(a - b, key=str.encode), sorted(b - a, key=str.encode)
    parts = []
    if only_a:
        parts.append(f"{path_a}: {what} '{only_a[0]}' is not in {path_b} ({len(only_a)} such "
                     f"ids: {_first(only_a)})")
    if only_b:
        parts.append(f"{path_b}: {what} '{only_b[0]}' is not in {path_a} ({len(only_b)} such "
                     f"ids: {_first(only_b)})")
    if parts:
        raise DataDirError("; ".join(parts))


def read_vocabulary(path: str | os.PathLike) -> set[str]:
    """Words of a `words.txt` (word id) or `lexicon.txt` (word phones...): the first column,
    without `<eps>`, `#0`, `<s>`, `</s>`."""
    words = set()
    try:
        text = read_utf8_text(path)
    except ValueError as e:
        raise DataDirError(str(e)) from None
    for line in text.splitlines():
        if line.strip():
            words.add(line.split(maxsplit=1)[0])
    return words - {"<eps>", "#0", "<s>", "</s>"}


def oov_utterances(text: dict[str, str | list[str]], words: set[str] | dict, *,
                   all_oov: bool = False) -> dict[str, list[str]]:
    """Utterances of a Kaldi `text` map (values: the transcript, or its word list) with words
    outside `words`: utt -> its OOV words (in order). With `all_oov`, only utterances none of
    whose words is in `words` (they align to `<unk>` alone). For the GMM alignment's `<unk>`
    warning and validation's all-OOV check."""
    out = {}
    for utt, line in text.items():
        toks = line.split() if isinstance(line, str) else list(line)
        oov = [w for w in toks if w not in words]
        if oov and (not all_oov or len(oov) == len(toks)):
            out[utt] = oov
    return out


def warn_oov_utterances(text: dict[str, str | list[str]], words: set[str] | dict,
                        unk: str = "<unk>", where: str = "") -> dict[str, list[str]]:
    """Log one warning counting and naming the utterances whose OOV words map to `unk`
    (e.g. before GMM alignment); returns `oov_utterances(text, words)`."""
    oov = oov_utterances(text, words)
    if oov:
        n_all = len(oov_utterances({u: text[u] for u in oov}, words, all_oov=True))
        log.warning("%s%d of %d utterances have words mapped to %s (%d of them only such "
                    "words): %s", f"{where}: " if where else "", len(oov), len(text), unk, n_all,
                    describe_oov(oov))
    return oov


def describe_oov(oov: dict[str, list[str]], n: int = 5) -> str:
    """'u1 (qwzx blorp), u2 (zz), ...' for a log line or an error."""
    items = [f"{u} ({' '.join(w[:6])}{' ...' if len(w) > 6 else ''})"
             for u, w in sorted(oov.items())[:n]]
    return ", ".join(items) + (", ..." if len(oov) > n else "")


@dataclass
class AudioInfo:
    """Header facts of one wav.scp file entry."""

    sample_rate: int
    frames: int
    channels: int


def audio_info(rec: str, entry: str, wav_scp: Path) -> AudioInfo:
    """Header of a file entry (not a command), checked: readable, non-empty, not truncated."""
    import soundfile as sf

    try:
        info = sf.info(entry)
        with open(entry, "rb") as f:
            head = f.read(4096)
    except Exception as e:
        raise DataDirError(f"{wav_scp}: recording '{rec}': cannot read {entry} ({e})") from None
    if info.frames == 0:
        raise DataDirError(f"{wav_scp}: recording '{rec}': {entry} is empty")
    _check_truncation(f"{wav_scp}: recording '{rec}': {entry}", head, os.path.getsize(entry),
                      info.samplerate)
    return AudioInfo(int(info.samplerate), int(info.frames), int(info.channels))


def validate_datadir(path: str | os.PathLike, *, check_audio: bool = True,
                     tolerance_s: float = 0.02, sample_rate: int | None = None,
                     channel: int | None = None, allow_pipes: bool = True,
                     min_duration_s: float = 0.0, words: set[str] | None = None) -> dict:
    """Check a Kaldi data dir in the spirit of Kaldi's validate_data_dir.sh.

    Checks: required files present, strict UTF-8 without BOM, sorted, no duplicate ids, no empty
    transcripts, utterance ids equal across text and every per-utterance file (utt2spk,
    segments, feats.scp, utt2num_frames, utt2dur; errors name the first ids missing from each
    side), spk2utt matches utt2spk, utt2spk sorts the same by speaker, segments refer to
    wav.scp recordings with 0 <= start < end and last at least `min_duration_s` (features
    pass one frame), audio files exist; `allow_pipes=False` refuses `cmd |` entries; with
    `words` (a vocabulary), utterances whose words are all out of it are an error. With
    `check_audio`, file entries' headers are read: not empty, not truncated (fewer samples than
    the header declares), one channel (unless `channel` picks one of multi-channel files), one
    sample rate for the whole set (`sample_rate`: that rate; 0: any rates), segments end within
    their recording.
    Raises DataDirError naming the file and offending id; returns counts on success
    (utterances, speakers, recordings, and sample_rate when known).
    """
    d = Path(path)
    for name in ("wav.scp", "text", "utt2spk", "spk2utt"):
        if not (d / name).exists():
            raise DataDirError(f"{d / name}: missing")
    for name in TEXT_FILES:
        if (d / name).exists():
            _check_sorted(d / name)
    text = _read_map(d / "text", allow_empty_value=True)
    for utt, line in text.items():
        if not line.strip():
            raise DataDirError(f"{d / 'text'}: utterance '{utt}' has an empty transcript")
    utt2spk = _read_map(d / "utt2spk")
    for name in UTT_FILES:
        if (d / name).exists():
            _same_ids(d / "text", set(text), d / name, set(_read_map(d / name)))
    spk2utt = _read_map(d / "spk2utt")
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
    if words is not None:
        bad = oov_utterances(text, words, all_oov=True)
        if bad:
            raise DataDirError(f"{d / 'text'}: {len(bad)} utterance(s) have only out-of-"
                               f"vocabulary words: {describe_oov(bad)}; they would align to "
                               "<unk> alone: remove them or add the words to the lexicon")
    wav = _read_map(d / "wav.scp")
    if (d / "segments").exists():
        segs = read_datadir(d).segments
        for utt, (rec, start, end) in segs.items():
            if rec not in wav:
                raise DataDirError(f"{d / 'segments'}: utterance '{utt}' refers to recording "
                                   f"'{rec}' missing from {d / 'wav.scp'}")
            if not (0.0 <= start < end):
                raise DataDirError(f"{d / 'segments'}: utterance '{utt}': bad times "
                                   f"start={start} end={end}")
            if end - start < min_duration_s - 1e-9:
                raise DataDirError(f"{d / 'segments'}: utterance '{utt}' lasts "
                                   f"{(end - start) * 1000:.0f} ms, shorter than one "
                                   f"{min_duration_s * 1000:.0f} ms frame")
    else:
        segs = None
        _same_ids(d / "wav.scp", set(wav), d / "text", set(text))
    if (d / "reco2file_and_channel").exists():
        _same_ids(d / "reco2file_and_channel", set(_read_map(d / "reco2file_and_channel")),
                  d / "wav.scp", set(wav), what="recording")
    infos: dict[str, AudioInfo] = {}
    first_rate: tuple[str, int] | None = None
    for rec, entry in wav.items():
        if is_pipe(entry) and not allow_pipes:
            raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}' is a shell command "
                               f"('{entry}'), refused by --no-pipes (allow_pipes: false)")
        for f in _entry_files(entry):
            if not Path(f).exists():
                raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}': file {f} does not exist")
        if not check_audio or is_pipe(entry):
            continue
        info = infos[rec] = audio_info(rec, entry, d / "wav.scp")
        if info.channels > 1 and channel is None:
            raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}': {entry} has "
                               f"{info.channels} channels; choose one with the feature option "
                               "`channel`, or a wav.scp command that extracts it (Kaldi refuses "
                               "multi-channel audio too)")
        if channel is not None and info.channels > 1 and channel >= info.channels:
            raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}': channel {channel} asked "
                               f"for, {entry} has {info.channels}")
        if sample_rate is None and first_rate is None:
            first_rate = (rec, info.sample_rate)
        want = sample_rate if sample_rate is not None else first_rate[1]
        if want and info.sample_rate != want:
            where = (f"the set's rate (that of recording '{first_rate[0]}')"
                     if sample_rate is None else "the configured sample_rate")
            raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}': {entry} is "
                               f"{info.sample_rate} Hz, {where} is {want} Hz; convert it, or "
                               "set `sample_rate` and `resample: true` in the feature config")
        if segs is None and info.frames < min_duration_s * info.sample_rate - 1e-6:
            raise DataDirError(f"{d / 'wav.scp'}: recording '{rec}': {entry} has "
                               f"{info.frames} samples ({info.frames / info.sample_rate * 1000:.1f}"
                               f" ms), shorter than one {min_duration_s * 1000:.0f} ms frame")
    if segs is not None:
        for utt, (rec, start, end) in segs.items():
            if rec in infos:
                dur = infos[rec].frames / infos[rec].sample_rate
                if end > dur + tolerance_s:
                    raise DataDirError(f"{d / 'segments'}: utterance '{utt}' ends at {end:.3f} s, "
                                       f"after the end of recording '{rec}' ({dur:.3f} s)")
    if (d / "cmvn.scp").exists():
        _same_ids(d / "cmvn.scp", set(_read_map(d / "cmvn.scp")), d / "spk2utt",
                  set(spk2utt), what="speaker")
    counts = {"utterances": len(text), "speakers": len(spk2utt), "recordings": len(wav)}
    rates = {i.sample_rate for i in infos.values()}
    if len(rates) == 1:
        counts["sample_rate"] = rates.pop()
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
    v.add_argument("--no-pipes", action="store_true",
                   help="refuse wav.scp entries that are shell commands (`cmd |`)")
    v.add_argument("--words", help="words.txt or lexicon.txt: utterances whose words are all "
                                   "outside it are an error")
    v.add_argument("--sample-rate", type=int,
                   help="the rate every recording must have (default: one rate for the set; "
                        "0: any)")
    v.add_argument("--channel", type=int, help="accept multi-channel audio (this channel is used)")
    args = p.parse_args(argv)
    setup_logging(log_file=Path((args.out if args.cmd == "write" else args.dirs)[0]).parent / "log" / f"datadir_{args.cmd}.log")
    try:
        _run(p, args)
    except DataDirError as e:
        log.error("%s", e)
        raise SystemExit(1) from None


def _run(p, args) -> None:
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
        words = read_vocabulary(args.words) if args.words else None
        for d in args.dirs:
            validate_datadir(d, check_audio=not args.no_audio, allow_pipes=not args.no_pipes,
                             words=words, sample_rate=args.sample_rate, channel=args.channel)


if __name__ == "__main__":
    main()
