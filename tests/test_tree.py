"""Tests for asr.tree: statistics, questions, splitting, Kaldi serialisation and loading."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import kaldi_hmm_gmm
import kaldifst
import numpy as np
import pytest

from asr.tree import (
    Root,
    TransitionTables,
    Tree,
    TreeStats,
    alignment_to_phones,
    build_tree,
    cluster_phones,
    frame_contexts,
    gaussian_objf,
    load_context_dependency,
    read_questions,
    read_roots,
    read_symbols,
    read_tree,
)

REPO = Path(__file__).resolve().parents[1]

# Phones 1..6, each a 3-state left-to-right HMM (pdf classes 0, 1, 2); phone 1 plays silence.
NUM_PHONES = 6
P2N = [-1] + [3] * NUM_PHONES
TOPO = """<Topology>
<TopologyEntry>
<ForPhones>
1 2 3 4 5 6
</ForPhones>
<State> 0 <PdfClass> 0 <Transition> 0 0.75 <Transition> 1 0.25 </State>
<State> 1 <PdfClass> 1 <Transition> 1 0.75 <Transition> 2 0.25 </State>
<State> 2 <PdfClass> 2 <Transition> 2 0.75 <Transition> 3 0.25 </State>
<State> 3 </State>
</TopologyEntry>
</Topology>
"""
LEFT_SET = (2, 3)  # the true model: phone 4's pdf class 1 mean depends on left in LEFT_SET
DIM = 4


def true_class(left, centre, pdf_class):
    """Ground-truth Gaussian id of a context: one per (phone, pdf class), except phone 4
    pdf class 1, which has two depending on the left phone."""
    base = (centre - 1) * 3 + pdf_class
    if centre == 4 and pdf_class == 1 and left in LEFT_SET:
        return 100
    return base


def true_mean(left, centre, pdf_class, class_step=2.0, context_shift=1.5):
    mean = np.full(DIM, 1.0 * centre + class_step * pdf_class)
    if true_class(left, centre, pdf_class) == 100:
        mean = mean + context_shift
    return mean


def synth_stats(num_utts=150, seed=0, class_step=2.0) -> TreeStats:
    """Utterances of random phone sequences, 3 states x 2..5 frames each, features drawn
    from the true model (unit variance), accumulated through TreeStats.accumulate.
    With a small `class_step` the left context of phone 4 matters more than its pdf class,
    so the greedy tree asks about the context first."""
    rng = np.random.default_rng(seed)
    stats = TreeStats(DIM)
    for _ in range(num_utts):
        seq = rng.integers(1, NUM_PHONES + 1, size=rng.integers(4, 12))
        left = np.concatenate([[0], seq[:-1]])
        frames = rng.integers(2, 6, size=(len(seq), 3))
        phones = np.repeat(np.repeat(seq, 3), frames.ravel())
        pdf_classes = np.repeat(np.tile(np.arange(3), len(seq)), frames.ravel())
        lefts = np.repeat(np.repeat(left, 3), frames.ravel())
        means = np.stack([true_mean(l, c, s, class_step)
                          for l, c, s in zip(lefts, phones, pdf_classes)])
        feats = means + rng.normal(size=means.shape)
        starts = np.zeros(len(phones), dtype=bool)
        starts[np.concatenate([[0], np.cumsum(frames.sum(axis=1))[:-1]])] = True
        stats.accumulate(feats, phones, pdf_classes, phone_starts=starts)
    return stats


@pytest.fixture(scope="module")
def stats():
    return synth_stats()


@pytest.fixture(scope="module")
def tree(stats):
    questions = cluster_phones(stats) + [list(LEFT_SET)]
    return build_tree(stats, P2N, max_leaves=60, questions=questions, min_count=20,
                      gain_threshold=40.0)


def all_contexts():
    return [(l, c, r, s) for l in range(NUM_PHONES + 1) for c in range(1, NUM_PHONES + 1)
            for r in range(NUM_PHONES + 1) for s in range(3)]


# ---------------------------------------------------------------------------
# (1) recovery of a known context-dependent model
# ---------------------------------------------------------------------------


def same_partition_as_truth(tree) -> bool:
    """The tree partitions all contexts exactly as the true model: pdf <-> true Gaussian
    is a bijection."""
    contexts = all_contexts()
    pdfs = tree.map_contexts(np.asarray(contexts)).tolist()
    truth = [true_class(l, c, s) for l, c, r, s in contexts]
    pairs = set(zip(pdfs, truth))
    return len(pairs) == len(set(pdfs)) == len(set(truth))


def test_recovers_true_split(tree):
    # Gain threshold alone (no clustering) stops at the true number of Gaussians.
    assert same_partition_as_truth(tree)
    assert tree.num_pdfs == 3 * NUM_PHONES + 1
    assert tree.leaves_per_phone() == {p: (4 if p == 4 else 3) for p in range(1, NUM_PHONES + 1)}
    assert tree.compute((2, 4, 0), 1) == tree.compute((3, 4, 6), 1) != tree.compute((5, 4, 6), 1)


def test_without_threshold_splits_to_max_leaves(stats):
    questions = cluster_phones(stats) + [list(LEFT_SET)]
    greedy = build_tree(stats, P2N, max_leaves=40, questions=questions, min_count=20)
    assert greedy.num_pdfs == 40


def test_clustering_merges_duplicate_leaves():
    # The context effect dominates: phone 4 splits on the left context first, so the
    # greedy tree duplicates pdf classes 0 and 2 under both answers; clustering merges them.
    stats = synth_stats(class_step=0.5)
    questions = cluster_phones(stats) + [list(LEFT_SET)]
    stopped = build_tree(stats, P2N, max_leaves=60, questions=questions, min_count=20,
                         gain_threshold=40.0)
    assert stopped.leaves_per_phone()[4] > 4
    for threshold in (40.0, -1):  # -1: the smallest split gain, Kaldi's default
        clustered = build_tree(stats, P2N, max_leaves=60, questions=questions, min_count=20,
                               gain_threshold=40.0, cluster_threshold=threshold)
        assert same_partition_as_truth(clustered)
        assert clustered.num_pdfs == 3 * NUM_PHONES + 1
        assert clustered.leaf_stats[0].sum() == pytest.approx(stats.counts.sum())


def test_leaf_stats_pool_training_stats(stats, tree):
    counts, sums, sumsqs = tree.leaf_stats
    assert counts.shape == (tree.num_pdfs,) and sums.shape == (tree.num_pdfs, DIM)
    assert counts.sum() == pytest.approx(stats.counts.sum())
    pdf_of_row = tree.map_contexts(stats.keys)
    expected = np.bincount(pdf_of_row, weights=stats.counts, minlength=tree.num_pdfs)
    np.testing.assert_allclose(counts, expected)
    means, variances = tree.leaf_gaussians()
    pdf = tree.compute((2, 4, 5), 1)
    np.testing.assert_allclose(means[pdf], true_mean(2, 4, 1), atol=0.3)  # ~166 frames
    np.testing.assert_allclose(variances.mean(axis=0), np.ones(DIM), atol=0.05)


def test_objf_matches_kaldi_gauss_clusterable():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3)) * 2 + 1
    count, s, ss = 50.0, x.sum(0), (x * x).sum(0)
    ours = gaussian_objf(count, s, ss, 0.01)
    kaldi = kaldi_hmm_gmm.GaussClusterable(s, ss, 0.01, count).objf()
    assert ours == pytest.approx(kaldi, rel=1e-5)


# ---------------------------------------------------------------------------
# statistics and questions
# ---------------------------------------------------------------------------


def test_accumulate_contexts_and_edges():
    stats = TreeStats(2)
    phones = np.array([1, 1, 2, 2, 2, 2, 3])
    classes = np.array([0, 1, 0, 1, 0, 1, 0])
    starts = np.array([1, 0, 1, 0, 1, 0, 1], dtype=bool)  # phone 2 occurs twice in a row
    feats = np.arange(14, dtype=float).reshape(7, 2)
    stats.accumulate(feats, phones, classes, phone_starts=starts)
    stats.accumulate(feats[:2], phones[:2], classes[:2])  # a second utterance: 1 alone
    got = {tuple(k): (c, tuple(s)) for k, c, s in zip(stats.keys.tolist(), stats.counts,
                                                      stats.sums)}
    assert got == {
        (0, 1, 0, 0): (1.0, (0.0, 1.0)),
        (0, 1, 0, 1): (1.0, (2.0, 3.0)),
        (0, 1, 2, 0): (1.0, (0.0, 1.0)),
        (0, 1, 2, 1): (1.0, (2.0, 3.0)),
        (1, 2, 2, 0): (1.0, (4.0, 5.0)),
        (1, 2, 2, 1): (1.0, (6.0, 7.0)),
        (2, 2, 3, 0): (1.0, (8.0, 9.0)),
        (2, 2, 3, 1): (1.0, (10.0, 11.0)),
        (2, 3, 0, 0): (1.0, (12.0, 13.0)),
    }
    np.testing.assert_allclose(stats.sumsqs[0], [0.0, 1.0])


def test_frame_contexts_give_per_frame_pdfs(tree):
    phones = np.array([4, 4, 4, 2, 2, 4, 4, 4])
    classes = np.array([0, 1, 2, 0, 2, 0, 1, 2])
    keys = frame_contexts(phones, classes)
    assert keys[:, 0].tolist() == [0, 0, 0, 4, 4, 2, 2, 2]
    assert keys[:, 2].tolist() == [2, 2, 2, 4, 4, 0, 0, 0]
    pdfs = tree.map_contexts(keys)
    assert pdfs.tolist() == [tree.compute(tuple(k[:3]), k[3]) for k in keys]
    assert pdfs[1] != pdfs[6]  # phone 4, pdf class 1: left 0 vs left 2 (in LEFT_SET)


def test_stats_add_and_save_roundtrip(tmp_path, stats):
    other = TreeStats(DIM)
    other.add(stats)
    other.add(stats)
    np.testing.assert_allclose(other.counts, 2 * stats.counts)
    other.save(tmp_path / "stats.npz")
    back = TreeStats.load(tmp_path / "stats.npz")
    np.testing.assert_array_equal(back.keys, other.keys)
    np.testing.assert_allclose(back.stats, other.stats)


def test_alignment_to_phones_from_transition_model():
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read(TOPO)
    ctx_dep = kaldi_hmm_gmm.monophone_context_dependency(list(range(1, 7)), P2N)
    trans_model = kaldi_hmm_gmm.TransitionModel(ctx_dep, topo)
    # Each 3-state phone p has transition ids 6(p-1)+1 ..6(p-1)+6:
    # state 0 loop/forward, state 1 loop/forward, state 2 loop/exit.
    tid = lambda p, i: 6 * (p - 1) + i  # noqa: E731
    seq = [tid(2, 1), tid(2, 2), tid(2, 4), tid(2, 6),            # phone 2
           tid(2, 2), tid(2, 3), tid(2, 4), tid(2, 5), tid(2, 6),  # phone 2 again
           tid(5, 2), tid(5, 4), tid(5, 6)]                        # phone 5
    phones, classes, starts = alignment_to_phones(trans_model, np.array(seq))
    again = alignment_to_phones(TransitionTables(trans_model), seq)
    assert all(np.array_equal(a, b) for a, b in zip(again, (phones, classes, starts)))
    assert phones.tolist() == [2] * 9 + [5] * 3
    assert classes.tolist() == [0, 0, 1, 2, 0, 1, 1, 2, 2, 0, 1, 2]
    assert starts.tolist() == [True, False, False, False, True, False, False, False, False,
                               True, False, False]
    with pytest.raises(ValueError, match="transition ids must be in"):
        alignment_to_phones(trans_model, np.array([0, 1]))


def test_cluster_phones_groups_similar_phones():
    # Phones 1-3 have means near 0, phones 4-6 near 10: the first split separates them.
    rng = np.random.default_rng(3)
    keys, counts, sums, sumsqs = [], [], [], []
    for phone in range(1, 7):
        x = rng.normal(0.0 if phone <= 3 else 10.0, 1.0, size=(200, 2)) + 0.3 * phone
        keys.append((0, phone, 0, 1))
        counts.append(200.0)
        sums.append(x.sum(0))
        sumsqs.append((x * x).sum(0))
    stats = TreeStats.from_arrays(keys, counts, sums, sumsqs)
    questions = cluster_phones(stats)
    assert questions[0] in ([1, 2, 3], [4, 5, 6])
    assert [1, 2, 3] in questions and [4, 5, 6] in questions
    assert all(len(q) < 6 for q in questions)
    assert cluster_phones(stats) == questions  # deterministic


def test_read_questions_and_roots(tmp_path):
    (tmp_path / "phones.txt").write_text("<eps> 0\nSIL 1\nAA 2\nB 3\n")
    (tmp_path / "q.txt").write_text("AA B\nSIL\n")
    (tmp_path / "roots.txt").write_text("not-shared not-split SIL\nshared split AA B\n")
    symbols = read_symbols(tmp_path / "phones.txt")
    assert read_questions(tmp_path / "q.txt", symbols) == [[2, 3], [1]]
    assert read_roots(tmp_path / "roots.txt", symbols) == [
        Root((1,), shared=False, split=False), Root((2, 3), shared=True, split=True)]
    (tmp_path / "bad.txt").write_text("AA ZZ\n")
    with pytest.raises(ValueError, match="unknown phone 'ZZ'"):
        read_questions(tmp_path / "bad.txt", symbols)


# ---------------------------------------------------------------------------
# (2) the written tree loads in kaldi_hmm_gmm and answers as the Python tree
# ---------------------------------------------------------------------------


def test_written_tree_loads_and_matches(tmp_path, tree):
    path = tmp_path / "tree"
    tree.write(path)
    assert path.read_bytes().startswith(b"\0BContextDependency ")
    ctx_dep = load_context_dependency(path)
    assert ctx_dep.num_pdfs == tree.num_pdfs
    assert (ctx_dep.context_width, ctx_dep.central_position) == (3, 1)
    for l, c, r, s in all_contexts():
        assert ctx_dep.compute([l, c, r], s) == (True, tree.compute((l, c, r), s))
    phones = list(range(1, NUM_PHONES + 1))
    assert ctx_dep.get_pdf_info(phones, P2N) == tree.get_pdf_info()
    # Our reader parses the bytes back to the same tree; Kaldi writes them identically.
    again = read_tree(path, P2N)
    assert again.to_bytes() == tree.to_bytes()
    kaldi_written = tmp_path / "tree.kaldi"
    ctx_dep.write(True, str(kaldi_written))
    assert kaldi_written.read_bytes() == path.read_bytes()


def test_monophone_tree_bytes_match_library():
    """Our serialisation of a monophone tree equals the library's own bytes."""
    ctx_dep = kaldi_hmm_gmm.monophone_context_dependency([1, 2, 3], [-1, 3, 3, 5])
    library = bytes(b & 0xFF for b in ctx_dep.__getstate__()[0])
    parsed = Tree.from_bytes(library, [-1, 3, 3, 5])
    assert parsed.to_bytes() == library
    assert parsed.num_pdfs == ctx_dep.num_pdfs == 11
    assert (parsed.context_width, parsed.central_position) == (1, 0)
    assert parsed.compute((3,), 4) == 10 == ctx_dep.compute([3], 4)[1]
    assert parsed.get_pdf_info() == ctx_dep.get_pdf_info([1, 2, 3], [-1, 3, 3, 5])


