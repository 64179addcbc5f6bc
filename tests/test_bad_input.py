"""Bad input and faults in data dirs, audio and feature extraction (issue 17, items 1-8, 13, 16):
each a named error before any work (or a logged, explicit conversion), never a silent change of
the result or a partial output that looks complete. Hand-built data dirs of short noise wavs."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asr import features as F
from asr.corpus import datadir
from asr.corpus.datadir import DataDirError, validate_datadir

SR = 8000


def _wav(path, seconds=0.5, sr=SR, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    x = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)
    sf.write(str(path), x if channels > 1 else x[:, 0], sr, subtype="PCM_16")
    return path


def make_dir(root, n=3, *, text=None, entries=None):
    """Data dir `root/data` of n utterances spk1-u0.. (one recording each, no segments)."""
    d = root / "data"
    d.mkdir(parents=True, exist_ok=True)
    utts = [f"spk1-u{i}" for i in range(n)]
    entries = entries or {}
    wav = {u: entries.get(u) or str(_wav(root / f"{u}.wav", seed=i)) for i, u in enumerate(utts)}
    text = text or {u: "hello world" for u in utts}
    (d / "wav.scp").write_text("".join(f"{u} {wav[u]}\n" for u in utts))
    (d / "text").write_text("".join(f"{u} {text[u]}\n" for u in utts))
    (d / "utt2spk").write_text("".join(f"{u} spk1\n" for u in utts))
    (d / "spk2utt").write_text("spk1 " + " ".join(utts) + "\n")
    return d


def _cfg(**kw):
    return F.FeatureConfig.load("mfcc", lhotse_storage=False, **kw)


# ---------------------------------------------------------------------------- 1: truncated WAV
def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[:44 + int((len(data) - 44) * keep)])


def test_truncated_wav_is_named_in_validation_reading_and_features(tmp_path):
    d = make_dir(tmp_path)
    _truncate(tmp_path / "spk1-u1.wav")
    with pytest.raises(DataDirError, match=r"recording 'spk1-u1': .*spk1-u1.wav: truncated WAV: "
                                           r"its header declares 4000 samples \(0.500 s\) but the "
                                           r"file holds 2000"):
        validate_datadir(d)
    with pytest.raises(DataDirError, match="truncated WAV"):
        datadir.read_wav_entry(str(tmp_path / "spk1-u1.wav"))
    with pytest.raises(DataDirError, match="truncated WAV"):  # a command's output is checked too
        datadir.read_wav_entry(f"cat {tmp_path / 'spk1-u1.wav'} |")
    with pytest.raises(F.FeatureError, match="recording 'spk1-u1'.*truncated"):
        F.extract(d, tmp_path / "feats", _cfg())
    assert not (tmp_path / "feats").exists()
    # a complete file, and sox's "unknown length" header on a pipe, are not truncated
    assert datadir.wav_truncation((tmp_path / "spk1-u0.wav").read_bytes()[:64],
                                  (tmp_path / "spk1-u0.wav").stat().st_size) is None
    head = bytearray((tmp_path / "spk1-u0.wav").read_bytes()[:44])
    head[40:44] = (0x7FFFF000).to_bytes(4, "little")
    assert datadir.wav_truncation(bytes(head), 44 + 100) is None


# ---------------------------------------------------------------------------- 2: shorter than a frame
def test_audio_shorter_than_one_frame_is_a_named_error(tmp_path):
    d = make_dir(tmp_path)
    _wav(tmp_path / "spk1-u2.wav", seconds=0.01)  # 80 samples < one 25 ms frame (200)
    with pytest.raises(F.FeatureError, match=r"recording 'spk1-u2'.*80 samples \(10.0 ms\), "
                                             r"shorter than one 25 ms frame"):
        F.extract(d, tmp_path / "feats", _cfg())
    # the per-utterance check (commands are not opened by the validation)
    (d / "wav.scp").write_text("".join(f"spk1-u{i} cat {tmp_path}/spk1-u{i}.wav |\n"
                                       for i in range(3)))
    with pytest.raises(F.FeatureError, match=r"utterance 'spk1-u2': too short for one frame: "
                                             r"80 samples"):
        F.extract(d, tmp_path / "feats", _cfg())
    # the library function gives an empty (0, 3*D) matrix, not a reshape error
    assert F.compute_features(np.zeros(80, np.float32), SR, _cfg()).shape == (0, 39)


def test_segment_shorter_than_one_frame_named(tmp_path):
    d = make_dir(tmp_path, n=2)
    (d / "segments").write_text("spk1-u0 spk1-u0 0.00 0.40\nspk1-u1 spk1-u1 0.10 0.11\n")
    with pytest.raises(F.FeatureError, match="segments: utterance 'spk1-u1' lasts 10 ms, "
                                             "shorter than one 25 ms frame"):
        F.extract(d, tmp_path / "feats", _cfg())
    validate_datadir(d)  # the data dir itself is valid (segments are checked against a frame by features)


# ---------------------------------------------------------------------------- 3: sample rate
def test_other_sample_rate_is_an_error_or_an_explicit_logged_resample(tmp_path, caplog):
    d = make_dir(tmp_path)
    _wav(tmp_path / "spk1-u1.wav", sr=16000, seed=1)
    with pytest.raises(DataDirError, match=r"recording 'spk1-u1': .* is 16000 Hz, the set's rate "
                                           r"\(that of recording 'spk1-u0'\) is 8000 Hz"):
        validate_datadir(d)
    with pytest.raises(F.FeatureError, match="recording 'spk1-u1'.*16000 Hz"):
        F.extract(d, tmp_path / "feats", _cfg())
    with pytest.raises(F.FeatureError, match="recording 'spk1-u0'.*8000 Hz.*configured sample_rate "
                                             "is 16000"):
        F.extract(d, tmp_path / "feats", _cfg(sample_rate=16000))
    with caplog.at_level(logging.WARNING, logger="asr.features"):
        F.extract(d, tmp_path / "feats", _cfg(sample_rate=8000, resample=True))
    assert "recording 'spk1-u1'" in caplog.text and "resampling 16000 Hz -> 8000 Hz" in caplog.text
    frames = F.FeatureReader(tmp_path / "feats", cmvn=False)
    assert frames.num_frames("spk1-u1") == frames.num_frames("spk1-u0") == F.num_frames(4000, SR)
    with pytest.raises(ValueError, match="resample: true needs sample_rate"):
        _cfg(resample=True)


def test_mixed_rates_through_commands_named(tmp_path):
    d = make_dir(tmp_path)
    _wav(tmp_path / "spk1-u2.wav", sr=16000, seed=2)
    (d / "wav.scp").write_text("".join(f"spk1-u{i} cat {tmp_path}/spk1-u{i}.wav |\n"
                                       for i in range(3)))
    with pytest.raises(F.FeatureError, match="mixed sample rates: utterance 'spk1-u0' is 8000 Hz, "
                                             "utterance 'spk1-u2' is 16000 Hz"):
        F.extract(d, tmp_path / "feats", _cfg(batch_size=1))
    assert not (tmp_path / "feats").exists()


# ---------------------------------------------------------------------------- 4: channels
def test_multichannel_audio_refused_unless_a_channel_is_chosen(tmp_path):
    d = make_dir(tmp_path)
    stereo = _wav(tmp_path / "spk1-u0.wav", channels=2, seed=5)
    with pytest.raises(DataDirError, match="recording 'spk1-u0': .* has 2 channels"):
        validate_datadir(d)
    with pytest.raises(F.FeatureError, match="recording 'spk1-u0'.*2 channels"):
        F.extract(d, tmp_path / "feats", _cfg())
    with pytest.raises(DataDirError, match="2 channels"):
        datadir.read_wav_entry(str(stereo))
    # channel 1 chosen: the features are those of that channel alone
    F.extract(d, tmp_path / "feats", _cfg(channel=1))
    x, sr = sf.read(str(stereo), dtype="float32")
    got = F.FeatureReader(tmp_path / "feats", cmvn=False).raw("spk1-u0")
    np.testing.assert_array_equal(got, F.compute_features(x[:, 1], sr, _cfg(channel=1),
                                                          F._utt_seed("spk1-u0")))
    with pytest.raises(F.FeatureError, match="channel 2 asked for, .* has 2"):
        F.extract(d, tmp_path / "feats2", _cfg(channel=2))


# ---------------------------------------------------------------------------- 5: all-OOV transcripts
def test_all_oov_transcript_reported_by_validation(tmp_path):
    d = make_dir(tmp_path, text={"spk1-u0": "hello world", "spk1-u1": "qwzx blorp",
                                 "spk1-u2": "hello qwzx"})
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\n<unk> 1\nhello 2\nworld 3\n#0 4\n")
    vocab = datadir.read_vocabulary(words)
    assert vocab == {"<unk>", "hello", "world"}
    validate_datadir(d)  # without a vocabulary nothing is known about OOVs
    with pytest.raises(DataDirError, match=r"text: 1 utterance\(s\) have only out-of-vocabulary "
                                           r"words: spk1-u1 \(qwzx blorp\)"):
        validate_datadir(d, words=vocab)
    bad = subprocess.run([sys.executable, "-m", "asr.corpus.datadir", "validate", str(d),
                          "--words", str(words)], capture_output=True, text=True)
    assert bad.returncode == 1 and "spk1-u1 (qwzx blorp)" in bad.stderr
    assert "Traceback" not in bad.stderr
    # the helper for the GMM alignment's <unk> warning: every utterance with an OOV word
    text = datadir.read_kaldi_map(d / "text")
    assert datadir.oov_utterances(text, vocab) == {"spk1-u1": ["qwzx", "blorp"],
                                                   "spk1-u2": ["qwzx"]}
    assert datadir.oov_utterances(text, vocab, all_oov=True) == {"spk1-u1": ["qwzx", "blorp"]}


# ---------------------------------------------------------------------------- 6: id mismatch
def test_ids_disagreeing_between_files_name_the_first_missing_from_each(tmp_path):
    d = make_dir(tmp_path)
    (d / "utt2spk").write_text("spk1-u0 spk1\nspk1-u1 spk1\nspk1-u9 spk1\n")
    (d / "spk2utt").write_text("spk1 spk1-u0 spk1-u1 spk1-u9\n")
    msg = (r"text: utterance 'spk1-u2' is not in .*utt2spk \(1 such ids: 'spk1-u2'\); "
           r".*utt2spk: utterance 'spk1-u9' is not in .*text \(1 such ids: 'spk1-u9'\)")
    with pytest.raises(DataDirError, match=msg):
        validate_datadir(d)
    # features: the same message before any work, not a bare KeyError
    with pytest.raises(F.FeatureError, match=msg):
        F.extract(d, tmp_path / "feats", _cfg())
    assert not (tmp_path / "feats").exists()


def test_other_per_utterance_files_checked(tmp_path):
    d = make_dir(tmp_path)
    (d / "utt2dur").write_text("spk1-u0 0.5\nspk1-u1 0.5\n")
    with pytest.raises(DataDirError, match="text: utterance 'spk1-u2' is not in .*utt2dur"):
        validate_datadir(d)


# ---------------------------------------------------------------------------- 7: encoding
def test_bom_and_non_utf8_bytes_named_by_file_line_and_offset(tmp_path):
    d = make_dir(tmp_path)
    good = (d / "text").read_bytes()
    (d / "text").write_bytes(b"\xef\xbb\xbf" + good)
    with pytest.raises(DataDirError, match=r"text:1: starts with a UTF-8 byte-order mark .*"
                                           r"byte offset 0"):
        validate_datadir(d)
    with pytest.raises(F.FeatureError, match="byte-order mark"):
        F.extract(d, tmp_path / "feats", _cfg())
    lines = good.split(b"\n")
    lines[2] = b"spk1-u2 caf\xe9 world"  # Latin-1, not UTF-8
    (d / "text").write_bytes(b"\n".join(lines))
    off = len(lines[0]) + len(lines[1]) + 2 + len(b"spk1-u2 caf")
    with pytest.raises(DataDirError, match=rf"text:3: byte 0xe9 at byte offset {off} \(column 12\) "
                                           r"is not valid UTF-8"):
        validate_datadir(d)
    bad = subprocess.run([sys.executable, "-m", "asr.corpus.datadir", "validate", str(d)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and f"text:3: byte 0xe9 at byte offset {off}" in bad.stderr


def test_crlf_and_non_ascii_utf8_still_work(tmp_path):
    d = make_dir(tmp_path, text={"spk1-u0": "café naïve", "spk1-u1": "straße", "spk1-u2": "日本"})
    dd = datadir.read_datadir(d)
    datadir.write_datadir(dd, tmp_path / "copy")
    assert datadir.read_datadir(tmp_path / "copy").text == dd.text == {
        "spk1-u0": "café naïve", "spk1-u1": "straße", "spk1-u2": "日本"}
    for name in ("text", "utt2spk", "spk2utt", "wav.scp"):
        (d / name).write_bytes((d / name).read_bytes().replace(b"\n", b"\r\n"))
    assert validate_datadir(d)["utterances"] == 3
    assert datadir.read_datadir(d).text["spk1-u1"] == "straße"


# ---------------------------------------------------------------------------- 8, 13: atomic output
def test_invalid_input_computes_nothing_and_keeps_the_previous_output(tmp_path):
    d = make_dir(tmp_path)
    out = tmp_path / "feats"
    F.extract(d, out, _cfg())
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    (d / "utt2spk").write_text("spk1-u0 spk1\nspk1-u1 spk1\n")
    with pytest.raises(F.FeatureError, match="nothing computed"):
        F.extract(d, out, _cfg())
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_failed_redo_never_mixes_old_and_new_features(tmp_path):
    """A redo with other options that fails part-way (the last batch has NaN audio) leaves the
    old feature dir exactly as it was, and no staging dir; a later run replaces it whole."""
    d = make_dir(tmp_path, n=4)
    out = tmp_path / "feats"
    F.extract(d, out, _cfg(batch_size=1))
    old = F.FeatureReader(out, cmvn=False)
    old_mats = {u: old.raw(u) for u in old.utt_ids}
    x = np.full(4000, 0.1, np.float32)
    x[100] = np.nan
    sf.write(str(tmp_path / "spk1-u3.wav"), x, SR, subtype="FLOAT")
    with pytest.raises(F.FeatureError, match="utterance 'spk1-u3'.*non-finite"):
        F.extract(d, out, _cfg(batch_size=1, num_mel_bins=30))
    again = F.FeatureReader(out, cmvn=False)
    for u, m in old_mats.items():
        np.testing.assert_array_equal(again.raw(u), m)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".feats")] == []
    _wav(tmp_path / "spk1-u3.wav", seed=3)
    F.extract(d, out, _cfg(batch_size=1, num_mel_bins=30))
    assert "num_mel_bins: 30" in (out / "feature_config.yaml").read_text()
    assert not np.array_equal(F.FeatureReader(out, cmvn=False).raw("spk1-u0"), old_mats["spk1-u0"])


def test_stale_staging_dir_of_a_killed_run_is_removed(tmp_path):
    d = make_dir(tmp_path, n=1)
    proc = subprocess.Popen(["true"])
    proc.wait()
    stale = tmp_path / f".feats.tmp-{proc.pid}"
    (stale / "data").mkdir(parents=True)
    (stale / "feats.scp").write_text("half\n")
    F.extract(d, tmp_path / "feats", _cfg())
    assert not stale.exists() and (tmp_path / "feats" / "feats.scp").exists()


# ---------------------------------------------------------------------------- 16: wav.scp commands
def test_wav_scp_commands_work_are_logged_and_can_be_refused(tmp_path, caplog):
    d = make_dir(tmp_path)
    plain = tmp_path / "plain"
    F.extract(d, plain, _cfg())
    (d / "wav.scp").write_text("".join(f"spk1-u{i} cat {tmp_path}/spk1-u{i}.wav |\n"
                                       for i in range(3)))
    with caplog.at_level(logging.INFO, logger="asr.corpus.datadir"):
        F.extract(d, tmp_path / "piped", _cfg())
    for i in range(3):
        assert f"wav.scp command for recording 'spk1-u{i}': cat {tmp_path}/spk1-u{i}.wav" in caplog.text
    a, b = F.FeatureReader(plain, cmvn=False), F.FeatureReader(tmp_path / "piped", cmvn=False)
    for u in a.utt_ids:
        np.testing.assert_array_equal(a.raw(u), b.raw(u))
    with pytest.raises(F.FeatureError, match="recording 'spk1-u0' is a shell command .*refused by "
                                             "--no-pipes"):
        F.extract(d, tmp_path / "refused", _cfg(allow_pipes=False))
    with pytest.raises(DataDirError, match="wav.scp commands are refused"):
        datadir.read_wav_entry(f"cat {tmp_path}/spk1-u0.wav |", allow_pipes=False)
    for cmd in (["asr.corpus.datadir", "validate", str(d), "--no-pipes"],
                ["asr.features", "compute", "--kind", "mfcc", "--data", str(d), "--out",
                 str(tmp_path / "cli"), "--no-pipes"]):
        bad = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True)
        assert bad.returncode == 1 and "recording 'spk1-u0' is a shell command" in bad.stderr
        assert "Traceback" not in bad.stderr
    assert not (tmp_path / "cli").exists()


def test_oov_warning_helper_for_gmm_alignment(caplog):
    texts = {"a-1": ["hello", "zork"], "a-2": ["hello"], "a-3": ["zork", "quux"]}
    with caplog.at_level(logging.WARNING, logger="asr.corpus.datadir"):
        oov = datadir.warn_oov_utterances(texts, {"hello": 1}, where="exp/mono")
    assert oov == {"a-1": ["zork"], "a-3": ["zork", "quux"]}
    assert ("exp/mono: 2 of 3 utterances have words mapped to <unk> (1 of them only such words): "
            "a-1 (zork), a-3 (zork quux)") in caplog.text
