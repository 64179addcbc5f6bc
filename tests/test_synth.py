"""The embedded corpus generator: determinism, speaker/engine split, vocabulary, channel, bad voices."""

from __future__ import annotations

import gzip
import hashlib
import json

import numpy as np
import soundfile as sf

import pytest

from asr.corpus import channel, grammar, synth, tts


def _tiny(seed: int) -> synth.CorpusConfig:
    """Every engine and the speed perturbation, 1-2 utterances per speaker."""
    return synth.CorpusConfig(seed=seed, lm_text_sentences=10, sets={
        "train": {"speakers": {"espeak": 1, "flite": 1}, "utts_per_speaker": 1},
        "dev": {"speakers": {"espeak": 1}, "utts_per_speaker": 1},
        "test": {"speakers": {"flite": 1}, "utts_per_speaker": 1},
        "test_heldout": {"speakers": {"festival": 1}, "utts_per_speaker": 2}})


def _digest(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_manifests_and_audio_for_any_nj(tmp_path):
    cfg = _tiny(5)
    synth.generate(cfg, tmp_path / "c", tmp_path / "m", nj=2)
    first = _digest(tmp_path / "m"), _digest(tmp_path / "c" / "wav")
    synth.generate(cfg, tmp_path / "c", tmp_path / "m", nj=1)
    second = _digest(tmp_path / "m"), _digest(tmp_path / "c" / "wav")
    assert len(first[0]) == 15 and len(first[1]) == 6  # 5 sets x 3 manifests; 6 utterances
    assert len(_digest(tmp_path / "c" / "wav_sp")) == 4  # train x 0.9 and 1.1 (1.0 is the original)
    assert first == second
    synth.generate(_tiny(6), tmp_path / "c2", tmp_path / "m2", nj=1)
    assert _digest(tmp_path / "c2" / "wav") != first[1]


def test_speaker_split_is_disjoint(synth_corpus):
    speakers = {}
    for set_name in ("train", "dev", "test"):
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
    spks = synth.make_speakers(synth.CorpusConfig.from_yaml("egs/synth/conf/corpus.yaml"))
    ids = [s.spk_id for s in spks]
    assert len(set(ids)) == len(ids) == 46 + 6 + 22 + 8
    assert len({s.voice for s in spks}) == len(spks)
    names = {set_name: {(s.voice.engine, s.voice.name) for s in spks if s.set_name == set_name}
             for set_name in synth.SETS}
    for a in synth.SETS:  # no voice (eSpeak voice+variant, flite or Festival voice) in two sets
        for b in synth.SETS:
            assert a == b or not names[a] & names[b], (a, b)
    engines = {set_name: {e for e, _ in names[set_name]} for set_name in synth.SETS}
    assert engines["train"] == engines["dev"] == engines["test"] == {"espeak", "flite"}
    assert engines["test_heldout"] == {"festival"}  # an engine never heard in training


def test_grammar_vocabulary_in_cmudict_and_sentences_use_it():
    from asr.corpus.lexicon import cmudict_prons

    vocab = grammar.grammar_vocabulary()
    prons = cmudict_prons()
    assert len(vocab) >= 1000
    assert [w for w in vocab if w not in prons] == []
    rng = np.random.default_rng(0)
    sents = [grammar.sentence(rng) for _ in range(3000)]
    assert set(w for s in sents for w in s.split()) <= set(vocab)
    assert len(set(sents)) > 2500  # open slots: few repeats
    # the LM's extra text comes from a stream the sets do not use: most test sentences are unseen
    cfg = synth.CorpusConfig.from_yaml("egs/synth/conf/corpus.yaml")
    lm = set(synth.lm_text(cfg))
    test = [u.text for s in synth.make_speakers(cfg) if s.set_name == "test" for u in synth.make_utterances(cfg, s)]
    assert sum(t in lm for t in test) < 0.4 * len(test)


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
    assert stats["train"]["utterances_by_engine"] == {"espeak": 6, "flite": 3}
    assert stats["test"]["utterances"] == 2 and stats["skipped_silent"] == []


def test_speed_perturbed_copies_are_longer_and_shorter(tmp_path):
    cfg = _tiny(8)
    synth.generate(cfg, tmp_path / "c", tmp_path / "m", nj=1)
    with gzip.open(tmp_path / "m" / "synth_supervisions_train_sp.jsonl.gz", "rt") as f:
        sups = {s["id"]: s for s in map(json.loads, f)}
    base = {k[len("sp1-"):]: v["duration"] for k, v in sups.items() if k.startswith("sp1-")}
    assert len(sups) == 3 * len(base) == 6
    for utt, dur in base.items():
        assert sups[f"sp0.9-{utt}"]["duration"] == pytest.approx(dur / 0.9, rel=0.01)
        assert sups[f"sp1.1-{utt}"]["duration"] == pytest.approx(dur / 1.1, rel=0.01)
        assert sups[f"sp0.9-{utt}"]["speaker"].startswith("sp0.9-")


def test_channel_applies_room_noise_and_codecs():
    cfg = synth.CorpusConfig(reverb_prob=1.0, mulaw_prob=0.0, gsm_prob=1.0)
    rng = np.random.default_rng(0)
    speech = (3000 * np.sin(np.arange(16000) * 2 * np.pi * 440 / 16000)).astype(np.int16)
    y, info = channel.telephone_channel(speech, 16000, cfg, rng)
    assert info["codec"] == "gsm" and info["rt60"] > 0 and info["noise"] in channel.NOISE_TYPES
    assert 1.0 < len(y) / 8000 < 1.7 and y.dtype == np.int16
    for kind in channel.NOISE_TYPES:
        n = channel.make_noise(kind, 8000, 8000, np.random.default_rng(1))
        assert n.shape == (8000,) and abs(n.std() - 1.0) < 1e-6


def test_missing_program_and_unknown_voice_are_named(tmp_path, monkeypatch):
    with pytest.raises(tts.EngineError, match="flite has no voice 'nosuch'"):
        tts.check_voice(tts.Voice("flite", "nosuch", 1.0))
    with pytest.raises(tts.EngineError, match="festival has no voice 'nosuch_diphone'"):
        tts.check_voice(tts.Voice("festival", "nosuch_diphone", 1.0))
    monkeypatch.setenv("PATH", str(tmp_path))  # no flite, festival or sox on PATH
    with pytest.raises(tts.EngineError, match="install the Debian package 'festival'"):
        tts.check_voice(tts.Voice("festival", "ked_diphone", 1.0))
    monkeypatch.setattr(tts, "_FLITE_VOICES", None)
    cfg = _tiny(5)
    with pytest.raises(tts.EngineError, match=r"'(flite|festival)' is not on PATH: install the Debian package '(flite|festival)'"):
        synth.generate(cfg, tmp_path / "c", tmp_path / "m")
    assert not (tmp_path / "m").exists()  # refused before any work


def test_unknown_espeak_voice_and_silent_utterance(tmp_path):
    cfg = _tiny(5)
    bad = synth.Speaker("tr000", "train", tts.Voice("espeak", "xx-nosuch", 150, 50))
    with pytest.raises(tts.EngineError, match="no voice 'xx-nosuch'"):
        synth.synth_speaker((cfg, bad, [synth.Utterance("tr000-0000", "tr000", "hello", 0)], str(tmp_path)))
    spk = synth.Speaker("tr000", "train", tts.Voice("espeak", "en-us", 150, 50))
    utts = [synth.Utterance("tr000-0000", "tr000", "call john", 0),
            synth.Utterance("tr000-0001", "tr000", " ", 1)]  # synthesises to nothing
    recs, skipped = synth.synth_speaker((cfg, spk, utts, str(tmp_path)))
    assert [r["utt_id"] for r in recs] == ["tr000-0000"] and skipped == ["tr000-0001"]
