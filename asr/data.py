"""Chunked frame-level training examples for CD-state acoustic models.

An example is a chunk of `T` output frames of one utterance with the model's time context
around it: the input is `(3, left + T + right, bins)` (static/delta/delta-delta channels of
the CMVN-normalised logmel features) and the target is `(T,)` pdf ids (int64). Frames before
the utterance start or past its end are the edge frame replicated (as Kaldi's nnet3 does).

Storage: all features of a set are copied once, CMVN applied, into one contiguous
`(total_frames, 3*D)` array indexed by per-utterance offsets. `storage="memory"` keeps it in
RAM (the embedded corpus: a few hundred MB at most); `storage="memmap"` writes it to a `.npy`
file and memory-maps it (Switchboard 2000h is ~550 GB as float32, ~280 GB as float16: it does
not fit in RAM). A memmap is used rather than kaldiio's scp offsets because a chunk is a small
slice of an utterance: kaldiio must read and decode the whole matrix (and apply CMVN) for
every chunk, while a memmap slice reads only the pages of those frames.

Bad input policy:
- alignment length != feature length: ValueError naming the utterance (`on_mismatch="error"`,
  default) or a counted skip (`on_mismatch="skip"`, logged);
- pdf id outside `[0, num_pdfs)`: ValueError naming the utterance and the id, always;
- utterance with features but no alignment (GMM alignment failures): counted skip, logged;
- utterance shorter than one chunk: used, edge-padded on input, and its missing target frames
  set to `IGNORE` (-100), which the loss and the frame accuracy skip.

Epochs: the chunk list is shuffled across utterances by `(seed, epoch)`, cut to a multiple of
`world_size * batch_size` (optionally capped by `max_frames_per_epoch`) and dealt so that every
DDP rank gets the same number of batches; `iter_batches(epoch, start_batch)` resumes anywhere.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import kaldiio
import numpy as np
import torch

from asr.utils import atomic_path, atomic_write_text

log = logging.getLogger(__name__)

IGNORE = -100  # target value of padded frames (torch cross_entropy's default ignore_index)


# --------------------------------------------------------------------------- alignments


def read_pdf_alignments(scp: str | Path) -> dict[str, np.ndarray]:
    """Read a `pdf_ali.scp` of int32 vectors (one pdf id per frame) into `{utt: (frames,)}`."""
    out: dict[str, np.ndarray] = {}
    with kaldiio.ReadHelper(f"scp:{scp}") as reader:
        for utt, vec in reader:
            vec = np.asarray(vec)
            if vec.ndim != 1 or not np.issubdtype(vec.dtype, np.integer):
                raise ValueError(f"{scp}: utterance '{utt}' is not an integer vector "
                                 f"(got dtype {vec.dtype}, shape {vec.shape})")
            out[utt] = vec.astype(np.int32, copy=False)
    return out


def read_num_pdfs(ali_dir: str | Path) -> int:
    """The `num_pdfs` file of an alignment dir (one integer)."""
    path = Path(ali_dir) / "num_pdfs"
    text = path.read_text().split()
    if len(text) != 1 or not text[0].isdigit() or int(text[0]) <= 0:
        raise ValueError(f"{path}: expected one positive integer, got {' '.join(text)!r}")
    return int(text[0])


def pdf_counts(alis: dict[str, np.ndarray], num_pdfs: int) -> np.ndarray:
    """Frame counts per pdf id, `(num_pdfs,)` int64 (the class-prior source for decoding)."""
    counts = np.zeros(num_pdfs, dtype=np.int64)
    for vec in alis.values():
        counts += np.bincount(vec, minlength=num_pdfs)[:num_pdfs]
    return counts


def write_kaldi_vector(path: str | Path, vec: np.ndarray) -> None:
    """Write a Kaldi text vector `[ v0 v1 ... ]` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text("[ " + " ".join(str(int(v)) for v in vec) + " ]\n")


# --------------------------------------------------------------------------- utterance set


