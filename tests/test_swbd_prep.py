"""Stage 0 of egs/swbd: Switchboard/Fisher/Hub5'00 preparation on tiny fixture LDC trees.

The fixtures mimic each LDC layout (2-channel 8 kHz NIST SPHERE audio written with
soundfile, transcripts in each corpus' own format) and are built in tmp dirs by the tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpus import swbd
from asr.corpus.swbd_text import (
    EXTRA_LEXICON,
    HESITATIONS,
    NOISE_WORDS,
    normalize_eval2000,
    normalize_fisher,
    normalize_swbd,
)
from asr.utils import read_kaldi_map

REPO = Path(__file__).resolve().parents[1]
SR = 8000


# --------------------------------------------------------------------------- text rules

@pytest.mark.parametrize("raw, expected", [
    ("[silence]", ""),                                   # silence dropped
    ("<b_aside> yes <e_aside>", "yes"),                  # aside markers dropped
    ("[noise] [laughter] [vocalized-noise]", "[noise] [laughter] [vocalized-noise]"),
    ("[laughter-yes] [laughter-sim]-", "yes sim-"),      # laughed words
    ("sim[ilar]- ab[solute]", "sim- ab-"),               # word cut at the end
    ("-[th]at [an]y", "-at -y"),                         # word cut at the start
    ("-[a]b[out]-", "-b-"),                              # cut at both ends
    ("ammu[n]it-", "ammu-it-"),                          # omitted inner part
    ("[bocket/bucket]", "bucket"),                       # mispronounced: intended word
    ("[lem[guini]-/linguini]", "lem-"),                  # ... unless what was said is a fragment
    ("{weirdo} them_1 them_1's", "weirdo them them's"),  # coinage braces, _1 tags
    ("UMM Um-Hum uhhuh huh-uh", "um mhm uh-huh uh-uh"),  # case + hesitation spellings
    ("I THINK", "i think"),
    ("-", ""),
])
def test_swbd_rules(raw, expected):
    assert normalize_swbd(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("[laugh] [mn] [breath] [cough] [lipsmack] [sigh] [sneeze]",
     "[laughter] [vocalized-noise] [noise] [noise] [noise] [noise] [noise]"),
    ("[pause] ok [[skip]]", "ok"),                        # pauses and comments dropped
    ("(( )) yes", "<unk> yes"),                           # unintelligible -> <unk>
    ("((maybe)) so", "maybe so"),                         # uncertain words kept
    ("an- so -", "an- so"),                               # partial word kept, lone dash dropped
    ("u._c._l._a. a._b._c.s", "u c l a a b c's"),         # acronyms spelt as letters
    ("Okay? yes, mhm umm", "okay yes mhm um"),            # punctuation, case, hesitations
    ("<german (( ja wohl ))> fine", "fine"),              # foreign spans dropped
])
def test_fisher_rules(raw, expected):
    assert normalize_fisher(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("(%HESITATION) OH YEAH", "oh yeah"),                 # optional hesitation dropped
    ("(UH-HUH) RIGHT (WO-)", "uh-huh right wo-"),         # optionally deletable words kept
    ("<B_ASIDE> I DON'T KNOW <E_ASIDE>", "i don't know"),
    ("{A / AN} DOG", "a dog"),                            # alternation: first form
    ("IGNORE_TIME_SEGMENT_IN_SCORING", ""),
    ("%UM {BREATH} OK", "um [noise] ok"),
])
def test_eval2000_rules(raw, expected):
    assert normalize_eval2000(raw) == expected


def test_hesitations_and_noise_words_have_pronunciations():
    from asr.corpus.lexicon import cmudict_prons

    prons = cmudict_prons()
    for w in list(HESITATIONS) + list(NOISE_WORDS):
        assert w in prons or w in EXTRA_LEXICON, w


# --------------------------------------------------------------------------- fixtures

def _sph(path: Path, seconds: float, seed: int, subtype: str = "ULAW") -> None:
    """2-channel 8 kHz NIST SPHERE: a different tone per channel plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = np.stack([0.3 * np.sin(2 * np.pi * 300 * t), 0.3 * np.sin(2 * np.pi * 700 * t)], axis=1)
    x += 0.01 * rng.standard_normal(x.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), SR, format="NIST", subtype=subtype)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


