"""LDA, MLLT and fMLLR (asr/gmm/transforms.py) on synthetic data, and a tiny tri LDA+MLLT -> SAT run."""

from __future__ import annotations

import numpy as np
import pytest

from asr.gmm import transforms as tf


def _am(means: np.ndarray, variances: np.ndarray):
    """One pdf with the given diagonal Gaussians (equal weights)."""
    import kaldi_hmm_gmm as khg

    G, D = means.shape
    g = khg.DiagGmm(G, D)
    g.set_weights(np.full(G, 1.0 / G, np.float32))
    g.set_invvars_and_means((1.0 / variances).astype(np.float32), means.astype(np.float32))
    g.compute_gconsts()
    am = khg.AmDiagGmm()
    am.add_pdf(g)
    return am


def test_splice_repeats_edge_frames():
    X = np.arange(8, dtype=float).reshape(4, 2)
    S = tf.splice(X, 1)
    assert S.shape == (4, 6)
    np.testing.assert_array_equal(S[0], [0, 1, 0, 1, 2, 3])
    np.testing.assert_array_equal(S[3], [4, 5, 6, 7, 6, 7])


def test_lda_recovers_the_discriminative_subspace():
    rng = np.random.default_rng(0)
    C, D, n = 6, 5, 400
    centres = np.zeros((C, D))
    centres[:, :2] = rng.normal(0, 4, (C, 2))          # only z0, z1 separate the classes
    cls = np.repeat(np.arange(C), n)
    Z = centres[cls] + rng.normal(size=(C * n, D))      # unit within-class covariance in z
    R = rng.normal(size=(D, D)) + 3 * np.eye(D)         # x = R z
    X = Z @ R.T
    st = tf.LdaStats(C, D)
    st.accumulate(X, cls)
    M, ev = tf.estimate_lda(st, 2)
    assert M.shape == (2, D) and ev[0] >= ev[1] > 1.0
    MR = M @ R                                           # the projection in z space
    assert np.abs(MR[:, 2:]).max() < 0.1 * np.abs(MR[:, :2]).max()
    Y = X @ M.T                                          # within-class covariance ~ unit
    within = sum(np.cov(Y[cls == c].T, bias=True) for c in range(C)) / C
    np.testing.assert_allclose(within, np.eye(2), atol=0.05)
    assert tf.estimate_lda(st, 99)[0].shape == (D, D)    # capped at the input dim


def test_lda_singular_within_class_covariance_is_a_clear_error():
    X = np.random.default_rng(1).normal(size=(50, 3))
    X[:, 2] = 1.0                                        # a constant dimension
    st = tf.LdaStats(2, 3)
    st.accumulate(X, np.arange(50) % 2)
    with pytest.raises(tf.TransformError, match="tri3 LDA.*singular"):
        tf.estimate_lda(st, 2, what="tri3 LDA")


def test_mllt_increases_the_auxf_monotonically_and_is_identity_for_diagonal_data():
    rng = np.random.default_rng(2)
    D, n = 4, 4000
    means = rng.normal(0, 3, (3, D))
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    scales = np.array([3.0, 1.0, 0.5, 0.2])
    cls = rng.integers(0, 3, n)
    X = means[cls] + (rng.normal(size=(n, D)) * scales) @ Q.T    # shared full covariance
    var = np.var(X - means[cls], axis=0)
    am = _am(means, np.tile(var, (3, 1)))
    G, beta = tf.mllt_stats(am, np.zeros(n, np.int64), X)
    A, prev = np.eye(D), tf.mllt_auxf(np.eye(D), G, beta)
    for _ in range(5):
        A = tf.estimate_mllt(G, beta, iters=1, A=A)
        f = tf.mllt_auxf(A, G, beta)
        assert f >= prev - 1e-6 * abs(prev)
        prev = f
    assert prev > tf.mllt_auxf(np.eye(D), G, beta) + 0.05 * beta  # a real gain on rotated data
    # diagonal covariances, matched by the model: the transform stays the identity
    Gd = np.stack([np.diag(np.full(D, 100.0)) for _ in range(D)])    # exactly diagonal statistics
    np.testing.assert_allclose(tf.estimate_mllt(Gd, 100.0), np.eye(D), atol=1e-9)
    Xd = means[cls] + rng.normal(size=(n, D))                         # sampled diagonal data
    am_d = _am(means, np.ones((3, D)))
    Gd, bd = tf.mllt_stats(am_d, np.zeros(n, np.int64), Xd)
    np.testing.assert_allclose(np.abs(tf.estimate_mllt(Gd, bd)), np.eye(D), atol=0.06)


