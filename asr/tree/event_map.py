"""The tree's event map (Leaf/Split/Table nodes, Tree) and its Kaldi binary I/O."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from asr.utils import atomic_path
from asr.tree.stats import CENTRAL_POSITION, CONTEXT_WIDTH, PDF_CLASS_KEY





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
