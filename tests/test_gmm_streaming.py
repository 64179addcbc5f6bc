"""The GMM stage reads its features from the ark on access (never the corpus in RAM): the
mappings it trains on are lazy, they give what the arrays in RAM give, and bad entries are named."""

from __future__ import annotations

import shutil
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import yaml

from tests.test_gmm import TINY, make_toy_corpus

SAT = dict(TINY, tri=[dict(TINY["tri"][0]),
                      {**TINY["tri"][0], "feat_type": "lda_mllt", "lda_dim": 12, "mllt_iters": [1, 2]},
                      {**TINY["tri"][0], "feat_type": "sat", "fmllr_iters": [1]}])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from asr.lang import prepare_lang

    root = tmp_path_factory.mktemp("stream")
    paths = make_toy_corpus(root, n_train=30, n_test=4)
    prepare_lang(paths["dict_dir"], root / "lang")
    return {**paths, "root": root, "lang": root / "lang"}


class InRam(dict):
    """The reference: every utterance's array held (what `load_features` returned before)."""

    def __init__(self, items, dim: int):
        super().__init__(items)
        self.dim = dim

    def num_frames(self, utt):
        return self[utt].shape[0]

    def subset(self, utts):
        return InRam({u: self[u] for u in utts if u in self}, self.dim)


def _train(corpus, exp: Path, nj: int, monkeypatch, in_ram: bool) -> dict[str, object]:
    from asr.gmm import GmmConfig, train_all
    import asr.gmm.train as train

    conf = dict(SAT, nj=nj)
    (exp.parent / f"{exp.name}.yaml").write_text(yaml.safe_dump(conf))
    cfg = GmmConfig.from_yaml(exp.parent / f"{exp.name}.yaml")
    seen = []
    real_acc = train.accumulate

    def acc(am, tm, feats, ali, *a, **k):
        seen.append(type(feats).__name__)
        return real_acc(am, tm, feats, ali, *a, **k)

    monkeypatch.setattr(train, "accumulate", acc)
    if in_ram:
        real_load = train.load_features

        def load(feat_dir, utts=None):
            stored = real_load(feat_dir, utts)
            return InRam({u: stored[u] for u in stored}, stored.dim)

        monkeypatch.setattr(train, "load_features", load)
    try:
        train_all(corpus["train"], corpus["train"], corpus["lang"], exp, cfg)
    finally:
        monkeypatch.undo()
    return {"types": seen}


def test_load_features_is_lazy_and_reads_the_ark_on_each_access(corpus, tmp_path):
    from asr.gmm import load_features
    from asr.gmm.feature_pipeline import apply_speakers, project, spliced_static
    from asr.gmm.feature_store import FeatureView, StoredFeatures

    d = tmp_path / "feats"
    shutil.copytree(corpus["train"], d)
    (d / "feats.scp").write_text((d / "feats.scp").read_text().replace(str(corpus["train"]), str(d)))
    feats = load_features(d)
    assert isinstance(feats, StoredFeatures) and not isinstance(feats, dict)
    utt = sorted(feats)[3]
    before = feats[utt]
    raw = dict(kaldiio.load_scp(str(d / "feats.scp")))
    with kaldiio.WriteHelper(f"ark:{d / 'feats.ark'}") as w:   # same shapes, so the same offsets
        for u in sorted(raw):
            w(u, raw[u] * 2.0)
    after = feats[utt]                         # read again from the rewritten ark
    mean = raw[utt].astype(np.float64) - before  # the speaker's CMVN mean
    np.testing.assert_allclose(after, 2.0 * raw[utt] - mean, rtol=1e-5, atol=1e-4)
    assert feats.num_frames(utt) == before.shape[0] and feats.dim == before.shape[1] == 39
    M = np.random.default_rng(0).standard_normal((12, 13 * 7))
    view = apply_speakers({"spa": np.hstack([np.eye(12), np.ones((12, 1))])},
                          project(spliced_static(feats, 13, 3), M), {u: u.split("-")[0] for u in feats})
    assert isinstance(view, FeatureView) and view.dim == 12 and len(view) == len(feats)
    from asr.gmm import transforms as tf
    X = np.asarray(feats[utt][:, :13], np.float64)
    Y = (tf.splice(X, 3) @ M.T).astype(np.float32)
    np.testing.assert_array_equal(view[utt], Y + 1 if utt.startswith("spa") else Y)


