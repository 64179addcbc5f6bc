"""Growing the decision tree: greedy likelihood-gain splits, leaf clustering (build_tree)."""

from __future__ import annotations

import heapq
import logging
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import sparse

from asr.tree.event_map import Leaf, Split, Table, Tree
from asr.tree.questions import Root, _dedup_questions, cluster_phones
from asr.tree.stats import CENTRAL_POSITION, PDF_CLASS_KEY, TreeStats, gaussian_objf

logger = logging.getLogger(__name__)




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
        # A copy: a view would keep the whole (Q', F) `yes_ok` alive in every leaf's cache
        # (~1.5 GB at 32k leaves).
        return float(gains[best]), key, yes_set, yes_ok[best].copy()

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