def test_shared_and_unsplit_roots_load(stats):
    roots = [Root((1,), shared=False, split=False), Root((2, 3)), Root((4,)), Root((5, 6))]
    tree = build_tree(stats, P2N, roots=roots, max_leaves=30, min_count=20,
                      questions=cluster_phones(stats))
    ctx_dep = tree.to_kaldi()
    assert ctx_dep.num_pdfs == tree.num_pdfs
    for l, c, r, s in all_contexts():
        assert ctx_dep.compute([l, c, r], s) == (True, tree.compute((l, c, r), s))
    assert ctx_dep.get_pdf_info(list(range(1, NUM_PHONES + 1)), P2N) == tree.get_pdf_info()
    # The unsplit root keeps exactly one pdf per pdf class, whatever the context.
    assert tree.leaves_per_phone()[1] == 3
    # Phones 2 and 3 share a root: with no room to split, they share its one pdf.
    stub = build_tree(stats, P2N, roots=roots, max_leaves=6, min_count=20,
                      questions=cluster_phones(stats))
    assert stub.num_pdfs == 6 and stub.to_kaldi().num_pdfs == 6
    assert stub.compute((0, 2, 0), 0) == stub.compute((5, 3, 1), 2)
    assert stub.get_pdf_info()[stub.compute((0, 2, 0), 0)] == [
        (p, s) for p in (2, 3) for s in range(3)]


