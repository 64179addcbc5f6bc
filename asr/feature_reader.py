"""Reading stored features: the `FeatureReader` over a feature dir (feats.scp, cmvn.scp), Kaldi
CMVN statistics and their application, and the (frames, 3*D) -> (3, frames, D) channel view.

    from asr.feature_reader import FeatureReader
    reader = FeatureReader("data/test_logmel")      # per-speaker mean+variance normalisation
    reader["utt"]                                   # np.float32 (frames, 3*D)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from asr.utils import read_kaldi_map

def to_channels(mat, channels: int = 3):
    """(..., frames, channels*D) -> (..., channels, frames, D); numpy arrays or torch tensors."""
    d = mat.shape[-1] // channels
    if d * channels != mat.shape[-1]:
        raise ValueError(f"feature dim {mat.shape[-1]} is not a multiple of {channels} channels")
    x = mat.reshape(*mat.shape[:-1], channels, d)
    if isinstance(x, np.ndarray):
        return np.moveaxis(x, -2, -3)
    return x.movedim(-2, -3)


# ---------------------------------------------------------------------------------------------
# CMVN (Kaldi stats format)
# ---------------------------------------------------------------------------------------------
def cmvn_stats(mat: np.ndarray) -> np.ndarray:
    """Kaldi CMVN stats of (frames, D) features: float64 (2, D+1) [sum, count; sumsq, 0]."""
    mat = np.asarray(mat, dtype=np.float64)
    s = np.zeros((2, mat.shape[1] + 1))
    s[0, :-1] = mat.sum(axis=0)
    s[0, -1] = mat.shape[0]
    s[1, :-1] = (mat**2).sum(axis=0)
    return s


def apply_cmvn(mat: np.ndarray, stats: np.ndarray, norm_vars: bool = True) -> np.ndarray:
    """Normalise (frames, D) features with Kaldi stats (2, D+1); float32 out."""
    count = stats[0, -1]
    if count <= 0:
        raise ValueError("CMVN stats with zero count")
    mean = stats[0, :-1] / count
    out = np.asarray(mat, dtype=np.float64) - mean
    if norm_vars:
        var = np.maximum(stats[1, :-1] / count - mean**2, 1e-20)
        out = out / np.sqrt(var)
    return out.astype(np.float32)


class FeatureReader:
    """Random access to a feature dir's `feats.scp`, with CMVN applied.

    `reader[utt]` -> float32 (frames, 3*D); `.utt_ids` sorted; `.num_frames(utt)`; `.dim` (3*D).
    `cmvn`: True or "speaker" (per-speaker stats from cmvn.scp), "global" (all speakers' stats
    summed), False/None (raw features). `norm_vars`: also normalise variances (default True).
    """

    def __init__(self, feat_dir: str | os.PathLike, cmvn: bool | str = True,
                 norm_vars: bool = True):
        import kaldiio

        self.feat_dir = Path(feat_dir)
        scp = self.feat_dir / "feats.scp"
        if not scp.exists():
            raise FileNotFoundError(f"{scp}: missing (run the feature stage)")
        self._scp = read_kaldi_map(scp)
        self.utt_ids = sorted(self._scp)
        self._feats = kaldiio.load_scp(str(scp))
        n2f = self.feat_dir / "utt2num_frames"
        self._num_frames = ({k: int(v) for k, v in read_kaldi_map(n2f).items()}
                            if n2f.exists() else {})
        self.norm_vars = norm_vars
        mode = "speaker" if cmvn is True else (cmvn or None)
        if mode not in (None, "speaker", "global"):
            raise ValueError(f"cmvn must be True/False/'speaker'/'global', not {cmvn!r}")
        self.cmvn = mode
        self._utt2spk: dict[str, str] = {}
        self._stats: dict[str, np.ndarray] = {}
        if mode:
            cmvn_scp = self.feat_dir / "cmvn.scp"
            if not cmvn_scp.exists():
                raise FileNotFoundError(f"{cmvn_scp}: missing (needed for cmvn={cmvn!r})")
            self._utt2spk = read_kaldi_map(self.feat_dir / "utt2spk")
            stats = {k: np.asarray(v) for k, v in kaldiio.load_scp(str(cmvn_scp)).items()}
            if mode == "global":
                total = sum(stats.values())
                stats = {"<global>": total}
            self._stats = stats
        self._dim: int | None = None

    def __len__(self) -> int:
        return len(self.utt_ids)

    def __contains__(self, utt: str) -> bool:
        return utt in self._scp

    def raw(self, utt: str) -> np.ndarray:
        """Un-normalised float32 (frames, 3*D)."""
        if utt not in self._scp:
            raise KeyError(f"{self.feat_dir / 'feats.scp'}: no utterance '{utt}'")
        return np.asarray(self._feats[utt], dtype=np.float32)

    def __getitem__(self, utt: str) -> np.ndarray:
        mat = self.raw(utt)
        if not self.cmvn:
            return mat
        key = "<global>" if self.cmvn == "global" else self._utt2spk.get(utt)
        if key not in self._stats:
            raise KeyError(f"{self.feat_dir / 'cmvn.scp'}: no stats for speaker '{key}' "
                           f"(utterance '{utt}')")
        return apply_cmvn(mat, self._stats[key], self.norm_vars)

    def num_frames(self, utt: str) -> int:
        if utt in self._num_frames:
            return self._num_frames[utt]
        return self.raw(utt).shape[0]

    @property
    def dim(self) -> int:
        if self._dim is None:
            f = self.feat_dir / "feat_dim"
            self._dim = int(f.read_text()) if f.exists() else self.raw(self.utt_ids[0]).shape[1]
        return self._dim


# ---------------------------------------------------------------------------------------------
# Extraction over a data dir
# ---------------------------------------------------------------------------------------------
