"""Phonetic context-dependency tree built in numpy, written as Kaldi's binary `tree`.

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
"""

from __future__ import annotations

import argparse
import heapq
import logging
import math
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from scipy import sparse

from asr.utils import atomic_path, setup_logging

logger = logging.getLogger(__name__)

PDF_CLASS_KEY = -1
CONTEXT_WIDTH = 3
CENTRAL_POSITION = 1
_LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------
# Alignment conversion
# ---------------------------------------------------------------------------


class TransitionTables:
    """Lookup arrays per transition id of a kaldi_hmm_gmm.TransitionModel (index 0 unused):
    `phone` (phone id), `pdf_class` (from the topology: `HmmState.forward_pdf_class`, or
    `self_loop_pdf_class` for a self-loop), `is_final` (the transition leaves the phone).
    Build once per model (a Python loop over transition ids), then convert many
    alignments with `alignment_to_phones(tables, ali)`."""

    def __init__(self, trans_model):
        num_tids = trans_model.num_transition_ids
        id2state = trans_model.id2state
        # TransitionModelTuple exposes (phone, hmm_state, forward_pdf, self_loop_pdf) only
        # through its pickled state.
        tuples = [t.__getstate__() for t in trans_model.tuples]
        topo = trans_model.topo
        entries: dict[int, list] = {}
        self.phone = np.zeros(num_tids + 1, dtype=np.int32)
        self.pdf_class = np.full(num_tids + 1, -1, dtype=np.int32)
        self.is_final = np.zeros(num_tids + 1, dtype=bool)
        self.is_self_loop = np.zeros(num_tids + 1, dtype=bool)
        self.transition_state = np.asarray(id2state, dtype=np.int64)
        for tid in range(1, num_tids + 1):
            phone, hmm_state, _, _ = tuples[id2state[tid] - 1]
            if phone not in entries:
                entries[phone] = topo.topology_for_phone(phone)
            state = entries[phone][hmm_state]
            self.phone[tid] = phone
            self.is_self_loop[tid] = trans_model.is_self_loop(tid)
            self.pdf_class[tid] = (state.self_loop_pdf_class if self.is_self_loop[tid]
                                   else state.forward_pdf_class)
            self.is_final[tid] = trans_model.is_final(tid)


_LAST_TABLES: list = []  # memo of the last (trans_model, TransitionTables): per-utterance calls


def _tables_for(trans_model) -> TransitionTables:
    if not _LAST_TABLES or _LAST_TABLES[0][0] is not trans_model:
        _LAST_TABLES[:] = [(trans_model, TransitionTables(trans_model))]
    return _LAST_TABLES[0][1]


