"""Features: agreement with kaldi-native-fbank on real synthesised audio, Kaldi deltas by hand,
CMVN, storage (Kaldi ark/scp and lhotse), determinism, and bad input named by utterance."""

from __future__ import annotations

import shutil

import kaldi_native_fbank as knf
import numpy as np
import pytest
import soundfile as sf

from asr import features as F


@pytest.fixture(scope="module")
def wav(synth_corpus):
    path = sorted((synth_corpus["corpus"] / "wav").rglob("*.wav"))[0]
    x, sr = sf.read(str(path), dtype="float32")
    return x, sr


def _knf(x, sr, opts, cls):
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = sr
    comp = cls(opts)
    comp.accept_waveform(sr, (x * 32768).tolist())
    comp.input_finished()
    return np.stack([comp.get_frame(i) for i in range(comp.num_frames_ready)])


@pytest.mark.parametrize("bins", [40, 64])
def test_logmel_matches_kaldi_native_fbank(wav, bins):
    x, sr = wav
    opts = knf.FbankOptions()
    opts.mel_opts.num_bins = bins
    ref = _knf(x, sr, opts, knf.OnlineFbank)
    out = F.logmel_deltas(x, sr, num_mel_bins=bins)
    assert out.dtype == np.float32 and out.shape == (3, ref.shape[0], bins)
    assert ref.shape[0] == F.num_frames(len(x), sr)
    # the same Kaldi code with Kaldi's default options (set explicitly by asr.features)
    np.testing.assert_allclose(out[0], ref, atol=1e-5, rtol=0)
    # deltas of the stored form are Kaldi's add-deltas of the static features
    dd = knf.compute_deltas(knf.DeltaOptions(), ref.astype(np.float32))
    np.testing.assert_allclose(out.transpose(1, 0, 2).reshape(ref.shape[0], -1), dd, atol=1e-4, rtol=0)


def test_mfcc_matches_kaldi_native_fbank(wav):
    x, sr = wav
    opts = knf.MfccOptions()
    opts.mel_opts.num_bins = 23
    ref = _knf(x, sr, opts, knf.OnlineMfcc)
    out = F.mfcc_deltas(x, sr, num_mel_bins=23, num_ceps=13)
    assert out.shape == (3, ref.shape[0], 13)
    np.testing.assert_allclose(out[0], ref, atol=1e-4, rtol=0)


def test_deltas_match_hand_computation_and_knf():
    rng = np.random.default_rng(0)
    t, d = 9, 4
    x = rng.standard_normal((t, d))

    def c(i):  # Kaldi repeats the edge frames
        return x[min(max(i, 0), t - 1)]

    delta = np.stack([sum(j * (c(i + j) - c(i - j)) for j in (1, 2)) / 10.0 for i in range(t)])
    ddelta = np.stack([sum(j * k * c(i + j + k) for j in range(-2, 3) for k in range(-2, 3)) / 100.0
                       for i in range(t)])
    out = F.add_deltas(x)
    assert out.shape == (3, t, d) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], x, atol=1e-6)
    np.testing.assert_allclose(out[1], delta, atol=1e-6)
    np.testing.assert_allclose(out[2], ddelta, atol=1e-6)
    ref = knf.compute_deltas(knf.DeltaOptions(), x.astype(np.float32))
    np.testing.assert_allclose(out.transpose(1, 0, 2).reshape(t, -1), ref, atol=1e-5)


def test_to_channels_numpy_and_torch():
    import torch

    mat = np.arange(5 * 12, dtype=np.float32).reshape(5, 12)
    ch = F.to_channels(mat)
    assert ch.shape == (3, 5, 4)
    np.testing.assert_array_equal(ch[1, 2], mat[2, 4:8])
    tch = F.to_channels(torch.from_numpy(mat).expand(2, 5, 12))
    assert tch.shape == (2, 3, 5, 4)
    np.testing.assert_array_equal(tch[1].numpy(), ch)
    with pytest.raises(ValueError):
        F.to_channels(mat[:, :11])


