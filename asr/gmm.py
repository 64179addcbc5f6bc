"""Monophone and triphone GMM-HMM training, forced alignment, alignment import and GMM decoding.

Kaldi's steps/train_mono.sh + train_deltas.sh, on the kaldi_hmm_gmm bindings:

- monophone: one Gaussian per pdf from the global mean/variance, equal alignment, Viterbi EM
  (realign on `realign_iters`), Gaussians split towards `num_gauss`;
- triphone: tree statistics from the previous alignment -> `asr.tree` builds the tree ->
  one Gaussian per leaf from the tree statistics -> realign -> Viterbi EM with splitting;
  repeated for each round (`tri1`, `tri2`, ...);
- final alignment dir (`docs/interfaces.md`): `final.mdl`, `tree`, `num_pdfs`,
  `ali.{ark,scp}` (transition ids), `pdf_ali.{ark,scp}` (pdf ids), `failed_utts`, and
  `*_dev.*` for a dev set.

Statistics are accumulated in numpy per pdf (one matrix product per pdf, not a Python loop
over frames) and the MLE update is done in numpy; alignment, graph compilation, Gaussian
splitting and decoding are Kaldi's C++ code. `final.mdl` is a pickle of
`{"transition_model": TransitionModel, "am": AmDiagGmm}` (the binding's own pickled state).
Features: MFCC+delta+delta-delta, `(frames, 39)` float32 from `asr.features.FeatureReader`,
per-speaker mean normalisation.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os

# Small per-pdf matrix products: multi-threaded BLAS only adds synchronisation (3-10x slower
# on a loaded 2-core machine); parallelism comes from alignment jobs. Effective when this
# module is imported before numpy (as under `python -m asr.gmm`).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
import pickle
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import kaldi_hmm_gmm as khg
import kaldifst
import kaldiio
import numpy as np
import yaml
from tqdm import tqdm

from asr.lang import Lang, load_lang
from asr.utils import atomic_path, atomic_write_text, read_kaldi_map, setup_logging

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass
class StageConfig:
    """One training round (mono, tri1, tri2, ...)."""

    num_iters: int = 10
    realign_iters: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 6, 8])
    num_gauss: int = 1000          # total Gaussians at the end of the round
    num_leaves: int = 0            # triphone rounds: target number of tree leaves
    min_leaf_count: float = 100.0  # triphone rounds: minimum frames per leaf
    max_iter_inc: int = 0          # split Gaussians until this iteration (0: num_iters - 2)
    beam: float = 0.0              # alignment beam for this round (0: the global `beam`)
    retry_beam: float = 0.0


@dataclass
class GmmConfig:
    mono: StageConfig = field(default_factory=lambda: StageConfig(
        num_iters=12, num_gauss=600, realign_iters=[1, 2, 3, 4, 5, 6, 8, 10], beam=40.0, retry_beam=200.0))
    tri: list[StageConfig] = field(default_factory=lambda: [
        StageConfig(num_iters=8, num_gauss=3000, num_leaves=500, realign_iters=[2, 4, 6]),
        StageConfig(num_iters=8, num_gauss=6000, num_leaves=1000, realign_iters=[2, 4, 6]),
    ])
    beam: float = 10.0
    retry_beam: float = 40.0
    acoustic_scale: float = 0.1
    self_loop_scale: float = 0.1
    transition_scale: float = 1.0
    min_variance: float = 0.001
    min_gaussian_occupancy: float = 10.0
    power: float = 0.2
    perturb_factor: float = 0.01
    seed: int = 0
    nj: int = 2
    import_ali: str = ""      # Kaldi pdf alignments (ark/scp) to import instead of training
    import_num_pdfs: int = 0  # their number of pdfs (range check); 0: unchecked

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> "GmmConfig":
        if path is None:
            return cls()
        raw = yaml.safe_load(Path(path).read_text()) or {}
        base = cls()
        kw = {k: v for k, v in raw.items() if k not in ("mono", "tri")}
        unknown = set(kw) - set(asdict(base))
        if unknown:
            raise ValueError(f"{path}: unknown GMM options {sorted(unknown)}")
        cfg = cls(**{**{k: getattr(base, k) for k in asdict(base) if k not in ("mono", "tri")}, **kw})
        if "mono" in raw:
            cfg.mono = StageConfig(**raw["mono"])
        if "tri" in raw:
            cfg.tri = [StageConfig(**t) for t in raw["tri"]]
        return cfg


# --------------------------------------------------------------------------------------------
# features and transcripts
# --------------------------------------------------------------------------------------------
def load_features(feat_dir: str | Path, utts: list[str] | None = None) -> dict[str, np.ndarray]:
    """Utterances of a feature dir (all, or `utts`), per-speaker mean normalisation applied (as
    Kaldi's GMM recipes: apply-cmvn without variance normalisation): utt -> (frames, dim) float32."""
    from asr.features import FeatureReader

    reader = FeatureReader(feat_dir, cmvn=True, norm_vars=False)
    known = set(reader.utt_ids)
    ids = reader.utt_ids if utts is None else [u for u in utts if u in known]
    return {u: np.ascontiguousarray(reader[u], dtype=np.float32)
            for u in tqdm(ids, desc=f"load {Path(feat_dir).name}", disable=len(ids) < 500)}


def read_text(data_dir: str | Path) -> dict[str, list[str]]:
    """Kaldi `text` -> utt -> words (an utterance without words gets an empty list)."""
    return {k: v.split() for k, v in read_kaldi_map(Path(data_dir) / "text", allow_empty_value=True).items()}


# --------------------------------------------------------------------------------------------
# model files
# --------------------------------------------------------------------------------------------
def save_model(path: str | Path, tm: khg.TransitionModel, am: khg.AmDiagGmm) -> None:
    """Write `final.mdl`-style model atomically (pickle of the bindings' own state)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump({"transition_model": tm, "am": am}, f, protocol=pickle.HIGHEST_PROTOCOL)


def load_model(path: str | Path) -> tuple[khg.TransitionModel, khg.AmDiagGmm]:
    with open(path, "rb") as f:
        d = pickle.load(f)
    return d["transition_model"], d["am"]


def write_tree(path: str | Path, tree: khg.ContextDependency) -> None:
    """Kaldi binary ContextDependency (what Kaldi's `tree` file holds), atomically."""
    with atomic_path(path) as tmp:
        tree.write(True, str(tmp))


def read_tree(path: str | Path) -> khg.ContextDependency:
    """Load a Kaldi binary `tree` file (the binding has no reader: its pickled state is the
    Kaldi bytes). Triphone trees are validated by `asr.tree`; monophone trees (N=1) load as is."""
    from asr.tree import load_context_dependency

    data = Path(path).read_bytes()
    if data[:2] != b"\0B" or not data[2:].startswith(b"ContextDependency "):
        raise ValueError(f"{path}: not a Kaldi binary tree")
    if data[2 + len(b"ContextDependency "):][:5] == b"\x04\x03\x00\x00\x00":  # N == 3
        return load_context_dependency(data)
    tree = khg.ContextDependency.__new__(khg.ContextDependency)
    tree.__setstate__((np.frombuffer(data[2:], dtype=np.int8).tolist(),))
    return tree


def read_topo(lang_dir: str | Path) -> khg.HmmTopology:
    topo = khg.HmmTopology()
    topo.read((Path(lang_dir) / "topo").read_text())
    return topo


# --------------------------------------------------------------------------------------------
# statistics and update
# --------------------------------------------------------------------------------------------
@dataclass
class GmmStats:
    """Per pdf and Gaussian: occupancy `(G,)`, sum `(G, D)`, sum of squares `(G, D)` (float64)."""

    occ: list[np.ndarray]
    x: list[np.ndarray]
    x2: list[np.ndarray]
    trans: np.ndarray      # (num_tids + 1,) transition counts
    loglike: float
    frames: int


def _concat(feats: dict[str, np.ndarray], ali: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    utts = sorted(ali)
    return np.concatenate([feats[u] for u in utts]), np.concatenate([ali[u] for u in utts]).astype(np.int64)


def accumulate(am: khg.AmDiagGmm, tm: khg.TransitionModel, feats: dict[str, np.ndarray],
               ali: dict[str, np.ndarray]) -> GmmStats:
    """Viterbi statistics of `ali` (transition ids per utterance) under `am`, grouped per pdf."""
    X, tids = _concat(feats, ali)
    pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)[tids]
    order = np.argsort(pdf, kind="stable")
    bounds = np.searchsorted(pdf[order], np.arange(am.num_pdfs + 1))
    occ, xs, x2s, total = [], [], [], 0.0
    for p in range(am.num_pdfs):
        idx = order[bounds[p]:bounds[p + 1]]
        gmm = am.get_pdf(p)
        G, D = gmm.num_gauss, am.dim
        if len(idx) == 0:
            occ.append(np.zeros(G)); xs.append(np.zeros((G, D))); x2s.append(np.zeros((G, D)))
            continue
        Xp = X[idx].astype(np.float64)
        ll = gmm.log_likelihoods_matrix(X[idx]).astype(np.float64)   # (n, G), weights included
        m = ll.max(axis=1, keepdims=True)
        frame_ll = m[:, 0] + np.log(np.exp(ll - m).sum(axis=1))
        post = np.exp(ll - frame_ll[:, None])                          # (n, G)
        total += float(frame_ll.sum())
        occ.append(post.sum(axis=0))
        xs.append(post.T @ Xp)
        x2s.append(post.T @ (Xp * Xp))
    trans = np.bincount(tids, minlength=tm.num_transition_ids + 1).astype(np.float64)
    return GmmStats(occ, xs, x2s, trans, total, len(tids))


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


# --------------------------------------------------------------------------------------------
# graphs and alignment
# --------------------------------------------------------------------------------------------
def compile_graphs(tm: khg.TransitionModel, tree: khg.ContextDependency, lang_dir: str | Path, lang: Lang,
                   texts: dict[str, list[str]]) -> tuple[dict[str, kaldifst.StdVectorFst], list[str]]:
    """Training graphs (HCLG of the transcript, no transition probs). Returns graphs and failures."""
    L = kaldifst.StdVectorFst.read(str(Path(lang_dir) / "L.fst"))
    opts = khg.TrainingGraphCompilerOptions()
    opts.reorder = False  # self-loops before forward transitions: phone boundaries at is_final
    gc = khg.TrainingGraphCompiler(tm, tree, L, lang.disambig_ids, opts)
    oov = lang.words[lang.oov]
    graphs, failed = {}, []
    for utt, words in texts.items():
        ids = [lang.words.get(w, oov) for w in words]
        try:
            g = gc.compile_graph_from_text(ids)
        except Exception as e:  # noqa: BLE001 - the binding raises RuntimeError on Kaldi errors
            log.warning("%s: no training graph (%s)", utt, e)
            failed.append(utt)
            continue
        if g.num_states == 0:
            log.warning("%s: empty training graph for %r", utt, " ".join(words))
            failed.append(utt)
            continue
        graphs[utt] = g
    return graphs, failed


def equal_align(graphs: dict[str, kaldifst.StdVectorFst], feats: dict[str, np.ndarray],
                seed: int = 0) -> tuple[dict[str, np.ndarray], list[str]]:
    """Kaldi's align-equal-compiled: a random path of the right length through each graph."""
    ali, failed = {}, []
    for i, (utt, g) in enumerate(sorted(graphs.items())):
        ok, path = kaldifst.equal_align(g, feats[utt].shape[0], seed + i, 10)
        if ok:
            ok, ilabels, _, _ = kaldifst.get_linear_symbol_sequence(path)
        if not ok or len(ilabels) != feats[utt].shape[0]:
            log.warning("%s: equal alignment failed (%d frames)", utt, feats[utt].shape[0])
            failed.append(utt)
            continue
        ali[utt] = np.asarray(ilabels, dtype=np.int32)
    return ali, failed


_WORK: dict = {}


def _align_chunk(utts: list[str]) -> list[tuple[str, np.ndarray | None, float]]:
    w = _WORK
    tm, am, cfg = w["tm"], w["am"], w["cfg"]
    acfg = khg.AlignConfig(beam=cfg.beam, retry_beam=cfg.retry_beam, careful=False)
    out = []
    for utt in utts:
        fst = w["graphs"][utt].copy()
        khg.add_transition_probs(trans_model=tm, disambig_syms=[], transition_scale=cfg.transition_scale,
                                 self_loop_scale=cfg.self_loop_scale, fst=fst)
        dec = khg.DecodableAmDiagGmmScaled(am, tm, w["feats"][utt], cfg.acoustic_scale)
        _, num_err, _, like, _, ali, _ = khg.align_utterance_wrapper(acfg, utt, cfg.acoustic_scale, fst, dec,
                                                                     0, 0, 0, 0.0, 0)
        if num_err or len(ali) != w["feats"][utt].shape[0]:
            out.append((utt, None, 0.0))
        else:
            out.append((utt, np.asarray(ali, dtype=np.int32), float(like)))
    return out


def align(am: khg.AmDiagGmm, tm: khg.TransitionModel, graphs: dict[str, kaldifst.StdVectorFst],
          feats: dict[str, np.ndarray], cfg: GmmConfig, desc: str = "align"
          ) -> tuple[dict[str, np.ndarray], list[str], float]:
    """Viterbi forced alignment (beam, then retry beam). Returns ali, failed utts, avg loglike/frame."""
    _WORK.update(tm=tm, am=am, cfg=cfg, graphs=graphs, feats=feats)
    utts = sorted(graphs)
    nj = max(1, min(cfg.nj, len(utts) // 20 or 1))
    chunks = [utts[i::nj * 4] for i in range(nj * 4)] if nj > 1 else [utts]
    results = []
    try:
        if nj > 1:
            with mp.get_context("fork").Pool(nj) as pool:
                for r in pool.imap_unordered(_align_chunk, chunks):
                    results.extend(r)
        else:
            results = _align_chunk(utts)
    finally:
        _WORK.clear()
    ali, failed, like, frames = {}, [], 0.0, 0
    for utt, a, lk in results:
        if a is None:
            failed.append(utt)
        else:
            ali[utt] = a
            like += lk
            frames += len(a)
    failed.sort()
    if failed:
        log.warning("%s: %d utterances failed to align: %s", desc, len(failed), " ".join(failed[:20]))
    return ali, failed, like / max(frames, 1)  # the wrapper reports unscaled log-likelihoods


# --------------------------------------------------------------------------------------------
# training rounds
# --------------------------------------------------------------------------------------------
def _gauss_schedule(start: int, target: int, it: int, stage: StageConfig) -> int:
    last = stage.max_iter_inc or max(1, stage.num_iters - 2)
    if it >= last:
        return target
    return int(start + (target - start) * (it + 1) / last)


def _stage_beams(cfg: GmmConfig, stage: StageConfig) -> GmmConfig:
    """`cfg` with the round's own alignment beams where it sets them."""
    return replace(cfg, beam=stage.beam or cfg.beam, retry_beam=stage.retry_beam or cfg.retry_beam)


def _train_iters(name: str, out: Path, am, tm, graphs, feats, ali, stage: StageConfig, cfg: GmmConfig,
                 failed: set[str]) -> tuple[khg.AmDiagGmm, khg.TransitionModel, dict[str, np.ndarray]]:
    """Viterbi EM: realign on `stage.realign_iters`, accumulate, update, split. Resumable per iter."""
    start_gauss = am.num_gauss
    first = 0
    for it in range(stage.num_iters, 0, -1):  # resume from the newest finished iteration
        if (out / f"{it}.mdl").is_file():
            tm, am = load_model(out / f"{it}.mdl")
            first = it
            log.info("%s: resuming after iteration %d", name, it)
            break
    acfg = _stage_beams(cfg, stage)
    for it in range(first, stage.num_iters):
        t0 = time.time()
        if it in stage.realign_iters or (first and it == first):
            ali, bad, avg = align(am, tm, graphs, feats, acfg, desc=f"{name} iter {it}")
            failed.update(bad)
            log.info("%s iter %d: realigned (beam %g/%g), score %.3f/frame, %d failed", name, it,
                     acfg.beam, acfg.retry_beam, avg, len(bad))
        st = accumulate(am, tm, feats, ali)
        update(am, tm, st, cfg, _gauss_schedule(start_gauss, stage.num_gauss, it, stage),
               rng=np.random.default_rng([cfg.seed, it]))
        save_model(out / f"{it + 1}.mdl", tm, am)
        if it > 0 and (out / f"{it}.mdl").is_file():
            os.unlink(out / f"{it}.mdl")
        log.info("%s iter %d: avg loglike %.4f over %d frames, %d Gaussians, %.1fs",
                 name, it, st.loglike / st.frames, st.frames, am.num_gauss, time.time() - t0)
    return am, tm, ali


def train_mono(lang_dir: str | Path, feats: dict[str, np.ndarray], texts: dict[str, list[str]],
               out_dir: str | Path, cfg: GmmConfig) -> dict:
    """Monophone system in `out_dir` (`final.mdl`, `tree`, `ali.*`). Returns a summary dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lang = load_lang(lang_dir)
    topo = read_topo(lang_dir)
    tree = khg.monophone_context_dependency(topo.phones, topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(tree, topo)
    dim = next(iter(feats.values())).shape[1]
    X = np.concatenate(list(feats.values())).astype(np.float64)
    glob = (float(len(X)), X.sum(0), (X * X).sum(0))
    del X
    am = init_single_gaussians([glob] * tree.num_pdfs, dim, cfg.min_variance)
    t0 = time.time()
    graphs, failed = compile_graphs(tm, tree, lang_dir, lang, texts)
    ali, bad = equal_align(graphs, feats, cfg.seed)
    failed = set(failed) | set(bad)
    log.info("mono: %d pdfs, %d utterances, %d without graph/equal alignment, graphs in %.1fs",
             tree.num_pdfs, len(ali), len(failed), time.time() - t0)
    am, tm, ali = _train_iters("mono", out, am, tm, graphs, feats, ali, cfg.mono, cfg, failed)
    return _finish(out, tm, am, tree, graphs, feats, _stage_beams(cfg, cfg.mono), "mono")


def _finish(out: Path, tm, am, tree, graphs, feats, cfg: GmmConfig, name: str) -> dict:
    """Final alignment with the final model; writes final.mdl, tree, num_pdfs, ali, failed_utts."""
    ali, failed, avg = align(am, tm, graphs, feats, cfg, desc=f"{name} final")
    missing = sorted(set(feats) - set(graphs))
    failed = sorted(set(failed) | set(missing))
    save_model(out / "final.mdl", tm, am)
    write_tree(out / "tree", tree)
    atomic_write_text(out / "num_pdfs", f"{tm.num_pdfs}\n")
    write_alignments(out, ali, tm, failed, suffix="")
    for f in out.glob("*.mdl"):
        if f.name != "final.mdl":
            f.unlink()
    log.info("%s: final avg loglike %.3f/frame, %d pdfs, %d Gaussians, %d aligned, %d failed%s",
             name, avg, tm.num_pdfs, am.num_gauss, len(ali), len(failed),
             (": " + " ".join(failed[:20])) if failed else "")
    return {"num_pdfs": tm.num_pdfs, "num_gauss": am.num_gauss, "aligned": len(ali), "failed": len(failed),
            "avg_loglike": avg}


def write_alignments(out: Path, ali: dict[str, np.ndarray], tm: khg.TransitionModel, failed: list[str],
                     suffix: str = "") -> None:
    """`ali{suffix}.{ark,scp}` (transition ids), `pdf_ali{suffix}.{ark,scp}`, `failed_utts{suffix}`."""
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int32)
    for name, conv in (("ali", lambda a: a), ("pdf_ali", lambda a: tid2pdf[a])):
        ark, scp = out / f"{name}{suffix}.ark", out / f"{name}{suffix}.scp"
        with atomic_path(ark) as tark, atomic_path(scp) as tscp:
            with kaldiio.WriteHelper(f"ark,scp:{tark},{tscp}") as w:
                for utt in sorted(ali):
                    w(utt, conv(ali[utt]).astype(np.int32))
            # the scp names the temporary ark: point it at the final name
            tscp.write_text(tscp.read_text().replace(str(tark), str(ark.resolve())))
    atomic_write_text(out / f"failed_utts{suffix}", "".join(u + "\n" for u in failed))


def train_tri(name: str, lang_dir: str | Path, feats: dict[str, np.ndarray], texts: dict[str, list[str]],
              prev_dir: str | Path, out_dir: str | Path, stage: StageConfig, cfg: GmmConfig) -> dict:
    """A triphone round: tree from `prev_dir`'s alignment and model, then Viterbi EM."""
    from asr import tree as treelib

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lang = load_lang(lang_dir)
    topo = read_topo(lang_dir)
    prev_tm, _ = load_model(Path(prev_dir) / "final.mdl")
    prev_ali = dict(kaldiio.load_scp(str(Path(prev_dir) / "ali.scp")))
    prev_ali = {u: np.asarray(a, np.int32) for u, a in prev_ali.items() if u in feats}
    t0 = time.time()
    dim = next(iter(feats.values())).shape[1]
    stats = treelib.TreeStats(dim)
    for utt in sorted(prev_ali):
        phones, pdf_classes, starts = treelib.alignment_to_phones(prev_tm, prev_ali[utt])
        stats.accumulate(feats[utt], phones, pdf_classes, starts)
    lang_p = Path(lang_dir) / "phones"
    roots = treelib.read_roots(lang_p / "roots.int")
    questions = treelib.cluster_phones(stats, phone_sets=treelib.read_questions(lang_p / "sets.int"))
    if (lang_p / "extra_questions.int").is_file():
        questions += treelib.read_questions(lang_p / "extra_questions.int")
    t1 = time.time()
    pytree = treelib.build_tree(stats, topo.get_phone_to_num_pdf_classes(), max_leaves=stage.num_leaves,
                                roots=roots, questions=questions, min_count=stage.min_leaf_count)
    tree = pytree.to_kaldi()
    counts, sums, sumsqs = pytree.leaf_stats
    leaf_stats = list(zip(counts.tolist(), sums, sumsqs))
    log.info("%s: tree stats over %d contexts (%.1fs), %d questions, %d leaves (%.1fs)", name,
             stats.num_contexts, t1 - t0, len(questions), tree.num_pdfs, time.time() - t1)
    tm = khg.TransitionModel(tree, topo)
    am = init_single_gaussians(leaf_stats, dim, cfg.min_variance)
    graphs, failed = compile_graphs(tm, tree, lang_dir, lang, texts)
    ali, bad, avg = align(am, tm, graphs, feats, cfg, desc=f"{name} init")
    log.info("%s: initial alignment avg loglike %.3f, %d failed", name, avg, len(bad))
    failed = set(failed) | set(bad)
    am, tm, ali = _train_iters(name, out, am, tm, graphs, feats, ali, stage, cfg, failed)
    return _finish(out, tm, am, tree, graphs, feats, _stage_beams(cfg, stage), name)


# --------------------------------------------------------------------------------------------
# alignment import, decoding, CLI
# --------------------------------------------------------------------------------------------
def import_alignments(pdf_ali: str | Path, feat_dir: str | Path, out_dir: str | Path,
                      num_pdfs: int | None = None, suffix: str = "") -> int:
    """Copy Kaldi pdf alignments (any int32-vector ark or scp, e.g. `ali-to-pdf` output) into
    `out_dir/pdf_ali{suffix}.{ark,scp}` after checking each length against the features.

    Raises ValueError naming the utterance on a length mismatch, a missing utterance's features
    or a pdf id out of range. Returns the number of utterances imported.
    """
    pdf_ali, out = str(pdf_ali), Path(out_dir)
    lengths = _num_frames(feat_dir)
    reader = kaldiio.load_scp(pdf_ali) if pdf_ali.endswith(".scp") else kaldiio.load_ark(pdf_ali)
    items = dict(reader.items()) if hasattr(reader, "items") else dict(reader)
    if not items:
        raise ValueError(f"{pdf_ali}: no alignments")
    checked = {}
    for utt, a in sorted(items.items()):
        a = np.asarray(a)
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{pdf_ali}: utterance {utt}: expected an int32 vector, got {a.dtype} {a.shape}")
        if utt not in lengths:
            raise ValueError(f"{pdf_ali}: utterance {utt} has no features in {feat_dir}")
        if len(a) != lengths[utt]:
            raise ValueError(f"{pdf_ali}: utterance {utt} has {len(a)} alignment frames but "
                             f"{lengths[utt]} feature frames in {feat_dir}")
        if a.min() < 0 or (num_pdfs is not None and a.max() >= num_pdfs):
            raise ValueError(f"{pdf_ali}: utterance {utt}: pdf ids outside [0, {num_pdfs})")
        checked[utt] = a.astype(np.int32)
    out.mkdir(parents=True, exist_ok=True)
    ark, scp = out / f"pdf_ali{suffix}.ark", out / f"pdf_ali{suffix}.scp"
    with atomic_path(ark) as tark, atomic_path(scp) as tscp:
        with kaldiio.WriteHelper(f"ark,scp:{tark},{tscp}") as w:
            for utt in sorted(checked):
                w(utt, checked[utt])
        tscp.write_text(tscp.read_text().replace(str(tark), str(ark.resolve())))
    missing = sorted(set(lengths) - set(checked))
    atomic_write_text(out / f"failed_utts{suffix}", "".join(u + "\n" for u in missing))
    if num_pdfs is not None and not (out / "num_pdfs").is_file():
        atomic_write_text(out / "num_pdfs", f"{num_pdfs}\n")
    log.info("imported %d alignments from %s (%d utterances without one)", len(checked), pdf_ali, len(missing))
    return len(checked)


def _num_frames(feat_dir: str | Path) -> dict[str, int]:
    from asr.features import FeatureReader

    r = FeatureReader(feat_dir, cmvn=False)
    return {u: r.num_frames(u) for u in r.utt_ids}


def decode(graph_dir: str | Path, feats: dict[str, np.ndarray], model: str | Path | None = None,
           acoustic_scale: float = 0.1, beam: float = 13.0, lattice_beam: float = 6.0,
           max_active: int = 7000) -> dict[str, list[str]]:
    """GMM decoding through `graph_dir/HCLG.fst` with Kaldi's lattice-faster decoder (best path).

    `model`: the GMM (`final.mdl`); default `graph_dir/final.mdl`. Returns utt -> words.
    """
    from asr.graph import load_graph

    g = load_graph(graph_dir)
    tm, am = load_model(model or Path(graph_dir) / "final.mdl")
    cfg = khg.LatticeFasterDecoderConfig(beam=beam, max_active=max_active, lattice_beam=lattice_beam)
    decoder = khg.LatticeFasterDecoder(g.hclg, cfg)
    hyps = {}
    for utt in tqdm(sorted(feats), desc="decode", disable=len(feats) < 50):
        dec = khg.DecodableAmDiagGmmScaled(am, tm, feats[utt], acoustic_scale)
        ok, _, words, _ = khg.decode_utterance_lattice_faster(decoder, dec, tm, utt, True)
        if not ok:
            log.warning("%s: decoding failed", utt)
        hyps[utt] = [g.words[w] for w in words] if ok else []
    return hyps


def wer(refs: dict[str, list[str]], hyps: dict[str, list[str]]) -> dict:
    """Corpus WER (kaldialign) over the utterances of `refs` (a missing hypothesis is empty)."""
    import kaldialign

    errs = {"ins": 0, "del": 0, "sub": 0}
    n = 0
    for utt, ref in refs.items():
        st = kaldialign.edit_distance(ref, hyps.get(utt, []))
        for k in errs:
            errs[k] += st[k]
        n += len(ref)
    tot = sum(errs.values())
    return {"wer": 100.0 * tot / max(n, 1), "errors": tot, "words": n, **errs, "utts": len(refs)}


def train_all(data_dir: str | Path, feat_dir: str | Path, lang_dir: str | Path, exp_dir: str | Path,
              cfg: GmmConfig, dev_feat_dir: str | Path | None = None, ali_name: str = "tri_ali") -> dict:
    """mono -> tri1 -> tri2 ... -> `exp/<last>_ali` (the final alignment dir, train and dev)."""
    exp = Path(exp_dir)
    texts = read_text(data_dir)
    t0 = time.time()
    feats = load_features(feat_dir)
    no_text = sorted(set(feats) - set(texts))
    if no_text:
        log.warning("%d utterances have features but no transcript (left out): %s", len(no_text), " ".join(no_text[:20]))
    feats = {u: m for u, m in feats.items() if u in texts}
    texts = {u: w for u, w in texts.items() if u in feats}
    log.info("train: %d utterances, %d frames, dim %d (loaded in %.1fs)", len(feats),
             sum(m.shape[0] for m in feats.values()), next(iter(feats.values())).shape[1], time.time() - t0)
    summary: dict = {}
    t = time.time()
    if not (exp / "mono" / ".done").is_file():
        summary["mono"] = train_mono(lang_dir, feats, texts, exp / "mono", cfg)
        atomic_write_text(exp / "mono" / ".done", json.dumps(summary["mono"]) + "\n")
    summary.setdefault("mono", json.loads((exp / "mono" / ".done").read_text()))
    summary["mono"]["wall_s"] = round(time.time() - t, 1)
    prev = exp / "mono"
    for i, stage in enumerate(cfg.tri, 1):
        name = f"tri{i}"
        t = time.time()
        if not (exp / name / ".done").is_file():
            summary[name] = train_tri(name, lang_dir, feats, texts, prev, exp / name, stage, cfg)
            atomic_write_text(exp / name / ".done", json.dumps(summary[name]) + "\n")
        summary.setdefault(name, json.loads((exp / name / ".done").read_text()))
        summary[name]["wall_s"] = round(time.time() - t, 1)
        prev = exp / name
    # the alignment dir: the last model's files and alignments (+ dev)
    ali_dir = exp / f"{prev.name}_ali"
    ali_dir.mkdir(parents=True, exist_ok=True)
    for f in ("final.mdl", "tree", "num_pdfs", "ali.ark", "ali.scp", "pdf_ali.ark", "pdf_ali.scp", "failed_utts"):
        data = (prev / f).read_bytes()
        if f.endswith(".scp"):
            data = data.replace(str((prev / f.replace(".scp", ".ark")).resolve()).encode(),
                                str((ali_dir / f.replace(".scp", ".ark")).resolve()).encode())
        with atomic_path(ali_dir / f) as tmp:
            tmp.write_bytes(data)
    if dev_feat_dir is not None:
        summary["dev"] = align_dir(prev, lang_dir, dev_feat_dir, dev_feat_dir, ali_dir, cfg, suffix="_dev")
    summary["wall_s"] = round(time.time() - t0, 1)
    atomic_write_text(ali_dir / "summary.json", json.dumps(summary, indent=1) + "\n")
    log.info("GMM stage done in %.1fs: %s", time.time() - t0, json.dumps(summary))
    return summary


def align_dir(model_dir: str | Path, lang_dir: str | Path, data_dir: str | Path, feat_dir: str | Path,
              out_dir: str | Path, cfg: GmmConfig, suffix: str = "") -> dict:
    """Align a data set with `model_dir`'s final.mdl/tree; writes `*{suffix}` alignment files."""
    tm, am = load_model(Path(model_dir) / "final.mdl")
    tree = read_tree(Path(model_dir) / "tree")
    texts = read_text(data_dir)
    feats = load_features(feat_dir)
    feats = {u: m for u, m in feats.items() if u in texts}
    graphs, failed = compile_graphs(tm, tree, lang_dir, load_lang(lang_dir), {u: texts[u] for u in feats})
    ali, bad, avg = align(am, tm, graphs, feats, cfg, desc=f"align {feat_dir}")
    failed = sorted(set(failed) | set(bad))
    write_alignments(Path(out_dir), ali, tm, failed, suffix=suffix)
    log.info("aligned %s: %d utterances, %d failed, avg loglike %.3f", feat_dir, len(ali), len(failed), avg)
    return {"aligned": len(ali), "failed": len(failed), "avg_loglike": avg}


def decode_and_score(graph_dir: str | Path, data_dir: str | Path, feat_dir: str | Path, out_dir: str | Path,
                     acoustic_scale: float = 0.1, beam: float = 13.0) -> dict:
    """GMM-decode a data set through `graph_dir`; writes `hyp.txt` and `wer.json` in `out_dir`."""
    feats = load_features(feat_dir)
    refs = read_text(data_dir)
    feats = {u: m for u, m in feats.items() if u in refs}
    t0 = time.time()
    hyps = decode(graph_dir, feats, acoustic_scale=acoustic_scale, beam=beam)
    el = time.time() - t0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "hyp.txt", "".join(f"{u} {' '.join(hyps[u])}".rstrip() + "\n" for u in sorted(hyps)))
    res = wer({u: refs[u] for u in feats}, hyps)
    frames = sum(m.shape[0] for m in feats.values())
    res.update(decode_s=round(el, 1), rtf=round(el / max(frames * 0.01, 1e-9), 4),
               acoustic_scale=acoustic_scale, beam=beam)
    atomic_write_text(out / "wer.json", json.dumps(res, indent=1) + "\n")
    log.info("%s on %s: %%WER %.2f [ %d / %d, %d ins, %d del, %d sub ] rtf %.3f", graph_dir, feat_dir,
             res["wer"], res["errors"], res["words"], res["ins"], res["del"], res["sub"], res["rtf"])
    return res


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("train", help="mono -> tri1 -> tri2 ... and the final alignment dir")
    a.add_argument("--data", required=True, help="Kaldi data dir with `text` (e.g. data/train)")
    a.add_argument("--feats", required=True, help="feature dir (feats.scp, cmvn.scp), e.g. data/train_mfcc")
    a.add_argument("--dev-feats", help="dev feature dir (with `text`) to align with the final model")
    a.add_argument("--lang", required=True)
    a.add_argument("--exp", required=True, help="experiment dir: mono/, tri1/, ..., <last>_ali/")
    a.add_argument("--config", help="YAML (GmmConfig fields; mono: and tri: [..] rounds)")
    a.add_argument("--nj", type=int, help="parallel alignment jobs (overrides the config)")
    a = sub.add_parser("align", help="align a data set with a trained model dir")
    a.add_argument("--model-dir", required=True)
    a.add_argument("--lang", required=True)
    a.add_argument("--data", required=True)
    a.add_argument("--feats", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--suffix", default="")
    a.add_argument("--config")
    a = sub.add_parser("import-ali", help="import Kaldi pdf alignments (ali-to-pdf output)")
    a.add_argument("--pdf-ali", required=True, help="ark or scp of int32 vectors")
    a.add_argument("--feats", required=True, help="feature dir the alignments must match")
    a.add_argument("--out", required=True)
    a.add_argument("--num-pdfs", type=int)
    a.add_argument("--suffix", default="")
    a = sub.add_parser("decode", help="GMM decode through HCLG and score with kaldialign")
    a.add_argument("--graph", required=True, help="graph dir (HCLG.fst, words.txt, final.mdl)")
    a.add_argument("--data", required=True, help="data dir with `text`")
    a.add_argument("--feats", required=True)
    a.add_argument("--out", required=True, help="decode dir: hyp.txt, wer.json")
    a.add_argument("--acoustic-scale", type=float, default=0.1)
    a.add_argument("--beam", type=float, default=13.0)
    args = p.parse_args(argv)
    if args.cmd == "train":
        cfg = GmmConfig.from_yaml(args.config)
        if args.nj:
            cfg.nj = args.nj
        if cfg.import_ali:  # a Kaldi setup's alignments: no GMM training here
            out = Path(args.exp) / "tri2_ali"
            import_alignments(cfg.import_ali, args.feats, out, cfg.import_num_pdfs or None)
        else:
            train_all(args.data, args.feats, args.lang, args.exp, cfg, args.dev_feats)
    elif args.cmd == "align":
        align_dir(args.model_dir, args.lang, args.data, args.feats, args.out, GmmConfig.from_yaml(args.config),
                  args.suffix)
    elif args.cmd == "import-ali":
        import_alignments(args.pdf_ali, args.feats, args.out, args.num_pdfs, args.suffix)
    else:
        decode_and_score(args.graph, args.data, args.feats, args.out, args.acoustic_scale, args.beam)

if __name__ == "__main__":
    setup_logging()
    main()
