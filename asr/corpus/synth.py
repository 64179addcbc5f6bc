"""The embedded corpus: telephone-style speech synthesised on the machine from a seed.

Text comes from `asr.corpus.grammar` (templates with open slots over ~1,000 CMUdict words).
Speech comes from three engines (`asr.corpus.tts`): eSpeak NG (library through ctypes), flite and
Festival (Debian programs). A "speaker" is one engine voice with its own rate and pitch, and
belongs to exactly one set. The channel (`asr.corpus.channel`) adds a simulated room on part of
the data, synthetic noise at a drawn SNR, the 300-3400 Hz telephone band, 8 kHz, and mu-law or
GSM coding on part of the data. Training sets listed in `speed_perturb` get Kaldi-style speed
perturbed copies (lhotse's `perturb_speed`, factors 0.9/1.0/1.1) as the set `<set>_sp`, with
utterance and speaker ids prefixed `sp<factor>-`.

Default sets (egs/synth/conf/corpus.yaml):
- train, dev, test: eSpeak NG and flite; disjoint eSpeak voice+variant combinations and disjoint
  flite voices (train kal, awb; dev kal16; test rms), so `test` has seen engines, unseen voices;
- test_heldout: Festival only (ked diphone, slt HTS), an engine no other set uses. flite's `slt`
  is used nowhere, because Festival's slt HTS voice is built from the same recorded speaker.

An utterance whose audio is empty or silent (peak below `min_peak_dbfs`) is skipped, named in
the log and counted in `corpus_stats.json` (`skipped_silent`).

Determinism: eSpeak NG keeps internal state between syntheses, so each speaker is synthesised in
a fresh process forked from a parent that has initialised eSpeak but never synthesised; texts,
voices and channel randomness come from seeded numpy generators keyed by (seed, set, speaker,
utterance). The result does not depend on `--nj`.

Outputs (16-bit 8 kHz mono wav): `<corpus>/wav/<speaker>/<utt>.wav`, `<corpus>/wav_sp/...`,
`<corpus>/vocab.txt` (the grammar's words), `<corpus>/lm_text.txt` (extra grammar sentences for
the LM, Kaldi text format, drawn from a stream no set uses), `<corpus>/corpus_stats.json` and
lhotse manifests `<manifests>/synth_{recordings,supervisions,cuts}_<set>.jsonl.gz`, written with
a fixed gzip header so equal seeds give byte-identical files.

    python -m asr.corpus.synth --config egs/synth/conf/corpus.yaml --corpus corpus \
        --manifests data/manifests --nj 2
"""

from __future__ import annotations

import argparse
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

from asr.corpus import tts
from asr.corpus.channel import NOISE_TYPES, telephone_channel
from asr.corpus.grammar import grammar_vocabulary, sentence
from asr.utils import atomic_path, atomic_write_text, setup_logging

log = logging.getLogger(__name__)

SETS = ("train", "dev", "test", "test_heldout")
SET_PREFIX = {"train": "tr", "dev": "de", "test": "te", "test_heldout": "ho"}

ESPEAK_VOICES = ["en-us", "en", "en-GB-x-rp", "en-US-nyc", "en-029", "en-GB-scotland",
                 "en-GB-x-gbclan", "en-GB-x-gbcwmd"]