@dataclass
class UttSet:
    """Features and targets of a set of utterances in one contiguous array.

    feats: `(total_frames, 3*D)` float array (RAM or memmap); offsets: `(num_utts + 1,)`
    start of each utterance in `feats`; targets: `(total_frames,)` int32 pdf ids, in RAM
    (4 bytes a frame: 2.9 GB per process at Switchboard's ~720M frames; batches get int64).
    """

    utts: list[str]
    feats: np.ndarray
    targets: np.ndarray
    offsets: np.ndarray
    dim: int  # D, bins per channel

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])


def load_utt_set(feat_dir: str | Path, alis: dict[str, np.ndarray], num_pdfs: int, *,
                 utts: Sequence[str] | None = None, storage: str = "memory",
                 cache_path: str | Path | None = None, cache_dtype: str = "float32",
                 on_mismatch: str = "error", channels: int = 3) -> UttSet:
    """Check and load the utterances of `feat_dir` that have alignments in `alis`.

    utts: restrict to these ids (default: every utterance of `feat_dir`).
    storage: "memory" or "memmap" (then `cache_path` is the `.npy` file; an existing cache
    with the same utterances, frame count and feats.scp modification time is reused).
    Raises ValueError on a length mismatch (unless `on_mismatch="skip"`), a pdf id out of
    range, or NaN/inf feature values, naming the utterance.
    """
    from asr.features import FeatureReader

    if storage not in ("memory", "memmap"):
        raise ValueError(f"storage must be 'memory' or 'memmap', got {storage!r}")
    if on_mismatch not in ("error", "skip"):
        raise ValueError(f"on_mismatch must be 'error' or 'skip', got {on_mismatch!r}")
    reader = FeatureReader(feat_dir, cmvn=True)
    if reader.dim % channels:
        raise ValueError(f"{feat_dir}: feature dim {reader.dim} is not a multiple of {channels}")
    ids = sorted(utts) if utts is not None else list(reader.utt_ids)
    known = set(reader.utt_ids)
    keep, no_ali, mismatch, nframes = [], 0, 0, {}
    for utt in ids:
        if utt not in known:
            raise ValueError(f"{feat_dir}: utterance '{utt}' has no features")
        ali = alis.get(utt)
        if ali is None:
            no_ali += 1
            continue
        n = nframes[utt] = reader.num_frames(utt)
        if len(ali) != n:
            if on_mismatch == "error":
                raise ValueError(f"utterance '{utt}': alignment has {len(ali)} frames but its "
                                 f"features in {feat_dir} have {n}")
            mismatch += 1
            continue
        if len(ali) and (ali.min() < 0 or ali.max() >= num_pdfs):
            bad = int(ali.min()) if ali.min() < 0 else int(ali.max())
            raise ValueError(f"utterance '{utt}': pdf id {bad} out of range [0, {num_pdfs})")
        keep.append(utt)
    if no_ali:
        log.warning("%s: %d of %d utterances have no alignment (skipped)", feat_dir, no_ali, len(ids))
    if mismatch:
        log.warning("%s: %d utterances skipped: alignment length != feature length",
                    feat_dir, mismatch)
    if not keep:
        raise ValueError(f"{feat_dir}: no utterance has a usable alignment")
    lengths = np.array([nframes[u] for u in keep], dtype=np.int64)
    offsets = np.zeros(len(keep) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    targets = np.concatenate([alis[u] for u in keep]).astype(np.int32)

    feats = None
    if storage == "memmap":
        if cache_path is None:
            raise ValueError("storage='memmap' needs a cache_path")
        cache_path = Path(cache_path)
        index = cache_path.with_suffix(".utts")
        scp = Path(feat_dir) / "feats.scp"   # re-extracted features invalidate the cache
        expect = (f"{total} {reader.dim} {cache_dtype} {scp.stat().st_mtime_ns}\n"
                  + "\n".join(keep) + "\n")
        if cache_path.exists() and index.exists() and index.read_text() == expect:
            feats = np.load(cache_path, mmap_mode="r")
            log.info("reusing feature cache %s (%d frames)", cache_path, total)
    if feats is None:
        if storage == "memory":
            feats = np.empty((total, reader.dim), dtype=cache_dtype)
            _fill(reader, keep, offsets, feats, feat_dir)
        else:
            with atomic_path(cache_path) as tmp:
                mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=cache_dtype,
                                               shape=(total, reader.dim))
                _fill(reader, keep, offsets, mm, feat_dir)
                mm.flush()
                del mm
            atomic_write_text(index, expect)
            feats = np.load(cache_path, mmap_mode="r")
    log.info("%s: %d utterances, %d frames, dim %d (%s)", feat_dir, len(keep), total,
             reader.dim, storage)
    return UttSet(keep, feats, targets, offsets, reader.dim // channels)


def _raise_non_finite(reader, utt: str, feat_dir) -> None:
    """ValueError naming the utterance whose raw features hold NaN/inf: `utt` itself, or (when
    only its CMVN-normalised features are non-finite) the utterances of its speaker that poisoned
    the speaker's stats."""
    def bad_frames(u: str) -> int:
        return int((~np.isfinite(reader.raw(u))).any(axis=1).sum())

    n = bad_frames(utt)
    if n:
        raise ValueError(f"{feat_dir}: utterance '{utt}': {n} of {reader.num_frames(utt)} feature frames hold "
                         f"NaN/inf (feats.scp); re-extract or remove it before training")
    spk = getattr(reader, "_utt2spk", {}).get(utt)
    same = [u for u in reader.utt_ids if getattr(reader, "_utt2spk", {}).get(u) == spk]
    culprits = [u for u in same if bad_frames(u)]
    raise ValueError(f"{feat_dir}: utterance '{utt}': non-finite after CMVN: speaker '{spk}' stats in cmvn.scp "
                     f"are not finite" + (f"; its utterance(s) with NaN/inf features: {', '.join(culprits[:10])}"
                                          if culprits else "") + "; re-extract or remove them before training")


def _fill(reader, utts, offsets, out, feat_dir) -> None:
    from tqdm import tqdm

    for i, utt in enumerate(tqdm(utts, desc=f"load {Path(feat_dir).name}", leave=False,
                                 mininterval=2.0)):
        mat = reader[utt]
        if not np.isfinite(mat).all():
            _raise_non_finite(reader, utt, feat_dir)
        out[offsets[i]:offsets[i + 1]] = mat


# --------------------------------------------------------------------------- chunk plans


def chunk_starts(length: int, T: int, pad_last: bool) -> np.ndarray:
    """Start frames of the chunks covering an utterance of `length` frames.

    Chunks are `T` frames at 0, T, 2T, ...; the last partial one is either shifted back to end
    at the utterance end (`pad_last=False`, training: no wasted frames, a little overlap) or
    kept in place and padded (`pad_last=True`, CV: every frame scored exactly once). An
    utterance shorter than T is one padded chunk either way.
    """
    if length <= T:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length, T, dtype=np.int64)
    if not pad_last and starts[-1] + T > length:
        starts[-1] = length - T
    return starts


