"""Whole-FST numpy views of kaldifst FSTs, and two edits Kaldi's mkgraph.sh makes on HCLG that
the kaldifst binding lacks: `remove_symbols` (Kaldi's fstrmsymbols) and `remove_eps_local`
(Kaldi's fstrmepslocal).

The binding has no mutable arc iterator and a per-arc Python loop is far too slow for a
50M-arc HCLG, so an FST crosses into numpy through OpenFst's binary files:

- `to_arrays`: the FST is converted to a ConstFst (C++) and written; a ConstFst file is a header,
  then one array of states (final weight float32; first arc, #arcs, #input eps, #output eps as
  uint32) and one array of arcs (ilabel int32, olabel int32, weight float32, nextstate int32),
  so it is read with `np.frombuffer`, no loop.
- `from_arrays`: a VectorFst file is written (header; per state its final weight, its arc count
  as int64 and its arcs) by scattering the arrays into one byte buffer, and read back with
  `StdVectorFst.read`.

Weights are tropical (the `standard` arc type); `inf` is the zero weight (a non-final state).
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass

import kaldifst
import numpy as np

_MAGIC = 2125659606            # OpenFst's FST file magic number
_HAS_ISYMBOLS, _HAS_OSYMBOLS, _IS_ALIGNED = 1, 2, 4
_ALIGN = 16                    # OpenFst's file alignment for aligned ConstFst files
_EXPANDED_MUTABLE = 0x3        # kExpanded | kMutable: nothing else claimed about an edited FST
_STATE_DT = np.dtype([("final", "<f4"), ("pos", "<u4"), ("narcs", "<u4"), ("nieps", "<u4"), ("noeps", "<u4")])
_ARC_DT = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("weight", "<f4"), ("nextstate", "<i4")])


@dataclass
class FstArrays:
    """An FST as arrays. The arcs of state `s` are `offsets[s]:offsets[s+1]` of the arc arrays."""

    start: int
    final: np.ndarray          # float32 [num_states]; inf = not final
    offsets: np.ndarray        # int64 [num_states + 1]
    ilabel: np.ndarray         # int32 [num_arcs]
    olabel: np.ndarray         # int32 [num_arcs]
    weight: np.ndarray         # float32 [num_arcs]
    nextstate: np.ndarray      # int32 [num_arcs]
    properties: int | None = None   # header properties to write back (None after an edit)

    @property
    def num_states(self) -> int:
        return len(self.final)

    @property
    def num_arcs(self) -> int:
        return len(self.ilabel)

    def src(self) -> np.ndarray:
        """The source state of every arc (int32 [num_arcs])."""
        return np.repeat(np.arange(self.num_states, dtype=np.int32), np.diff(self.offsets))


def _read_string(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<i", buf, pos)
    return buf[pos + 4:pos + 4 + n].decode(), pos + 4 + n


def _parse_header(buf: bytes) -> tuple[dict, int]:
    (magic,) = struct.unpack_from("<i", buf, 0)
    if magic != _MAGIC:
        raise ValueError("not an OpenFst binary FST (bad magic number)")
    fst_type, pos = _read_string(buf, 4)
    arc_type, pos = _read_string(buf, pos)
    version, flags, props, start, nstates, narcs = struct.unpack_from("<iiQqqq", buf, pos)
    pos += 40
    if arc_type != "standard":
        raise ValueError(f"arc type {arc_type!r}: only tropical ('standard') FSTs are supported")
    if flags & (_HAS_ISYMBOLS | _HAS_OSYMBOLS):
        raise ValueError("FSTs with symbol tables are not supported")
    return {"fst_type": fst_type, "version": version, "flags": flags, "properties": props,
            "start": start, "num_states": nstates, "num_arcs": narcs}, pos


def num_arcs(fst) -> int:
    """Total arcs of an FST, read from its ConstFst header (no per-state Python loop)."""
    return to_arrays(fst).num_arcs


def to_arrays(fst) -> FstArrays:
    """The arrays of `fst` (a kaldifst StdVectorFst or StdConstFst)."""
    mutable = 0 if isinstance(fst, kaldifst.StdConstFst) else 0x2   # kMutable, as a VectorFst writes
    const = fst if isinstance(fst, kaldifst.StdConstFst) else kaldifst.StdConstFst(fst)
    with tempfile.TemporaryDirectory(prefix="fst_arrays") as d:
        path = os.path.join(d, "c.fst")
        if not const.write(path):
            raise IOError(f"could not write {path}")
        del const
        with open(path, "rb") as f:
            head = f.read(4096)
        hdr, pos = _parse_header(head)
        if hdr["fst_type"] != "const":
            raise ValueError(f"expected a const FST file, got {hdr['fst_type']!r}")
        aligned = hdr["version"] == 1 or hdr["flags"] & _IS_ALIGNED
        ns, na = hdr["num_states"], hdr["num_arcs"]
        if aligned:
            pos = -(-pos // _ALIGN) * _ALIGN
        states = np.fromfile(path, dtype=_STATE_DT, count=ns, offset=pos)
        pos += ns * _STATE_DT.itemsize
        if aligned:
            pos = -(-pos // _ALIGN) * _ALIGN
        arcs = np.fromfile(path, dtype=_ARC_DT, count=na, offset=pos)
    if len(states) != ns or len(arcs) != na:
        raise ValueError("truncated ConstFst file")
    offsets = np.zeros(ns + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(states["narcs"], dtype=np.int64)
    if ns and not np.array_equal(offsets[:-1], states["pos"].astype(np.int64)):
        raise ValueError("unexpected ConstFst layout: arcs not stored state by state")
    final = states["final"].copy()
    del states
    out = FstArrays(start=int(hdr["start"]), final=final, offsets=offsets,
                    ilabel=arcs["ilabel"].copy(), olabel=arcs["olabel"].copy(),
                    weight=arcs["weight"].copy(), nextstate=arcs["nextstate"].copy(),
                    properties=int(hdr["properties"]) | mutable)
    return out


def _vector_header(a: FstArrays) -> bytes:
    def string(x: str) -> bytes:
        return struct.pack("<i", len(x)) + x.encode()

    props = _EXPANDED_MUTABLE if a.properties is None else a.properties
    return (struct.pack("<i", _MAGIC) + string("vector") + string("standard")
            + struct.pack("<iiQqqq", 2, 0, props, a.start, a.num_states, 0))


def write_vector_fst(a: FstArrays, f, chunk_states: int = 1 << 20) -> None:
    """Write `a` to the binary file object `f` as an OpenFst VectorFst (what StdVectorFst.write
    writes): per state its final weight, its arc count (int64), its arcs. Everything is 4-byte
    words, so each chunk of states is one uint32 array filled by two scatters."""
    f.write(_vector_header(a))
    ns = a.num_states
    for s0 in range(0, ns, chunk_states):
        s1 = min(ns, s0 + chunk_states)
        a0, a1 = int(a.offsets[s0]), int(a.offsets[s1])
        n, m = s1 - s0, a1 - a0
        narcs = np.diff(a.offsets[s0:s1 + 1])
        body = np.empty(3 * n + 4 * m, dtype="<u4")
        hpos = 3 * np.arange(n, dtype=np.int64) + 4 * (a.offsets[s0:s1] - a0)
        body[hpos] = np.ascontiguousarray(a.final[s0:s1], dtype="<f4").view("<u4")
        cnt = narcs.astype("<i8").view("<u4").reshape(n, 2)
        body[hpos + 1], body[hpos + 2] = cnt[:, 0], cnt[:, 1]
        if m:
            is_arc = np.ones(len(body), dtype=bool)
            is_arc[hpos], is_arc[hpos + 1], is_arc[hpos + 2] = False, False, False
            w = np.empty((m, 4), dtype="<u4")
            w[:, 0] = a.ilabel[a0:a1].view("<u4")
            w[:, 1] = a.olabel[a0:a1].view("<u4")
            w[:, 2] = np.ascontiguousarray(a.weight[a0:a1], dtype="<f4").view("<u4")
            w[:, 3] = a.nextstate[a0:a1].view("<u4")
            body[is_arc] = w.reshape(-1)
        f.write(body.tobytes())


def vector_fst_bytes(a: FstArrays) -> bytes:
    """The OpenFst binary VectorFst file of `a`."""
    import io

    buf = io.BytesIO()
    write_vector_fst(a, buf)
    return buf.getvalue()


def from_arrays(a: FstArrays) -> kaldifst.StdVectorFst:
    """A StdVectorFst with the states and arcs of `a`."""
    with tempfile.TemporaryDirectory(prefix="fst_arrays") as d:
        path = os.path.join(d, "v.fst")
        with open(path, "wb") as f:
            write_vector_fst(a, f)
        return kaldifst.StdVectorFst.read(path)


def remove_symbols_arrays(a: FstArrays, labels) -> FstArrays:
    """Input labels in `labels` -> epsilon, in place (Kaldi's fstrmsymbols); returns `a`."""
    a.ilabel[np.isin(a.ilabel, np.asarray(list(labels), dtype=np.int32))] = 0
    a.properties = None
    return a


def remove_symbols(fst, labels) -> kaldifst.StdVectorFst:
    """A copy of `fst` with the input labels in `labels` turned into epsilon (fstrmsymbols)."""
    return from_arrays(remove_symbols_arrays(to_arrays(fst), labels))


class _LocalEps:
    """Kaldi's local epsilon removal on arrays. Only the arcs that can combine are visited: an
    arc e: s->t combines with an arc b out of t when on each tape at least one of them has
    epsilon, so e or b has an input epsilon; with few input epsilons that is a short loop.
    Arcs added to a state go to the end of its arc list, as in a VectorFst."""

    def __init__(self, a: FstArrays):
        self.a = a
        ns, na = a.num_states, a.num_arcs
        self.il, self.ol = a.ilabel, a.olabel
        # edited in place (the caller's arrays are consumed: `a` is not valid after `run`)
        self.w = a.weight if a.weight.dtype == np.float32 else a.weight.astype(np.float32)
        self.nxt = a.nextstate if a.nextstate.dtype == np.int32 else a.nextstate.astype(np.int32)  # -1: deleted
        self.src = a.src()
        self.final = a.final.astype(np.float32)
        self.n_in = np.bincount(self.nxt, minlength=ns).astype(np.int64)
        self.n_in[a.start] += 1                         # the start state counts as entered once more
        self.n_out = np.diff(a.offsets) + np.isfinite(self.final)   # a final state as left once more
        self.na = na
        self.extra: list[list] = []                     # arcs added: [src, ilabel, olabel, weight, nextstate]
        self.arcs: dict[int, list[int]] = {}            # arc ids out of a state, once touched

    # -- arcs by id (ids >= na are added arcs) --
    def get(self, i: int) -> tuple[int, int, float, int]:
        if i < self.na:
            return int(self.il[i]), int(self.ol[i]), float(self.w[i]), int(self.nxt[i])
        x = self.extra[i - self.na]
        return x[1], x[2], x[3], x[4]

    def set_weight(self, i: int, weight: float) -> None:
        if i < self.na:
            self.w[i] = weight
        else:
            self.extra[i - self.na][3] = weight

    def delete(self, i: int) -> None:
        if i < self.na:
            self.nxt[i] = -1
        else:
            self.extra[i - self.na][4] = -1

    def out(self, s: int) -> list[int]:
        arcs = self.arcs.get(s)
        if arcs is None:
            arcs = self.arcs[s] = list(range(int(self.a.offsets[s]), int(self.a.offsets[s + 1])))
        return arcs

    def add(self, s: int, il: int, ol: int, weight: float, t: int) -> int:
        self.out(s).append(self.na + len(self.extra))
        self.extra.append([s, il, ol, weight, t])
        self.n_out[s] += 1
        self.n_in[t] += 1
        return self.na + len(self.extra) - 1

    @staticmethod
    def times(x: float, y: float) -> float:
        return float(np.float32(x) + np.float32(y))

    def set_final_plus(self, s: int, weight: float) -> None:
        if not np.isfinite(self.final[s]):
            self.n_out[s] += 1
        self.final[s] = min(self.final[s], np.float32(weight))

    # -- Kaldi's RemoveEps on one arc --
    def visit(self, e: int) -> None:
        il, ol, we, t = self.get(e)
        s = int(self.src[e]) if e < self.na else self.extra[e - self.na][0]
        if t < 0 or t == s:
            return
        if self.n_in[t] == 1 and self.n_out[t] > 1:
            self.pattern1(s, e, il, ol, we, t)
        elif self.n_out[t] == 1:
            self.pattern2(s, e, il, ol, we, t)

    def pattern1(self, s, e, il, ol, we, t) -> None:
        """e is the only way into t: every arc out of t that combines with e becomes an arc
        out of s; e goes if nothing of t is left, else is reweighted."""
        removed, kept, to_add = np.inf, np.inf, []
        for b in self.out(t):
            bil, bol, bw, bt = self.get(b)
            if bt < 0:
                continue
            if (il == 0 or bil == 0) and (ol == 0 or bol == 0):
                removed = min(removed, bw)
                self.n_out[t] -= 1
                self.n_in[bt] -= 1
                self.delete(b)
                to_add.append((il or bil, ol or bol, self.times(we, bw), bt))
            else:
                kept = min(kept, bw)
        ft = float(self.final[t])
        if np.isfinite(ft):
            if il == 0 and ol == 0:
                removed = min(removed, ft)
                self.set_final_plus(s, self.times(we, ft))
                self.n_out[t] -= 1
                self.final[t] = np.inf
            else:
                kept = min(kept, ft)
        if np.isfinite(removed):
            if not np.isfinite(kept):
                self.n_out[s] -= 1
                self.n_in[t] -= 1
                self.delete(e)
            else:                                   # tropical: kept / (removed + kept)
                r = float(np.float32(kept) - np.float32(min(removed, kept)))
                self.set_weight(e, self.times(we, r))
                for b in self.out(t):
                    bil, bol, bw, bt = self.get(b)
                    if bt >= 0:
                        self.set_weight(b, float(np.float32(bw) - np.float32(r)))
                if np.isfinite(self.final[t]):
                    self.final[t] = np.float32(self.final[t]) - np.float32(r)
        for arc in to_add:
            self.add(s, *arc)

    def pattern2(self, s, e, il, ol, we, t) -> None:
        """t has one way out: e and it become one arc (or a final weight) of s."""
        delete_next = self.n_in[t] == 1
        done = False
        ft = float(self.final[t])
        if np.isfinite(ft):
            if il == 0 and ol == 0:
                self.set_final_plus(s, self.times(we, ft))
                done = True
                if delete_next:
                    self.n_out[t] -= 1
                    self.final[t] = np.inf
        else:
            b = next(b for b in self.out(t) if self.get(b)[3] >= 0)
            bil, bol, bw, bt = self.get(b)
            if (il == 0 or bil == 0) and (ol == 0 or bol == 0):
                done = True
                if delete_next:
                    self.n_out[t] -= 1
                    self.n_in[bt] -= 1
                    self.delete(b)
                self.add(s, il or bil, ol or bol, self.times(we, bw), bt)
        if done:
            self.n_out[s] -= 1
            self.n_in[t] -= 1
            self.delete(e)

    def run(self) -> FstArrays:
        a = self.a
        ieps = np.asarray(a.ilabel) == 0
        has_ieps_out = np.bincount(self.src[ieps], minlength=a.num_states) > 0
        cand = np.flatnonzero(ieps | has_ieps_out[self.nxt])
        cand_src = self.src[cand]
        # per state, in state order: its candidate arcs in order, then the arcs added to it
        bounds = np.flatnonzero(np.diff(cand_src)) + 1
        lo = [0] + bounds.tolist()
        hi = bounds.tolist() + [len(cand)]
        cand_l = cand.tolist()
        for i0, i1 in zip(lo, hi) if len(cand) else []:
            s = int(cand_src[i0])
            n_before = len(self.arcs[s]) if s in self.arcs else int(a.offsets[s + 1] - a.offsets[s])
            for e in cand_l[i0:i1]:
                self.visit(e)
            arcs = self.arcs.get(s)
            if arcs is not None:
                k = n_before
                while k < len(arcs):
                    self.visit(arcs[k])
                    k += 1
        return self.result()

    def result(self) -> FstArrays:
        """The kept arcs of each state in order, then the arcs added to it in the order added.
        Built array by array with `np.insert` (no sort over all arcs): about 30 bytes per arc
        on top of the input's 16, which is released array by array."""
        a = self.a
        ns = a.num_states
        alive = self.nxt >= 0
        ex = sorted((x for x in self.extra if x[4] >= 0), key=lambda x: x[0])  # stable: by state, then as added
        ex_src = np.array([x[0] for x in ex], dtype=np.int64)
        n_alive = np.bincount(self.src[alive], minlength=ns)
        self.src = None
        offsets = np.zeros(ns + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(n_alive + np.bincount(ex_src, minlength=ns))
        at = np.cumsum(n_alive)[ex_src] if len(ex) else np.zeros(0, dtype=np.int64)  # after state's kept arcs
        del n_alive
        out = {}
        for name, col, dt in (("ilabel", 1, np.int32), ("olabel", 2, np.int32), ("weight", 3, np.float32),
                              ("nextstate", 4, np.int32)):
            src = {"ilabel": a.ilabel, "olabel": a.olabel, "weight": self.w, "nextstate": self.nxt}[name]
            kept = src[alive]
            setattr(a, name, None)
            src = None
            if name == "ilabel":
                self.il = None
            elif name == "olabel":
                self.ol = None
            elif name == "weight":
                self.w = None
            else:
                self.nxt = None
            out[name] = np.insert(kept, at, np.array([x[col] for x in ex], dtype=dt)) if len(ex) else kept
            del kept
        return FstArrays(start=a.start, final=self.final, offsets=offsets, properties=None, **out)


def remove_eps_local_arrays(a: FstArrays) -> FstArrays:
    """Kaldi's local epsilon removal on arrays (before connect); see `remove_eps_local`. `a` is
    consumed: its arc arrays are edited in place and released."""
    return _LocalEps(a).run()


def remove_eps_local(fst, stats: dict | None = None) -> kaldifst.StdVectorFst:
    """Kaldi's fstrmepslocal (tropical semiring): for each arc e: s->t in turn, where on each tape
    e or the arc after it has an epsilon, if e is the only way into t (the start state counts
    as entered once more) and t has several ways out (being final counts as one), the arcs of t
    that combine with e become arcs of s (and e goes if nothing of t is left); else if t has one
    way out, it and e become one arc (or final weight) of s. Nothing grows; epsilons that cannot
    go locally stay. Unreachable states are removed (connect). `stats` (a dict) gets the counts
    of arcs and of input-epsilon arcs before and after."""
    return remove_eps_local_to_fst(to_arrays(fst), stats)


def remove_eps_local_to_fst(a: FstArrays, stats: dict | None = None) -> kaldifst.StdVectorFst:
    """`remove_eps_local` of the FST in `a` (`a` is not needed after: the caller may drop it)."""
    before = {"ieps_before": int(np.count_nonzero(a.ilabel == 0)), "arcs_before": a.num_arcs}
    b = remove_eps_local_arrays(a)
    if stats is not None:   # input-epsilon arcs before and after
        stats.update(before, ieps_after=int(np.count_nonzero(b.ilabel == 0)), arcs_after=b.num_arcs)
    out = from_arrays(b)
    del b
    kaldifst.connect(out)
    return out