ESPEAK_VARIANTS = ["", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5"]


# ---------------------------------------------------------------------------------------------
# Configuration and speakers
# ---------------------------------------------------------------------------------------------
@dataclass
class CorpusConfig:
    """Corpus size, voices and channel; every field can be set in the YAML config.

    `sets`: set name -> {speakers: {engine: count}, utts_per_speaker: n}. `flite_voices` /
    `festival_voices`: set name -> the voices its speakers of that engine cycle through.
    `rate`/`pitch`: engine -> [low, high] drawn per speaker (see asr.corpus.tts.Voice)."""

    seed: int = 2024
    sets: dict = field(default_factory=lambda: {
        "train": {"speakers": {"espeak": 30, "flite": 16}, "utts_per_speaker": 24},
        "dev": {"speakers": {"espeak": 4, "flite": 2}, "utts_per_speaker": 20},
        "test": {"speakers": {"espeak": 12, "flite": 6}, "utts_per_speaker": 24},
        "test_heldout": {"speakers": {"festival": 8}, "utts_per_speaker": 56},
    })
    espeak_voices: list = field(default_factory=lambda: list(ESPEAK_VOICES))
    espeak_variants: list = field(default_factory=lambda: list(ESPEAK_VARIANTS))
    flite_voices: dict = field(default_factory=lambda: {"train": ["kal", "awb"], "dev": ["kal16"],
                                                        "test": ["rms"]})
    festival_voices: dict = field(default_factory=lambda: {
        "test_heldout": ["ked_diphone", "cmu_us_slt_arctic_hts"]})
    rate: dict = field(default_factory=lambda: {"espeak": [135, 185], "flite": [0.85, 1.2],
                                                "festival": [0.85, 1.2]})
    pitch: dict = field(default_factory=lambda: {"espeak": [25, 75], "flite": [85, 140],
                                                 "festival": [0, 0]})
    pitch_range: tuple = (30, 80)     # eSpeak only
    word_gap: tuple = (0, 2)          # eSpeak only, units of 10 ms
    speed_perturb: dict = field(default_factory=lambda: {"train": [0.9, 1.0, 1.1]})
    lm_text_sentences: int = 20000
    min_peak_dbfs: float = -50.0      # quieter synthesis output counts as silent (skipped)
    # channel (asr.corpus.channel.telephone_channel)
    sample_rate: int = 8000
    band_hz: tuple = (300.0, 3400.0)
    snr_db: tuple = (5.0, 30.0)
    noise_types: tuple = NOISE_TYPES
    reverb_prob: float = 0.3
    rt60_s: tuple = (0.2, 0.7)
    level_dbfs: tuple = (-26.0, -14.0)
    lead_silence_s: tuple = (0.1, 0.3)
    trail_silence_s: tuple = (0.1, 0.3)
    mulaw_prob: float = 0.4
    gsm_prob: float = 0.3
    max_duration_s: float = 6.0

    @classmethod
    def from_yaml(cls, path: str | os.PathLike | None) -> "CorpusConfig":
        if path is None:
            return cls()
        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown corpus options {sorted(unknown)}")
        cfg = cls(**raw)
        cfg.check(str(path))
        return cfg

    def check(self, where: str = "corpus config") -> None:
        """Raise ValueError naming the first inconsistent option."""
        for k in ("band_hz", "snr_db", "rt60_s", "level_dbfs", "lead_silence_s", "trail_silence_s",
                  "pitch_range", "word_gap", "noise_types"):
            setattr(self, k, tuple(getattr(self, k)))
        for name, s in self.sets.items():
            if name not in SET_PREFIX:
                raise ValueError(f"{where}: unknown set '{name}' (known: {', '.join(SET_PREFIX)})")
            if set(s) != {"speakers", "utts_per_speaker"}:
                raise ValueError(f"{where}: set '{name}' needs exactly speakers: and utts_per_speaker:")
            for engine in s["speakers"]:
                if engine not in tts.ENGINES:
                    raise ValueError(f"{where}: set '{name}': unknown engine '{engine}' "
                                     f"(known: {', '.join(tts.ENGINES)})")
                voices = {"flite": self.flite_voices, "festival": self.festival_voices}.get(engine)
                if voices is not None and s["speakers"][engine] and not voices.get(name):
                    raise ValueError(f"{where}: set '{name}' has {engine} speakers but no "
                                     f"{engine}_voices for it")
        for name in self.speed_perturb:
            if name not in self.sets:
                raise ValueError(f"{where}: speed_perturb names set '{name}', which is not in sets")
        bad = set(self.noise_types) - set(NOISE_TYPES)
        if bad:
            raise ValueError(f"{where}: unknown noise types {sorted(bad)} (known: {', '.join(NOISE_TYPES)})")

    def set_names(self) -> list[str]:
        return [s for s in SETS if s in self.sets]


@dataclass
class Speaker:
    spk_id: str
    set_name: str
    voice: tts.Voice


@dataclass
class Utterance:
    utt_id: str
    spk_id: str
    text: str
    index: int


def make_speakers(cfg: CorpusConfig) -> list[Speaker]:
    """Distinct speakers, each in exactly one set; ids `<set prefix><number>` (e.g. tr007).

    eSpeak speakers take voice+variant combinations in a seeded order without repeats across
    sets (while there are enough); flite/Festival speakers cycle through their set's voices."""
    rng = np.random.default_rng([cfg.seed, 1])
    combos = [v + (f"+{p}" if p else "") for v in cfg.espeak_voices for p in cfg.espeak_variants]
    order = [combos[int(i)] for i in rng.permutation(len(combos))]
    speakers: list[Speaker] = []
    k = 0
    for set_name in cfg.set_names():
        i = 0
        for engine, count in cfg.sets[set_name]["speakers"].items():
            pool = {"flite": cfg.flite_voices, "festival": cfg.festival_voices}.get(engine, {}).get(set_name)
            for j in range(int(count)):
                if engine == "espeak":
                    name = order[k % len(order)]
                    if k == len(order):
                        log.warning("more eSpeak speakers than voice variants: some share a voice")
                    k += 1
                else:
                    name = pool[j % len(pool)]
                lo, hi = cfg.rate[engine]
                rate = int(rng.integers(lo, hi + 1)) if engine == "espeak" else round(float(rng.uniform(lo, hi)), 3)
                plo, phi = cfg.pitch[engine]
                pitch = int(rng.integers(plo, phi + 1)) if engine == "espeak" else round(float(rng.uniform(plo, phi)))
                voice = tts.Voice(engine, name, rate, pitch,
                                  int(rng.integers(cfg.pitch_range[0], cfg.pitch_range[1] + 1)),
                                  int(rng.integers(cfg.word_gap[0], cfg.word_gap[1] + 1)))
                speakers.append(Speaker(f"{SET_PREFIX[set_name]}{i:03d}", set_name, voice))
                i += 1
    return speakers


def make_utterances(cfg: CorpusConfig, spk: Speaker) -> list[Utterance]:
    """The speaker's sentences, from a generator keyed by (seed, set, speaker)."""
    rng = np.random.default_rng([cfg.seed, 2, SETS.index(spk.set_name), int(spk.spk_id[2:])])
    n = int(cfg.sets[spk.set_name]["utts_per_speaker"])
    return [Utterance(f"{spk.spk_id}-{j:04d}", spk.spk_id, sentence(rng), j) for j in range(n)]


def lm_text(cfg: CorpusConfig) -> list[str]:
    """Extra LM training sentences from a stream that no set's utterances use."""
    rng = np.random.default_rng([cfg.seed, 9])
    return [sentence(rng) for _ in range(int(cfg.lm_text_sentences))]


# ---------------------------------------------------------------------------------------------
# Synthesis of one speaker (runs in a freshly forked process)
# ---------------------------------------------------------------------------------------------
def _write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(str(tmp), samples, sr, subtype="PCM_16", format="WAV")


def is_silent(samples: np.ndarray, min_peak_dbfs: float) -> bool:
    """True for int16 audio that is empty or whose peak is below `min_peak_dbfs`."""
    if samples.size == 0:
        return True
    peak = float(np.abs(samples.astype(np.float64)).max()) / 32768.0
    return peak <= 10 ** (min_peak_dbfs / 20)


def synth_speaker(args) -> tuple[list[dict], list[str]]:
    """Synthesise one speaker's utterances: (records of the written ones, ids skipped as silent)."""
    cfg, spk, utts, corpus = args
    seeds = [int(np.random.default_rng([cfg.seed, 3, SETS.index(spk.set_name), int(spk.spk_id[2:]),
                                        u.index]).integers(2**31)) for u in utts]
    audio = tts.synthesize_many([u.text for u in utts], spk.voice, seeds)
    out, skipped = [], []
    for utt, seed, (samples, sr) in zip(utts, seeds, audio):
        if is_silent(samples, cfg.min_peak_dbfs):
            log.warning("%s (%s, %r): synthesised to silence; skipped", utt.utt_id,
                        spk.voice.describe(), utt.text)
            skipped.append(utt.utt_id)
            continue
        rng = np.random.default_rng([cfg.seed, 4, seed])
        y, info = telephone_channel(samples, sr, cfg, rng)
        path = Path(corpus) / "wav" / spk.spk_id / f"{utt.utt_id}.wav"
        _write_wav(path, y, cfg.sample_rate)
        out.append({"utt_id": utt.utt_id, "spk_id": spk.spk_id, "text": utt.text,
                    "path": str(path.resolve()), "num_samples": int(len(y)), **info,
                    "engine": spk.voice.engine, "voice": spk.voice.name})
    return out, skipped


def speed_perturb_job(args) -> list[dict]:
    """Speed-perturbed copies (lhotse `Recording.perturb_speed`) of some records: new records."""
    records, factor, corpus, sr = args
    from lhotse import Recording

    out = []
    for r in records:
        tag = f"sp{factor:g}"
        rec = {**r, "utt_id": f"{tag}-{r['utt_id']}", "spk_id": f"{tag}-{r['spk_id']}", "speed": factor}
        if factor != 1.0:
            x = Recording.from_file(r["path"], recording_id=r["utt_id"]).perturb_speed(factor).load_audio()
            y = np.clip(np.round(x[0] * 32768.0), -32768, 32767).astype(np.int16)
            path = Path(corpus) / "wav_sp" / tag / r["spk_id"] / f"{rec['utt_id']}.wav"
            _write_wav(path, y, sr)
            rec.update(path=str(path.resolve()), num_samples=int(len(y)))
        out.append(rec)
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


CUSTOM_KEYS = ("snr_db", "noise", "rt60", "codec", "engine", "voice", "speed")


def write_manifests(records: list[dict], set_name: str, manifest_dir: Path, sr: int,
                    prefix: str = "synth") -> None:
    """Recordings, supervisions and cuts of one set (sorted by id) as lhotse manifests."""
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
                                       speaker=r["spk_id"],
                                       custom={k: r[k] for k in CUSTOM_KEYS if k in r}))
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