def make_chunks(uset: UttSet, T: int, pad_last: bool) -> np.ndarray:
    """All chunks of a set as `(num_chunks, 2)` int64 rows `(utt index, start frame)`."""
    rows = []
    for i, n in enumerate(uset.lengths()):
        s = chunk_starts(int(n), T, pad_last)
        rows.append(np.stack([np.full_like(s, i), s], axis=1))
    return np.concatenate(rows) if rows else np.zeros((0, 2), dtype=np.int64)


def gather_batch(uset: UttSet, chunks: np.ndarray, T: int, left: int, right: int,
                 channels: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Build a batch from `(B, 2)` chunk rows.

    Returns inputs `(B, channels, left + T + right, D)` float32 and targets `(B, T)` int64
    (`IGNORE` where the chunk runs past the utterance end).
    """
    utt, start = chunks[:, 0], chunks[:, 1]
    off = uset.offsets[utt][:, None]
    last = (uset.offsets[utt + 1] - uset.offsets[utt] - 1)[:, None]
    rel_in = start[:, None] + np.arange(-left, T + right)[None, :]          # (B, L)
    x = uset.feats[off + np.clip(rel_in, 0, last)]                            # (B, L, C*D)
    rel_out = start[:, None] + np.arange(T)[None, :]                          # (B, T)
    y = uset.targets[off + np.minimum(rel_out, last)]
    y = np.where(rel_out > last, IGNORE, y)
    B, L = x.shape[:2]
    x = x.reshape(B, L, channels, uset.dim).transpose(0, 2, 1, 3)
    return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)),
            torch.from_numpy(y.astype(np.int64)))


# --------------------------------------------------------------------------- loaders


class ChunkLoader:
    """Shuffled, rank-sharded, resumable batches of training chunks.

    Per epoch, every rank yields `num_batches` batches of `batch_size` chunks (inputs
    `(batch, 3, left+T+right, bins)`, targets `(batch, T)`); the ranks' shares are disjoint.
    Deterministic given `(seed, epoch)`; independent of how many batches were taken before.
    """

    def __init__(self, uset: UttSet, *, chunk_frames: int, context: tuple[int, int],
                 batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 max_frames_per_epoch: int | None = None, prefetch: int = 2,
                 pin_memory: bool = False):
        self.uset, self.T = uset, int(chunk_frames)
        self.left, self.right = (int(c) for c in context)
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.rank, self.world_size = int(rank), int(world_size)
        self.prefetch, self.pin_memory = int(prefetch), bool(pin_memory)
        self.chunks = make_chunks(uset, self.T, pad_last=False)
        per_step = self.world_size * self.batch_size
        nb = len(self.chunks) // per_step
        if max_frames_per_epoch:
            nb = min(nb, max(1, int(max_frames_per_epoch) // (per_step * self.T)))
        if nb == 0:
            raise ValueError(f"{len(self.chunks)} training chunks of {self.T} frames cannot "
                             f"fill one step of {world_size} x {batch_size} chunks")
        self.num_batches = nb
        short = int((uset.lengths() < self.T).sum())
        if short:
            log.info("%d utterances shorter than one chunk (%d frames): edge-padded", short, self.T)

    def epoch_plan(self, epoch: int) -> np.ndarray:
        """This rank's chunks for `epoch`: `(num_batches, batch_size, 2)`."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.chunks))
        per_step = self.world_size * self.batch_size
        order = order[: self.num_batches * per_step].reshape(self.num_batches, self.world_size,
                                                             self.batch_size)
        return self.chunks[order[:, self.rank]]

    def iter_batches(self, epoch: int, start_batch: int = 0
                     ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches `start_batch .. num_batches-1` of `epoch` (a background thread prefetches)."""
        plan = self.epoch_plan(epoch)[start_batch:]
        def make(rows):
            x, y = gather_batch(self.uset, rows, self.T, self.left, self.right)
            return (x.pin_memory(), y.pin_memory()) if self.pin_memory else (x, y)
        if self.prefetch <= 0:
            for rows in plan:
                yield make(rows)
            return
        yield from _prefetched((make(rows) for rows in plan), self.prefetch)


def iter_eval_batches(uset: UttSet, *, chunk_frames: int, context: tuple[int, int],
                      batch_size: int, rank: int = 0, world_size: int = 1
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """CV batches in a fixed order, every frame scored once over all ranks (rank r takes
    chunks r, r+W, ...; the last batch may be smaller)."""
    chunks = make_chunks(uset, chunk_frames, pad_last=True)[rank::world_size]
    for i in range(0, len(chunks), batch_size):
        yield gather_batch(uset, chunks[i:i + batch_size], chunk_frames, *context)


def _prefetched(gen: Iterator, depth: int) -> Iterator:
    """Run `gen` in a daemon thread, `depth` items ahead; exceptions are re-raised here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for item in gen:
                if stop.is_set():
                    return
                q.put(item)
            q.put(done)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(timeout=0.05)


def split_cv(utts: Sequence[str], fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Hold out `fraction` of `utts` (at least one) by `seed`: returns (train, cv), sorted."""
    utts = sorted(utts)
    if not 0 < fraction < 1:
        raise ValueError(f"cv fraction must be in (0, 1), got {fraction}")
    n_cv = max(1, int(round(len(utts) * fraction)))
    if n_cv >= len(utts):
        raise ValueError(f"cannot hold out {n_cv} of {len(utts)} utterances for CV")
    rng = np.random.default_rng([seed, 7919])
    cv_idx = set(rng.choice(len(utts), size=n_cv, replace=False).tolist())
    return ([u for i, u in enumerate(utts) if i not in cv_idx],
            [u for i, u in enumerate(utts) if i in cv_idx])