# ---------------------------------------------------------------------------
# (3) transition model and H transducer accept the tree
# ---------------------------------------------------------------------------


def test_transition_model_and_h_transducer(tree):
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read(TOPO)
    ctx_dep = tree.to_kaldi()
    trans_model = kaldi_hmm_gmm.TransitionModel(ctx_dep, topo)
    assert trans_model.num_pdfs == tree.num_pdfs
    phone_seq = [1, 2, 4, 3, 4, 5, 4, 1]
    ifst = kaldifst.make_linear_acceptor(phone_seq)
    _, ilabels = kaldifst.compose_context([], 3, 1, ifst)
    h_fst, _ = kaldi_hmm_gmm.get_h_transducer(ilabels, ctx_dep, trans_model,
                                              kaldi_hmm_gmm.HTransducerConfig())
    pdfs_in_h = set()
    for state in kaldifst.StateIterator(h_fst):
        for arc in kaldifst.ArcIterator(h_fst, state):
            if arc.ilabel > 0:
                pdfs_in_h.add(trans_model.transition_id_to_pdf(arc.ilabel))
    expected = {tree.compute(tuple(window), s) for window in ilabels
                if len(window) == 3 and window[1] > 0 for s in range(3)}
    assert pdfs_in_h == expected
    # The left context of phone 4 decides its pdf class 1: both variants are in H.
    assert tree.compute((2, 4, 3), 1) in pdfs_in_h and tree.compute((3, 4, 5), 1) in pdfs_in_h
    assert tree.compute((5, 4, 1), 1) in pdfs_in_h


