"""An embedded conversational-telephone-style corpus, synthesised on the machine from a seed.

Text comes from a small grammar of everyday telephone requests (numbers, times, dates, names,
places, short commands); every word is in CMUdict. Speech comes from eSpeak NG
(`espeakng-loader` ships the library and its voice data; it is driven through ctypes). A
"speaker" is a fixed eSpeak voice variant with its own rate, pitch, pitch range and word gap.
The channel is telephone-like: 8 kHz, band-limited to `band_hz` (300-3400 Hz), optional 8-bit
mu-law companding, additive band-limited noise at a random SNR, random level.

Sets are split **by speaker**: every speaker belongs to exactly one of train/dev/test.

Determinism: eSpeak NG keeps internal state between syntheses (the same call returns slightly
different audio the second time in one process), so each speaker is synthesised in a fresh
process forked from a parent that has initialised eSpeak but never synthesised; texts, voices
and channel randomness come from seeded numpy generators keyed by (seed, speaker, utterance).
The result does not depend on `--nj`.

Outputs (16-bit 8 kHz mono wav): `<corpus>/wav/<speaker>/<utt>.wav`, `<corpus>/vocab.txt`
(the grammar's words), and lhotse manifests `<manifests>/synth_{recordings,supervisions,cuts}_
<set>.jsonl.gz` written with a fixed gzip header so equal seeds give byte-identical files.

    python -m asr.corpus.synth --config egs/synth/conf/corpus.yaml --corpus corpus \
        --manifests data/manifests --nj 2
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import io
import json
import logging
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from asr.utils import atomic_path, atomic_write_text, setup_logging

log = logging.getLogger(__name__)

SETS = ("train", "dev", "test")

# ---------------------------------------------------------------------------------------------
# Grammar
# ---------------------------------------------------------------------------------------------
NAMES = ("john mary david sarah michael linda james susan robert karen peter anna paul laura "
         "mark emily steve nancy tom alice george helen frank julia").split()
CITIES = ("boston chicago denver dallas seattle atlanta miami phoenix houston portland austin "
          "detroit toronto london paris berlin").split()
PLACES = ("office airport station hotel bank hospital library pharmacy restaurant school "
          "museum store").split()
DIGITS = "zero one two three four five six seven eight nine".split()
TEENS = ("ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen "
         "nineteen").split()
TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
HOURS = "one two three four five six seven eight nine ten eleven twelve".split()
MINUTES = ["o'clock", "fifteen", "thirty", "forty five", "ten", "twenty", "forty"]
PARTS_OF_DAY = ["", "", "in the morning", "in the afternoon", "in the evening"]
DAYS = ("monday tuesday wednesday thursday friday saturday sunday today tomorrow "
        "tonight").split()
MONTHS = ("january february march april may june july august september october november "
          "december").split()
ORDINALS = ("first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
            "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
            "twentieth").split()
TICKETS = ["ticket", "flight", "train", "room", "table", "car"]
COMMANDS = [
    "cancel", "repeat that please", "yes please", "no thank you", "thank you very much",
    "goodbye", "hold on a second", "check my balance", "speak to an agent", "start over",
    "go back", "help me please", "that is correct", "that is not right", "talk to the operator",
]
TEMPLATES = [
    "call {name} at {time}",
    "please call {name} {day}",
    "call {name} on {day} at {time}",
    "dial {digits4} {digits3}",
    "my extension is {digits4}",
    "my account number is {digits5}",
    "i would like a {ticket} to {city} on {day}",
    "book a {ticket} to {city} for {day}",
    "is there a flight from {city} to {city} {day}",
    "what is the weather in {city} {day}",
    "set an alarm for {time}",
    "wake me up at {time}",
    "transfer {amount} dollars to {name}",
    "pay {amount} dollars on {month} {ordinal}",
    "meet me at the {place} at {time}",
    "the meeting is on {month} {ordinal}",
    "my appointment is on {day} at {time}",
    "send a message to {name}",
    "tell {name} i will be late",
    "remind me to call {name} at {time}",
    "what time does the {place} open on {day}",
    "how do i get to the {place} in {city}",
    "i need a table for {small} people at {time}",
    "{command}",
    "{command}",
]


def _number(rng: np.random.Generator, low: int, high: int) -> str:
    """A cardinal in words, low <= n <= high (< 1000)."""
    n = int(rng.integers(low, high + 1))
    words = []
    if n >= 100:
        words += [DIGITS[n // 100], "hundred"]
        n %= 100
        if n == 0:
            return " ".join(words)
    if n >= 20:
        words.append(TENS[n // 10 - 2])
        if n % 10:
            words.append(DIGITS[n % 10])
    elif n >= 10:
        words.append(TEENS[n - 10])
    elif n > 0 or not words:
        words.append(DIGITS[n])
    return " ".join(words)


def _pick(rng: np.random.Generator, items) -> str:
    return items[int(rng.integers(len(items)))]


def _slot(rng: np.random.Generator, name: str) -> str:
    if name == "name":
        return _pick(rng, NAMES)
    if name == "city":
        return _pick(rng, CITIES)
    if name == "place":
        return _pick(rng, PLACES)
    if name == "day":
        return _pick(rng, DAYS)
    if name == "month":
        return _pick(rng, MONTHS)
    if name == "ordinal":
        return _pick(rng, ORDINALS)
    if name == "ticket":
        return _pick(rng, TICKETS)
    if name == "command":
        return _pick(rng, COMMANDS)
    if name.startswith("digits"):
        return " ".join(_pick(rng, DIGITS) for _ in range(int(name[6:])))
    if name == "time":
        return " ".join(w for w in (_pick(rng, HOURS), _pick(rng, MINUTES),
                                     _pick(rng, PARTS_OF_DAY)) if w)
    if name == "amount":
        return _number(rng, 1, 999)
    if name == "small":
        return _number(rng, 2, 12)
    raise KeyError(name)


def sentence(rng: np.random.Generator) -> str:
    """One lower-case sentence of the grammar."""
    template = _pick(rng, TEMPLATES)
    out = []
    for token in template.split():
        out.append(_slot(rng, token[1:-1]) if token.startswith("{") else token)
    return " ".join(out)


def grammar_vocabulary() -> list[str]:
    """Every word the grammar can produce, sorted."""
    words = set()
    for group in (NAMES, CITIES, PLACES, DIGITS, TEENS, TENS, HOURS, MINUTES, PARTS_OF_DAY, DAYS,
                  MONTHS, ORDINALS, TICKETS, COMMANDS, ["hundred"]):
        for item in group:
            words.update(item.split())
    for t in TEMPLATES:
        words.update(w for w in t.split() if not w.startswith("{"))
    return sorted(words)


# ---------------------------------------------------------------------------------------------
# Speakers and configuration
# ---------------------------------------------------------------------------------------------
VOICES = ["en-us", "en", "en-GB-x-rp", "en-US-nyc", "en-029", "en-GB-scotland",
          "en-GB-x-gbclan", "en-GB-x-gbcwmd"]
VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]


@dataclass
class CorpusConfig:
    """Corpus size and channel; all fields can be set in the YAML config."""

    seed: int = 2024
    speakers: dict = field(default_factory=lambda: {"train": 40, "dev": 5, "test": 8})
    utts_per_speaker: dict = field(default_factory=lambda: {"train": 25, "dev": 20, "test": 22})
    sample_rate: int = 8000
    band_hz: tuple = (300.0, 3400.0)
    snr_db: tuple = (15.0, 30.0)
    level_dbfs: tuple = (-26.0, -14.0)  # speech RMS level
    lead_silence_s: tuple = (0.15, 0.4)
    trail_silence_s: tuple = (0.15, 0.4)
    rate_wpm: tuple = (135, 185)
    pitch: tuple = (25, 75)
    pitch_range: tuple = (30, 80)
    word_gap: tuple = (0, 2)  # units of 10 ms
    mulaw: bool = True
    max_duration_s: float = 4.5

    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None) -> "CorpusConfig":
        if path is None:
            return cls()
        raw = yaml.safe_load(Path(path).read_text()) or {}
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"{path}: unknown corpus options {sorted(unknown)}")
        cfg = cls(**raw)
        for k in ("band_hz", "snr_db", "level_dbfs", "lead_silence_s", "trail_silence_s",
                  "rate_wpm", "pitch", "pitch_range", "word_gap"):
            setattr(cfg, k, tuple(getattr(cfg, k)))
        return cfg


@dataclass
class Speaker:
    spk_id: str
    set_name: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    word_gap: int


@dataclass
class Utterance:
    utt_id: str
    spk_id: str
    text: str
    index: int


def make_speakers(cfg: CorpusConfig) -> list[Speaker]:
    """Distinct speakers, each in exactly one set; ids `<set-letter><number>` sort by set."""
    rng = np.random.default_rng([cfg.seed, 1])
    combos = [(v, p) for v in VOICES for p in VARIANTS]
    order = rng.permutation(len(combos))
    total = sum(int(cfg.speakers[s]) for s in SETS)
    speakers: list[Speaker] = []
    k = 0
    for set_name in SETS:
        for i in range(int(cfg.speakers[set_name])):
            voice, variant = combos[int(order[k % len(combos)])]
            k += 1
            speakers.append(Speaker(
                spk_id=f"{set_name[:2]}{i:03d}",
                set_name=set_name,
                voice=voice + (f"+{variant}" if variant else ""),
                rate=int(rng.integers(cfg.rate_wpm[0], cfg.rate_wpm[1] + 1)),
                pitch=int(rng.integers(cfg.pitch[0], cfg.pitch[1] + 1)),
                pitch_range=int(rng.integers(cfg.pitch_range[0], cfg.pitch_range[1] + 1)),
                word_gap=int(rng.integers(cfg.word_gap[0], cfg.word_gap[1] + 1)),
            ))
    if total > len(combos):
        log.warning("%d speakers but %d voice variants: some share a voice (different rate/pitch)",
                    total, len(combos))
    return speakers


def make_utterances(cfg: CorpusConfig, spk: Speaker, spk_index: int) -> list[Utterance]:
    rng = np.random.default_rng([cfg.seed, 2, spk_index])
    n = int(cfg.utts_per_speaker[spk.set_name])
    return [Utterance(f"{spk.spk_id}-{j:04d}", spk.spk_id, sentence(rng), j) for j in range(n)]


# ---------------------------------------------------------------------------------------------
# eSpeak NG through ctypes
# ---------------------------------------------------------------------------------------------
_ESPEAK = None
_BUF: list[np.ndarray] = []
_CALLBACK_T = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                               ctypes.c_void_p)


def _collect(wav, n, _events):  # called by eSpeak with int16 samples
    if n > 0:
        _BUF.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
    return 0


_CALLBACK = _CALLBACK_T(_collect)


def espeak_init() -> int:
    """Load and initialise libespeak-ng (synchronous output); returns its sample rate (Hz)."""
    global _ESPEAK
    if _ESPEAK is None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        sr = lib.espeak_Initialize(2, 0, espeakng_loader.get_data_path().encode(), 0)
        if sr <= 0:
            raise RuntimeError("espeak_Initialize failed")
        lib.espeak_SetSynthCallback(_CALLBACK)
        _ESPEAK = (lib, sr)
    return _ESPEAK[1]


def espeak_synth(text: str, spk: Speaker, seed: int = 0) -> tuple[np.ndarray, int]:
    """Synthesise `text` with speaker `spk`: (int16 samples, sample rate).

    `seed` seeds eSpeak's noise source (breathy voice variants use it).
    """
    sr = espeak_init()
    lib = _ESPEAK[0]
    lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
    ctypes.CDLL(None).srand(ctypes.c_uint(seed))
    if lib.espeak_SetVoiceByName(spk.voice.encode()) != 0:
        raise RuntimeError(f"eSpeak NG has no voice '{spk.voice}' (speaker {spk.spk_id})")
    for param, value in ((1, spk.rate), (3, spk.pitch), (4, spk.pitch_range), (7, spk.word_gap)):
        lib.espeak_SetParameter(param, value, 0)
    _BUF.clear()
    data = text.encode()
    lib.espeak_Synth(data, len(data) + 1, 0, 0, 0, 0, None, None)
    lib.espeak_Synchronize()
    if not _BUF:
        raise RuntimeError(f"eSpeak NG returned no audio for '{text}'")
    return np.concatenate(_BUF), sr


# ---------------------------------------------------------------------------------------------
# Telephone channel
# ---------------------------------------------------------------------------------------------
def _mulaw(x: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """8-bit mu-law encode then decode (x in [-1, 1])."""
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    y = np.round((y + 1.0) * 127.5) / 127.5 - 1.0
    return np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu


def telephone_channel(speech: np.ndarray, sr_in: int, cfg: CorpusConfig,
                      rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """int16 speech at sr_in -> (int16 samples at cfg.sample_rate, SNR in dB)."""
    from math import gcd

    from scipy.signal import butter, resample_poly, sosfilt

    x = speech.astype(np.float64) / 32768.0
    g = gcd(cfg.sample_rate, sr_in)
    x = resample_poly(x, cfg.sample_rate // g, sr_in // g)
    sr = cfg.sample_rate
    lead = np.zeros(int(rng.uniform(*cfg.lead_silence_s) * sr))
    trail = np.zeros(int(rng.uniform(*cfg.trail_silence_s) * sr))
    x = np.concatenate([lead, x, trail])
    sos = butter(4, [cfg.band_hz[0], cfg.band_hz[1]], btype="bandpass", fs=sr, output="sos")
    x = sosfilt(sos, x)
    active = np.abs(x) > 0.05 * np.abs(x).max()
    speech_power = float(np.mean(x[active] ** 2)) if active.any() else float(np.mean(x**2))
    level = 10 ** (rng.uniform(*cfg.level_dbfs) / 20)
    gain = level / np.sqrt(speech_power + 1e-20)
    x = x * gain
    snr_db = float(rng.uniform(*cfg.snr_db))
    noise = sosfilt(sos, rng.standard_normal(len(x)))
    noise *= np.sqrt(level**2 / 10 ** (snr_db / 10) / np.mean(noise**2))
    y = x + noise
    if cfg.mulaw:
        y = _mulaw(np.clip(y, -1.0, 1.0))
    return np.clip(np.round(y * 32767.0), -32768, 32767).astype(np.int16), snr_db


# ---------------------------------------------------------------------------------------------
# Synthesis of one speaker (runs in a freshly forked process)
# ---------------------------------------------------------------------------------------------
def _write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, sr, subtype="PCM_16", format="WAV")


def synth_speaker(args) -> list[dict]:
    """Synthesise all utterances of one speaker; returns one record per utterance."""
    cfg, spk, spk_index, utts, corpus = args
    out = []
    for utt in utts:
        path = Path(corpus) / "wav" / spk.spk_id / f"{utt.utt_id}.wav"
        rng = np.random.default_rng([cfg.seed, 3, spk_index, utt.index])
        samples, sr = espeak_synth(utt.text, spk, seed=int(rng.integers(2**31)))
        audio, snr = telephone_channel(samples, sr, cfg, rng)
        _write_wav(path, audio, cfg.sample_rate)
        out.append({"utt_id": utt.utt_id, "spk_id": spk.spk_id, "text": utt.text,
                    "path": str(path.resolve()), "num_samples": int(len(audio)),
                    "snr_db": round(snr, 2)})
    return out


# ---------------------------------------------------------------------------------------------
# Manifests
# ---------------------------------------------------------------------------------------------
def write_jsonl_gz(path: str | os.PathLike, items: list[dict]) -> None:
    """lhotse-readable .jsonl.gz with a fixed gzip header (mtime 0): same items, same bytes."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                with io.TextIOWrapper(gz, encoding="utf-8") as f:
                    for item in items:
                        f.write(json.dumps(item, ensure_ascii=False) + "\n")


