"""Tests of asr.data on tiny Kaldi-format feature dirs and pdf alignments written with kaldiio."""

from __future__ import annotations

import logging
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch

from asr import data as D

BINS = 4  # mel bins per channel in these fixtures (features are 3 * BINS wide)


def make_corpus(root: Path, *, num_spk: int = 3, utts_per_spk: int = 4, num_pdfs: int = 6,
                lengths=None, seed: int = 0, bins: int = BINS, name: str = "train") -> dict:
    """Write a Kaldi feature dir `root/<name>_logmel` and an alignment dir `root/ali`.

    Features are learnable from the pdf ids: each frame is its pdf's mean vector plus noise;
    pdf sequences are runs of 3-8 frames. Returns paths and the raw arrays.
    """
    rng = np.random.default_rng(seed)
    feat_dir, ali_dir = root / f"{name}_logmel", root / "ali"
    (feat_dir / "data").mkdir(parents=True, exist_ok=True)
    ali_dir.mkdir(parents=True, exist_ok=True)
    means = np.random.default_rng(99).normal(0, 2, (num_pdfs, 3 * bins)).astype(np.float32)
    feats, alis, utt2spk = {}, {}, {}
    k = 0
    for s in range(num_spk):
        spk = f"spk{s}"
        offset = rng.normal(0, 1, 3 * bins).astype(np.float32)  # removed by CMVN
        for u in range(utts_per_spk):
            utt = f"{spk}-u{u:02d}"
            n = int(lengths[k % len(lengths)]) if lengths is not None else int(rng.integers(20, 60))
            k += 1
            ali = np.repeat(rng.integers(0, num_pdfs, n), rng.integers(3, 9, n))[:n]
            feats[utt] = (means[ali] + offset + rng.normal(0, 0.5, (n, 3 * bins))).astype(np.float32)
            alis[utt] = ali.astype(np.int32)
            utt2spk[utt] = spk
    with kaldiio.WriteHelper(f"ark,scp:{feat_dir}/data/feats.ark,{feat_dir}/feats.scp") as w:
        for utt in sorted(feats):
            w(utt, feats[utt])
    spks = sorted(set(utt2spk.values()))
    with kaldiio.WriteHelper(f"ark,scp:{feat_dir}/data/cmvn.ark,{feat_dir}/cmvn.scp") as w:
        for spk in spks:
            m = np.concatenate([feats[u] for u in sorted(feats) if utt2spk[u] == spk]).astype(np.float64)
            st = np.zeros((2, m.shape[1] + 1))
            st[0, :-1], st[0, -1], st[1, :-1] = m.sum(0), len(m), (m ** 2).sum(0)
            w(spk, st)
    (feat_dir / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in sorted(utt2spk)))
    (feat_dir / "spk2utt").write_text("".join(
        f"{s} {' '.join(u for u in sorted(utt2spk) if utt2spk[u] == s)}\n" for s in spks))
    (feat_dir / "text").write_text("".join(f"{u} a\n" for u in sorted(utt2spk)))
    scp_name = "pdf_ali.scp" if name == "train" else f"pdf_ali_{name}.scp"
    ark_name = scp_name.replace(".scp", ".ark")
    with kaldiio.WriteHelper(f"ark,scp:{ali_dir}/{ark_name},{ali_dir}/{scp_name}") as w:
        for utt in sorted(alis):
            w(utt, alis[utt])
    (ali_dir / "num_pdfs").write_text(f"{num_pdfs}\n")
    return {"feat_dir": feat_dir, "ali_dir": ali_dir, "ali_scp": ali_dir / scp_name,
            "feats": feats, "alis": alis, "utt2spk": utt2spk, "num_pdfs": num_pdfs}


def write_alis(path: Path, alis: dict) -> Path:
    with kaldiio.WriteHelper(f"ark,scp:{path}.ark,{path}.scp") as w:
        for utt in sorted(alis):
            w(utt, np.asarray(alis[utt], dtype=np.int32))
    return Path(f"{path}.scp")


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path)


def test_alignments_and_counts_roundtrip(corpus, tmp_path):
    alis = D.read_pdf_alignments(corpus["ali_scp"])
    assert sorted(alis) == sorted(corpus["alis"])
    for u, v in corpus["alis"].items():
        np.testing.assert_array_equal(alis[u], v)
    assert D.read_num_pdfs(corpus["ali_dir"]) == 6
    counts = D.pdf_counts(alis, 6)
    assert counts.sum() == sum(len(v) for v in alis.values())
    D.write_kaldi_vector(tmp_path / "pdf_counts", counts)
    text = (tmp_path / "pdf_counts").read_text().split()
    assert text[0] == "[" and text[-1] == "]"
    assert [int(t) for t in text[1:-1]] == counts.tolist()


