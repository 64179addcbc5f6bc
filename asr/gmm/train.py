"""GMM training rounds (Kaldi's train_mono.sh + train_deltas.sh): monophone flat start, triphone
rounds on a tree from `asr.tree`, Viterbi EM with realignment and Gaussian splitting, and
`train_all` (mono -> tri1 -> ... -> the final alignment dir)."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import kaldi_hmm_gmm as khg
import kaldiio
import numpy as np

from asr.lang import load_lang
from asr.utils import atomic_path, atomic_write_text
from asr import tree as treelib
from asr.gmm.align import (align, align_dir, compile_graphs, equal_align, load_features, read_text, warn_oov,
                           write_alignments)
from asr.gmm.config import GmmConfig, StageConfig, final_ali_dir
from asr.gmm.feature_store import frame_blocks
from asr.gmm.stats import ACC_BLOCK_FRAMES, accumulate, init_single_gaussians, update
from asr.gmm import feature_pipeline as fp, transforms as tf
from asr.gmm.feature_pipeline import write_feat_opts
from asr.hmm_io import load_model, read_topo, save_model, write_tree


log = logging.getLogger(__name__)


def _gauss_schedule(start: int, target: int, it: int, stage: StageConfig) -> int:
    last = stage.max_iter_inc or max(1, stage.num_iters - 2)
    if it >= last:
        return target
    return int(start + (target - start) * (it + 1) / last)


def _stage_beams(cfg: GmmConfig, stage: StageConfig) -> GmmConfig:
    """`cfg` with the round's own alignment beams where it sets them."""
    return replace(cfg, beam=stage.beam or cfg.beam, retry_beam=stage.retry_beam or cfg.retry_beam)


def _train_iters(name: str, out: Path, am, tm, graphs, feats, ali, stage: StageConfig, cfg: GmmConfig,
                 failed: set[str], hook=None):
    """Viterbi EM: realign on `stage.realign_iters`, accumulate, update, split. Resumable per iter.
    `hook(it, am, tm, ali, feats) -> feats` runs after the realignment of each iteration (MLLT,
    fMLLR: it may change `am`'s means and returns the new features). Returns am, tm, ali, feats."""
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
            ali, bad, avg = align(am, tm, graphs, feats, acfg, desc=f"{name} iter {it}", log_dir=out / "log",
                                  stage=f"align.{it}")
            failed.update(bad)
            log.info("%s iter %d: realigned (beam %g/%g), score %.3f/frame, %d failed", name, it,
                     acfg.beam, acfg.retry_beam, avg, len(bad))
        if hook is not None:
            feats = hook(it, am, tm, ali, feats)
        st = accumulate(am, tm, feats, ali)
        update(am, tm, st, cfg, _gauss_schedule(start_gauss, stage.num_gauss, it, stage),
               rng=np.random.default_rng([cfg.seed, it]))
        save_model(out / f"{it + 1}.mdl", tm, am)
        if it > 0 and (out / f"{it}.mdl").is_file():
            os.unlink(out / f"{it}.mdl")
        log.info("%s iter %d: avg loglike %.4f over %d frames, %d Gaussians, %.1fs",
                 name, it, st.loglike / st.frames, st.frames, am.num_gauss, time.time() - t0)
    return am, tm, ali, feats


