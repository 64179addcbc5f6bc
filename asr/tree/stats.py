"""Tree statistics: transition-id alignments -> per-context Gaussian statistics (TreeStats)."""

from __future__ import annotations

import math

import numpy as np

from asr.utils import atomic_path


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
        self._pending, self._pending_rows = [], 0  # let go of the rows before merging their copy
        self._keys, self._stats = _reduce_by_key(keys, stats)
        self._keys = self._keys.astype(np.int32)

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