SWBD_TRANS = {
    "sw2001A": [(0.0, 0.5, "[silence]"),
                (0.5, 1.75, "uh i think [laughter-yes] it was sim[ilar]-"),
                (1.75, 3.1, "[bocket/bucket] {weirdo} them_1 [noise]"),
                (3.1, 3.5, "<b_aside> <e_aside>")],
    "sw2001B": [(0.2, 1.9, "um-hum yeah"), (2.0, 3.8, "-[th]at's right [vocalized-noise]")],
    "sw2005A": [(0.1, 2.0, "okay [laughter]")],
    "sw2005B": [(0.3, 2.5, "right right"), (2.6, 2.9, "th[e]- -[a]b[out]-")],  # all OOV
}


def make_ldc(root: Path, *, fisher: bool = True) -> Path:
    """Tiny LDC trees under `root` and a corpora.yaml pointing at them; returns the yaml."""
    # Switchboard-1 (LDC97S62) + ISIP MS-98 transcripts
    _sph(root / "LDC97S62/swb1_d1/data/sw02001.sph", 4.0, 1)
    _sph(root / "LDC97S62/swb1_d1/data/sw02005.sph", 3.0, 2)
    for side, segs in SWBD_TRANS.items():
        conv = side[2:6]
        lines = [f"{side}-ms98-a-{i + 1:04d} {s:.6f} {e:.6f} {w}" for i, (s, e, w) in enumerate(segs)]
        _write(root / f"swb_ms98_transcriptions/{conv[:2]}/{conv}/{side}-ms98-a-trans.text",
               "\n".join(lines) + "\n")
    # Fisher English part 1 (LDC2004S13 audio, LDC2004T19 text)
    if fisher:
        for call, seed in (("00001", 3), ("00002", 4)):
            _sph(root / f"LDC2004S13/fe_03_p1_sph1/audio/000/fe_03_{call}.sph", 3.0, seed,
                 subtype="PCM_16")
        _write(root / "LDC2004S13/fe_03_p1_sph1/filetable.txt", "not a partition\n")
        tr = root / "LDC2004T19/fe_03_p1_tran"
        _write(tr / "data/trans/000/fe_03_00001.txt",
               "# fe_03_00001.sph\n# Transcribed at the LDC\n\n"
               "0.36 1.79 A: and [laugh] i'm from u._c._l._a.\n\n"
               "1.90 2.90 B: (( )) yeah mhm\n")
        _write(tr / "data/trans/000/fe_03_00002.txt",
               "# fe_03_00002.sph\n# Transcribed at the LDC\n\n"
               "0.10 1.20 A: hello [breath]\n\n1.30 2.80 B: hi an- how are you\n")
        _write(tr / "doc/fe_03_p1_calldata.tbl",
               "CALL_ID,DATE_TIME,TOPICID,SIGGRADE,CNVGRADE,APIN,ASX.DL,APHNUM,APHSET,APHTYP,"
               "BPIN,BSX.DL,BPHNUM,BPHSET,BPHTYP\n"
               "00001,20021218_123414,ENG01,3,3,60978,FA.F,x,x,x,61000,MA.A,x,x,x\n"
               "00002,20021218_133414,ENG02,3,3,60979,FA.F,x,x,x,61001,MA.A,x,x,x\n")
    # Hub5'00 (LDC2002S09 audio, LDC2002T43 transcripts, stm, glm)
    for name, seed in (("en_4156", 5), ("sw_4390", 6)):
        _sph(root / f"LDC2002S09/hub5e_00/english/{name}.sph", 4.0, seed)
        _write(root / f"LDC2002T43/reference/english/{name}.txt",
               f"#Language: eng\n#File id: {name[3:]}\n\n"
               "0.50 1.80 A: %um, oh yeah\n\n1.90 3.00 B: i don't know\n")
    _write(root / "LDC2002S09/hub5e_00/english/hub5e_00.pem",
           "en_4156 A unknown_speaker 0.50 1.80\n")
    _write(root / f"LDC2002T43/reference/{swbd.STM_NAME}",
           ";; fixture stm\n"
           "en_4156 A en_4156_A 0.50 1.80 <O,en,F,en-F> (%HESITATION) OH YEAH\n"
           "en_4156 B en_4156_B 1.90 3.00 <O,en,M,en-M> <B_ASIDE> I ((DON'T) KNOW <E_ASIDE>\n"
           "en_4156 A en_4156_A 3.10 3.90 <O,en,F,en-F> IGNORE_TIME_SEGMENT_IN_SCORING\n"
           "sw_4390 A sw_4390_A 0.20 1.50 <O,en,M,en-M> (UH-HUH) RIGHT\n"
           "sw_4390 B sw_4390_B 1.60 3.40 <O,en,F,en-F> {A / AN} DOG (WO-)\n"
           "sw_4390 A sw_4390_A 3.50 3.90 <O,en,M,en-M> (%HESITATION)\n")
    _write(root / f"LDC2002T43/reference/{swbd.GLM_NAME}",
           ';; fixture glm\n* name "en20000405_hub5.glm"\n[UH] => %HESITATION / [ ] __ [ ]\n'
           "[UM] => %HESITATION / [ ] __ [ ]\n")
    conf = root / "corpora.yaml"
    fisher_yaml = (f"fisher:\n  audio: [{root}/LDC2004S13]\n  transcripts: [{root}/LDC2004T19]\n"
                   if fisher else "fisher:\n  audio: null\n  transcripts: null\n")
    conf.write_text(
        f"swbd:\n  audio: {root}/LDC97S62\n  transcripts: {root}/swb_ms98_transcriptions\n"
        + fisher_yaml +
        f"eval2000:\n  audio: {root}/LDC2002S09\n  transcripts: {root}/LDC2002T43\n"
        "dev_conversations: 1\n")
    return conf


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Run the real stage 0 once on the fixture trees."""
    root = tmp_path_factory.mktemp("ldc")
    conf = make_ldc(root)
    data = root / "data"
    swbd.prepare(conf, data, nj=1)
    return root, data


# --------------------------------------------------------------------------- end to end

def test_train_dir(prepared):
    _, data = prepared
    text = read_kaldi_map(data / "train/text")
    # swbd: sw02001 is the dev conversation; sw02005 and both Fisher calls are train
    assert text == {
        "fe_03_00001-A_000036-000179": "and [laughter] i'm from u c l a",
        "fe_03_00001-B_000190-000290": "<unk> yeah mhm",
        "fe_03_00002-A_000010-000120": "hello [noise]",
        "fe_03_00002-B_000130-000280": "hi an- how are you",
        "sw02005-A_000010-000200": "okay [laughter]",
        "sw02005-B_000030-000250": "right right",
    }
    utt2spk = read_kaldi_map(data / "train/utt2spk")
    assert all(u.startswith(s + "_") for u, s in utt2spk.items())
    assert utt2spk["sw02005-B_000030-000250"] == "sw02005-B"
    segments = read_kaldi_map(data / "train/segments")
    rec, start, end = segments["fe_03_00002-B_000130-000280"].split()
    assert rec == "fe_03_00002-B" and (float(start), float(end)) == (1.3, 2.8)


def test_dev_dir(prepared):
    _, data = prepared
    text = read_kaldi_map(data / "dev/text")
    assert text == {
        "sw02001-A_000050-000175": "uh i think yes it was sim-",
        "sw02001-A_000175-000310": "bucket weirdo them [noise]",
        "sw02001-B_000020-000190": "mhm yeah",
        "sw02001-B_000200-000380": "-at's right [vocalized-noise]",
    }


def test_eval2000_dir(prepared):
    root, data = prepared
    ev = data / "eval2000"
    text = read_kaldi_map(ev / "text")
    assert text == {
        "en_4156-A_000050-000180": "oh yeah",
        "en_4156-B_000190-000300": "i don't know",
        "sw_4390-A_000020-000150": "uh-huh right",
        "sw_4390-B_000160-000340": "a dog wo-",
        # only optional words: kept (it must be decoded), with the stm words
        "sw_4390-A_000350-000390": "(%hesitation)",
    }
    # the Switchboard and CallHome halves are told apart by the id prefix
    assert {u[:3] for u in text} == {"en_", "sw_"}
    assert (ev / "glm").read_bytes() == (root / f"LDC2002T43/reference/{swbd.GLM_NAME}").read_bytes()
    stm = (ev / "stm").read_text()
    assert "<B_ASIDE>" not in stm and "((" not in stm and "I (DON'T) KNOW" in stm
    assert stm.count("\n") == 7
    r2fc = read_kaldi_map(ev / "reco2file_and_channel")
    assert set(r2fc.values()) == {"en_4156 A", "en_4156 B", "sw_4390 A", "sw_4390 B"}


def test_manifests_and_audio(prepared):
    from lhotse import audio_backend, load_manifest

    _, data = prepared
    cuts = load_manifest(data / "manifests/swbd_cuts_eval2000.jsonl.gz")
    sups = load_manifest(data / "manifests/swbd_supervisions_train.jsonl.gz")
    assert {s.custom["corpus"] for s in sups} == {"swbd", "fisher"}
    assert len(load_manifest(data / "manifests/swbd_recordings_train.jsonl.gz")) == 3
    # each side reads its own channel: A is the 300 Hz tone, B the 700 Hz tone
    for cut in cuts.trim_to_supervisions(keep_overlapping=False):
        with audio_backend(swbd.sph_audio_backend()):  # what the recipe exports
            audio = cut.load_audio()
        assert audio.shape[0] == 1 and abs(audio.shape[1] - cut.duration * SR) <= 1
        peak = _peak_hz(audio[0])
        side = cut.supervisions[0].speaker[-1]
        assert abs(peak - (300 if side == "A" else 700)) < 20, (cut.id, peak)


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x))
    return np.argmax(spec) * SR / (2 * (len(spec) - 1))


def test_wav_scp_reads_each_side(prepared):
    from asr.corpus.datadir import read_wav_entry

    _, data = prepared
    wav = read_kaldi_map(data / "eval2000/wav.scp")
    assert set(wav) == {"en_4156-A", "en_4156-B", "sw_4390-A", "sw_4390-B"}
    for rec, entry in wav.items():
        x, sr = read_wav_entry(entry)
        assert sr == SR and len(x) == 4 * SR
        assert abs(_peak_hz(x) - (300 if rec.endswith("A") else 700)) < 5, rec


def test_all_oov_segment_dropped(prepared):
    _, data = prepared
    text = read_kaldi_map(data / "train/text")
    assert not any(u.startswith("sw02005-B_000260") for u in text)
    assert "th- 1" in (data / "local/dict/oov_words.txt").read_text().splitlines()


def test_validator_accepts(prepared):
    from asr.corpus.datadir import validate_datadir

    _, data = prepared
    for name in ("train", "dev", "eval2000"):
        counts = validate_datadir(data / name)
        assert counts["utterances"] > 0


def test_dict_dir(prepared):
    _, data = prepared
    lex = (data / "local/dict/lexicon.txt").read_text().splitlines()
    assert "[noise] NSN" in lex and "[vocalized-noise] SPN" in lex and "mhm AH M HH AH M" in lex


# --------------------------------------------------------------------------- bad input

def test_dry_run_reports_missing(tmp_path):
    conf = make_ldc(tmp_path, fisher=False)
    ok = subprocess.run([sys.executable, "-m", "asr.corpus.swbd", "--config", str(conf),
                         "--data", str(tmp_path / "data"), "--dry-run"],
                        capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0, ok.stderr
    assert "Switchboard-only" in ok.stdout and "all stage 0 inputs found" in ok.stdout
    (tmp_path / f"LDC2002T43/reference/{swbd.GLM_NAME}").unlink()
    bad = subprocess.run([sys.executable, "-m", "asr.corpus.swbd", "--config", str(conf),
                          "--data", str(tmp_path / "data"), "--dry-run"],
                         capture_output=True, text=True, cwd=REPO)
    assert bad.returncode == 1 and swbd.GLM_NAME in bad.stderr
    assert not (tmp_path / "data").exists()


def test_run_sh_dry_run(tmp_path):
    """Stage 0 of egs/swbd/run.sh in dry-run mode: plan and 0, or exit 1 naming the missing path."""
    conf = make_ldc(tmp_path, fisher=False)
    cmd = [str(REPO / "egs/swbd/run.sh"), "--dry-run", "true", "--stop-stage", "0",
           "--conf-dir", str(tmp_path), "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp")]
    ok = subprocess.run(cmd, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "stage 0 (dry run): python -m asr.corpus.swbd" in ok.stdout
    sph = tmp_path / "LDC97S62"
    sph.rename(tmp_path / "elsewhere")
    bad = subprocess.run(cmd, capture_output=True, text=True)
    assert bad.returncode == 1 and f"no such directory: {sph}" in bad.stderr
    assert not (tmp_path / "data").exists()


def test_missing_transcript_named(tmp_path):
    conf = make_ldc(tmp_path, fisher=False)
    (tmp_path / "swb_ms98_transcriptions/20/2005/sw2005B-ms98-a-trans.text").unlink()
    with pytest.raises(ValueError, match="sw2005B-ms98-a-trans.text.*sw02005.sph"):
        swbd.prepare(conf, tmp_path / "data")


def test_bad_transcript_lines_named(tmp_path):
    conf = make_ldc(tmp_path)
    t = tmp_path / "swb_ms98_transcriptions/20/2005/sw2005A-ms98-a-trans.text"
    t.write_text(t.read_text() + "sw2005A-ms98-a-0002 2.0\n")
    f = tmp_path / "LDC2004T19/fe_03_p1_tran/data/trans/000/fe_03_00002.txt"
    f.write_text(f.read_text() + "3.0 3.5 C: who\n")
    with pytest.raises(ValueError) as e:
        swbd.prepare(conf, tmp_path / "data")
    assert f"{t}:2: expected 'id start end words...'" in str(e.value)
    assert f"{f}:7: expected 'start end A|B: words'" in str(e.value)
    assert not (tmp_path / "data/train").exists()


def test_fisher_call_missing_from_calldata(tmp_path):
    conf = make_ldc(tmp_path)
    tbl = tmp_path / "LDC2004T19/fe_03_p1_tran/doc/fe_03_p1_calldata.tbl"
    tbl.write_text("".join(tbl.read_text().splitlines(keepends=True)[:2]))
    with pytest.raises(ValueError, match="call 00002 is not in"):
        swbd.prepare(conf, tmp_path / "data")


def test_eval2000_txt_unparseable_falls_back_to_stm(tmp_path):
    """lhotse's prepare_eval2000 parses reference/english/*.txt, which the data dir does not use."""
    conf = make_ldc(tmp_path, fisher=False)
    (tmp_path / "LDC2002T43/reference/english/en_4156.txt").write_text("0.5 A: no end time\n")
    swbd.prepare(conf, tmp_path / "data")
    text = read_kaldi_map(tmp_path / "data/eval2000/text")
    assert len(text) == 5 and text["sw_4390-A_000020-000150"] == "uh-huh right"