def train_mono(lang_dir: str | Path, feats: Mapping[str, np.ndarray], texts: dict[str, list[str]],
               out_dir: str | Path, cfg: GmmConfig) -> dict:
    """Monophone system in `out_dir` (`final.mdl`, `tree`, `ali.*`). Returns a summary dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lang = load_lang(lang_dir)
    topo = read_topo(lang_dir)
    tree = khg.monophone_context_dependency(topo.phones, topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(tree, topo)
    dim = feats.dim
    glob = (0.0, np.zeros(dim), np.zeros(dim))  # frames, sum, sum of squares: the global Gaussian
    for u in feats:
        X = feats[u].astype(np.float64)
        glob = (glob[0] + len(X), glob[1] + X.sum(0), glob[2] + (X * X).sum(0))
    am = init_single_gaussians([glob] * tree.num_pdfs, dim, cfg.min_variance)
    t0 = time.time()
    graphs, failed = compile_graphs(tm, tree, lang_dir, lang, texts, out)
    ali, bad = equal_align(graphs, feats, cfg.seed)
    failed = set(failed) | set(bad)
    log.info("mono: %d pdfs, %d utterances, %d without graph/equal alignment, graphs in %.1fs",
             tree.num_pdfs, len(ali), len(failed), time.time() - t0)
    am, tm, ali, feats = _train_iters("mono", out, am, tm, graphs, feats, ali, cfg.mono, cfg, failed)
    return _finish(out, tm, am, tree, graphs, feats, _stage_beams(cfg, cfg.mono), "mono")


def _finish(out: Path, tm, am, tree, graphs, feats, cfg: GmmConfig, name: str) -> dict:
    """Final alignment with the final model; writes final.mdl, tree, num_pdfs, ali, failed_utts."""
    ali, failed, avg = align(am, tm, graphs, feats, cfg, desc=f"{name} final", log_dir=out / "log",
                             stage="align.final")
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



def train_tri(name: str, lang_dir: str | Path, feats: Mapping[str, np.ndarray], texts: dict[str, list[str]],
              prev_dir: str | Path, out_dir: str | Path, stage: StageConfig, cfg: GmmConfig,
              utt2spk: dict[str, str] | None = None) -> dict:
    """A triphone round: tree from `prev_dir`'s alignment and model, then Viterbi EM.

    `feats`: the stored MFCC+deltas. `stage.feat_type` lda_mllt: LDA of the spliced static
    features from the previous alignment's pdfs, MLLT at `mllt_iters`; sat: the previous round's
    final.mat, per-speaker fMLLR (`utt2spk`) re-estimated at `fmllr_iters`. Those rounds write
    `final.mat`, `feat_opts.json` (and `trans.{ark,scp}`) and restart from iteration 0."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lang = load_lang(lang_dir)
    topo = read_topo(lang_dir)
    prev_tm, prev_am = load_model(Path(prev_dir) / "final.mdl")
    prev_ali = dict(kaldiio.load_scp(str(Path(prev_dir) / "ali.scp")))
    prev_ali = {u: np.asarray(a, np.int32) for u, a in prev_ali.items() if u in feats}
    hook, xf = None, None
    if stage.feat_type != "delta":
        for f in out.glob("[0-9]*.mdl"):  # the features of an unfinished iteration are not kept
            f.unlink()
        sil = [int(x) for x in (Path(lang_dir) / "phones" / "silence.int").read_text().split()]
        feats, hook, xf = _transform_setup(name, feats, prev_dir, prev_tm, prev_am, prev_ali, stage, cfg, utt2spk,
                                           sil)
    t0 = time.time()
    dim = feats.dim
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
    graphs, failed = compile_graphs(tm, tree, lang_dir, lang, texts, out)
    ali, bad, avg = align(am, tm, graphs, feats, cfg, desc=f"{name} init", log_dir=out / "log",
                          stage="align.init")
    log.info("%s: initial alignment avg loglike %.3f, %d failed", name, avg, len(bad))
    failed = set(failed) | set(bad)
    am, tm, ali, feats = _train_iters(name, out, am, tm, graphs, feats, ali, stage, cfg, failed, hook)
    res = _finish(out, tm, am, tree, graphs, feats, _stage_beams(cfg, stage), name)
    if xf is not None:
        tf.write_matrix(out / "final.mat", xf["M"])
        if "trans" in xf:
            tf.write_transforms(out, xf["trans"])
        write_feat_opts(out, {"feat_type": stage.feat_type, "splice_context": xf["context"],
                              "static_dim": xf["static_dim"]})
        res["feat_dim"] = int(xf["M"].shape[0])
    return res


