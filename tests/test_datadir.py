"""Kaldi data dirs and the dict dir: writing, validation, and bad input named by file and id."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from asr.corpus import datadir, lexicon
from asr.corpus.datadir import DataDirError, validate_datadir


@pytest.fixture
def train_copy(synth_corpus, tmp_path):
    d = tmp_path / "train"
    shutil.copytree(synth_corpus["train"], d)
    return d


def _lines(path):
    return path.read_text().splitlines()


def test_written_datadir_is_valid_and_consistent(synth_corpus):
    d = synth_corpus["train"]
    counts = validate_datadir(d)
    assert counts == {"utterances": 9, "speakers": 3, "recordings": 9, "sample_rate": 8000}
    for name in ("wav.scp", "segments", "text", "utt2spk", "spk2utt"):
        lines = _lines(d / name)
        assert lines == sorted(lines, key=str.encode), name
    utt2spk = dict(line.split() for line in _lines(d / "utt2spk"))
    assert all(u.startswith(s) for u, s in utt2spk.items())
    seg = _lines(d / "segments")[0].split()
    assert len(seg) == 4 and float(seg[2]) == 0.0 and float(seg[3]) > 1.0
    # the CLI validates too, and fails with a non-zero status on a bad dir
    ok = subprocess.run([sys.executable, "-m", "asr.corpus.datadir", "validate", str(d)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr


def test_mismatched_ids_name_file_and_id(train_copy):
    lines = _lines(train_copy / "utt2spk")
    dropped = lines[4].split()[0]
    (train_copy / "utt2spk").write_text("\n".join(lines[:4] + lines[5:]) + "\n")
    with pytest.raises(DataDirError, match=f"text: utterance '{dropped}' is not in .*utt2spk"):
        validate_datadir(train_copy)
    bad = subprocess.run([sys.executable, "-m", "asr.corpus.datadir", "validate", str(train_copy)],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and dropped in bad.stderr


def test_unsorted_and_duplicate_lines_are_errors(train_copy):
    lines = _lines(train_copy / "text")
    (train_copy / "text").write_text("\n".join([lines[1], lines[0]] + lines[2:]) + "\n")
    with pytest.raises(DataDirError, match="text: not sorted"):
        validate_datadir(train_copy)
    (train_copy / "text").write_text("\n".join([lines[0]] + lines) + "\n")
    with pytest.raises(DataDirError, match=f"duplicate id '{lines[0].split()[0]}'"):
        validate_datadir(train_copy)


def test_empty_transcript_is_an_error_naming_the_utterance(train_copy):
    lines = _lines(train_copy / "text")
    utt = lines[2].split()[0]
    lines[2] = utt
    (train_copy / "text").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataDirError, match=f"utterance '{utt}' has an empty transcript"):
        validate_datadir(train_copy)


def test_segment_past_recording_end_and_missing_audio(train_copy):
    lines = _lines(train_copy / "segments")
    utt, rec, start, end = lines[0].split()
    lines[0] = f"{utt} {rec} {start} {float(end) + 1.0:.3f}"
    (train_copy / "segments").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataDirError, match=f"utterance '{utt}' ends at .* recording '{rec}'"):
        validate_datadir(train_copy)
    wav = dict(line.split(maxsplit=1) for line in _lines(train_copy / "wav.scp"))
    wav[rec] = str(train_copy / "missing.wav")
    (train_copy / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(wav.items())))
    with pytest.raises(DataDirError, match=f"recording '{rec}': file .*missing.wav does not exist"):
        validate_datadir(train_copy)


@pytest.mark.parametrize("kind", ["corrupt", "empty"])
def test_corrupt_or_empty_wav_named(train_copy, tmp_path, kind):
    bad = tmp_path / f"{kind}.wav"
    if kind == "corrupt":
        bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" + bytes(100))
    else:
        sf.write(str(bad), np.zeros(0, np.int16), 8000, subtype="PCM_16")
    wav = dict(line.split(maxsplit=1) for line in _lines(train_copy / "wav.scp"))
    rec = sorted(wav)[1]
    wav[rec] = str(bad)
    (train_copy / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(wav.items())))
    with pytest.raises(DataDirError, match=f"wav.scp: recording '{rec}': .*{kind}.wav"):
        validate_datadir(train_copy)
    with pytest.raises(DataDirError, match=f"{kind}.wav"):
        datadir.read_wav_entry(str(bad))


def test_writer_skips_and_counts_empty_and_all_oov_transcripts(synth_corpus):
    recs, sups = datadir.load_manifests(synth_corpus["manifests"], "synth", "train")
    sups = list(sups)
    sups[0] = _with_text(sups[0], "")
    sups[1] = _with_text(sups[1], "qwzx blorptag")
    vocab = set(lexicon.read_lexicon(synth_corpus["dict_dir"] / "lexicon.txt"))
    dd, skipped = datadir.datadir_from_manifests(recs, sups, vocab=vocab)
    assert skipped == {"empty_text": 1, "all_oov": 1}
    assert set(dd.text) == {s.id for s in sups[2:]}  # nothing else lost
    assert len(dd.wav_scp) == len(sups) - 2


def _with_text(sup, text):
    from dataclasses import replace

    return replace(sup, text=text)


def test_lexicon_format_and_oov_count(tmp_path):
    oov = lexicon.prepare_dict(tmp_path / "dict", word_lists=[], texts=[])
    assert oov == Counter()
    words = tmp_path / "words.txt"
    words.write_text("call\nhundred\nqwzxv\nboston\n")
    text = tmp_path / "text"
    text.write_text("u1 call qwzxv qwzxv\nu2 boston\n")
    oov = lexicon.prepare_dict(tmp_path / "dict", word_lists=[words], texts=[text])
    assert oov == Counter({"qwzxv": 3})
    d = tmp_path / "dict"
    lex = lexicon.read_lexicon(d / "lexicon.txt")
    assert lex["<unk>"] == [["SPN"]] and lex["!sil"] == [["SIL"]]
    assert lex["call"] == [["K", "AO", "L"]]
    variants = lexicon.cmudict_prons()["hundred"]  # all CMUdict variants, stress removed
    assert len(variants) > 1 and sorted(lex["hundred"]) == sorted(variants)
    assert "qwzxv" not in lex
    assert _lines(d / "silence_phones.txt") == ["SIL", "SPN", "NSN"]
    assert _lines(d / "optional_silence.txt") == ["SIL"]
    nonsil = _lines(d / "nonsilence_phones.txt")
    assert nonsil == sorted(nonsil) and "AO" in nonsil and "SIL" not in nonsil
    assert not any(ch.isdigit() for line in _lines(d / "lexicon.txt") for ch in line)
    assert _lines(d / "oov_words.txt") == ["qwzxv 3"]