def _arcs(dests) -> str:
    return " ".join(f"<Transition> {d} 0.25" for d in dests)


# Phone 1 as Kaldi's silence: 5 states, the middle three ergodic.
SIL_TOPO = TOPO.replace("1 2 3 4 5 6", "2 3 4 5 6").replace("</Topology>", "\n".join(
    ["<TopologyEntry>", "<ForPhones>", "1", "</ForPhones>",
     f"<State> 0 <PdfClass> 0 {_arcs((0, 1, 2, 3))} </State>"]
    + [f"<State> {s} <PdfClass> {s} {_arcs((1, 2, 3, 4))} </State>" for s in (1, 2, 3)]
    + ["<State> 4 <PdfClass> 4 <Transition> 4 0.75 <Transition> 5 0.25 </State>",
       "<State> 5 </State>", "</TopologyEntry>", "</Topology>"]))


@pytest.mark.parametrize("reorder", [False, True])
def test_alignment_contexts_reproduce_kaldi_pdfs(reorder):
    """Random Kaldi alignments (H o C o phones, self-loops added, equal_align) of a
    triphone tree with a 5-state ergodic silence: the per-frame pdfs our contexts give
    equal the transition model's pdfs, and every phone instance is found."""
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read(SIL_TOPO)
    p2n = topo.get_phone_to_num_pdf_classes()
    rng = np.random.default_rng(5)
    keys = [(l, c, r, s) for l in range(7) for c in range(1, 7) for r in range(7)
            for s in range(p2n[c])]
    means = rng.normal(size=(len(keys), 2)) * 3
    stats = TreeStats.from_arrays(keys, np.full(len(keys), 50.0), means * 50,
                                  (means ** 2 + 1) * 50)
    tree = build_tree(stats, p2n, max_leaves=150, min_count=100,
                      roots=[Root((1,), shared=False)] + [Root((p,)) for p in range(2, 7)])
    ctx_dep = tree.to_kaldi()
    trans_model = kaldi_hmm_gmm.TransitionModel(ctx_dep, topo)
    phone_seq = [1, 4, 4, 2, 1, 1, 5, 3, 6, 1]
    cl, ilabels = kaldifst.compose_context([], 3, 1, kaldifst.make_linear_acceptor(phone_seq))
    kaldifst.arcsort(cl, sort_type="ilabel")
    h_fst, _ = kaldi_hmm_gmm.get_h_transducer(ilabels, ctx_dep, trans_model,
                                              kaldi_hmm_gmm.HTransducerConfig())
    hcl = kaldifst.compose(h_fst, cl)
    hcl = kaldi_hmm_gmm.add_self_loops(self_loop_scale=1.0, disambig_syms=[], reorder=reorder,
                                       trans_model=trans_model, ifst=hcl)
    for seed in range(3):
        ok, path = kaldifst.equal_align(hcl, 80, seed)
        assert ok
        ok, tids, phones_out, _ = kaldifst.get_linear_symbol_sequence(path)
        assert ok and len(tids) == 80
        phones, classes, starts = alignment_to_phones(trans_model, tids)
        assert phones[starts].tolist() == phone_seq
        # A reordered alignment shows its signature: a phone's exit followed by self-loops
        # of the same HMM state.
        tables = TransitionTables(trans_model)
        exit_then_loop = any(tables.is_final[a] and tables.is_self_loop[b] and
                             tables.transition_state[a] == tables.transition_state[b]
                             for a, b in zip(tids[:-1], tids[1:]))
        assert exit_then_loop == reorder
        pdfs = tree.map_contexts(frame_contexts(phones, classes, starts))
        assert pdfs.tolist() == [trans_model.transition_id_to_pdf(t) for t in tids]