@pytest.mark.parametrize("nj", [1, 2])
def test_training_reads_lazily_and_equals_the_in_ram_reference(corpus, tmp_path, monkeypatch, nj):
    """mono -> tri1 -> LDA+MLLT -> SAT from the ark (nj 2: forked jobs read it themselves) gives
    the bytes that the features held in RAM give, and accumulates over lazy mappings only."""
    lazy = _train(corpus, tmp_path / "lazy", nj, monkeypatch, in_ram=False)
    ram = _train(corpus, tmp_path / "ram", nj, monkeypatch, in_ram=True)
    assert lazy["types"] and set(lazy["types"]) <= {"StoredFeatures", "FeatureView"}, lazy["types"]
    assert set(ram["types"]) <= {"InRam", "FeatureView"}
    for rnd in ("mono", "tri1", "tri2", "tri3", "tri3_ali"):
        for f in ("final.mdl", "tree", "ali.ark", "pdf_ali.ark"):
            assert (tmp_path / "lazy" / rnd / f).read_bytes() == (tmp_path / "ram" / rnd / f).read_bytes(), (rnd, f)
    assert (tmp_path / "lazy/tri3/trans.ark").read_bytes() == (tmp_path / "ram/tri3/trans.ark").read_bytes()


def test_accumulation_in_blocks_sums_to_the_whole(corpus):
    """Statistics read a bounded number of frames at a time add up to those of one block."""
    import kaldi_hmm_gmm as khg

    from asr.gmm import accumulate, compile_graphs, equal_align, init_single_gaussians, load_features, read_text
    from asr.hmm_io import read_topo
    from asr.lang import load_lang

    feats, texts = load_features(corpus["train"]), read_text(corpus["train"])
    topo = read_topo(corpus["lang"])
    tree = khg.monophone_context_dependency(topo.phones, topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(tree, topo)
    X = np.concatenate([feats[u] for u in feats]).astype(np.float64)
    am = init_single_gaussians([(len(X), X.sum(0), (X * X).sum(0))] * tree.num_pdfs, X.shape[1])
    graphs, failed = compile_graphs(tm, tree, corpus["lang"], load_lang(corpus["lang"]), texts)
    assert not isinstance(graphs, dict) and len(graphs) == len(texts) and not failed
    ali, _ = equal_align(graphs, feats)
    whole = accumulate(am, tm, feats, ali, block_frames=10**9)
    blocks = accumulate(am, tm, feats, ali, block_frames=500)   # ~ 2-3 utterances a block
    assert blocks.frames == whole.frames == len(X)
    np.testing.assert_array_equal(blocks.trans, whole.trans)
    for name in ("occ", "x", "x2"):
        for a, b in zip(getattr(blocks, name), getattr(whole, name)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-8)
    assert blocks.loglike == pytest.approx(whole.loglike, rel=1e-12)


def _bad_copy(corpus, tmp_path, change) -> tuple[Path, str]:
    d = tmp_path / "bad"
    shutil.copytree(corpus["train"], d)
    raw = dict(kaldiio.load_scp(str(corpus["train"] / "feats.scp")))
    utt = sorted(raw)[-1]
    change(d, raw, utt)
    return d, utt


@pytest.mark.parametrize("nj", [1, 2])
def test_nan_features_are_an_error_naming_the_utterance(corpus, tmp_path, nj):
    from asr.gmm import GmmConfig, train_all

    def nan(d, raw, utt):
        raw[utt] = raw[utt].copy()
        raw[utt][5, 2] = np.nan
        with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats.scp'}") as w:
            for u in sorted(raw):
                w(u, raw[u])

    d, utt = _bad_copy(corpus, tmp_path, nan)
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(dict(TINY, nj=nj)))
    cfg = GmmConfig.from_yaml(tmp_path / "g.yaml")
    with pytest.raises(ValueError, match=f"'{utt}' has non-finite features"):
        train_all(d, d, corpus["lang"], tmp_path / "exp", cfg)


def test_corrupt_or_missing_ark_entry_is_an_error_naming_the_utterance(corpus, tmp_path):
    from asr.gmm import load_features

    def cut(d, raw, utt):   # the ark ends inside the last utterance's matrix
        with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats.scp'}") as w:
            for u in sorted(raw):
                w(u, raw[u])
        data = (d / "feats.ark").read_bytes()
        (d / "feats.ark").write_bytes(data[:len(data) - 100])

    d, utt = _bad_copy(corpus, tmp_path, cut)
    feats = load_features(d)
    feats[sorted(feats)[0]]   # the others read
    with pytest.raises(ValueError, match=f"cannot read utterance '{utt}'"):
        feats[utt]
    (d / "feats.ark").unlink()
    with pytest.raises(ValueError, match=f"cannot read utterance '{sorted(feats)[0]}'.*feats.ark"):
        load_features(d)[sorted(feats)[0]]
