"""Forced alignment: features and transcripts in; training graphs, equal and Viterbi alignment;
the alignment files (`ali.*`, `pdf_ali.*`, `failed_utts`) out; `align_dir` for a data set."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import kaldi_hmm_gmm as khg
import kaldifst
import kaldiio
import numpy as np

from asr.lang import Lang, load_lang
from asr.utils import atomic_path, atomic_write_text, read_kaldi_map
from asr.gmm.config import GmmConfig
from asr.hmm_io import load_model, read_tree
from asr.gmm import feature_pipeline as fp
from asr.gmm.feature_store import StoredFeatures
from asr.gmm.transforms import write_transforms


log = logging.getLogger(__name__)


def load_features(feat_dir: str | Path, utts: list[str] | None = None) -> StoredFeatures:
    """Utterances of a feature dir (all, or `utts`), per-speaker mean normalisation applied (as
    Kaldi's GMM recipes: apply-cmvn without variance normalisation): utt -> (frames, dim) float32,
    each read from the ark on access (nothing is loaded here)."""
    return StoredFeatures(feat_dir, utts)


def read_text(data_dir: str | Path) -> dict[str, list[str]]:
    """Kaldi `text` -> utt -> words (an utterance without words gets an empty list)."""
    return {k: v.split() for k, v in read_kaldi_map(Path(data_dir) / "text", allow_empty_value=True).items()}


def oov_utterances(lang: Lang, texts: dict[str, list[str]]) -> dict[str, list[str]]:
    """Utterances with words that alignment maps to the OOV word (`lang.oov`, e.g. `<unk>`): words
    outside `words.txt`, and the OOV word itself. Returns utt -> those words, in utterance order."""
    out = {}
    for utt, words in texts.items():
        bad = [w for w in words if w == lang.oov or w not in lang.words]
        if bad:
            out[utt] = bad
    return out


def warn_oov(lang: Lang, texts: dict[str, list[str]], where: str = "alignment") -> dict[str, list[str]]:
    """Log (warning) how many utterances have words mapped to the OOV word, naming them."""
    unk = oov_utterances(lang, texts)
    if unk:
        shown = ", ".join(f"{u} ({' '.join(w[:5])})" for u, w in sorted(unk.items())[:20])
        log.warning("%s: %d of %d utterances have words mapped to %s: %s%s", where, len(unk), len(texts),
                    lang.oov, shown, " ..." if len(unk) > 20 else "")
    return unk


class TrainingGraphs(Mapping):
    """Training graphs (HCLG of the transcript, no transition probs; Kaldi compile-train-graphs):
    compiled once, written to `fsts.{ark,scp}` in a temporary dir under `work_dir` (default: the
    system's; removed with the mapping), utt -> StdVectorFst read from there on each access (each
    process opens its own reader, so forked jobs read it themselves). The utterances with no or an
    empty graph are logged by name, listed in `failed` and left out."""

    def __init__(self, tm: khg.TransitionModel, tree: khg.ContextDependency, lang_dir: str | Path, lang: Lang,
                 texts: dict[str, list[str]], work_dir: str | Path | None = None):
        L = kaldifst.StdVectorFst.read(str(Path(lang_dir) / "L.fst"))
        opts = khg.TrainingGraphCompilerOptions()
        opts.reorder = False  # self-loops before forward transitions: phone boundaries at is_final
        gc = khg.TrainingGraphCompiler(tm, tree, L, lang.disambig_ids, opts)
        oov = lang.words[lang.oov]
        self._tmp = tempfile.TemporaryDirectory(prefix="fsts.", dir=work_dir)
        self.scp = Path(self._tmp.name) / "fsts.scp"
        self.failed, self._utts = [], {}
        writer = kaldifst.VectorFstWriter(f"ark,scp:{self.scp.with_suffix('.ark')},{self.scp}")
        for utt, words in texts.items():
            try:
                g = gc.compile_graph_from_text([lang.words.get(w, oov) for w in words])
            except Exception as e:  # noqa: BLE001 - the binding raises RuntimeError on Kaldi errors
                log.warning("%s: no training graph (%s)", utt, e)
                self.failed.append(utt)
                continue
            if g.num_states == 0:
                log.warning("%s: empty training graph for %r", utt, " ".join(words))
                self.failed.append(utt)
                continue
            writer.write(utt, g)
            self._utts[utt] = None
        writer.close()
        self._reader, self._pid = None, None

    def __getitem__(self, utt: str) -> kaldifst.StdVectorFst:
        if utt not in self._utts:
            raise KeyError(utt)
        if self._pid != os.getpid():  # a reader's file offset is not to be shared with forked jobs
            self._reader, self._pid = kaldifst.RandomAccessVectorFstReader(f"scp:{self.scp}"), os.getpid()
        return self._reader[utt].copy()  # the reader's own is replaced by its next read

    def __iter__(self):
        return iter(self._utts)

    def __len__(self) -> int:
        return len(self._utts)

    def __contains__(self, utt) -> bool:
        return utt in self._utts


def compile_graphs(tm: khg.TransitionModel, tree: khg.ContextDependency, lang_dir: str | Path, lang: Lang,
                   texts: dict[str, list[str]], work_dir: str | Path | None = None
                   ) -> tuple[TrainingGraphs, list[str]]:
    """The training graphs of `texts` (stored under `work_dir`, read on access) and the utterances
    without one."""
    graphs = TrainingGraphs(tm, tree, lang_dir, lang, texts, work_dir)
    return graphs, graphs.failed


def equal_align(graphs: Mapping[str, kaldifst.StdVectorFst], feats: Mapping[str, np.ndarray],
                seed: int = 0) -> tuple[dict[str, np.ndarray], list[str]]:
    """Kaldi's align-equal-compiled: a random path of the right length through each graph."""
    ali, failed = {}, []
    for i, utt in enumerate(sorted(graphs)):
        T = feats[utt].shape[0]
        ok, path = kaldifst.equal_align(graphs[utt], T, seed + i, 10)
        if ok:
            ok, ilabels, _, _ = kaldifst.get_linear_symbol_sequence(path)
        if not ok or len(ilabels) != T:
            log.warning("%s: equal alignment failed (%d frames)", utt, T)
            failed.append(utt)
            continue
        ali[utt] = np.asarray(ilabels, dtype=np.int32)
    return ali, failed


_WORK: dict = {}


def _align_chunk(utts: list[str], work: dict | None = None) -> list[tuple[str, np.ndarray | None, float]]:
    """One alignment job: (utt, transition ids or None, log-likelihood) per utterance of `utts`.
    Forked local jobs take the model and the lazy graph and feature mappings from `_WORK` (so
    compile their graphs and read their features themselves); remote ones carry their share of
    them, materialised, in `work`."""
    w = work or _WORK
    tm, am, cfg = w["tm"], w["am"], w["cfg"]
    acfg = khg.AlignConfig(beam=cfg.beam, retry_beam=cfg.retry_beam, careful=False)
    out = []
    for utt in utts:
        fst = w["graphs"][utt]
        feats = w["feats"][utt]
        khg.add_transition_probs(trans_model=tm, disambig_syms=[], transition_scale=cfg.transition_scale,
                                 self_loop_scale=cfg.self_loop_scale, fst=fst)
        dec = khg.DecodableAmDiagGmmScaled(am, tm, feats, cfg.acoustic_scale)
        _, num_err, _, like, _, ali, _ = khg.align_utterance_wrapper(acfg, utt, cfg.acoustic_scale, fst, dec,
                                                                     0, 0, 0, 0.0, 0)
        if num_err or len(ali) != feats.shape[0]:
            out.append((utt, None, 0.0))
        else:
            out.append((utt, np.asarray(ali, dtype=np.int32), float(like)))
    return out


def align(am: khg.AmDiagGmm, tm: khg.TransitionModel, graphs: Mapping[str, kaldifst.StdVectorFst],
          feats: Mapping[str, np.ndarray], cfg: GmmConfig, desc: str = "align", log_dir: Path | None = None,
          stage: str = "align") -> tuple[dict[str, np.ndarray], list[str], float]:
    """Viterbi forced alignment (beam, then retry beam). Returns ali, failed utts, avg loglike/frame.
    Jobs run on `cfg.cmd` (asr.executor), logging to `<log_dir>/<stage>.<job>.log`."""
    from asr.executor import is_local, run_jobs

    _WORK.update(tm=tm, am=am, cfg=cfg, graphs=graphs, feats=feats)
    utts = sorted(graphs)
    nj = max(1, min(cfg.nj, len(utts) // 20 or 1))
    chunks = [utts[i::nj * 4] for i in range(nj * 4)] if nj > 1 else [utts]
    results = []
    try:
        local = is_local(cfg.cmd)
        jobs = [(c, None if local else dict(tm=tm, am=am, cfg=cfg, graphs={u: graphs[u] for u in c},
                                            feats={u: feats[u] for u in c})) for c in chunks]
        for r in run_jobs(_align_chunk, jobs, cfg.cmd, nj, stage=stage, log_dir=log_dir, resume=False):
            results.extend(r)
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



def align_dir(model_dir: str | Path, lang_dir: str | Path, data_dir: str | Path, feat_dir: str | Path,
              out_dir: str | Path, cfg: GmmConfig, suffix: str = "") -> dict:
    """Align a data set with `model_dir`'s final.mdl/tree; writes `*{suffix}` alignment files.
    An lda_mllt/sat model dir's final.mat transforms the features; a sat model first aligns the
    speaker-independent features, estimates fMLLR per speaker (`trans{suffix}.{ark,scp}`), realigns."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tm, am = load_model(Path(model_dir) / "final.mdl")
    tree = read_tree(Path(model_dir) / "tree")
    texts = read_text(data_dir)
    feats = load_features(feat_dir, sorted(texts))
    lang = load_lang(lang_dir)
    unk = warn_oov(lang, {u: texts[u] for u in feats}, f"align {data_dir}")
    graphs, failed = compile_graphs(tm, tree, lang_dir, lang, {u: texts[u] for u in feats}, out_dir)
    feats = fp.si_features(model_dir, feats)  # final.mat for lda_mllt / sat models
    if fp.read_feat_opts(model_dir)["feat_type"] == "sat":  # Kaldi align_fmllr.sh: SI pass, fMLLR, realign
        utt2spk = fp.read_utt2spk(feat_dir, data_dir)
        ali0, _, avg0 = align(am, tm, graphs, feats, cfg, desc=f"align {feat_dir} (SI pass)",
                              log_dir=Path(out_dir) / "log", stage=f"align{suffix}.si")
        trans = fp.speaker_fmllr(am, tm, feats, ali0, utt2spk, what=f"align {feat_dir} fMLLR")
        write_transforms(Path(out_dir), trans, name=f"trans{suffix}")
        feats = fp.apply_speakers(trans, feats, utt2spk)
        log.info("align %s: SI pass avg loglike %.3f, fMLLR for %d speakers", feat_dir, avg0, len(trans))
    ali, bad, avg = align(am, tm, graphs, feats, cfg, desc=f"align {feat_dir}", log_dir=Path(out_dir) / "log",
                          stage=f"align{suffix}")
    failed = sorted(set(failed) | set(bad))
    write_alignments(Path(out_dir), ali, tm, failed, suffix=suffix)
    log.info("aligned %s: %d utterances, %d failed, avg loglike %.3f", feat_dir, len(ali), len(failed), avg)
    return {"aligned": len(ali), "failed": len(failed), "avg_loglike": avg, "unk_utts": len(unk)}
