"""Phonetic context-dependency tree built in numpy, written as Kaldi's binary `tree` (a package).

Modules, one job each: `stats` (alignment -> per-context statistics), `questions` (roots,
questions files, phone clustering), `event_map` (the tree and its Kaldi binary I/O), `build`
(greedy splitting, leaf clustering), `__main__` (the `info` command line).

The Kaldi bindings (kaldi_hmm_gmm) bind no tree building. This module accumulates
per-context Gaussian statistics from a frame alignment, obtains phone questions by
clustering, grows a decision tree by greedy likelihood-gain splitting and writes it in
Kaldi's ContextDependency format (N=3, P=1), which kaldi_hmm_gmm then loads.

Conventions
-----------
- Phones are integer ids of `phones.txt` (>= 1); phone 0 stands for "no phone" at an
  utterance edge (left context of the first phone, right context of the last), as in Kaldi.
- A context key is a row `(left, centre, right, pdf_class)` (int32). Event-map keys:
  0 = left phone, 1 = centre phone, 2 = right phone, -1 (`PDF_CLASS_KEY`) = pdf class.
- `phone2num_pdf_classes` is indexed by phone id (entry 0 unused, <= 0 means "not a
  phone"), as `HmmTopology.get_phone_to_num_pdf_classes()` returns it.
- Statistics are float64: count (frames), sum (D,), sum of squares (D,) per context.
- Likelihoods are diagonal-Gaussian log-likelihoods in nats, as Kaldi's GaussClusterable
  computes them (variance floored at `var_floor`).

Public API
----------
alignment_to_phones(trans_model_or_tables, transition_ids) -> (phones, pdf_classes, starts)
    transition ids (T,) -> per-frame phone ids (T,) int32, pdf classes (T,) int32, and a
    bool mask (T,) of frames that start a phone instance.
TransitionTables(trans_model): per-transition-id lookup arrays; build once per model and
    pass it to alignment_to_phones for every utterance.
frame_contexts(phones (T,), pdf_classes (T,), phone_starts=None) -> keys (T, 4) int64
    per-frame (left, centre, right, pdf_class); `tree.map_contexts(keys)` -> pdf ids (T,).
TreeStats(dim)
    .accumulate(feats (T, D), phones (T,), pdf_classes (T,), phone_starts=None)
    .add(other) ; .save(path.npz) ; TreeStats.load(path.npz)
    .keys (N, 4) int32, .counts (N,), .sums (N, D), .sumsqs (N, D), .dim, .num_contexts
Root(phones, shared=True, split=True) ; read_roots(path, symbols=None) -> list[Root]
read_questions(path, symbols=None) -> list[list[int]]   (extra_questions.txt / .int)
read_symbols(path) -> dict[str, int]                       (phones.txt)
cluster_phones(stats, phone_sets=None, pdf_classes=(1,), var_floor=0.01) -> list[list[int]]
    questions (sets of phones) from top-down 2-means clustering of per-phone-set Gaussians.
build_tree(stats, phone2num_pdf_classes, *, max_leaves, roots=None, questions=None,
           min_count=100.0, gain_threshold=0.0, cluster_threshold=None,
           var_floor=0.01) -> Tree
    cluster_threshold: None = no leaf clustering, < 0 = the smallest split gain (Kaldi's
    build-tree default), else nats. Raises ValueError on empty stats, unknown phones,
    pdf classes beyond the topology, phones in no root, max_leaves below the roots' need.
Tree
    .num_pdfs, .context_width (3 when built), .central_position (1), .phone2num_pdf_classes
    .compute((left, centre, right), pdf_class) -> int | None     (pdf id)
    .map_contexts(keys (N, 4)) -> (N,) int64 pdf ids (-1 where undefined)
    .get_pdf_info() -> list over pdfs of sorted [(phone, pdf_class), ...]
    .leaves_per_phone() -> dict[phone, num distinct pdfs]
    .leaf_stats -> (counts (P,), sums (P, D), sumsqs (P, D)) pooled training stats per pdf
                   (None for a tree read from a file); zero count for pdfs with no data.
    .leaf_gaussians(var_floor=0.01) -> (means (P, D), variances (P, D)) from leaf_stats
    .to_bytes() -> Kaldi binary ContextDependency bytes (no "\\0B" header)
    .write(path) -> writes the Kaldi binary `tree` file ("\\0B" + bytes), atomically
    .to_kaldi() -> kaldi_hmm_gmm.ContextDependency
    Tree.from_bytes(data, phone2num_pdf_classes=None) / read_tree(path, p2n=None) -> Tree
        (parses any Kaldi binary tree, monophone N=1 included)
load_context_dependency(path_or_bytes) -> kaldi_hmm_gmm.ContextDependency (any N/P)
gaussian_objf(counts (...,), sums (..., D), sumsqs (..., D), var_floor) -> (...,) nats

Leaf(pdf), Split(key, yes_set, yes, no), Table(key, children): the event-map nodes
    (Kaldi's CE, SE, TE) a Tree is made of.

Typical use (after a monophone alignment):
    stats = TreeStats(feat_dim)
    tables = TransitionTables(trans_model)
    for utt in utts:
        phones, classes, starts = alignment_to_phones(tables, ali[utt])
        stats.accumulate(feats[utt], phones, classes, starts)
    questions = cluster_phones(stats) + read_questions(extra_questions_int)
    tree = build_tree(stats, topo.get_phone_to_num_pdf_classes(), max_leaves=2000,
                      roots=read_roots(roots_txt, symbols), questions=questions,
                      min_count=100, gain_threshold=300, cluster_threshold=-1)
    tree.write(exp_dir / "tree")
    trans_model = kaldi_hmm_gmm.TransitionModel(tree.to_kaldi(), topo)
    means, variances = tree.leaf_gaussians()  # one Gaussian per pdf to start from
    pdf_ids = tree.map_contexts(frame_contexts(phones, classes, starts))  # old ali -> pdfs

Command line: `python -m asr.tree info TREE [--topo TOPO [--phones phones.txt]]`.

Cost of building: a leaf's best question is found once, when the leaf is made: one sparse
(values x contexts) @ (contexts x stats) product gives its per-value statistics for every
key, one sparse (questions x values) product the statistics of every question's yes side;
best splits wait in a max-heap. Time is about a * leaves + b * contexts * depth: linear in
the number of leaves (measured ~0.7 ms CPU per leaf: 32000 leaves from 117k contexts,
45 phones, 88 questions, D=39 in 21 s CPU).
Memory: the statistics (contexts x (2D+1) float64) and one cached split per leaf.
Switchboard-size stand-in (bench/stand_ins_tree.py tree: 244k stats rows, ~1e8 frames, D=40,
82 questions): 32000 leaves in ~10 s CPU on one core; leaf clustering (cluster_threshold=-1)
adds ~5 s (per-root cost matrices, largest root 1945 leaves); the build adds no memory above
the statistics' own peak.
"""

from asr.tree.build import build_tree
from asr.tree.event_map import Leaf, Split, Table, Tree, load_context_dependency, read_tree
from asr.tree.questions import Root, cluster_phones, read_questions, read_roots, read_symbols
from asr.tree.stats import (CENTRAL_POSITION, CONTEXT_WIDTH, PDF_CLASS_KEY, TransitionTables, TreeStats,
                            alignment_to_phones, frame_contexts, gaussian_objf)

__all__ = ["CENTRAL_POSITION", "CONTEXT_WIDTH", "PDF_CLASS_KEY", "Leaf", "Root", "Split", "Table",
           "TransitionTables", "Tree", "TreeStats", "alignment_to_phones", "build_tree", "cluster_phones",
           "frame_contexts", "gaussian_objf", "load_context_dependency", "read_questions", "read_roots",
           "read_symbols", "read_tree"]