def _speech_tids(tm, silence_phones: np.ndarray) -> np.ndarray:
    """Bool (num_transition_ids + 1,): transition ids not in a silence phone. Frames aligned to
    the others get weight 0 in LDA/MLLT statistics (Kaldi's weight-silence-post 0.0)."""
    tid2phone = np.array([0] + [tm.transition_id_to_phone(t) for t in range(1, tm.num_transition_ids + 1)])
    return ~np.isin(tid2phone, silence_phones)


def _transform_setup(name: str, feats, prev_dir, prev_tm, prev_am, prev_ali, stage: StageConfig, cfg: GmmConfig,
                     utt2spk, silence_phones=()):
    """The round's starting features and its iteration hook (MLLT or fMLLR re-estimation).
    LDA and MLLT statistics leave out frames aligned to `silence_phones`, as Kaldi's scripts do."""
    D = feats.dim
    tid2pdf = np.asarray(prev_tm.transition_id_to_pdf_array(), dtype=np.int64)
    sil = np.asarray(list(silence_phones), dtype=np.int64)
    if stage.feat_type == "lda_mllt":
        if D % 3:
            raise ValueError(f"{name}: feature dim {D} is not [static | delta | delta-delta]")
        xf = {"static_dim": D // 3, "context": stage.splice_context}
        spl = fp.spliced_static(feats, xf["static_dim"], xf["context"])
        st = tf.LdaStats(prev_tm.num_pdfs, spl.dim)
        speech = _speech_tids(prev_tm, sil)
        for u in sorted(prev_ali):
            keep = speech[prev_ali[u]]
            st.accumulate(spl[u][keep], tid2pdf[prev_ali[u]][keep])
        M, ev = tf.estimate_lda(st, stage.lda_dim, what=f"{name} LDA")
        log.info("%s: LDA %d -> %d dims from %d pdfs, eigenvalues %.2f ... %.3f", name, M.shape[1], M.shape[0],
                 prev_tm.num_pdfs, ev[0], ev[-1])
        xf["M"] = M

        def hook(it, am, tm, ali, cur):
            if it not in stage.mllt_iters:
                return cur
            t = time.time()
            t2p = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)
            speech = _speech_tids(tm, sil)
            G, beta = 0.0, 0.0
            for utts in frame_blocks(sorted(ali), lambda u: len(ali[u]), ACC_BLOCK_FRAMES):
                keep = [speech[ali[u]] for u in utts]
                X = np.concatenate([cur[u][k] for u, k in zip(utts, keep)])
                Gb, nb = tf.mllt_stats(am, np.concatenate([t2p[ali[u]][k] for u, k in zip(utts, keep)]), X)
                G, beta = G + Gb, beta + nb
            A = tf.estimate_mllt(G, beta, what=f"{name} MLLT iter {it}")
            log.info("%s iter %d: MLLT auxf gain %.4f/frame (%.1fs)", name, it,
                     (tf.mllt_auxf(A, G, beta) - tf.mllt_auxf(np.eye(len(A)), G, beta)) / beta, time.time() - t)
            for p in range(am.num_pdfs):  # Kaldi gmm-transform-means
                g = am.get_pdf(p)
                means = np.asarray(g.means, np.float64) @ A.T
                g.set_invvars_and_means(np.asarray(g.inv_vars, np.float32), means.astype(np.float32))
                g.compute_gconsts()
            xf["M"] = A @ xf["M"]
            return fp.project(cur, A)

        return fp.project(spl, M), hook, xf
    # sat: the previous round's LDA+MLLT features, fMLLR per speaker
    opts = fp.read_feat_opts(prev_dir)
    if opts["feat_type"] == "delta":
        raise ValueError(f"{name}: a sat round needs an lda_mllt round before it ({prev_dir} has delta features)")
    if utt2spk is None:
        raise ValueError(f"{name}: a sat round needs utt2spk")
    xf = {"static_dim": opts["static_dim"], "context": opts["splice_context"],
          "M": tf.read_matrix(Path(prev_dir) / "final.mat")}
    si = fp.si_features(prev_dir, feats)
    xf["trans"] = fp.speaker_fmllr(prev_am, prev_tm, si, prev_ali, utt2spk, what=f"{name} initial fMLLR")

    def hook(it, am, tm, ali, cur):
        if it not in stage.fmllr_iters:
            return cur
        xf["trans"] = fp.speaker_fmllr(am, tm, si, ali, utt2spk, what=f"{name} iter {it} fMLLR", prev=xf["trans"])
        return fp.apply_speakers(xf["trans"], si, utt2spk)

    return fp.apply_speakers(xf["trans"], si, utt2spk), hook, xf