def set_stats(recs: list[dict], sr: int) -> dict:
    """Utterances, speakers, duration and words of one set's records."""
    durs = np.array([r["num_samples"] / sr for r in recs] or [0.0])
    words = [w for r in recs for w in r["text"].split()]
    engines: dict[str, int] = {}
    for r in recs:
        engines[r["engine"]] = engines.get(r["engine"], 0) + 1
    return {
        "utterances": len(recs), "speakers": len({r["spk_id"] for r in recs}),
        "hours": round(float(durs.sum()) / 3600, 4), "minutes": round(float(durs.sum()) / 60, 2),
        "duration_s_min_mean_max": [round(float(durs.min()), 2), round(float(durs.mean()), 2),
                                    round(float(durs.max()), 2)],
        "words": len(words), "vocabulary": len(set(words)), "utterances_by_engine": engines,
    }


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------
def generate(cfg: CorpusConfig, corpus: str | os.PathLike, manifest_dir: str | os.PathLike,
             nj: int = 1) -> dict:
    """Synthesise the corpus and write manifests; returns per-set statistics."""
    from tqdm import tqdm

    cfg.check()
    corpus, manifest_dir = Path(corpus), Path(manifest_dir)
    t0 = time.time()
    speakers = make_speakers(cfg)
    for voice in sorted({s.voice for s in speakers if s.voice.engine != "espeak"}, key=str):
        tts.check_voice(voice)  # a missing program or voice stops here, before any audio
    tts.require_program("sox") if cfg.gsm_prob > 0 else None
    for sub in ("wav", "wav_sp"):  # a regeneration: no stale audio from a larger config
        if (corpus / sub).exists():
            shutil.rmtree(corpus / sub)
    corpus.mkdir(parents=True, exist_ok=True)
    manifest_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(cfg, spk, make_utterances(cfg, spk), str(corpus)) for spk in speakers]
    import lhotse  # noqa: F401  (imported once here, not in every forked child)
    import pyroomacoustics  # noqa: F401
    import scipy.signal  # noqa: F401
    import soundfile  # noqa: F401

    tts.espeak_init()  # initialised once here; every child forks from this never-used state
    ctx = mp.get_context("fork")
    records: list[dict] = []
    skipped: list[str] = []
    with ctx.Pool(max(1, nj), maxtasksperchild=1) as pool, \
            tqdm(total=sum(len(j[2]) for j in jobs), desc="synth", unit="utt") as bar:
        for recs, skip in pool.imap(synth_speaker, jobs, chunksize=1):
            records.extend(recs)
            skipped.extend(skip)
            bar.update(len(recs) + len(skip))
        by_set = {s: [] for s in cfg.set_names()}
        spk_set = {s.spk_id: s.set_name for s in speakers}
        for r in records:
            by_set[spk_set[r["spk_id"]]].append(r)
        for set_name, factors in cfg.speed_perturb.items():
            recs = sorted(by_set[set_name], key=lambda r: r["utt_id"])
            chunks = [(recs[i::max(1, nj)], float(f), str(corpus), cfg.sample_rate)
                      for f in factors if float(f) != 1.0 for i in range(max(1, nj))]
            out = speed_perturb_job((recs, 1.0, str(corpus), cfg.sample_rate)) if 1.0 in map(float, factors) else []
            for part in tqdm(pool.imap(speed_perturb_job, chunks), total=len(chunks),
                             desc=f"speed perturb {set_name}", unit="job"):
                out.extend(part)
            by_set[f"{set_name}_sp"] = sorted(out, key=lambda r: r["utt_id"])
    stats: dict = {}
    for set_name, recs in by_set.items():
        write_manifests(recs, set_name, manifest_dir, cfg.sample_rate)
        stats[set_name] = set_stats(recs, cfg.sample_rate)
        long = sum(r["num_samples"] / cfg.sample_rate > cfg.max_duration_s for r in recs)
        if long:
            log.warning("%s: %d utterances longer than %.1f s", set_name, long, cfg.max_duration_s)
    vocab = grammar_vocabulary()
    atomic_write_text(corpus / "vocab.txt", "".join(w + "\n" for w in vocab))
    atomic_write_text(corpus / "lm_text.txt",
                      "".join(f"lm-{i:07d} {s}\n" for i, s in enumerate(lm_text(cfg))))
    stats["grammar_vocabulary"] = len(vocab)
    stats["lm_text_sentences"] = int(cfg.lm_text_sentences)
    stats["skipped_silent"] = sorted(skipped)
    stats["speakers_table"] = [{"spk_id": s.spk_id, "set": s.set_name, **asdict(s.voice)} for s in speakers]
    atomic_write_text(corpus / "corpus_stats.json", json.dumps(stats, indent=1) + "\n")
    for set_name in by_set:
        log.info("%s: %s", set_name, json.dumps(stats[set_name]))
    if skipped:
        log.warning("%d utterances synthesised to silence and were skipped: %s", len(skipped),
                    " ".join(sorted(skipped)[:10]) + (" ..." if len(skipped) > 10 else ""))
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
    try:
        generate(cfg, args.corpus, args.manifests, nj=args.nj)
    except tts.EngineError as e:
        raise SystemExit(f"asr.corpus.synth: {e}")


if __name__ == "__main__":
    main()