def test_batches_match_features_with_edge_replication(corpus):
    from asr.features import FeatureReader, to_channels

    alis = D.read_pdf_alignments(corpus["ali_scp"])
    uset = D.load_utt_set(corpus["feat_dir"], alis, 6)
    reader = FeatureReader(corpus["feat_dir"], cmvn=True)
    T, left, right = 8, 3, 2
    utt = uset.utts[1]
    n = reader.num_frames(utt)
    mat = to_channels(reader[utt], 3)                      # (3, n, BINS)
    # a chunk at the start, one running past the end (padded), one in the middle
    rows = np.array([[1, 0], [1, n - 5], [1, 10]])
    x, y = D.gather_batch(uset, rows, T, left, right)
    assert x.shape == (3, 3, T + left + right, BINS) and x.dtype == torch.float32
    assert y.shape == (3, T) and y.dtype == torch.int64
    assert uset.targets.dtype == np.int32      # the in-RAM per-frame targets: 4 bytes a frame
    idx0 = np.clip(np.arange(-left, T + right), 0, n - 1)
    np.testing.assert_allclose(x[0].numpy(), mat[:, idx0], rtol=1e-6)
    assert (x[0, :, :left] == x[0, :, left:left + 1]).all()          # start replicated
    idx1 = np.clip(np.arange(n - 5 - left, n - 5 + T + right), 0, n - 1)
    np.testing.assert_allclose(x[1].numpy(), mat[:, idx1], rtol=1e-6)
    np.testing.assert_array_equal(y[1, :5].numpy(), alis[utt][n - 5:])
    assert (y[1, 5:] == D.IGNORE).all()
    np.testing.assert_array_equal(y[2].numpy(), alis[utt][10:10 + T])