def train_all(data_dir: str | Path, feat_dir: str | Path, lang_dir: str | Path, exp_dir: str | Path,
              cfg: GmmConfig, dev_feat_dir: str | Path | None = None) -> dict:
    """mono -> tri1 -> tri2 ... -> `exp/<last>_ali` (the final alignment dir, train and dev)."""
    exp = Path(exp_dir)
    texts = read_text(data_dir)
    t0 = time.time()
    feats = load_features(feat_dir)
    no_text = sorted(set(feats) - set(texts))
    if no_text:
        log.warning("%d utterances have features but no transcript (left out): %s", len(no_text), " ".join(no_text[:20]))
    feats = feats.subset(u for u in feats if u in texts)
    texts = {u: w for u, w in texts.items() if u in feats}
    log.info("train: %d utterances, %d frames, dim %d (read from %s on access)", len(feats),
             sum(feats.num_frames(u) for u in feats), feats.dim, feat_dir)
    summary: dict = {"unk_utts": len(warn_oov(load_lang(lang_dir), texts, f"train {data_dir}"))}
    t = time.time()
    if not (exp / "mono" / ".done").is_file():
        n = cfg.mono.subset
        if 0 < n < len(feats):  # the shortest utterances first, then all aligned with that model
            short = sorted(feats, key=lambda u: (feats.num_frames(u), u))[:n]
            log.info("mono: training on the %d shortest of %d utterances (subset: %d)", n, len(feats), n)
            summary["mono"] = train_mono(lang_dir, feats.subset(short),
                                         {u: texts[u] for u in short}, exp / "mono", cfg)
            summary["mono"]["subset"] = n
            summary["mono"]["all"] = align_dir(exp / "mono", lang_dir, data_dir, feat_dir, exp / "mono", cfg)
        else:
            summary["mono"] = train_mono(lang_dir, feats, texts, exp / "mono", cfg)
        atomic_write_text(exp / "mono" / ".done", json.dumps(summary["mono"]) + "\n")
    summary.setdefault("mono", json.loads((exp / "mono" / ".done").read_text()))
    summary["mono"]["wall_s"] = round(time.time() - t, 1)
    prev = exp / "mono"
    utt2spk = fp.read_utt2spk(feat_dir, data_dir) if any(s.feat_type == "sat" for s in cfg.tri) else None
    for i, stage in enumerate(cfg.tri, 1):
        name = f"tri{i}"
        t = time.time()
        if not (exp / name / ".done").is_file():
            summary[name] = train_tri(name, lang_dir, feats, texts, prev, exp / name, stage, cfg, utt2spk)
            atomic_write_text(exp / name / ".done", json.dumps(summary[name]) + "\n")
        summary.setdefault(name, json.loads((exp / name / ".done").read_text()))
        summary[name]["wall_s"] = round(time.time() - t, 1)
        prev = exp / name
    # the alignment dir: the last model's files and alignments (+ dev)
    ali_dir = final_ali_dir(cfg, exp)
    ali_dir.mkdir(parents=True, exist_ok=True)
    for f in ("final.mdl", "tree", "num_pdfs", "ali.ark", "ali.scp", "pdf_ali.ark", "pdf_ali.scp", "failed_utts",
              "final.mat", "feat_opts.json", "trans.ark", "trans.scp"):
        if f in ("final.mat", "feat_opts.json", "trans.ark", "trans.scp") and not (prev / f).is_file():
            (ali_dir / f).unlink(missing_ok=True)  # a delta round: no transforms
            continue
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