def write_manifests(records: list[dict], set_name: str, manifest_dir: Path, sr: int,
                    prefix: str = "synth") -> None:
    from lhotse import CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
    from lhotse.audio import AudioSource

    recs, sups = [], []
    for r in sorted(records, key=lambda r: r["utt_id"]):
        dur = r["num_samples"] / sr
        recs.append(Recording(id=r["utt_id"], sources=[AudioSource(type="file", channels=[0],
                                                                   source=r["path"])],
                              sampling_rate=sr, num_samples=r["num_samples"], duration=dur))
        sups.append(SupervisionSegment(id=r["utt_id"], recording_id=r["utt_id"], start=0.0,
                                       duration=dur, channel=0, text=r["text"], language="English",
                                       speaker=r["spk_id"], custom={"snr_db": r["snr_db"]}))
    recordings, supervisions = RecordingSet.from_recordings(recs), SupervisionSet.from_segments(sups)
    cuts = CutSet.from_manifests(recordings=recordings, supervisions=supervisions)
    cut_dicts = []
    for c in cuts.to_eager():  # from_manifests gives random cut ids: make them stable
        d = c.to_dict()
        d["id"] = c.recording_id
        cut_dicts.append(d)
    cut_dicts.sort(key=lambda d: d["id"])
    write_jsonl_gz(manifest_dir / f"{prefix}_recordings_{set_name}.jsonl.gz", recordings.to_dicts())
    write_jsonl_gz(manifest_dir / f"{prefix}_supervisions_{set_name}.jsonl.gz",
                   supervisions.to_dicts())
    write_jsonl_gz(manifest_dir / f"{prefix}_cuts_{set_name}.jsonl.gz", cut_dicts)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def generate(cfg: CorpusConfig, corpus: str | os.PathLike, manifest_dir: str | os.PathLike,
             nj: int = 1) -> dict:
    """Synthesise the corpus and write manifests; returns per-set statistics."""
    from tqdm import tqdm

    corpus, manifest_dir = Path(corpus), Path(manifest_dir)
    if (corpus / "wav").exists():  # a regeneration: no stale audio from a larger config
        shutil.rmtree(corpus / "wav")
    corpus.mkdir(parents=True, exist_ok=True)
    manifest_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    speakers = make_speakers(cfg)
    jobs = [(cfg, spk, i, make_utterances(cfg, spk, i), str(corpus)) for i, spk in
            enumerate(speakers)]
    import scipy.signal  # noqa: F401  (imported once here, not in every forked child)
    import soundfile  # noqa: F401

    espeak_init()  # initialised once here; every child forks from this never-used state
    ctx = mp.get_context("fork")
    records: list[dict] = []
    with ctx.Pool(max(1, nj), maxtasksperchild=1) as pool, \
            tqdm(total=sum(len(j[3]) for j in jobs), desc="synth", unit="utt") as bar:
        for recs in pool.imap(synth_speaker, jobs, chunksize=1):
            records.extend(recs)
            bar.update(len(recs))
    by_set = {s: [] for s in SETS}
    spk_set = {s.spk_id: s.set_name for s in speakers}
    for r in records:
        by_set[spk_set[r["spk_id"]]].append(r)
    stats = {}
    for set_name, recs in by_set.items():
        write_manifests(recs, set_name, manifest_dir, cfg.sample_rate)
        durs = np.array([r["num_samples"] / cfg.sample_rate for r in recs] or [0.0])
        words = [w for r in recs for w in r["text"].split()]
        stats[set_name] = {
            "utterances": len(recs), "speakers": len({r["spk_id"] for r in recs}),
            "hours": round(float(durs.sum()) / 3600, 4),
            "minutes": round(float(durs.sum()) / 60, 2),
            "duration_s_min_mean_max": [round(float(durs.min()), 2), round(float(durs.mean()), 2),
                                        round(float(durs.max()), 2)],
            "words": len(words), "vocabulary": len(set(words)),
        }
        long = int((durs > cfg.max_duration_s).sum())
        if long:
            log.warning("%s: %d utterances longer than %.1f s", set_name, long, cfg.max_duration_s)
    vocab = grammar_vocabulary()
    atomic_write_text(corpus / "vocab.txt", "".join(w + "\n" for w in vocab))
    stats["grammar_vocabulary"] = len(vocab)
    stats["speakers_table"] = [asdict(s) for s in speakers]
    atomic_write_text(corpus / "corpus_stats.json", json.dumps(stats, indent=1) + "\n")
    for set_name in SETS:
        log.info("%s: %s", set_name, json.dumps(stats[set_name]))
    log.info("grammar vocabulary %d words; synthesis took %.1f s", len(vocab), time.time() - t0)
    return stats


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="corpus YAML (egs/synth/conf/corpus.yaml)")
    p.add_argument("--corpus", required=True, help="output folder for wavs and vocab.txt")
    p.add_argument("--manifests", required=True, help="output folder for lhotse manifests")
    p.add_argument("--seed", type=int, help="overrides the config's seed")
    p.add_argument("--nj", type=int, default=1, help="parallel synthesis processes")
    args = p.parse_args(argv)
    setup_logging()
    cfg = CorpusConfig.from_yaml(args.config)
    if args.seed is not None:
        cfg.seed = args.seed
    generate(cfg, args.corpus, args.manifests, nj=args.nj)


if __name__ == "__main__":
    main()
