"""Raw state-level lattices: binary ark + scp storage, LM-weight x penalty best paths, word times.

Lattice: what kaldi-decoder's `LatticeSimpleDecoder.get_raw_lattice` returns, arcs
`transition-id : word` with a (graph cost, acoustic cost) pair; the acoustic cost is stored
unscaled (-log likelihood), as Kaldi stores lattices, so any LM weight applies later.

Storage (`lat.ark` + `lat.scp`): for each utterance `<key> \\0B` then the lattice in OpenFst's
binary vector-FST layout with Kaldi's `lattice4` arc type (header: magic 2125659606, "vector",
"lattice4", version 2, flags, properties, start, #states, #arcs; then per state the final weight
(2 x float32), the arc count (int64) and arcs (ilabel, olabel int32, graph, acoustic float32,
nextstate int32)). This is the layout of Kaldi's binary ark of (non-compact) `Lattice` objects as
`lattice-copy` would read them, but it has not been checked against Kaldi binaries (none on this
machine); `kaldifst.Lattice.read` reads one record's FST bytes. `lat.scp` lines are
`<key> lat.ark:<byte offset of the FST>`, as Kaldi's scp offsets are.

Sweep: cost of a path at LM weight W and insertion penalty P = graph + P * (#words) + acoustic / W
(Kaldi's `lattice-scale --inv-acoustic-scale=W | lattice-add-penalty --word-ins-penalty=P |
lattice-best-path`); all settings go through one dynamic programme over the lattice.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = 2125659606
ARC_DTYPE = np.dtype([("ilabel", "<i4"), ("olabel", "<i4"), ("graph", "<f4"), ("acoustic", "<f4"),
                      ("nextstate", "<i4")])
_PROPS = 0  # properties word: none asserted (OpenFst recomputes what it needs)


@dataclass
class Lattice:
    """Arrays of one lattice: `arcs` (ARC_DTYPE, with `src` the state it leaves), finals `(S, 2)`
    (graph, acoustic; inf where not final), `start`."""

    start: int
    src: np.ndarray
    arcs: np.ndarray
    final: np.ndarray

    @property
    def num_states(self) -> int:
        return int(self.final.shape[0])


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<i", len(b)) + b


def _record_offsets(counts: np.ndarray, first: int) -> np.ndarray:
    """Byte offset of every state record (16-byte final weight + arc count, then 20 bytes an arc)
    when the records start at `first`."""
    sizes = 16 + 20 * counts.astype(np.int64)
    return first + np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


def _arc_offsets(rec: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Byte offset of every arc, state by state, given the state records' offsets `rec`."""
    counts = counts.astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    k = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(first, counts)  # arc index within its state
    return np.repeat(rec + 16, counts) + 20 * k


def to_bytes(lat: Lattice) -> bytes:
    """OpenFst binary of the lattice (see the module docstring); built as one byte array."""
    n_states, n_arcs = lat.num_states, int(lat.arcs.shape[0])
    head = b"".join([struct.pack("<i", MAGIC), _string("vector"), _string("lattice4"),
                     struct.pack("<iiQqqq", 2, 0, _PROPS, lat.start, n_states, n_arcs)])
    order = np.argsort(lat.src, kind="stable")
    arcs = np.ascontiguousarray(lat.arcs[order]).astype(ARC_DTYPE)
    counts = np.bincount(lat.src, minlength=n_states).astype("<i8")
    rec = _record_offsets(counts, len(head))
    buf = np.zeros(len(head) + 16 * n_states + 20 * n_arcs, dtype=np.uint8)
    buf[:len(head)] = np.frombuffer(head, dtype=np.uint8)
    buf[rec[:, None] + np.arange(8)] = np.ascontiguousarray(lat.final, dtype="<f4").view(np.uint8).reshape(-1, 8)
    buf[rec[:, None] + 8 + np.arange(8)] = counts.view(np.uint8).reshape(-1, 8)
    if n_arcs:
        buf[_arc_offsets(rec, counts)[:, None] + np.arange(20)] = arcs.view(np.uint8).reshape(-1, 20)
    return buf.tobytes()