def test_cmvn_stats_kaldi_format():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((50, 3)) * 2 + 5
    s = F.cmvn_stats(m)
    assert s.shape == (2, 4) and s.dtype == np.float64
    assert s[0, 3] == 50 and s[1, 3] == 0
    np.testing.assert_allclose(s[0, :3], m.sum(0))
    np.testing.assert_allclose(s[1, :3], (m**2).sum(0))
    n = F.apply_cmvn(m, s)
    np.testing.assert_allclose(n.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(n.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(F.apply_cmvn(m, s, norm_vars=False).std(0), m.std(0), rtol=1e-5)


@pytest.fixture(scope="module")
def feat_dirs(synth_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("feats")
    out = {}
    for kind in ("mfcc", "logmel"):
        cfg = F.FeatureConfig.load(kind, num_mel_bins=40 if kind == "logmel" else None,
                                   batch_size=4)
        F.extract(synth_corpus["train"], root / f"train_{kind}", cfg, nj=2)
        out[kind] = root / f"train_{kind}"
    out["root"] = root
    return out


def test_feature_dirs_frames_dims_and_reader(feat_dirs, synth_corpus):
    mf, lm = F.FeatureReader(feat_dirs["mfcc"]), F.FeatureReader(feat_dirs["logmel"])
    assert mf.dim == 39 and lm.dim == 120
    assert mf.utt_ids == lm.utt_ids == sorted(mf.utt_ids) and len(mf) == 9
    for utt in mf.utt_ids:
        assert mf.num_frames(utt) == lm.num_frames(utt) == mf[utt].shape[0] == lm[utt].shape[0]
    # the stored matrix is [static | delta | delta-delta] of the waveform, unnormalised
    utt = lm.utt_ids[0]
    wav = (synth_corpus["corpus"] / "wav" / utt.split("-")[0] / f"{utt}.wav")
    x, sr = sf.read(str(wav), dtype="float32")
    np.testing.assert_allclose(F.to_channels(lm.raw(utt)), F.logmel_deltas(x, sr, 40), atol=1e-5)
    # per-speaker CMVN: each speaker's frames have zero mean and unit variance
    spk = utt.split("-")[0]
    frames = np.concatenate([lm[u] for u in lm.utt_ids if u.startswith(spk + "-")])
    np.testing.assert_allclose(frames.mean(0), 0, atol=1e-3)
    np.testing.assert_allclose(frames.std(0), 1, atol=1e-2)
    glob = F.FeatureReader(feat_dirs["logmel"], cmvn="global")
    allf = np.concatenate([glob[u] for u in glob.utt_ids])
    np.testing.assert_allclose(allf.mean(0), 0, atol=1e-3)
    assert not np.allclose(glob[utt], lm[utt])
    np.testing.assert_array_equal(F.FeatureReader(feat_dirs["logmel"], cmvn=False)[utt], lm.raw(utt))


def test_cmvn_scp_is_kaldi_stats_per_speaker(feat_dirs):
    import kaldiio

    stats = dict(kaldiio.load_scp(str(feat_dirs["mfcc"] / "cmvn.scp")))
    reader = F.FeatureReader(feat_dirs["mfcc"], cmvn=False)
    assert sorted(stats) == sorted({u.split("-")[0] for u in reader.utt_ids})
    spk = sorted(stats)[0]
    mats = np.concatenate([reader[u] for u in reader.utt_ids if u.startswith(spk + "-")])
    np.testing.assert_allclose(stats[spk], F.cmvn_stats(mats), rtol=1e-5)


def test_lhotse_cuts_with_features(feat_dirs):
    from lhotse import load_manifest

    cuts = load_manifest(feat_dirs["logmel"] / "cuts.jsonl.gz")
    reader = F.FeatureReader(feat_dirs["logmel"], cmvn=False)
    assert sorted(c.id for c in cuts) == reader.utt_ids
    cut = cuts[0]
    mat = cut.load_features()
    assert mat.shape == reader.raw(cut.id).shape
    np.testing.assert_allclose(mat, reader.raw(cut.id), atol=0.1)  # lilcom is lossy
    assert cut.supervisions[0].text and cut.supervisions[0].speaker == cut.id.split("-")[0]


def test_extraction_deterministic_and_independent_of_nj(feat_dirs, synth_corpus):
    cfg = F.FeatureConfig.load("mfcc", batch_size=100, lhotse_storage=False)
    out = feat_dirs["root"] / "again"
    F.extract(synth_corpus["train"], out, cfg, nj=1)
    a, b = F.FeatureReader(feat_dirs["mfcc"], cmvn=False), F.FeatureReader(out, cmvn=False)
    for utt in a.utt_ids:
        np.testing.assert_array_equal(a[utt], b[utt])
    assert (out / "cmvn.scp").exists()


def _corrupt_copy(synth_corpus, tmp_path, make_bad):
    d = tmp_path / "train"
    shutil.copytree(synth_corpus["train"], d)
    wav = dict(line.split(maxsplit=1) for line in (d / "wav.scp").read_text().splitlines())
    rec = sorted(wav)[2]
    bad = tmp_path / "bad.wav"
    make_bad(bad)
    wav[rec] = str(bad)
    (d / "wav.scp").write_text("".join(f"{k} {v}\n" for k, v in sorted(wav.items())))
    return d, rec


@pytest.mark.parametrize("case", ["nan", "corrupt", "empty"])
def test_bad_audio_fails_naming_the_utterance(synth_corpus, tmp_path, case):
    def make_bad(path):
        if case == "nan":
            x = np.full(6 * 8000, 0.1, np.float32)  # longer than the segment
            x[1234] = np.nan
            sf.write(str(path), x, 8000, subtype="FLOAT")
        elif case == "corrupt":
            path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt " + bytes(40))
        else:
            sf.write(str(path), np.zeros(0, np.int16), 8000, subtype="PCM_16")

    d, rec = _corrupt_copy(synth_corpus, tmp_path, make_bad)
    cfg = F.FeatureConfig.load("mfcc", lhotse_storage=False)
    # unreadable and empty files are refused by the validation before any work
    message = {"nan": f"utterance '{rec}'.*non-finite features",
               "corrupt": f"recording '{rec}': cannot read .*bad.wav",
               "empty": f"recording '{rec}': .*bad.wav is empty"}[case]
    with pytest.raises(F.FeatureError, match=message):
        F.extract(d, tmp_path / "out", cfg, nj=1)
    assert not (tmp_path / "out" / "feats.scp").exists()  # no partial feature dir


def test_config_loading_layers(tmp_path):
    assert F.FeatureConfig.load("logmel").num_mel_bins == 64
    assert F.FeatureConfig.load("mfcc").num_mel_bins == 23
    recipe = tmp_path / "features.yaml"
    recipe.write_text("logmel:\n  num_mel_bins: 40\nmfcc:\n  num_ceps: 13\n")
    assert F.FeatureConfig.load("logmel", recipe).num_mel_bins == 40
    assert F.FeatureConfig.load("logmel", recipe, num_mel_bins=80).num_mel_bins == 80
    recipe.write_text("logmel:\n  num_mel_binz: 40\n")
    with pytest.raises(ValueError, match="num_mel_binz"):
        F.FeatureConfig.load("logmel", recipe)