def test_fisher_unpaired_audio_named(tmp_path):
    conf = make_ldc(tmp_path)
    (tmp_path / "LDC2004T19/fe_03_p1_tran/data/trans/000/fe_03_00002.txt").unlink()
    with pytest.raises(ValueError, match="fe_03_00002.sph has no transcript"):
        swbd.prepare(conf, tmp_path / "data")


def test_bad_stm_line_named(tmp_path):
    conf = make_ldc(tmp_path, fisher=False)
    stm = tmp_path / f"LDC2002T43/reference/{swbd.STM_NAME}"
    stm.write_text(stm.read_text() + "sw_4390 A sw_4390_A zero 1.0 <O> WORDS\n")
    with pytest.raises(ValueError, match=rf"{swbd.STM_NAME}:8: bad times"):
        swbd.prepare(conf, tmp_path / "data")


def test_shorten_sph_needs_sph2pipe(tmp_path, monkeypatch):
    conf = make_ldc(tmp_path, fisher=False)
    sph = tmp_path / "LDC97S62/swb1_d1/data/sw02001.sph"
    raw = sph.read_bytes()
    head = raw[:1024].replace(b"-s4 ulaw", b"-s26 ulaw,embedded-shorten-v2.00")[:1024]
    sph.write_bytes(head + raw[1024:])  # the header's padding absorbs the longer field
    monkeypatch.setattr(swbd.audio, "sph2pipe_available", lambda: False)
    with pytest.raises(ValueError, match="shorten-compressed.*sph2pipe"):
        swbd.prepare(conf, tmp_path / "data")
