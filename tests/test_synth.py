"""The embedded corpus generator: determinism, speaker split, vocabulary, telephone channel."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import soundfile as sf

from asr.corpus import synth


def _tiny(seed: int) -> synth.CorpusConfig:
    return synth.CorpusConfig(seed=seed, speakers={"train": 2, "dev": 1, "test": 1},
                              utts_per_speaker={"train": 2, "dev": 1, "test": 1})


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_manifests_and_audio_for_any_nj(tmp_path):
    cfg = _tiny(5)
    synth.generate(cfg, tmp_path / "c", tmp_path / "m", nj=2)
    first = _digest(tmp_path / "m"), _digest(tmp_path / "c" / "wav")
    synth.generate(cfg, tmp_path / "c", tmp_path / "m", nj=1)
    second = _digest(tmp_path / "m"), _digest(tmp_path / "c" / "wav")
    assert len(first[0]) == 9 and len(first[1]) == 6
    assert first == second
    synth.generate(_tiny(6), tmp_path / "c2", tmp_path / "m2", nj=1)
    assert _digest(tmp_path / "c2" / "wav") != first[1]


def test_speaker_split_is_disjoint(synth_corpus):
    speakers = {}
    for set_name in synth.SETS:
        path = synth_corpus["manifests"] / f"synth_supervisions_{set_name}.jsonl.gz"
        with gzip.open(path, "rt") as f:
            sups = [json.loads(line) for line in f]
        assert sups, set_name
        speakers[set_name] = {s["speaker"] for s in sups}
        assert all(s["id"].startswith(s["speaker"] + "-") for s in sups)
    assert not speakers["train"] & speakers["test"]
    assert not speakers["train"] & speakers["dev"]
    assert not speakers["dev"] & speakers["test"]
    # the default-size configuration too (no audio needed)
    spks = synth.make_speakers(synth.CorpusConfig())
    ids = [s.spk_id for s in spks]
    assert len(set(ids)) == len(ids) == 53
    by_set = {s: {x.spk_id for x in spks if x.set_name == s} for s in synth.SETS}
    assert sum(len(v) for v in by_set.values()) == len(ids)
    voices = {(s.voice, s.rate, s.pitch) for s in spks}
    assert len(voices) == len(spks)


def test_grammar_vocabulary_in_cmudict_and_sentences_use_it():
    from asr.corpus.lexicon import cmudict_prons

    vocab = synth.grammar_vocabulary()
    prons = cmudict_prons()
    assert 150 <= len(vocab) <= 500
    assert [w for w in vocab if w not in prons] == []
    rng = np.random.default_rng(0)
    sents = [synth.sentence(rng) for _ in range(300)]
    assert set(w for s in sents for w in s.split()) <= set(vocab)
    assert len(set(sents)) > 200  # varied


def test_telephone_channel_8khz_band_limited_and_noisy(synth_corpus):
    wavs = sorted((synth_corpus["corpus"] / "wav").rglob("*.wav"))
    info = sf.info(str(wavs[0]))
    assert info.samplerate == 8000 and info.subtype == "PCM_16" and info.channels == 1
    x, sr = sf.read(str(wavs[0]), dtype="float64")
    assert 1.0 < len(x) / sr < 5.0
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    in_band = spec[(freqs > 300) & (freqs < 3400)].sum()
    assert spec[freqs < 120].sum() < 0.01 * in_band
    lead = x[: int(0.08 * sr)]  # leading "silence" holds channel noise, not digital zero
    assert np.sqrt(np.mean(lead**2)) > 1e-4
    assert np.sqrt(np.mean(lead**2)) < 0.3 * np.sqrt(np.mean(x**2))


def test_corpus_stats_written(synth_corpus):
    stats = json.loads((synth_corpus["corpus"] / "corpus_stats.json").read_text())
    assert stats["train"]["utterances"] == 9 and stats["train"]["speakers"] == 3
    assert stats["test"]["utterances"] == 2