# ---------------------------------------------------------------------------
# (4) min-count and target leaves
# ---------------------------------------------------------------------------


def test_min_count_and_max_leaves_respected(stats):
    for max_leaves, min_count in [(25, 20.0), (40, 300.0), (200, 150.0)]:
        tree = build_tree(stats, P2N, max_leaves=max_leaves, min_count=min_count,
                          questions=cluster_phones(stats))
        counts = tree.leaf_stats[0]
        assert tree.num_pdfs <= max_leaves
        assert counts.min() >= min_count
    assert build_tree(stats, P2N, max_leaves=25, min_count=20.0).num_pdfs == 25
    # Only the initial leaves when no split can keep min_count on both sides: one per
    # shared root (default roots), one per pdf class for not-shared roots.
    assert build_tree(stats, P2N, max_leaves=50, min_count=1e9).num_pdfs == NUM_PHONES
    not_shared = [Root((p,), shared=False) for p in range(1, NUM_PHONES + 1)]
    assert build_tree(stats, P2N, roots=not_shared, max_leaves=50,
                      min_count=1e9).num_pdfs == 3 * NUM_PHONES


def test_same_input_same_tree(stats):
    a = build_tree(stats, P2N, max_leaves=40, min_count=20)
    b = build_tree(stats, P2N, max_leaves=40, min_count=20)
    assert a.to_bytes() == b.to_bytes()


