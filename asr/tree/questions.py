"""Tree roots and phone questions: Kaldi roots/questions files and phone clustering."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from asr.tree.stats import TreeStats, gaussian_objf

logger = logging.getLogger(__name__)




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
