"""The features a GMM round sees: `delta` (the stored MFCC+deltas), `lda_mllt` (LDA+MLLT of the
static MFCCs spliced +-context frames: Kaldi's final.mat) or `sat` (those, then a per-speaker
fMLLR transform). A model dir records its kind in `feat_opts.json` (feat_type, splice_context,
static_dim), its matrix in `final.mat` and, for SAT, the speakers' transforms in `trans.{ark,scp}`.
The transformed features are `FeatureView`s: computed per utterance on access, never held.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from asr.gmm import transforms as tf
from asr.gmm.feature_store import FeatureView
from asr.utils import atomic_write_text, read_kaldi_map


log = logging.getLogger(__name__)

FEAT_TYPES = ("delta", "lda_mllt", "sat")


def read_feat_opts(model_dir: str | Path) -> dict:
    """`feat_opts.json` of a model dir; `{"feat_type": "delta"}` when it has none."""
    f = Path(model_dir) / "feat_opts.json"
    return json.loads(f.read_text()) if f.is_file() else {"feat_type": "delta"}


def write_feat_opts(model_dir: str | Path, opts: dict) -> None:
    atomic_write_text(Path(model_dir) / "feat_opts.json", json.dumps(opts) + "\n")


def spliced_static(feats: Mapping, static_dim: int, context: int) -> FeatureView:
    """The static columns `[:, :static_dim]` of [static | delta | delta-delta], spliced:
    `(T, static_dim * (2 context + 1))` float64 per utterance, computed on access."""
    return FeatureView(feats, lambda u, m: tf.splice(np.asarray(m[:, :static_dim], np.float64), context),
                       static_dim * (2 * context + 1) if context > 0 else static_dim)


def project(feats: Mapping, M: np.ndarray) -> FeatureView:
    """Each utterance `(T, D)` -> `(T, out)` = X M^T (float32), computed on access."""
    return FeatureView(feats, lambda u, m: np.ascontiguousarray(np.asarray(m, np.float64) @ M.T, dtype=np.float32),
                       M.shape[0])


def si_features(model_dir: str | Path, feats: Mapping) -> Mapping:
    """The speaker-independent features of `model_dir`'s kind: the stored ones (delta) or
    final.mat applied to the spliced static features (lda_mllt, sat), computed on access."""
    opts = read_feat_opts(model_dir)
    if opts["feat_type"] == "delta":
        return feats
    M = tf.read_matrix(Path(model_dir) / "final.mat")
    return project(spliced_static(feats, opts["static_dim"], opts["splice_context"]), M)


def read_utt2spk(*dirs: str | Path) -> dict[str, str]:
    """utt2spk of the first dir that has one (feature dir, then data dir)."""
    for d in dirs:
        if d is not None and (Path(d) / "utt2spk").is_file():
            return read_kaldi_map(Path(d) / "utt2spk")
    raise FileNotFoundError(f"no utt2spk in {', '.join(str(d) for d in dirs if d is not None)} (needed for fMLLR)")


def speaker_fmllr(am, tm, feats: Mapping, ali: dict[str, np.ndarray], utt2spk: dict[str, str],
                  iters: int = 10, what: str = "fMLLR", prev: dict[str, np.ndarray] | None = None,
                  passes: int = 2) -> dict[str, np.ndarray]:
    """One fMLLR transform `(D, D+1)` per speaker of `feats` (SI features), from the Gaussian
    posteriors of the transition-id alignments `ali` under `am` (Kaldi gmm-est-fmllr). Starts at
    the speaker's transform in `prev` (else the identity); each of `passes` recomputes the
    posteriors on the features through the current transform. A speaker without aligned frames
    gets the identity. Holds one speaker's features at a time. Raises TransformError naming the speaker."""
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)
    D = next(iter(feats.values())).shape[1]
    by_spk: dict[str, list[str]] = {}
    for u in sorted(feats):
        by_spk.setdefault(utt2spk.get(u, u), []).append(u)
    out, gain = {}, []
    for spk, utts in sorted(by_spk.items()):
        W0 = np.hstack([np.eye(D), np.zeros((D, 1))])
        W = (prev or {}).get(spk, W0)
        aligned = [u for u in utts if u in ali]
        if not aligned:
            out[spk] = W0
            continue
        X = np.concatenate([feats[u] for u in aligned])
        pdf = np.concatenate([tid2pdf[ali[u]] for u in aligned])
        for _ in range(max(1, passes)):
            st = tf.FmllrStats(D)
            st.accumulate(am, pdf, X, W=W)
            W = tf.estimate_fmllr(st, iters=iters, W=W, what=f"{what} of speaker {spk}")
        gain.append((tf.fmllr_auxf(W, st) - tf.fmllr_auxf(W0, st)) / st.beta)
        out[spk] = W
    if gain:
        log.info("%s: %d speakers, auxf gain over no transform %.4f/frame (mean over speakers)", what, len(out),
                 float(np.mean(gain)))
    return out


def apply_speakers(trans: dict[str, np.ndarray], feats: Mapping, utt2spk: dict[str, str]) -> FeatureView:
    """Each utterance through its speaker's fMLLR transform (the identity for an unknown speaker),
    computed on access."""
    def fn(u, m):
        W = trans.get(utt2spk.get(u, u))
        return m if W is None else tf.apply_fmllr(W, m)

    return FeatureView(feats, fn, feats.dim)