def test_chunk_starts_cover_every_frame():
    for length in (1, 7, 8, 9, 23, 24, 50):
        for pad_last in (False, True):
            s = D.chunk_starts(length, 8, pad_last)
            covered = np.zeros(length, bool)
            for a in s:
                covered[a:a + 8] = True
            assert covered.all()
            if pad_last:  # CV: no frame twice
                assert len(s) == -(-length // 8)
            elif length >= 8:  # train: chunks stay inside the utterance
                assert s.max() + 8 <= length


def test_shards_disjoint_equal_and_deterministic(corpus):
    alis = D.read_pdf_alignments(corpus["ali_scp"])
    uset = D.load_utt_set(corpus["feat_dir"], alis, 6)
    kw = dict(chunk_frames=8, context=(2, 2), batch_size=3, seed=5, world_size=2)
    l0, l1 = D.ChunkLoader(uset, rank=0, **kw), D.ChunkLoader(uset, rank=1, **kw)
    assert l0.num_batches == l1.num_batches >= 2
    p0, p1 = l0.epoch_plan(0), l1.epoch_plan(0)
    a = {tuple(r) for r in p0.reshape(-1, 2)}
    b = {tuple(r) for r in p1.reshape(-1, 2)}
    assert len(a) == p0.shape[0] * 3 and not a & b                       # disjoint
    np.testing.assert_array_equal(p0, D.ChunkLoader(uset, rank=0, **kw).epoch_plan(0))
    assert not np.array_equal(p0, l0.epoch_plan(1))                        # reshuffled per epoch
    # shuffled across utterances: a batch mixes utterances
    assert any(len(set(batch[:, 0])) > 1 for batch in p0)
    # resuming at batch 1 yields exactly the remaining batches
    full = list(l0.iter_batches(0))
    rest = list(l0.iter_batches(0, start_batch=1))
    assert len(rest) == len(full) - 1
    for (x1, y1), (x2, y2) in zip(full[1:], rest):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_frames_per_epoch_cap(corpus):
    alis = D.read_pdf_alignments(corpus["ali_scp"])
    uset = D.load_utt_set(corpus["feat_dir"], alis, 6)
    full = D.ChunkLoader(uset, chunk_frames=8, context=(0, 0), batch_size=2)
    capped = D.ChunkLoader(uset, chunk_frames=8, context=(0, 0), batch_size=2,
                           max_frames_per_epoch=40)
    assert capped.num_batches == 2 < full.num_batches


def test_memmap_storage_equals_memory(corpus, tmp_path):
    alis = D.read_pdf_alignments(corpus["ali_scp"])
    mem = D.load_utt_set(corpus["feat_dir"], alis, 6)
    mm = D.load_utt_set(corpus["feat_dir"], alis, 6, storage="memmap",
                        cache_path=tmp_path / "cache" / "train.npy")
    assert isinstance(mm.feats, np.memmap)
    np.testing.assert_array_equal(np.asarray(mm.feats), mem.feats)
    again = D.load_utt_set(corpus["feat_dir"], alis, 6, storage="memmap",
                           cache_path=tmp_path / "cache" / "train.npy")
    np.testing.assert_array_equal(np.asarray(again.feats), mem.feats)


def test_cv_split_and_eval_batches_score_each_frame_once(corpus):
    alis = D.read_pdf_alignments(corpus["ali_scp"])
    train, cv = D.split_cv(sorted(alis), 0.25, seed=3)
    assert len(cv) == 3 and not set(train) & set(cv) and len(train) + len(cv) == len(alis)
    assert D.split_cv(sorted(alis), 0.25, seed=3) == (train, cv)
    uset = D.load_utt_set(corpus["feat_dir"], alis, 6, utts=cv)
    frames = 0
    for r in range(2):
        for x, y in D.iter_eval_batches(uset, chunk_frames=8, context=(1, 1), batch_size=4,
                                        rank=r, world_size=2):
            frames += int((y != D.IGNORE).sum())
    assert frames == uset.num_frames


# ------------------------------------------------------------------------- bad input


def test_length_mismatch_error_names_utt_or_counted_skip(corpus, tmp_path, caplog):
    alis = dict(corpus["alis"])
    alis["spk1-u02"] = alis["spk1-u02"][:-1]
    scp = write_alis(tmp_path / "bad", alis)
    bad = D.read_pdf_alignments(scp)
    with pytest.raises(ValueError, match=r"spk1-u02.*alignment has \d+ frames"):
        D.load_utt_set(corpus["feat_dir"], bad, 6)
    with caplog.at_level(logging.WARNING):
        uset = D.load_utt_set(corpus["feat_dir"], bad, 6, on_mismatch="skip")
    assert "spk1-u02" not in uset.utts and len(uset.utts) == len(alis) - 1
    assert "1 utterances skipped" in caplog.text


def test_pdf_out_of_range_error_names_utt_and_id(corpus, tmp_path):
    alis = dict(corpus["alis"])
    alis["spk2-u01"] = alis["spk2-u01"].copy()
    alis["spk2-u01"][3] = 6
    bad = D.read_pdf_alignments(write_alis(tmp_path / "bad", alis))
    with pytest.raises(ValueError, match=r"spk2-u01.*pdf id 6 out of range \[0, 6\)"):
        D.load_utt_set(corpus["feat_dir"], bad, 6)
    alis["spk2-u01"][3] = -1
    bad = D.read_pdf_alignments(write_alis(tmp_path / "bad2", alis))
    with pytest.raises(ValueError, match=r"spk2-u01.*pdf id -1"):
        D.load_utt_set(corpus["feat_dir"], bad, 6)


def test_missing_alignment_is_a_counted_skip(corpus, caplog):
    alis = dict(corpus["alis"])
    del alis["spk0-u00"]
    with caplog.at_level(logging.WARNING):
        uset = D.load_utt_set(corpus["feat_dir"], alis, 6)
    assert "spk0-u00" not in uset.utts and "1 of 12 utterances have no alignment" in caplog.text


def test_utterance_shorter_than_chunk_is_padded_not_lost(tmp_path):
    c = make_corpus(tmp_path, num_spk=1, utts_per_spk=3, lengths=[5, 30, 12])
    alis = D.read_pdf_alignments(c["ali_scp"])
    uset = D.load_utt_set(c["feat_dir"], alis, 6)
    loader = D.ChunkLoader(uset, chunk_frames=16, context=(2, 2), batch_size=1, prefetch=0)
    short = uset.utts.index("spk0-u00")
    rows = [r for r in loader.chunks if r[0] == short]
    assert len(rows) == 1
    x, y = D.gather_batch(uset, np.array(rows), 16, 2, 2)
    np.testing.assert_array_equal(y[0, :5].numpy(), alis["spk0-u00"])
    assert (y[0, 5:] == D.IGNORE).all()
    assert (x[0, :, 2 + 4:] == x[0, :, 2 + 4:2 + 5]).all()   # last frame replicated
    # every target frame of every utterance appears in some training chunk
    seen = {u: np.zeros(len(alis[u]), bool) for u in uset.utts}
    for i, s in loader.chunks:
        n = len(alis[uset.utts[i]])
        seen[uset.utts[i]][s:min(s + 16, n)] = True
    assert all(v.all() for v in seen.values())