def test_fmllr_recovers_the_inverse_of_a_known_affine_transform():
    rng = np.random.default_rng(3)
    D, n = 3, 6000
    means = rng.normal(0, 3, (4, D))
    variances = rng.uniform(0.3, 1.5, (4, D))
    am = _am(means, variances)
    comp = rng.integers(0, 4, n)
    Xc = means[comp] + rng.normal(size=(n, D)) * np.sqrt(variances[comp])   # model-generated
    A0 = np.eye(D) + 0.3 * rng.normal(size=(D, D))
    b0 = rng.normal(size=D)
    Y = Xc @ A0.T + b0                                                       # the "speaker"
    W, auxf = None, []
    for _ in range(6):                       # EM: posteriors through the current transform
        st = tf.FmllrStats(D)
        st.accumulate(am, np.zeros(n, np.int64), Y, W=W)
        W = tf.estimate_fmllr(st, iters=5, W=W)
        auxf.append(tf.fmllr_auxf(W, st))
    assert auxf[-1] > auxf[0]
    A0inv = np.linalg.inv(A0)
    np.testing.assert_allclose(W[:, :-1], A0inv, atol=0.05)
    np.testing.assert_allclose(W[:, -1], -A0inv @ b0, atol=0.1)
    ident = np.hstack([np.eye(D), np.zeros((D, 1))])
    assert tf.fmllr_auxf(W, st) > tf.fmllr_auxf(ident, st)
    np.testing.assert_allclose(tf.apply_fmllr(W, Y), Xc, atol=0.3)


def test_fmllr_nan_or_singular_statistics_name_the_speaker():
    import kaldi_hmm_gmm as khg

    from asr.gmm.feature_pipeline import speaker_fmllr

    st = tf.FmllrStats(2)
    st.beta = 10.0                                  # frames but all-zero G_i: singular
    with pytest.raises(tf.TransformError, match="spk7.*singular"):
        tf.estimate_fmllr(st, what="fMLLR of speaker spk7")
    am = _am(np.zeros((1, 2)), np.ones((1, 2)))

    class TM:                                       # transition id 1 -> pdf 0
        @staticmethod
        def transition_id_to_pdf_array():
            return [0, 0]

    X = np.ones((5, 2), np.float32)
    X[2, 0] = np.nan
    with pytest.raises(tf.TransformError, match="speaker s1"):
        speaker_fmllr(am, TM, {"u1": X}, {"u1": np.ones(5, np.int32)}, {"u1": "s1"})
    assert khg is not None


def test_lda_mllt_then_sat_rounds_write_readable_transforms(tmp_path):
    import kaldiio
    import yaml

    from asr.gmm import GmmConfig, align_dir, train_all
    from asr.gmm.feature_pipeline import read_feat_opts
    from asr.lang import prepare_lang
    from tests.test_gmm import TINY, make_toy_corpus

    paths = make_toy_corpus(tmp_path)
    prepare_lang(paths["dict_dir"], tmp_path / "lang")
    conf = dict(TINY)
    conf["tri"] = [dict(TINY["tri"][0]),
                   {**TINY["tri"][0], "feat_type": "lda_mllt", "lda_dim": 12, "mllt_iters": [1, 2]},
                   {**TINY["tri"][0], "feat_type": "sat", "fmllr_iters": [1]}]
    (tmp_path / "gmm.yaml").write_text(yaml.safe_dump(conf))
    cfg = GmmConfig.from_yaml(tmp_path / "gmm.yaml")
    exp = tmp_path / "exp"
    summary = train_all(paths["train"], paths["train"], tmp_path / "lang", exp, cfg, dev_feat_dir=paths["test"])
    assert summary["tri2"]["feat_dim"] == 12 and summary["tri3"]["aligned"] > 0.9 * summary["tri1"]["aligned"]
    M = kaldiio.load_mat(str(exp / "tri3_ali" / "final.mat"))
    assert M.shape == (12, 13 * 7) and np.all(np.isfinite(M))
    trans = dict(kaldiio.load_scp(str(exp / "tri3_ali" / "trans.scp")))
    assert len(trans) == 2 and all(W.shape == (12, 13) and np.all(np.isfinite(W)) for W in trans.values())
    assert read_feat_opts(exp / "tri3_ali")["feat_type"] == "sat"
    assert (exp / "tri3_ali" / "trans_dev.scp").is_file()   # the dev set: SI pass, fMLLR, realigned
    res = align_dir(exp / "tri3_ali", tmp_path / "lang", paths["test"], paths["test"], tmp_path / "re", cfg)
    assert res["aligned"] > 0 and (tmp_path / "re" / "trans.scp").is_file()
    bad = dict(conf, tri=[{**TINY["tri"][0], "feat_type": "sat"}])
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match="needs an lda_mllt"):
        GmmConfig.from_yaml(tmp_path / "bad.yaml")
