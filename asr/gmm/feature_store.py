"""Features read on access, never held for the corpus (Kaldi's `apply-cmvn | splice | transform`
pipelines): `StoredFeatures` (a feature dir's ark through CMVN) and `FeatureView` (a mapping
through a per-utterance function), both read-only mappings utt -> `(frames, dim)` arrays, and
`frame_blocks` (utterances grouped to a bounded number of frames, for statistics over the corpus).
Forked jobs that get one of these read their utterances from disk themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from asr.feature_reader import FeatureReader


class _LazyMapping(Mapping):
    """Key methods over `self._keys` (a mapping or dict of the utterance ids): iteration, length
    and membership never read features (Mapping's own `__contains__` would call `__getitem__`)."""

    _keys: Mapping

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, utt) -> bool:
        return utt in self._keys


class StoredFeatures(_LazyMapping):
    """A feature dir's utterances (all, or those of `utts` it has, in that order), each read from
    feats.scp's ark on access with per-speaker mean normalisation (Kaldi apply-cmvn
    --norm-vars=false): utt -> `(frames, dim)` float32. `num_frames(utt)` reads nothing
    (utt2num_frames). A missing, corrupt or non-finite entry raises ValueError naming the utterance."""

    def __init__(self, feat_dir: str | Path, utts: Iterable[str] | None = None,
                 reader: FeatureReader | None = None):
        self.reader = reader or FeatureReader(feat_dir, cmvn=True, norm_vars=False)
        ids = self.reader.utt_ids if utts is None else [u for u in utts if u in self.reader]
        self._keys = dict.fromkeys(ids)

    def __getitem__(self, utt: str) -> np.ndarray:
        if utt not in self._keys:
            raise KeyError(utt)
        where = self.reader.feat_dir / "feats.scp"
        try:
            X = np.ascontiguousarray(self.reader[utt], dtype=np.float32)
        except KeyError:  # no CMVN stats for its speaker: the reader's message names both
            raise
        except Exception as e:  # noqa: BLE001 - kaldiio raises OSError/ValueError/... on a bad ark
            raise ValueError(f"{where}: cannot read utterance '{utt}' ({type(e).__name__}: {e})") from e
        if not np.isfinite(X).all():
            raise ValueError(f"{where}: utterance '{utt}' has non-finite features (NaN or inf)")
        return X

    def num_frames(self, utt: str) -> int:
        return self.reader.num_frames(utt)

    @property
    def dim(self) -> int:
        return self.reader.dim

    def subset(self, utts: Iterable[str]) -> "StoredFeatures":
        """The utterances of `utts` this mapping has, in that order (no features read)."""
        return StoredFeatures(self.reader.feat_dir, [u for u in utts if u in self._keys], self.reader)


class FeatureView(_LazyMapping):
    """`base` through `fn(utt, X (frames, base dim)) -> (frames, dim)`, computed on each access
    (`utt` for per-speaker transforms)."""

    def __init__(self, base: Mapping, fn: Callable[[str, np.ndarray], np.ndarray], dim: int):
        self.base, self.fn, self.dim = base, fn, dim
        self._keys = base

    def __getitem__(self, utt: str) -> np.ndarray:
        return self.fn(utt, self.base[utt])

    def num_frames(self, utt: str) -> int:
        return self.base.num_frames(utt)

    def subset(self, utts: Iterable[str]) -> "FeatureView":
        return FeatureView(self.base.subset(utts), self.fn, self.dim)


def frame_blocks(utts: Iterable[str], num_frames: Callable[[str], int], max_frames: int) -> Iterator[list[str]]:
    """`utts` in order, in consecutive groups of at most `max_frames` frames (an utterance longer
    than that is a group of its own)."""
    block, n = [], 0
    for u in utts:
        t = num_frames(u)
        if block and n + t > max_frames:
            yield block
            block, n = [], 0
        block.append(u)
        n += t
    if block:
        yield block