def alignment_to_phones(trans_model, transition_ids) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Transition-id alignment (T,) -> (phones (T,) int32, pdf_classes (T,) int32,
    phone_starts (T,) bool).

    `trans_model`: a kaldi_hmm_gmm.TransitionModel (the tables of the last model used are
    kept, so calling this per utterance is cheap) or its TransitionTables. Phone instances
    are split where a transition leaves its phone (`TransitionModel.is_final`), so two
    consecutive instances of one phone stay apart; alignments from reordered graphs
    (self-loops after the forward transition, Kaldi's default) are detected and handled.
    """
    tables = trans_model if isinstance(trans_model, TransitionTables) else \
        _tables_for(trans_model)
    tids = np.asarray(transition_ids, dtype=np.int64)
    if tids.ndim != 1:
        raise ValueError(f"transition_ids must be 1-D, got shape {tids.shape}")
    if tids.size and (tids.min() < 1 or tids.max() >= len(tables.phone)):
        raise ValueError(
            f"transition ids must be in 1..{len(tables.phone) - 1}, got range "
            f"{tids.min()}..{tids.max()}")
    starts = np.zeros(len(tids), dtype=bool)
    if len(tids):
        final, loop = tables.is_final[tids], tables.is_self_loop[tids]
        state = tables.transition_state[tids]
        # Reordered graphs (Kaldi's default) put a state's self-loops after its outgoing
        # transition, so a phone can end "exit, loop, loop": seen as a final transition
        # followed by a self-loop of the same transition state.
        reordered = bool(np.any(final[:-1] & loop[1:] & (state[1:] == state[:-1])))
        if reordered:
            # Every phone starts with a non-self-loop transition; it is a start when the
            # previous non-self-loop transition left the previous phone.
            index = np.where(~loop, np.arange(len(tids)), -1)
            previous = np.maximum.accumulate(np.concatenate([[-1], index[:-1]]))
            starts = ~loop & (previous >= 0) & final[np.maximum(previous, 0)]
        else:
            starts[1:] = final[:-1]
        starts[0] = True
    return tables.phone[tids], tables.pdf_class[tids], starts


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def gaussian_objf(counts, sums, sumsqs, var_floor: float = 0.01) -> np.ndarray:
    """Diagonal-Gaussian log-likelihood (nats) of data with these stats under its own ML
    Gaussian, as Kaldi's GaussClusterable::Objf. Shapes (...,), (..., D), (..., D) -> (...,)."""
    counts = np.asarray(counts, dtype=np.float64)
    dim = np.shape(sums)[-1]
    safe = np.where(counts > 0, counts, 1.0)[..., None]
    mean = sums / safe
    var = np.maximum(sumsqs / safe - mean * mean, var_floor)
    objf = -0.5 * counts * (np.log(var).sum(axis=-1) + dim * (_LOG_2PI + 1.0))
    return np.where(counts > 0, objf, 0.0)


def frame_contexts(phones, pdf_classes, phone_starts=None) -> np.ndarray:
    """Per-frame context keys (T, 4) int64 rows (left, centre, right, pdf_class) of one
    utterance. phones, pdf_classes (T,) ints; phone_starts (T,) bool marks the first frame
    of each phone instance (default: where the phone id changes). The left context of the
    first phone and the right context of the last are phone 0. With a Tree,
    `tree.map_contexts(frame_contexts(...))` gives the per-frame pdf ids."""
    phones = np.asarray(phones, dtype=np.int64)
    pdf_classes = np.asarray(pdf_classes, dtype=np.int64)
    if phones.ndim != 1 or pdf_classes.shape != phones.shape:
        raise ValueError(f"alignment length mismatch: phones {phones.shape}, "
                         f"pdf_classes {pdf_classes.shape}")
    num_frames = len(phones)
    if num_frames == 0:
        return np.zeros((0, 4), dtype=np.int64)
    if phones.min() < 1:
        raise ValueError(f"phone ids in an alignment must be >= 1, got {phones.min()}")
    if pdf_classes.min() < 0:
        raise ValueError(f"pdf classes must be >= 0, got {pdf_classes.min()}")
    if phone_starts is None:
        starts = np.ones(num_frames, dtype=bool)
        starts[1:] = phones[1:] != phones[:-1]
    else:
        starts = np.array(phone_starts, dtype=bool)
        if starts.shape != (num_frames,):
            raise ValueError(f"phone_starts must have shape ({num_frames},), got {starts.shape}")
        starts[0] = True
        if np.any((phones[1:] != phones[:-1]) & ~starts[1:]):
            raise ValueError("phone_starts misses a frame where the phone id changes")
    segment = np.cumsum(starts) - 1  # (T,) phone-instance index
    seg_phone = phones[starts]
    seg_left = np.concatenate([[0], seg_phone[:-1]])
    seg_right = np.concatenate([seg_phone[1:], [0]])
    return np.stack([seg_left[segment], phones, seg_right[segment], pdf_classes], axis=1)


class TreeStats:
    """Sufficient statistics per context (left, centre, right, pdf_class).

    Arrays (after consolidation, sorted by key): `keys` (N, 4) int32, `counts` (N,),
    `sums` (N, D), `sumsqs` (N, D), float64. Accumulation appends per-call rows and merges
    equal keys lazily (vectorised), so many utterances cost little Python work.
    """

    def __init__(self, dim: int):
        if dim <= 0:
            raise ValueError(f"feature dimension must be positive, got {dim}")
        self.dim = int(dim)
        self._keys = np.zeros((0, 4), dtype=np.int32)
        self._stats = np.zeros((0, 1 + 2 * self.dim), dtype=np.float64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._pending_rows = 0

    # -- accumulation ------------------------------------------------------
    def accumulate(self, feats, phones, pdf_classes, phone_starts=None) -> None:
        """Add one utterance. feats (T, D); phones, pdf_classes (T,) ints; phone_starts (T,)
        bool marks the first frame of each phone instance (default: where the phone id
        changes). Left/right context of the first/last phone instance is phone 0."""
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise ValueError(f"feats must be (frames, {self.dim}), got {feats.shape}")
        keys = frame_contexts(phones, pdf_classes, phone_starts)
        num_frames = feats.shape[0]
        if len(keys) != num_frames:
            raise ValueError(f"alignment length mismatch: feats have {num_frames} frames, "
                             f"the alignment {len(keys)}")
        if num_frames == 0:
            return
        stats = np.concatenate([np.ones((num_frames, 1)), feats, feats * feats], axis=1)
        keys, stats = _reduce_by_key(keys, stats)
        self._pending.append((keys.astype(np.int32), stats))
        self._pending_rows += len(keys)
        if self._pending_rows > 200_000:
            self._consolidate()

    def add(self, other: "TreeStats") -> None:
        """Add another TreeStats (e.g. from a parallel job) into this one."""
        if other.dim != self.dim:
            raise ValueError(f"cannot add stats of dim {other.dim} to stats of dim {self.dim}")
        other._consolidate()
        self._pending.append((other._keys.copy(), other._stats.copy()))
        self._pending_rows += len(other._keys)

    def _consolidate(self) -> None:
        if not self._pending:
            return
        keys = np.concatenate([self._keys] + [k for k, _ in self._pending])
        stats = np.concatenate([self._stats] + [s for _, s in self._pending])
        self._keys, self._stats = _reduce_by_key(keys, stats)
        self._keys = self._keys.astype(np.int32)
        self._pending, self._pending_rows = [], 0

    # -- access ------------------------------------------------------------
    @property
    def keys(self) -> np.ndarray:
        self._consolidate()
        return self._keys

    @property
    def stats(self) -> np.ndarray:
        """(N, 1 + 2D): count, sum, sum of squares per context."""
        self._consolidate()
        return self._stats

    @property
    def counts(self) -> np.ndarray:
        return self.stats[:, 0]

    @property
    def sums(self) -> np.ndarray:
        return self.stats[:, 1:1 + self.dim]

    @property
    def sumsqs(self) -> np.ndarray:
        return self.stats[:, 1 + self.dim:]

    @property
    def num_contexts(self) -> int:
        return len(self.keys)

    @classmethod
    def from_arrays(cls, keys, counts, sums, sumsqs) -> "TreeStats":
        """Build from arrays: keys (N, 4) ints, counts (N,), sums (N, D), sumsqs (N, D)."""
        keys = np.asarray(keys, dtype=np.int64).reshape(-1, 4)
        sums = np.asarray(sums, dtype=np.float64)
        if sums.ndim != 2 or len(sums) != len(keys):
            raise ValueError(f"sums must be ({len(keys)}, D), got {sums.shape}")
        out = cls(sums.shape[1])
        stats = np.concatenate(
            [np.asarray(counts, dtype=np.float64).reshape(-1, 1), sums,
             np.asarray(sumsqs, dtype=np.float64).reshape(sums.shape)], axis=1)
        out._pending.append((keys.astype(np.int32), stats))
        out._consolidate()
        return out

    def save(self, path) -> None:
        """Write as .npz (keys, stats)."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, keys=self.keys, stats=self.stats, dim=np.int64(self.dim))

    @classmethod
    def load(cls, path) -> "TreeStats":
        with np.load(path) as z:
            out = cls(int(z["dim"]))
            out._keys, out._stats = z["keys"].astype(np.int32), z["stats"].astype(np.float64)
        return out


def _reduce_by_key(keys: np.ndarray, stats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum rows of `stats` (N, F) with equal rows of `keys` (N, 4); result sorted by key."""
    if len(keys) == 0:
        return keys.reshape(0, 4), stats
    order = np.lexsort(keys.T[::-1])
    keys, stats = keys[order], stats[order]
    new = np.ones(len(keys), dtype=bool)
    new[1:] = np.any(keys[1:] != keys[:-1], axis=1)
    starts = np.flatnonzero(new)
    return keys[starts], np.add.reduceat(stats, starts, axis=0)


# ---------------------------------------------------------------------------
# Roots and questions
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Root:
    """A tree root: phones that share it; `shared`: one root for all pdf classes (the tree
    may ask about the pdf class); `split`: whether the tree may split it at all."""

    phones: tuple[int, ...]
    shared: bool = True
    split: bool = True

    def __post_init__(self):
        object.__setattr__(self, "phones", tuple(sorted(int(p) for p in self.phones)))
        if not self.phones or min(self.phones) < 1:
            raise ValueError(f"a root needs phone ids >= 1, got {self.phones}")


def read_symbols(path) -> dict[str, int]:
    """phones.txt / words.txt -> {symbol: id}."""
    table = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            sym, idx = line.split()
            table[sym] = int(idx)
    return table


def _phone_ids(tokens: Sequence[str], symbols: dict[str, int] | None, where: str) -> list[int]:
    out = []
    for tok in tokens:
        if symbols is not None and tok in symbols:
            out.append(symbols[tok])
        elif tok.lstrip("-").isdigit():
            out.append(int(tok))
        else:
            raise ValueError(f"{where}: unknown phone '{tok}'")
    return out


def read_questions(path, symbols: dict[str, int] | None = None) -> list[list[int]]:
    """Questions file, one phone set per line (ids, or names with `symbols` = phones.txt)."""
    questions = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            questions.append(sorted(set(_phone_ids(line.split(), symbols, f"{path}:{lineno}"))))
    return questions


def read_roots(path, symbols: dict[str, int] | None = None) -> list[Root]:
    """Kaldi roots file: lines `shared|not-shared split|not-split PHONE...`."""
    roots = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        where = f"{path}:{lineno}"
        if len(parts) < 3 or parts[0] not in ("shared", "not-shared") or parts[1] not in (
                "split", "not-split"):
            raise ValueError(f"{where}: expected 'shared|not-shared split|not-split phones...'")
        roots.append(Root(tuple(_phone_ids(parts[2:], symbols, where)),
                          shared=parts[0] == "shared", split=parts[1] == "split"))
    return roots


def cluster_phones(stats: TreeStats, phone_sets: Sequence[Sequence[int]] | None = None,
                   pdf_classes: Sequence[int] = (1,), var_floor: float = 0.01) -> list[list[int]]:
    """Phone questions by top-down binary clustering, as Kaldi's cluster-phones.

    Each phone set (default: each centre phone seen in `stats`) is one item with the
    Gaussian stats pooled over contexts with a pdf class in `pdf_classes` (all classes if a
    set has none there). Items are split recursively in two by 2-means on the Gaussian
    likelihood; every node of the resulting tree (except the root) is a question: a sorted
    list of phones. Deterministic.
    """
    keys, data = stats.keys, stats.stats
    if len(keys) == 0:
        raise ValueError("cluster_phones: the tree statistics are empty")
    if phone_sets is None:
        phone_sets = [[int(p)] for p in np.unique(keys[:, 1])]
    phone_sets = [sorted(set(int(p) for p in s)) for s in phone_sets]
    items, item_sets = [], []
    wanted = np.isin(keys[:, 3], np.asarray(pdf_classes))
    for s in phone_sets:
        in_set = np.isin(keys[:, 1], s)
        pooled = data[in_set & wanted].sum(axis=0)
        if pooled[0] <= 0:
            pooled = data[in_set].sum(axis=0)
        if pooled[0] <= 0:
            logger.warning("cluster_phones: no statistics for phone set %s; left out", s)
            continue
        items.append(pooled)
        item_sets.append(s)
    if not items:
        raise ValueError("cluster_phones: none of the phone sets has statistics")
    items = np.asarray(items)
    dim = stats.dim

    def objf(x):
        return gaussian_objf(x[..., 0], x[..., 1:1 + dim], x[..., 1 + dim:], var_floor)

    questions: list[list[int]] = []

    def two_means(x: np.ndarray) -> np.ndarray:
        """Assignment (n,) in {0, 1} of items with stats x (n, F), n >= 2."""
        own = objf(x)
        loss = own[:, None] + own[None, :] - objf(x[:, None, :] + x[None, :, :])
        np.fill_diagonal(loss, -np.inf)
        a, b = np.unravel_index(int(np.argmax(loss)), loss.shape)  # most different pair
        seeds = x[[a, b]]
        cost = own[:, None] + objf(seeds)[None, :] - objf(x[:, None, :] + seeds[None, :, :])
        assign = np.argmin(cost, axis=1)
        assign[a], assign[b] = 0, 1
        for _ in range(20):
            cost = np.empty((len(x), 2))
            for c in range(2):
                # Cluster c without the item itself, so an item's cost of staying is fair.
                base = x[assign == c].sum(axis=0)[None, :] - x * (assign == c)[:, None]
                cost[:, c] = objf(base) + own - objf(base + x)
            new_assign = np.argmin(cost, axis=1)
            if new_assign.min() == new_assign.max() or np.array_equal(new_assign, assign):
                break
            assign = new_assign
        return assign

    def split(members: list[int]) -> None:
        if len(members) < 2:
            return
        assign = two_means(items[members])
        for c in range(2):
            sub = [m for m, a in zip(members, assign) if a == c]
            questions.append(sorted(p for i in sub for p in item_sets[i]))
            split(sub)

    split(list(range(len(items))))
    return _dedup_questions(questions)


def _dedup_questions(questions: Iterable[Sequence[int]]) -> list[list[int]]:
    seen, out = set(), []
    for q in questions:
        t = tuple(sorted(set(int(p) for p in q)))
        if t and t not in seen:
            seen.add(t)
            out.append(list(t))
    return out


# ---------------------------------------------------------------------------
# Tree structure and Kaldi serialisation
# ---------------------------------------------------------------------------


@dataclass
class Leaf:
    pdf: int


@dataclass
class Split:
    key: int
    yes_set: tuple[int, ...]
    yes: object
    no: object


@dataclass
class Table:
    key: int
    children: list  # node or None per value


def _node_eval(node, event: dict[int, int]) -> int | None:
    while True:
        if isinstance(node, Leaf):
            return node.pdf
        if node is None or node.key not in event:
            return None
        value = event[node.key]
        if isinstance(node, Split):
            node = node.yes if value in node.yes_set else node.no
        else:
            if value < 0 or value >= len(node.children):
                return None
            node = node.children[value]


def _node_map(node, keys: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """Vectorised evaluation: out[rows] = pdf of keys[rows] (key column: -1 -> 3)."""
    stack = [(node, rows)]
    while stack:
        node, rows = stack.pop()
        if len(rows) == 0 or node is None:
            continue
        if isinstance(node, Leaf):
            out[rows] = node.pdf
            continue
        values = keys[rows, 3 if node.key == PDF_CLASS_KEY else node.key]
        if isinstance(node, Split):
            yes = np.isin(values, np.asarray(node.yes_set, dtype=np.int64))
            stack.append((node.yes, rows[yes]))
            stack.append((node.no, rows[~yes]))
        else:
            for v in np.unique(values):
                if 0 <= v < len(node.children):
                    stack.append((node.children[v], rows[values == v]))


class _Writer:
    def __init__(self):
        self.parts: list[bytes] = []

    def token(self, tok: str):
        self.parts.append(tok.encode() + b" ")

    def int32(self, v: int):
        self.parts.append(b"\x04" + struct.pack("<i", v))

    def size(self, v: int):
        self.parts.append(b"\xfc" + struct.pack("<I", v))

    def int_vector(self, values: Sequence[int]):
        self.parts.append(b"\x04" + struct.pack("<i", len(values)) +
                          np.asarray(values, dtype="<i4").tobytes())


def _write_node(w: _Writer, node) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            w.token(item)
        elif item is None:
            w.token("NULL")
        elif isinstance(item, Leaf):
            w.token("CE")
            w.int32(item.pdf)
        elif isinstance(item, Split):
            w.token("SE")
            w.int32(item.key)
            w.int_vector(sorted(item.yes_set))
            w.token("{")
            stack.extend(["}", item.no, item.yes])
        else:
            w.token("TE")
            w.int32(item.key)
            w.size(len(item.children))
            w.token("(")
            stack.append(")")
            stack.extend(reversed(item.children))


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def token(self) -> str:
        end = self.data.index(b" ", self.pos)
        tok = self.data[self.pos:end].decode()
        self.pos = end + 1
        return tok

    def expect(self, tok: str):
        got = self.token()
        if got != tok:
            raise ValueError(f"Kaldi tree: expected '{tok}' at byte {self.pos}, got '{got}'")

    def int32(self) -> int:
        if self.data[self.pos] != 4:
            raise ValueError(f"Kaldi tree: expected an int32 at byte {self.pos}")
        (v,) = struct.unpack_from("<i", self.data, self.pos + 1)
        self.pos += 5
        return v

    def size(self) -> int:
        (v,) = struct.unpack_from("<I", self.data, self.pos + 1)
        self.pos += 5
        return v

    def int_vector(self) -> list[int]:
        if self.data[self.pos] != 4:
            raise ValueError(f"Kaldi tree: expected an int32 vector at byte {self.pos}")
        (n,) = struct.unpack_from("<i", self.data, self.pos + 1)
        vals = np.frombuffer(self.data, dtype="<i4", count=n, offset=self.pos + 5).tolist()
        self.pos += 5 + 4 * n
        return vals

    def node(self):
        tok = self.token()
        if tok == "NULL":
            return None
        if tok == "CE":
            return Leaf(self.int32())
        if tok == "SE":
            key = self.int32()
            yes_set = tuple(self.int_vector())
            self.expect("{")
            yes = self.node()
            no = self.node()
            self.expect("}")
            return Split(key, yes_set, yes, no)
        if tok == "TE":
            key = self.int32()
            n = self.size()
            self.expect("(")
            children = [self.node() for _ in range(n)]
            self.expect(")")
            return Table(key, children)
        raise ValueError(f"Kaldi tree: unknown event-map token '{tok}'")


class Tree:
    """A context-dependency tree (N=3, P=1) mapping (left, centre, right, pdf_class) to pdf."""

    def __init__(self, root, num_pdfs: int, phone2num_pdf_classes: Sequence[int] | None = None,
                 leaf_stats: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                 context_width: int = CONTEXT_WIDTH, central_position: int = CENTRAL_POSITION):
        self.root = root
        self.num_pdfs = int(num_pdfs)
        self.context_width = int(context_width)
        self.central_position = int(central_position)
        self.phone2num_pdf_classes = (list(phone2num_pdf_classes)
                                      if phone2num_pdf_classes is not None else None)
        self.leaf_stats = leaf_stats

    # -- evaluation ----------------------------------------------------------
    def compute(self, phone_seq: Sequence[int], pdf_class: int) -> int | None:
        """pdf id for the context (left, centre, right) and pdf class, None if undefined."""
        if len(phone_seq) != self.context_width:
            raise ValueError(f"phone_seq must have {self.context_width} phones, got {phone_seq}")
        event = {i: int(p) for i, p in enumerate(phone_seq)}
        event[PDF_CLASS_KEY] = int(pdf_class)
        return _node_eval(self.root, event)

    def map_contexts(self, keys) -> np.ndarray:
        """keys (N, 4) rows (left, centre, right, pdf_class) -> pdf ids (N,), -1 if undefined."""
        if (self.context_width, self.central_position) != (CONTEXT_WIDTH, CENTRAL_POSITION):
            raise ValueError("map_contexts needs a triphone tree (N=3, P=1)")
        keys = np.asarray(keys, dtype=np.int64).reshape(-1, 4)
        out = np.full(len(keys), -1, dtype=np.int64)
        _node_map(self.root, keys, np.arange(len(keys)), out)
        return out

    def get_pdf_info(self, phones: Sequence[int] | None = None) -> list[list[tuple[int, int]]]:
        """For each pdf, the sorted (phone, pdf_class) pairs that can reach it (any context),
        as kaldi_hmm_gmm.ContextDependency.get_pdf_info."""
        info: list[set] = [set() for _ in range(self.num_pdfs)]
        p2n = self._require_classes()
        phones = phones if phones is not None else [p for p in range(len(p2n)) if p2n[p] > 0]
        for phone in phones:
            for pdf_class in range(p2n[phone]):
                for pdf in self._reachable(phone, pdf_class):
                    info[pdf].add((phone, pdf_class))
        return [sorted(s) for s in info]

    def _reachable(self, phone: int, pdf_class: int) -> set[int]:
        fixed = {self.central_position: phone, PDF_CLASS_KEY: pdf_class}
        found, stack = set(), [self.root]
        while stack:
            node = stack.pop()
            if node is None:
                continue
            if isinstance(node, Leaf):
                found.add(node.pdf)
            elif node.key in fixed:
                v = fixed[node.key]
                if isinstance(node, Split):
                    stack.append(node.yes if v in node.yes_set else node.no)
                elif 0 <= v < len(node.children):
                    stack.append(node.children[v])
            elif isinstance(node, Split):
                stack.extend([node.yes, node.no])
            else:
                stack.extend(node.children)
        return found

    def leaves_per_phone(self) -> dict[int, int]:
        """{phone: number of distinct pdfs over its pdf classes and contexts}."""
        p2n = self._require_classes()
        return {p: len(set().union(*[self._reachable(p, c) for c in range(p2n[p])]))
                for p in range(len(p2n)) if p2n[p] > 0}

    def _require_classes(self) -> list[int]:
        if self.phone2num_pdf_classes is None:
            raise ValueError("this tree has no phone2num_pdf_classes (pass it to Tree/read_tree)")
        return self.phone2num_pdf_classes

    def leaf_gaussians(self, var_floor: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
        """(means (P, D), variances (P, D)) per pdf from `leaf_stats`; pdfs without data get
        mean 0 and variance 1."""
        if self.leaf_stats is None:
            raise ValueError("this tree has no leaf statistics (it was read from a file)")
        counts, sums, sumsqs = self.leaf_stats
        safe = np.where(counts > 0, counts, 1.0)[:, None]
        means = np.where(counts[:, None] > 0, sums / safe, 0.0)
        var = np.where(counts[:, None] > 0, sumsqs / safe - means ** 2, 1.0)
        return means, np.maximum(var, var_floor)

    # -- serialisation -------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Kaldi binary ContextDependency bytes (no binary-mode header)."""
        w = _Writer()
        w.token("ContextDependency")
        w.int32(self.context_width)
        w.int32(self.central_position)
        w.token("ToPdf")
        _write_node(w, self.root)
        w.token("EndContextDependency")
        return b"".join(w.parts)

    def write(self, path) -> None:
        """Write the Kaldi binary `tree` file ("\\0B" header + bytes), atomically."""
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(b"\0B" + self.to_bytes())

    def to_kaldi(self):
        """This tree as a kaldi_hmm_gmm.ContextDependency."""
        return load_context_dependency(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes,
                   phone2num_pdf_classes: Sequence[int] | None = None) -> "Tree":
        """Parse Kaldi binary tree bytes (with or without the "\\0B" header)."""
        if data[:2] == b"\0B":
            data = data[2:]
        r = _Reader(data)
        r.expect("ContextDependency")
        width, central = r.int32(), r.int32()
        if not 0 <= central < width:
            raise ValueError(f"Kaldi tree: bad context width {width} / central position {central}")
        r.expect("ToPdf")
        root = r.node()
        r.expect("EndContextDependency")
        pdfs, stack = [], [root]
        while stack:
            node = stack.pop()
            if isinstance(node, Leaf):
                pdfs.append(node.pdf)
            elif isinstance(node, Split):
                stack.extend([node.yes, node.no])
            elif isinstance(node, Table):
                stack.extend(node.children)
        return cls(root, max(pdfs) + 1 if pdfs else 0, phone2num_pdf_classes,
                   context_width=width, central_position=central)


def read_tree(path, phone2num_pdf_classes: Sequence[int] | None = None) -> Tree:
    """Read a Kaldi binary `tree` file into a Tree."""
    return Tree.from_bytes(Path(path).read_bytes(), phone2num_pdf_classes)


def load_context_dependency(path_or_bytes):
    """A Kaldi binary tree (file path, or bytes with/without "\\0B") as a
    kaldi_hmm_gmm.ContextDependency (the binding has no reader; its pickled state is
    exactly these bytes)."""
    import kaldi_hmm_gmm

    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        data = Path(path_or_bytes).read_bytes()
    if data[:2] == b"\0B":
        data = data[2:]
    if not data.startswith(b"ContextDependency "):
        raise ValueError("not a Kaldi binary ContextDependency (text trees are not supported)")
    Tree.from_bytes(data)  # validates the structure with a clear error before the binding
    ctx_dep = kaldi_hmm_gmm.ContextDependency.__new__(kaldi_hmm_gmm.ContextDependency)
    ctx_dep.__setstate__((np.frombuffer(data, dtype=np.int8).tolist(),))
    return ctx_dep


# ---------------------------------------------------------------------------
# Building
# ---------------------------------------------------------------------------


@dataclass
class _BuildLeaf:
    rows: np.ndarray          # indices into the stats arrays
    total: np.ndarray         # (1 + 2D,) pooled stats
    objf: float
    group: int                # initial (stub) leaf it descends from; clustering stays inside
    root_index: int
    best: tuple | None = None   # cached (gain, key, yes_set, yes_stats)
    split: tuple | None = None  # once split: (key, yes_set, yes_index, no_index)


class _Builder:
    """Split search. Context values of the four key columns (left, centre, right phone,
    pdf class) are laid out side by side in one value axis of size 3 * V + C, so one
    sparse (values x contexts) @ (contexts x stats) product gives a leaf's per-value stats
    for all keys, and one (questions x values) product gives every question's yes-stats."""

    def __init__(self, stats: TreeStats, p2n: list[int], roots: list[Root],
                 questions: list[list[int]], min_count: float, var_floor: float):
        self.keys = stats.keys.astype(np.int64)
        self.data = stats.stats
        self.dim = stats.dim
        self.roots = roots
        self.min_count = float(min_count)
        self.var_floor = var_floor
        self.num_phone_values = len(p2n)
        max_classes = max(p2n)
        self.num_values = 3 * self.num_phone_values + max_classes
        # Column offset of each key column (0, 1, 2 = phone positions, 3 = pdf class).
        self.offsets = np.array([0, 1, 2, 3]) * self.num_phone_values
        self.phone_question_sets = [tuple(q) for q in questions]
        class_sets = []
        for c in range(max_classes):
            class_sets.append((c,))
            if 0 < c < max_classes - 1:
                class_sets.append(tuple(range(c + 1)))
        self.class_question_sets = [tuple(q) for q in _dedup_questions(class_sets)] \
            if max_classes > 1 else []
        self._question_tables: dict[tuple[int, ...], tuple[np.ndarray, list]] = {}

    def question_table(self, keys_to_ask: tuple[int, ...]) -> tuple[object, list]:
        """(membership (Q, num_values) sparse 0/1, [(key, yes_set)] * Q) for these keys."""
        if keys_to_ask not in self._question_tables:
            entries = []
            for key in keys_to_ask:
                sets = self.class_question_sets if key == PDF_CLASS_KEY else \
                    self.phone_question_sets
                entries.extend((key, q) for q in sets)
            member = np.zeros((len(entries), self.num_values))
            for i, (key, q) in enumerate(entries):
                col = 3 if key == PDF_CLASS_KEY else key
                limit = self.num_values - self.offsets[3] if col == 3 else self.num_phone_values
                member[i, [self.offsets[col] + v for v in q if 0 <= v < limit]] = 1.0
            # Sparse: a sparse @ dense product avoids BLAS threading on tiny matrices.
            self._question_tables[keys_to_ask] = (sparse.csr_matrix(member), entries)
        return self._question_tables[keys_to_ask]

    def objf(self, x: np.ndarray) -> np.ndarray:
        d = self.dim
        return gaussian_objf(x[..., 0], x[..., 1:1 + d], x[..., 1 + d:], self.var_floor)

    def best_split(self, leaf: _BuildLeaf) -> tuple | None:
        """(gain, key, yes_set, yes_stats) of the best allowed question for this leaf."""
        root = self.roots[leaf.root_index]
        keys_to_ask = [0, 2]
        if len(root.phones) > 1:
            keys_to_ask.append(1)
        if root.shared and self.class_question_sets:
            keys_to_ask.append(PDF_CLASS_KEY)
        member, entries = self.question_table(tuple(keys_to_ask))
        rows = leaf.rows
        n = len(rows)
        if n < 2 or not entries:
            return None
        value_index = (self.keys[rows] + self.offsets[None, :]).T.ravel()  # (4n,)
        onehot = sparse.csr_matrix((np.ones(4 * n), (value_index, np.tile(np.arange(n), 4))),
                                   shape=(self.num_values, n))
        per_value = onehot @ self.data[rows]  # (num_values, F)
        yes = member @ per_value              # (Q, F)
        yes_count = yes[:, 0]
        no_count = leaf.total[0] - yes_count
        floor = max(self.min_count, 1e-9)
        ok = np.flatnonzero((yes_count >= floor) & (no_count >= floor))
        if len(ok) == 0:
            return None
        yes_ok = yes[ok]
        both = self.objf(np.stack([yes_ok, leaf.total[None, :] - yes_ok]))  # (2, Q')
        gains = both[0] + both[1] - leaf.objf
        best = int(np.argmax(gains))
        key, yes_set = entries[ok[best]]
        return float(gains[best]), key, yes_set, yes_ok[best]

    def rows_yes(self, leaf: _BuildLeaf, key: int, yes_set: tuple[int, ...]) -> np.ndarray:
        col = 3 if key == PDF_CLASS_KEY else key
        return np.isin(self.keys[leaf.rows, col], np.asarray(yes_set))

    def make_leaf(self, rows, group, root_index, total=None) -> _BuildLeaf:
        if total is None:
            total = self.data[rows].sum(axis=0) if len(rows) else np.zeros(self.data.shape[1])
        return _BuildLeaf(rows=rows, total=total, objf=float(self.objf(total)), group=group,
                          root_index=root_index)


def _check_inputs(stats: TreeStats, p2n: list[int], roots: list[Root]) -> dict[int, int]:
    keys = stats.keys
    if len(keys) == 0 or stats.counts.sum() <= 0:
        raise ValueError("build_tree: the tree statistics are empty")
    phone_to_root: dict[int, int] = {}
    for i, root in enumerate(roots):
        for p in root.phones:
            if p >= len(p2n) or p2n[p] <= 0:
                raise ValueError(f"root {root.phones}: phone {p} has no HMM topology "
                                 "(phone2num_pdf_classes)")
            if p in phone_to_root:
                raise ValueError(f"phone {p} is in more than one root")
            phone_to_root[p] = i
    missing = [p for p in range(1, len(p2n)) if p2n[p] > 0 and p not in phone_to_root]
    if missing:
        raise ValueError(f"phones {missing} have an HMM topology but are in no root")
    centre = np.unique(keys[:, 1])
    unknown = [int(p) for p in centre if int(p) not in phone_to_root]
    if unknown:
        raise ValueError(f"tree statistics have centre phones {unknown} that are in no root "
                         f"/ have no HMM topology (known phones: {sorted(phone_to_root)})")
    ctx = np.unique(np.concatenate([keys[:, 0], keys[:, 2]]))
    bad_ctx = [int(p) for p in ctx if p < 0 or p >= len(p2n) or (p > 0 and p2n[p] <= 0)]
    if bad_ctx:
        raise ValueError(f"tree statistics have context phones {bad_ctx} with no HMM topology")
    num_classes = np.asarray(p2n, dtype=np.int64)[keys[:, 1]]
    bad = keys[:, 3] >= num_classes
    if bad.any():
        k = keys[np.flatnonzero(bad)[0]]
        raise ValueError(f"tree statistics have pdf class {k[3]} for phone {k[1]}, which has "
                         f"only {num_classes[np.flatnonzero(bad)[0]]} pdf classes")
    return phone_to_root


def build_tree(stats: TreeStats, phone2num_pdf_classes: Sequence[int], *, max_leaves: int,
               roots: Sequence[Root] | None = None,
               questions: Sequence[Sequence[int]] | None = None,
               min_count: float = 100.0, gain_threshold: float = 0.0,
               cluster_threshold: float | None = None, var_floor: float = 0.01) -> Tree:
    """Grow a context-dependency tree by greedy likelihood-gain splitting.

    stats: TreeStats; phone2num_pdf_classes: list indexed by phone (see module docstring).
    max_leaves: target number of pdfs (all roots together, before clustering).
    roots: default one shared, splittable root per phone with a topology.
    questions: phone sets asked about the left/right (and, for multi-phone roots, centre)
      phone; default `cluster_phones(stats)`. Pdf-class questions ({c} and {0..c}) are
      added for shared roots.
    min_count: each side of a split needs at least this many frames.
    gain_threshold: splits must gain more than this (nats).
    cluster_threshold: if given, leaves descending from the same initial leaf (the same
      root, or root and pdf class for not-shared roots) are merged bottom-up while the
      cheapest merge loses less than this (nats); merged leaves share a pdf. A negative
      value means the smallest gain of any split made (Kaldi build-tree's default).
    Returns a Tree with dense pdf ids 0..num_pdfs-1 and `leaf_stats`.
    """
    p2n = [int(n) for n in phone2num_pdf_classes]
    if roots is None:
        roots = [Root((p,)) for p in range(1, len(p2n)) if p2n[p] > 0]
    roots = list(roots)
    if not roots:
        raise ValueError("build_tree: no roots (phone2num_pdf_classes lists no phones)")
    phone_to_root = _check_inputs(stats, p2n, roots)
    if questions is None:
        questions = cluster_phones(stats, var_floor=var_floor)
    questions = _dedup_questions(questions)
    if max_leaves < 1:
        raise ValueError(f"max_leaves must be >= 1, got {max_leaves}")

    builder = _Builder(stats, p2n, roots, questions, min_count, var_floor)
    keys = builder.keys
    root_of_phone = np.full(len(p2n), -1, dtype=np.int64)
    for phone, r in phone_to_root.items():
        root_of_phone[phone] = r
    row_root = root_of_phone[keys[:, 1]]

    # Stub: one leaf per shared root, one per pdf class otherwise. `root_templates[r]` is
    # the leaf index of root r, or a list of leaf indices (one per pdf class).
    leaves: list[_BuildLeaf] = []
    root_templates: list = []
    order = np.argsort(row_root, kind="stable")
    bounds = np.searchsorted(row_root[order], np.arange(len(roots) + 1))
    for r, root in enumerate(roots):
        rows = order[bounds[r]:bounds[r + 1]]
        if root.shared:
            root_templates.append(len(leaves))
            leaves.append(builder.make_leaf(rows, len(leaves), r))
        else:
            num_classes = max(p2n[p] for p in root.phones)
            root_templates.append(list(range(len(leaves), len(leaves) + num_classes)))
            for c in range(num_classes):
                leaves.append(builder.make_leaf(rows[keys[rows, 3] == c], len(leaves), r))
    if len(leaves) > max_leaves:
        raise ValueError(f"max_leaves={max_leaves} is below the {len(leaves)} leaves the roots "
                         "need before any split")

    # Greedy splitting: a max-heap of the cached best split of every current leaf.
    heap: list[tuple[float, int]] = []

    def consider(index: int) -> None:
        leaf = leaves[index]
        if not roots[leaf.root_index].split:
            return
        leaf.best = builder.best_split(leaf)
        if leaf.best is not None and leaf.best[0] > gain_threshold:
            heapq.heappush(heap, (-leaf.best[0], index))  # ties: lower index first

    for i in range(len(leaves)):
        consider(i)
    num_leaves = len(leaves)
    total_gain, smallest_gain = 0.0, math.inf
    while heap and num_leaves < max_leaves:
        _, index = heapq.heappop(heap)
        leaf = leaves[index]
        gain, key, yes_set, yes_total = leaf.best
        yes_mask = builder.rows_yes(leaf, key, yes_set)
        leaves.append(builder.make_leaf(leaf.rows[yes_mask], leaf.group, leaf.root_index,
                                        yes_total))
        leaves.append(builder.make_leaf(leaf.rows[~yes_mask], leaf.group, leaf.root_index,
                                        leaf.total - yes_total))
        leaf.split = (key, tuple(sorted(yes_set)), len(leaves) - 2, len(leaves) - 1)
        leaf.rows, leaf.best = np.zeros(0, dtype=np.int64), None  # now an inner node
        consider(len(leaves) - 2)
        consider(len(leaves) - 1)
        num_leaves += 1
        total_gain += gain
        smallest_gain = min(smallest_gain, gain)

    # Event-map nodes: a Split for every split leaf, a Leaf for every final one.
    nodes = [Split(lf.split[0], lf.split[1], None, None) if lf.split else Leaf(-1)
             for lf in leaves]
    for lf, node in zip(leaves, nodes):
        if lf.split:
            node.yes, node.no = nodes[lf.split[2]], nodes[lf.split[3]]
    root_nodes = [nodes[t] if isinstance(t, int) else Table(PDF_CLASS_KEY, [nodes[i] for i in t])
                  for t in root_templates]
    final = [i for i, lf in enumerate(leaves) if not lf.split]

    # Optional clustering of leaves within each initial leaf: cluster id per final leaf.
    cluster_of = list(range(len(final)))
    if cluster_threshold is not None:
        if cluster_threshold < 0:
            cluster_threshold = smallest_gain if math.isfinite(smallest_gain) else 0.0
        cluster_of = _cluster_leaves(builder, [leaves[i] for i in final], cluster_threshold)
    cluster_of_node = {id(nodes[i]): c for i, c in zip(final, cluster_of)}

    # Dense pdf ids in depth-first order over the roots (yes before no).
    top = _stub_map(roots, root_nodes)
    pdf_of_cluster: dict[int, int] = {}
    stack = [top]
    while stack:
        n = stack.pop()
        if isinstance(n, Leaf):
            c = cluster_of_node[id(n)]
            n.pdf = pdf_of_cluster.setdefault(c, len(pdf_of_cluster))
        elif isinstance(n, Split):
            stack.extend([n.no, n.yes])
        elif isinstance(n, Table):
            stack.extend(reversed([c for c in n.children if c is not None]))
    num_pdfs = len(pdf_of_cluster)
    pooled = np.zeros((num_pdfs, builder.data.shape[1]))
    for i in final:
        pooled[nodes[i].pdf] += leaves[i].total
    d = builder.dim
    logger.info("built tree: %d leaves, %d pdfs after clustering, split gain %.1f nats",
                len(final), num_pdfs, total_gain)
    return Tree(top, num_pdfs, p2n, (pooled[:, 0], pooled[:, 1:1 + d], pooled[:, 1 + d:]))


def _cluster_leaves(builder: _Builder, leaves: list[_BuildLeaf], threshold: float) -> list[int]:
    """Greedy bottom-up merging of leaves with the same `group`: returns a cluster id per
    leaf (the smallest leaf index in its cluster)."""
    cluster_of = list(range(len(leaves)))
    groups: dict[int, list[int]] = {}
    for i, leaf in enumerate(leaves):
        groups.setdefault(leaf.group, []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        x = np.stack([leaves[i].total for i in members])
        objf = builder.objf(x)
        n = len(members)
        cost = np.full((n, n), np.inf)
        for i in range(n - 1):
            cost[i, i + 1:] = objf[i] + objf[i + 1:] - builder.objf(x[i] + x[i + 1:])
        alive = np.ones(n, dtype=bool)
        label = np.arange(n)
        while True:
            flat = int(np.argmin(cost))
            a, b = divmod(flat, n)
            if not np.isfinite(cost[a, b]) or cost[a, b] >= threshold:
                break
            # merge b into a (a < b)
            x[a] += x[b]
            objf[a] = builder.objf(x[a])
            alive[b] = False
            label[label == b] = a
            cost[b, :] = np.inf
            cost[:, b] = np.inf
            others = np.flatnonzero(alive)
            others = others[others != a]
            merged = objf[a] + objf[others] - builder.objf(x[a] + x[others])
            lo, hi = np.minimum(a, others), np.maximum(a, others)
            cost[lo, hi] = merged
        for j, i in enumerate(members):
            cluster_of[i] = members[label[j]]
    return cluster_of


def _stub_map(roots: list[Root], nodes: list):
    """Top of the tree over the roots, as Kaldi's stub map: a table on the centre phone when
    every root has one phone, else splits on the centre phone halving the list of roots."""
    if len(roots) == 1 and len(roots[0].phones) > 1:
        return nodes[0]
    if all(len(r.phones) == 1 for r in roots):
        size = max(r.phones[0] for r in roots) + 1
        children = [None] * size
        for r, n in zip(roots, nodes):
            children[r.phones[0]] = n
        return Table(CENTRAL_POSITION, children)
    half = len(roots) // 2
    yes_set = tuple(sorted(p for r in roots[:half] for p in r.phones))
    return Split(CENTRAL_POSITION, yes_set, _stub_map(roots[:half], nodes[:half]),
                 _stub_map(roots[half:], nodes[half:]))


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _cmd_info(args) -> None:
    data = Path(args.tree).read_bytes()
    ctx_dep = load_context_dependency(data)
    print(f"num-pdfs {ctx_dep.num_pdfs}")
    print(f"context-width {ctx_dep.context_width}")
    print(f"central-position {ctx_dep.central_position}")
    if args.topo:
        import kaldi_hmm_gmm

        topo = kaldi_hmm_gmm.HmmTopology()
        topo.read(Path(args.topo).read_text())
        tree = Tree.from_bytes(data, topo.get_phone_to_num_pdf_classes())
        names = {v: k for k, v in read_symbols(args.phones).items()} if args.phones else {}
        for phone, n in tree.leaves_per_phone().items():
            print(f"leaves {names.get(phone, phone)} {n}")


def main(argv: Sequence[str] | None = None) -> None:
    setup_logging()
    parser = argparse.ArgumentParser(prog="python -m asr.tree", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print num-pdfs, context width, central position, "
                                       "and with --topo the leaves per phone")
    info.add_argument("tree", help="Kaldi binary tree file")
    info.add_argument("--topo", help="HMM topology (data/lang/topo), to print leaves per phone")
    info.add_argument("--phones", help="phones.txt, to print phone names")
    info.set_defaults(func=_cmd_info)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