def from_bytes(buf: bytes | memoryview, where: str) -> tuple[Lattice, int]:
    """Parse one OpenFst lattice binary at the start of `buf`; return it and its byte length.
    A short or malformed record raises ValueError naming `where`."""
    mv = memoryview(buf)
    try:
        (magic,) = struct.unpack_from("<i", mv, 0)
        if magic != MAGIC:
            raise ValueError(f"{where}: not an OpenFst binary (magic {magic})")
        pos = 4
        names = []
        for _ in range(2):
            (n,) = struct.unpack_from("<i", mv, pos)
            names.append(bytes(mv[pos + 4:pos + 4 + n]).decode())
            pos += 4 + n
        if names != ["vector", "lattice4"]:
            raise ValueError(f"{where}: FST type {names}, expected vector/lattice4")
        _ver, _flags, _props, start, n_states, n_arcs = struct.unpack_from("<iiQqqq", mv, pos)
        pos += struct.calcsize("<iiQqqq")
        counts = np.empty(n_states, dtype=np.int64)
        rec = np.empty(n_states, dtype=np.int64)
        count_at = struct.Struct("<q").unpack_from
        size = len(mv)
        for s in range(n_states):  # only the arc counts: the records' places
            if pos + 16 > size:
                raise struct.error("short")
            (na,) = count_at(mv, pos + 8)
            if na < 0 or pos + 16 + 20 * na > size:
                raise struct.error("short")
            rec[s], counts[s] = pos, na
            pos += 16 + 20 * na
        u8 = np.frombuffer(mv, dtype=np.uint8, count=pos)
        final = u8[rec[:, None] + np.arange(8)].view("<f4").reshape(n_states, 2).copy()
        arcs = u8[_arc_offsets(rec, counts)[:, None] + np.arange(20)].view(ARC_DTYPE).reshape(-1)
        src = np.repeat(np.arange(n_states, dtype=np.int32), counts)
        if n_arcs not in (0, -1, arcs.shape[0]):  # OpenFst may leave the count 0 (not tracked)
            raise ValueError(f"{where}: header says {n_arcs} arcs, found {arcs.shape[0]}")
        if arcs.shape[0] and (arcs["nextstate"].min() < 0 or arcs["nextstate"].max() >= n_states):
            raise ValueError(f"{where}: arc to a state outside 0..{n_states - 1}")
    except struct.error:
        raise ValueError(f"{where}: truncated lattice (the file ends inside it)") from None
    return Lattice(int(start), src, arcs.copy(), final), pos


def from_kaldifst(lat, acoustic_scale: float) -> Lattice:
    """`kaldifst.Lattice` decoded with acoustic costs scaled by `acoustic_scale` -> arrays with the
    acoustic costs unscaled. The binding writes FSTs to files only, so this goes through a scratch
    file that is removed again."""
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix="asr_lat_", suffix=".fst")
    os.close(fd)
    try:
        lat.write(tmp)
        out, _ = from_bytes(Path(tmp).read_bytes(), tmp)
    finally:
        os.unlink(tmp)
    if acoustic_scale != 1.0:
        out.arcs["acoustic"] /= acoustic_scale
        fin = np.isfinite(out.final[:, 1])
        out.final[fin, 1] /= acoustic_scale
    return out


# ---------------------------------------------------------------------------------------------
# ark + scp


class LatticeArkWriter:
    """Writes `<key> \\0B<lattice>` records to `ark_path` and returns scp offsets."""

    def __init__(self, ark_path: Path):
        self.path = Path(ark_path)
        self.f = open(self.path, "wb")
        self.offsets: dict[str, int] = {}

    def write(self, key: str, lat: Lattice) -> None:
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"lattice key {key!r}: empty or with whitespace")
        self.f.write(key.encode() + b" \0B")
        self.offsets[key] = self.f.tell()
        self.f.write(to_bytes(lat))

    def write_raw(self, key: str, fst_bytes: bytes) -> None:
        """A record whose lattice is already serialised (`to_bytes`)."""
        if not key or any(c.isspace() for c in key):
            raise ValueError(f"lattice key {key!r}: empty or with whitespace")
        self.f.write(key.encode() + b" \0B")
        self.offsets[key] = self.f.tell()
        self.f.write(fst_bytes)

    def close(self) -> None:
        self.f.close()


