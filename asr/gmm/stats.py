"""GMM statistics and re-estimation: Viterbi accumulation per pdf (numpy), the MLE update,
Gaussian splitting, and one-Gaussian-per-pdf initialisation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import kaldi_hmm_gmm as khg
import numpy as np

from asr.gmm.config import GmmConfig
from asr.gmm.feature_store import frame_blocks


log = logging.getLogger(__name__)


@dataclass
class GmmStats:
    """Per pdf and Gaussian: occupancy `(G,)`, sum `(G, D)`, sum of squares `(G, D)` (float64)."""

    occ: list[np.ndarray]
    x: list[np.ndarray]
    x2: list[np.ndarray]
    trans: np.ndarray      # (num_tids + 1,) transition counts
    loglike: float
    frames: int


# Frames `accumulate` reads at once: an hour of audio at 100 frames/s (~56 MB of 39-dim float32).
# Corpora up to that size get the statistics of one block, as when all frames were held at once.
ACC_BLOCK_FRAMES = 360_000


def accumulate(am: khg.AmDiagGmm, tm: khg.TransitionModel, feats: Mapping[str, np.ndarray],
               ali: dict[str, np.ndarray], block_frames: int = ACC_BLOCK_FRAMES) -> GmmStats:
    """Viterbi statistics of `ali` (transition ids per utterance) under `am`, grouped per pdf.
    Reads the aligned utterances (sorted) `block_frames` frames at a time and sums the blocks'
    statistics (Kaldi: gmm-acc-stats-ali per job, gmm-sum-accs)."""
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)
    G = [am.num_gauss_in_pdf(p) for p in range(am.num_pdfs)]
    occ = [np.zeros(g) for g in G]
    xs = [np.zeros((g, am.dim)) for g in G]
    x2s = [np.zeros((g, am.dim)) for g in G]
    trans = np.zeros(tm.num_transition_ids + 1)
    total, frames = 0.0, 0
    for utts in frame_blocks(sorted(ali), lambda u: len(ali[u]), block_frames):
        X = np.empty((sum(len(ali[u]) for u in utts), am.dim), np.float32)
        t = 0
        for u in utts:
            X[t:t + len(ali[u])] = feats[u]
            t += len(ali[u])
        tids = np.concatenate([ali[u] for u in utts]).astype(np.int64)
        pdf = tid2pdf[tids]
        order = np.argsort(pdf, kind="stable")
        bounds = np.searchsorted(pdf[order], np.arange(am.num_pdfs + 1))
        for p in np.flatnonzero(np.diff(bounds)):
            idx = order[bounds[p]:bounds[p + 1]]
            Xp = X[idx].astype(np.float64)
            ll = am.get_pdf(int(p)).log_likelihoods_matrix(X[idx]).astype(np.float64)   # (n, G), weights included
            m = ll.max(axis=1, keepdims=True)
            frame_ll = m[:, 0] + np.log(np.exp(ll - m).sum(axis=1))
            post = np.exp(ll - frame_ll[:, None])                                   # (n, G)
            total += float(frame_ll.sum())
            occ[p] += post.sum(axis=0)
            xs[p] += post.T @ Xp
            x2s[p] += post.T @ (Xp * Xp)
        trans += np.bincount(tids, minlength=tm.num_transition_ids + 1)
        frames += len(tids)
    return GmmStats(occ, xs, x2s, trans, total, frames)


def update(am: khg.AmDiagGmm, tm: khg.TransitionModel, st: GmmStats, cfg: GmmConfig,
           num_gauss_target: int = 0, rng: np.random.Generator | None = None) -> None:
    """MLE update of weights, means, variances (in place), transitions, then Gaussian splitting."""
    dropped = 0
    for p in range(am.num_pdfs):
        gmm = am.get_pdf(p)
        occ, x, x2 = st.occ[p], st.x[p], st.x2[p]
        keep = occ >= cfg.min_gaussian_occupancy
        if not keep.any():
            continue  # too little data: keep the old parameters
        if not keep.all():
            gone = [int(g) for g in np.flatnonzero(~keep)]
            gmm.remove_components(gone, True)
            dropped += len(gone)
            occ, x, x2 = occ[keep], x[keep], x2[keep]
        mean = x / occ[:, None]
        var = np.maximum(x2 / occ[:, None] - mean * mean, cfg.min_variance)
        gmm.set_weights((occ / occ.sum()).astype(np.float32))
        gmm.set_invvars_and_means((1.0 / var).astype(np.float32), mean.astype(np.float32))
        gmm.compute_gconsts()
    if dropped:
        log.info("removed %d Gaussians with occupancy < %g", dropped, cfg.min_gaussian_occupancy)
    tcfg = khg.MleTransitionUpdateConfig()
    tm.mle_update(st.trans, tcfg)
    if num_gauss_target > am.num_gauss:
        occs = np.array([o.sum() for o in st.occ], dtype=np.float32)
        before = [am.num_gauss_in_pdf(p) for p in range(am.num_pdfs)]
        # Kaldi's own perturbation draws from an unseedable RNG: split without it, then move
        # the new components by perturb_factor standard deviations with a seeded generator.
        am.split_by_count(occs, num_gauss_target, 0.0, cfg.power, 20.0)
        rng = rng if rng is not None else np.random.default_rng(cfg.seed)
        for p in range(am.num_pdfs):
            n0 = before[p]
            if am.num_gauss_in_pdf(p) > n0:
                gmm = am.get_pdf(p)
                means, inv_vars = np.array(gmm.means, np.float64), np.array(gmm.inv_vars, np.float64)
                noise = rng.standard_normal(means[n0:].shape)
                means[n0:] += cfg.perturb_factor * noise / np.sqrt(inv_vars[n0:])
                gmm.set_invvars_and_means(inv_vars.astype(np.float32), means.astype(np.float32))
                gmm.compute_gconsts()


def init_single_gaussians(stats: list[tuple[float, np.ndarray, np.ndarray]], dim: int,
                          min_variance: float = 0.001) -> khg.AmDiagGmm:
    """One Gaussian per pdf from (count, sum (D,), sum of squares (D,)) tuples."""
    am = khg.AmDiagGmm()
    tot_n = sum(s[0] for s in stats)
    gx = sum(s[1] for s in stats) / max(tot_n, 1.0)
    gv = sum(s[2] for s in stats) / max(tot_n, 1.0) - gx * gx
    for n, sx, sx2 in stats:
        if n > 0:
            mean = sx / n
            var = sx2 / n - mean * mean
        else:  # an empty leaf (should not happen): the global Gaussian
            mean, var = gx, gv
        g = khg.DiagGmm(1, dim)
        g.set_weights(np.ones(1, np.float32))
        g.set_invvars_and_means((1.0 / np.maximum(var, min_variance))[None].astype(np.float32),
                                np.asarray(mean, np.float32)[None])
        g.compute_gconsts()
        am.add_pdf(g)
    return am