def test_build_2000_leaves_from_random_stats():
    rng = np.random.default_rng(0)
    num_phones, dim, num = 40, 39, 20000
    keys = np.stack([rng.integers(0, num_phones + 1, num), rng.integers(1, num_phones + 1, num),
                     rng.integers(0, num_phones + 1, num), rng.integers(0, 3, num)], axis=1)
    counts = rng.integers(20, 400, num).astype(float)
    means = rng.normal(size=(num, dim))
    stats = TreeStats.from_arrays(keys, counts, means * counts[:, None],
                                  (means ** 2 + 1) * counts[:, None])
    # correctness only: the speed of tree building is measured by bench/gmm.py (--leaves)
    tree = build_tree(stats, [-1] + [3] * num_phones, max_leaves=2000, min_count=100)
    assert tree.num_pdfs == 2000
    assert tree.leaf_stats[0].min() >= 100
    assert tree.to_kaldi().num_pdfs == 2000


def test_cached_best_split_owns_its_stats(stats):
    """A leaf's cached best split keeps only its (F,) yes-stats, not a view into the (Q, F)
    array of every question's stats (at 32k leaves those views held ~1.5 GB)."""
    from asr.tree.build import _Builder

    builder = _Builder(stats, P2N, [Root((p,)) for p in range(1, NUM_PHONES + 1)],
                       cluster_phones(stats), 20.0, 0.01)
    leaf = builder.make_leaf(np.flatnonzero(stats.keys[:, 1] == 2), 0, 1)
    gain, _, _, yes = builder.best_split(leaf)
    assert gain > 0 and yes.shape == (1 + 2 * DIM,) and yes.base is None