def write_scp(scp_path: Path, ark_path: Path, offsets: dict[str, int]) -> str:
    """scp text `<key> <ark>:<offset>` (the caller writes it atomically)."""
    return "".join(f"{k} {ark_path}:{o}\n" for k, o in offsets.items())


def read_scp(scp_path: str | Path) -> dict[str, tuple[Path, int]]:
    """`lat.scp` -> {key: (ark path, byte offset)}; a bad line is an error naming it."""
    out = {}
    for lineno, line in enumerate(Path(scp_path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or ":" not in parts[1]:
            raise ValueError(f"{scp_path}:{lineno}: expected '<key> <ark>:<offset>', got {line!r}")
        ark, _, off = parts[1].rpartition(":")
        out[parts[0]] = (Path(ark), int(off))
    return out


def read_lattices(scp_path: str | Path):
    """Yield (key, Lattice) in scp order; truncation or a wrong key is an error naming file and key."""
    entries = read_scp(scp_path)
    cache: dict[Path, bytes] = {}
    for key, (ark, off) in entries.items():
        if ark not in cache:
            if not ark.exists():
                raise FileNotFoundError(f"{scp_path}: lattice ark {ark} (for '{key}') is missing")
            cache[ark] = ark.read_bytes()
        buf = cache[ark]
        head = buf[max(0, off - len(key) - 3):off]
        if head != key.encode() + b" \0B":
            raise ValueError(f"{ark}: no record '{key}' at byte {off} (the ark was rewritten or truncated)")
        lat, _ = from_bytes(memoryview(buf)[off:], f"{ark} (utterance '{key}' at byte {off})")
        yield key, lat


# ---------------------------------------------------------------------------------------------
# Best paths


def _arc_levels(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Level of each state (longest arc count from a source state), layer by layer (Kahn's
    algorithm, one numpy step per layer); a cycle is an error."""
    indeg = np.bincount(dst, minlength=n)
    level = np.zeros(n, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    in_front = np.zeros(n, dtype=bool)
    done = 0
    depth = 0
    order = np.argsort(src, kind="stable")
    src_sorted = src[order]
    while frontier.size:
        done += frontier.size
        level[frontier] = depth
        lo = np.searchsorted(src_sorted, frontier, side="left")
        hi = np.searchsorted(src_sorted, frontier, side="right")
        sel = order[np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)])] if frontier.size < 64 else \
            np.flatnonzero(_mark(in_front, frontier)[src])
        d = dst[sel]
        np.subtract.at(indeg, d, 1)
        cand = np.unique(d)
        frontier = cand[indeg[cand] == 0]
        depth += 1
    if done != n:
        raise ValueError("lattice has a cycle")
    return level


def _mark(buf: np.ndarray, idx: np.ndarray) -> np.ndarray:
    buf[:] = False
    buf[idx] = True
    return buf


def _levels(lat: Lattice) -> tuple[np.ndarray, np.ndarray]:
    """Topological order of the states and each state's level (longest arc count from a source)."""
    n = lat.num_states
    dst = lat.arcs["nextstate"].astype(np.int64)
    indeg = np.bincount(dst, minlength=n)
    order_arcs = np.argsort(lat.src, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(lat.src, minlength=n))])
    level = np.zeros(n, dtype=np.int64)
    stack = [s for s in range(n) if indeg[s] == 0]
    indeg = indeg.copy()
    topo = []
    while stack:
        s = stack.pop()
        topo.append(s)
        for ai in order_arcs[bounds[s]:bounds[s + 1]]:
            d = dst[ai]
            if level[s] + 1 > level[d]:
                level[d] = level[s] + 1
            indeg[d] -= 1
            if indeg[d] == 0:
                stack.append(d)
    if len(topo) != n:
        raise ValueError("lattice has a cycle")
    return np.asarray(topo), level


@dataclass
class BestPath:
    words: list[int]
    tids: list[int]
    cost: float


def best_paths(lat: Lattice, settings: list[tuple[float, float]]) -> list[BestPath]:
    """Best path for each (LM weight, insertion penalty); all settings in one pass."""
    return best_paths_many([lat], settings)[0]


def best_paths_many(lats: list[Lattice], settings: list[tuple[float, float]]) -> list[list[BestPath]]:
    """`best_paths` of several lattices at once: their states side by side in one dynamic
    programme, level by level (one numpy step per level for all lattices and settings)."""
    k = len(settings)
    out: list[list[BestPath]] = [[BestPath([], [], np.inf) for _ in settings] for _ in lats]
    keep = [i for i, lat in enumerate(lats) if lat.num_states > 0]
    if not keep or k == 0:
        return out
    inv = np.asarray([1.0 / w for w, _ in settings])
    wip = np.asarray([p for _, p in settings])
    offs = np.cumsum([0] + [lats[i].num_states for i in keep])
    a = np.concatenate([lats[i].arcs for i in keep])
    src = np.concatenate([lats[i].src.astype(np.int64) + o for i, o in zip(keep, offs)])
    dst = a["nextstate"].astype(np.int64) + np.repeat(offs[:-1], [len(lats[i].arcs) for i in keep])
    n = int(offs[-1])
    level = _arc_levels(src, dst, n)
    starts_all = np.asarray([lats[i].start + o for i, o in zip(keep, offs)])
    fin = np.concatenate([lats[i].final for i in keep]).astype(np.float64)
    n = int(offs[-1])
    isword = (a["olabel"] != 0).astype(np.float64)
    cost = a["graph"].astype(np.float64)[:, None] + isword[:, None] * wip[None, :] \
        + a["acoustic"].astype(np.float64)[:, None] * inv[None, :]
    best = np.full((n, k), np.inf)
    best[starts_all] = 0.0
    bp = np.full((n, k), -1, dtype=np.int64)
    # arcs sorted by (level of their destination, destination): per level, a contiguous run of
    # destination groups, reduced with one minimum.reduceat
    order = np.lexsort((dst, level[dst]))
    lv, ds = level[dst][order], dst[order]
    level_cuts = np.flatnonzero(np.diff(lv)) + 1
    group_start = np.concatenate([[0], np.flatnonzero(np.diff(ds)) + 1])
    bounds = np.concatenate([[0], level_cuts, [len(order)]])
    gs_pos = np.searchsorted(group_start, bounds)
    cost_o = cost[order]
    src_o = src[order]
    rel = [g - lo for g, lo in zip(np.split(group_start, gs_pos[1:-1]), bounds[:-1])]
    for li in range(len(bounds) - 1):
        lo, hi = bounds[li], bounds[li + 1]
        starts = rel[li]
        cand = best[src_o[lo:hi]]
        cand += cost_o[lo:hi]
        mins = np.minimum.reduceat(cand, starts, axis=0)
        dl = ds[lo:hi]
        best[dl[starts]] = mins
        rows, cols = np.nonzero(cand <= best[dl])
        bp[dl[rows], cols] = order[lo + rows]
    total = best + fin[:, 0:1] + fin[:, 1:2] * inv[None, :]
    ends = np.stack([offs[m] + np.argmin(total[offs[m]:offs[m + 1]], axis=0) for m in range(len(keep))])  # (L, K)
    costs = total[ends, np.arange(k)[None, :]]
    # backtrace every (lattice, setting) at once; finished ones idle
    cur = ends.reshape(-1)
    cols = np.tile(np.arange(k), len(keep))
    live = np.isfinite(costs.reshape(-1))
    ol, il = a["olabel"], a["ilabel"]
    steps_w, steps_t = [], []
    while live.any():
        ai = bp[cur, cols]
        live &= ai >= 0
        if not live.any():
            break
        aim = np.where(live, ai, 0)
        steps_w.append(np.where(live, ol[aim], 0))
        steps_t.append(np.where(live, il[aim], 0))
        cur = np.where(live, src[aim], cur)
    W = np.stack(steps_w)[::-1] if steps_w else np.zeros((0, len(cols)), dtype=np.int32)
    T = np.stack(steps_t)[::-1] if steps_t else np.zeros((0, len(cols)), dtype=np.int32)
    flat_costs = costs.reshape(-1)
    for m, i in enumerate(keep):
        for j in range(k):
            c = m * k + j
            if np.isfinite(flat_costs[c]):
                wc, tc = W[:, c], T[:, c]
                out[i][j] = BestPath(wc[wc != 0].tolist(), tc[tc != 0].tolist(), float(flat_costs[c]))
    return out


# ---------------------------------------------------------------------------------------------
# Word times


def read_lexicon(path: str | Path) -> dict[str, list[tuple[str, ...]]]:
    """Kaldi lexicon `word [prob] phone...` -> word -> pronunciations (phone names)."""
    lex: dict[str, list[tuple[str, ...]]] = {}
    for line in Path(path).read_text().splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        prons = f[2:] if len(f) > 2 and _is_float(f[1]) else f[1:]
        lex.setdefault(f[0], []).append(tuple(prons))
    return lex


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def phone_segments(tids: list[int], tid2phone: np.ndarray, tid_final: np.ndarray,
                   tid_self_loop: np.ndarray) -> list[tuple[int, int, int]]:
    """Transition ids (one per frame) -> [(phone id, first frame, frames)].

    A phone has taken its exit transition (`tid_final`, TransitionModel.is_final) once; with
    Kaldi's reordered self-loops that transition's state may still loop after it, so the next
    phone starts at the first non-self-loop transition after the exit (as Kaldi's SplitToPhones)."""
    segs: list[list[int]] = []
    ended = True
    for t, tid in enumerate(tids):
        ph = int(tid2phone[tid])
        if not segs or (ended and not tid_self_loop[tid]) or segs[-1][0] != ph:
            segs.append([ph, t, 0])
            ended = False
        segs[-1][2] += 1
        ended = ended or bool(tid_final[tid])
    return [tuple(s) for s in segs]  # type: ignore[misc]


def word_times(words: list[str], segs: list[tuple[int, int, int]], phone_names: dict[int, str],
               lexicon: dict[str, list[tuple[str, ...]]]) -> list[tuple[str, int, int]]:
    """Words of a best path + its phone segments -> [(word, first frame, frames)].

    The lexicon has no word-position phones here, so each word takes the first run of phones,
    from the current position on, that spells one of its pronunciations (the longest if several);
    phones between words (silence) are skipped. A word whose pronunciation is not found takes
    the next phone (logged by the caller through a frames count of that phone only)."""
    names = [phone_names.get(p, str(p)) for p, _, _ in segs]
    out = []
    i = 0
    for w in words:
        prons = sorted(lexicon.get(w, []), key=len, reverse=True)
        hit = None
        for j in range(i, len(names)):
            for pr in prons:
                if tuple(names[j:j + len(pr)]) == pr:
                    hit = (j, len(pr))
                    break
            if hit:
                break
        if hit is None:
            j, n = (min(i, len(segs) - 1), 1) if segs else (0, 0)
        else:
            j, n = hit
        if not segs:
            out.append((w, 0, 0))
            continue
        start = segs[j][1]
        end = segs[min(j + n, len(segs)) - 1][1] + segs[min(j + n, len(segs)) - 1][2]
        out.append((w, start, end - start))
        i = j + n
    return out


def main(argv: list[str] | None = None) -> None:
    """`python -m asr.lattice --lat-scp DIR/lat.scp --words-txt words.txt --lm-weight W --wip P`:
    the best path of every stored lattice at that setting, as Kaldi text on stdout."""
    import argparse
    import sys

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--lat-scp", required=True)
    p.add_argument("--words-txt", required=True)
    p.add_argument("--lm-weight", type=float, default=10.0)
    p.add_argument("--wip", type=float, default=0.0)
    a = p.parse_args(argv)
    words = {int(i): w for w, i in (ln.split() for ln in Path(a.words_txt).read_text().splitlines() if ln.strip())}
    for key, lat in read_lattices(a.lat_scp):
        (best,) = best_paths(lat, [(a.lm_weight, a.wip)])
        sys.stdout.write(f"{key} {' '.join(words[w] for w in best.words)}".rstrip() + "\n")


if __name__ == "__main__":
    main()