# ---------------------------------------------------------------------------
# (5) bad input
# ---------------------------------------------------------------------------


def test_unknown_phone_in_stats_is_an_error(stats):
    bad = TreeStats.from_arrays([(0, 9, 0, 0)], [10.0], np.ones((1, DIM)), np.ones((1, DIM)))
    bad.add(stats)
    with pytest.raises(ValueError, match=r"centre phones \[9\]"):
        build_tree(bad, P2N, max_leaves=30)
    bad_class = TreeStats.from_arrays([(0, 2, 0, 3)], [10.0], np.ones((1, DIM)),
                                      np.ones((1, DIM)))
    with pytest.raises(ValueError, match="pdf class 3 for phone 2"):
        build_tree(bad_class, P2N, max_leaves=30)


def test_empty_stats_is_an_error():
    with pytest.raises(ValueError, match="statistics are empty"):
        build_tree(TreeStats(DIM), P2N, max_leaves=30)
    with pytest.raises(ValueError, match="statistics are empty"):
        cluster_phones(TreeStats(DIM))


def test_bad_shapes_and_bytes_are_errors(stats):
    with pytest.raises(ValueError, match="feats must be"):
        TreeStats(DIM).accumulate(np.zeros((3, DIM + 1)), [1, 1, 1], [0, 0, 0])
    with pytest.raises(ValueError, match="alignment length mismatch"):
        TreeStats(DIM).accumulate(np.zeros((3, DIM)), [1, 1], [0, 0])
    with pytest.raises(ValueError, match=r"phones \[5, 6\] have an HMM topology but are in no"):
        build_tree(stats, P2N, roots=[Root((p,)) for p in range(1, 5)], max_leaves=30)
    with pytest.raises(ValueError, match="max_leaves"):
        build_tree(stats, P2N, max_leaves=5)
    with pytest.raises(ValueError, match="not a Kaldi binary ContextDependency"):
        load_context_dependency(b"garbage")


def test_info_command(tmp_path, tree):
    tree.write(tmp_path / "tree")
    (tmp_path / "topo").write_text(TOPO)
    out = subprocess.run(
        [sys.executable, "-m", "asr.tree", "info", str(tmp_path / "tree"), "--topo",
         str(tmp_path / "topo")], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert f"num-pdfs {tree.num_pdfs}" in out
    assert "context-width 3" in out and "central-position 1" in out
    assert "leaves 4 4" in out and "leaves 2 3" in out
