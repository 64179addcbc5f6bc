"""Decode a feature set with a trained acoustic model and an HCLG graph.

    python -m asr.decode --model-dir exp/am_resnet22 --graph-dir exp/tri2/graph \
        --feats data/test_logmel --dir exp/am_resnet22/decode_test \
        [--acoustic-scale 0.1 --beam 13 --max-active 7000 --lattice-beam 8 --nj 2 \
         --chunk-frames 512 --lm-weights 7 8 ... 17 --word-ins-penalties 0.0 0.5 1.0 \
         --lexicon data/local/dict/lexicon.txt]
    python -m asr.decode ... --sweep none --acoustic-scale 0.0833 --word-ins-penalty 0.5   # 1-best

Network: CMVN'd features `(frames, 3*D)` -> `(3, frames, D)`; a block of `--utts-per-block`
utterances is packed end to end, each with the model's `(left, right)` context of its own edge
frames (exact because the model is time-unpadded), cut into chunks of `--chunk-frames` output
frames and run `--batch-frames` output frames per call, every call one input shape, through the
network with its BatchNorms folded (asr.likelihoods.log_likelihoods_many) -> pseudo log-likelihoods
`log_softmax(logits) - log(prior)` `(frames, num_pdfs)` -> scaled by the acoustic scale and
expanded to transition-id columns (`DecodableCtc` reads column `tid - 1`) -> search.

Search (`--sweep`):
- `lattice` (default, with more than one LM-weight x penalty setting): kaldi-decoder's
  LatticeSimpleDecoder searches once per utterance and its raw lattice (graph and acoustic costs
  apart) is rescored for every setting (asr/lattice.py), as Kaldi's scoring does;
- `none`: the fast path: kaldi-decoder's FasterDecoder (beam and max-active) gives the best path
  at one setting, `--acoustic-scale` (= 1/LM weight) and `--word-ins-penalty`, e.g. the setting
  tuned on dev; no lattice. Its output is also named after that setting (hyp_lmwt<W>_wip<P>.txt);
- `research`: the fast 1-best search once per setting (for comparison).

Outputs in `--dir` (docs/interfaces.md): hyp.txt, hyp_lmwt<W>_wip<P>.{txt,ctm}, hyp.ctm
(with `--lexicon`), lat.ark + lat.scp (lattice mode), ali.ark/.scp, decode.json, with `--nbest N`
nbest.txt/nbest_cost.txt (distinct word sequences of a tropical word lattice: from the lattice
search's own lattice in lattice mode, else from a second search).
The dir is locked while decoding; old outputs are removed first; utterances with NaN/inf
features are skipped and named.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from asr.likelihoods import (inference_model, load_model, log_likelihoods,  # noqa: F401  (asr.decode API)
                             log_likelihoods_many, read_log_priors)
from asr.search import (LatticeSearcher, NbestSearcher, Searcher, SearchOptions,  # noqa: F401 (asr.decode API)
                        add_word_penalty, lattice_decoder, word_acceptor)
from asr.utils import atomic_path, atomic_write_text, lock_dir, read_kaldi_map, setup_logging

logger = logging.getLogger("asr.decode")

FRAME_SHIFT_S = 0.01  # 10 ms frames (docs/interfaces.md)


# ---------------------------------------------------------------------------------------------
# Graph, transition model, search


def check_compatible(num_outputs: int, trans_model, model_dir: Path, mdl_path: Path) -> None:
    """Model output size must equal the transition model's (tree's) number of pdfs."""
    n = trans_model.num_pdfs
    if num_outputs != n:
        raise ValueError(f"{model_dir}/final.pt: model has {num_outputs} outputs but the transition model "
                         f"{mdl_path} (tree) has {n} pdfs: the model was trained on another tree")


# ---------------------------------------------------------------------------------------------
# Parallel decoding


@dataclass
class DecodeConfig:
    model_dir: str
    graph_dir: str
    feats: str
    acoustic_scale: float = 0.1
    search: SearchOptions = field(default_factory=SearchOptions)
    chunk_frames: int = 512
    batch_frames: int = 1024  # output frames per network call
    prior_floor: float = 1e-8
    lm_weights: list[float] = field(default_factory=list)
    word_ins_penalties: list[float] = field(default_factory=lambda: [0.0])
    cmvn: bool = True
    device: str = "cpu"
    nbest: int = 0
    sweep: str = "lattice"  # lattice: one lattice search, sweep by rescoring; research: one search per setting
    lexicon: str | None = None  # Kaldi lexicon for CTM word times (no CTM without it)
    word_ins_penalty: float = 0.0  # of the main setting (the 1-best search's graph)
    utts_per_block: int = 64  # utterances whose network pass runs together

    def settings(self) -> list[tuple[float, float]]:
        """(LM weight, insertion penalty) of the sweep (none with `sweep='none'`)."""
        if self.sweep == "none":
            return []
        return [(w, p) for w in self.lm_weights for p in self.word_ins_penalties]

    def main_setting(self) -> str:
        """Name of the main setting: LM weight 1/acoustic scale and the main penalty."""
        return setting_name(round(1.0 / self.acoustic_scale, 4), self.word_ins_penalty)

    def search_path(self) -> str:
        """Which search produced the hypotheses (decode.json `search`)."""
        if self.use_lattice():
            return "lattice: LatticeSimpleDecoder, one search per utterance, sweep rescored from the lattice"
        if self.sweep == "research":
            return "1-best: FasterDecoder, one search per setting"
        return f"1-best: FasterDecoder at {self.main_setting()} (no lattice, no sweep)"

    def use_lattice(self) -> bool:
        """Lattice search when there is a sweep to rescore (a single setting keeps the faster 1-best search)."""
        return self.sweep == "lattice" and len(self.settings()) > 1


_W: dict = {}  # per-process state (model, graphs, reader), set by _init_worker


def _init_worker(cfg: DecodeConfig) -> None:
    from asr.features import FeatureReader
    from asr.graph import load_graph

    torch.set_num_threads(1)
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model, meta = load_model(cfg.model_dir, device)
    model = inference_model(model)
    graph = load_graph(cfg.graph_dir)
    hclg, tm = graph.hclg, graph.transition_model
    main_p = cfg.word_ins_penalty
    searchers = {main_p: Searcher(add_word_penalty(hclg, main_p) if main_p else hclg, tm, cfg.search)}
    if not cfg.use_lattice():
        for _, p in cfg.settings():
            if p not in searchers:
                searchers[p] = Searcher(add_word_penalty(hclg, p) if p else hclg, tm, cfg.search)
    tid2pdf = searchers[main_p].tid2pdf
    nbest = NbestSearcher(hclg, tid2pdf, cfg.search, cfg.nbest) if cfg.nbest > 0 else None
    lat = LatticeSearcher(hclg, tid2pdf, cfg.search) if cfg.use_lattice() else None
    _W.update(model=model, searchers=searchers, nbest=nbest, cfg=cfg, lat=lat,
              priors=read_log_priors(Path(cfg.model_dir) / "pdf_counts", int(meta["num_pdfs"]), cfg.prior_floor),
              reader=FeatureReader(cfg.feats, cmvn=cfg.cmvn))


def _decode_chunk(cfg: DecodeConfig, utts: list[str]) -> list[dict]:
    """One decoding job: the utterances `utts` in blocks of `cfg.utts_per_block` (model and
    graphs loaded once per process)."""
    if _W.get("cfg") != cfg:
        _init_worker(cfg)
    step = max(1, cfg.utts_per_block)
    return [r for b in range(0, len(utts), step) for r in _decode_block(utts[b:b + step])]


def _decode_block(utts: list[str]) -> list[dict]:
    """Network pass of a block of utterances together, then one search per utterance.

    Returns per utterance what `_search_one` gives, with `nn_s` the block's network time shared
    out by frames; `{"utt", "error"}` for an utterance with NaN/inf features."""
    from asr.features import to_channels

    cfg: DecodeConfig = _W["cfg"]
    t0 = time.perf_counter()
    feats, errors = {}, {}
    for utt in utts:
        raw = _W["reader"][utt]
        bad = ~np.isfinite(raw).all(axis=1)
        if bad.any():
            errors[utt] = {"utt": utt, "error": f"{int(bad.sum())} feature row(s) with NaN/inf, first at frame "
                                                f"{int(np.flatnonzero(bad)[0])}"}
        else:
            feats[utt] = to_channels(raw)
    lls = log_likelihoods_many(_W["model"], list(feats.values()), _W["priors"], cfg.chunk_frames,
                               cfg.batch_frames) if feats else []
    nn_s = time.perf_counter() - t0
    frames = sum(ll.shape[0] for ll in lls)
    done = {u: _search_one(u, ll, nn_s * ll.shape[0] / frames) for u, ll in zip(feats, lls)}
    return [errors.get(u) or done[u] for u in utts]


def _search_one(utt: str, ll: np.ndarray, nn_s: float) -> dict:
    """Search one utterance's `(frames, num_pdfs)` log-likelihoods with the worker's graphs.

    Returns words/alignment at the main setting and the sweep's words (and alignments for CTMs)
    of the 1-best search, or in lattice mode the lattice (`lat` arrays, `lattice` bytes; the best
    paths come from `sweep_lattices`), and timings."""
    from asr import lattice as L

    cfg: DecodeConfig = _W["cfg"]
    t1 = time.perf_counter()
    sweep, sweep_ali, lat_bytes, lat = {}, {}, None, None
    if _W["lat"] is not None:  # the best paths of all settings: decode_dir, many lattices at once
        lat, ok = _W["lat"].decode(ll, cfg.acoustic_scale)
        t2 = time.perf_counter()
        words, ali = [], []
        lat_bytes = L.to_bytes(lat)
        t3 = time.perf_counter()
    else:
        words, ali, ok = _W["searchers"][cfg.word_ins_penalty].decode(ll, cfg.acoustic_scale, utt)
        t2 = time.perf_counter()
        if cfg.sweep == "none":
            sweep[cfg.main_setting()], sweep_ali[cfg.main_setting()] = words, ali
        for lmwt, p in cfg.settings():
            name = setting_name(lmwt, p)
            if p == cfg.word_ins_penalty and math.isclose(lmwt * cfg.acoustic_scale, 1.0):
                sweep[name], sweep_ali[name] = words, ali
            else:
                sweep[name], sweep_ali[name], _ = _W["searchers"][p].decode(ll, 1.0 / lmwt, utt)
        t3 = time.perf_counter()
    if _W["nbest"] is None:
        nbest = []
    elif _W["lat"] is not None:  # the same search's lattice: no second search
        nbest = _W["nbest"].from_lattice(_W["lat"].last)
    else:
        nbest = _W["nbest"].decode(ll, cfg.acoustic_scale)
    t4 = time.perf_counter()
    return {"utt": utt, "words": words, "ali": ali, "ok": ok, "frames": int(ll.shape[0]),
            "nn_s": nn_s, "search_s": t2 - t1, "sweep_s": t3 - t2, "nbest_s": t4 - t3, "sweep": sweep,
            "sweep_ali": sweep_ali, "nbest": nbest, "lattice": lat_bytes, "lat": lat}


def sweep_lattices(results: list[dict], cfg: DecodeConfig, batch: int = 64) -> None:
    """Best paths of the main setting and every sweep setting from the results' lattices, `batch`
    lattices per dynamic programme; fills `words`, `ali`, `sweep`, `sweep_ali` and adds the time
    to each result's `sweep_s` (split evenly within a batch)."""
    from asr import lattice as L

    settings = cfg.settings()
    names = [setting_name(w, p) for w, p in settings]
    for b in range(0, len(results), batch):
        group = results[b:b + batch]
        t0 = time.perf_counter()
        paths = L.best_paths_many([r.pop("lat") for r in group], [(1.0 / cfg.acoustic_scale, 0.0)] + settings)
        share = (time.perf_counter() - t0) / len(group)
        for r, ps in zip(group, paths):
            r["words"], r["ali"] = ps[0].words, ps[0].tids
            r["sweep"] = {n: p.words for n, p in zip(names, ps[1:])}
            r["sweep_ali"] = {n: p.tids for n, p in zip(names, ps[1:])}
            r["sweep_s"] += share


def setting_name(lm_weight: float, wip: float) -> str:
    """`lmwt10_wip0.5` (what asr.score parses back)."""
    return f"lmwt{lm_weight:g}_wip{wip:g}"


def parse_setting(name: str) -> tuple[float, float]:
    """`lmwt10_wip0.5` -> (10.0, 0.5); ValueError naming `name` otherwise."""
    import re

    m = re.fullmatch(r"lmwt([0-9.]+)_wip(-?[0-9.]+)", name.strip())
    if not m or float(m.group(1)) <= 0:
        raise ValueError(f"setting {name!r}: expected lmwt<LM weight>_wip<penalty>, e.g. lmwt12_wip0.5")
    return float(m.group(1)), float(m.group(2))


def _check_inputs(cfg: DecodeConfig) -> tuple[dict[int, str], list[str], dict]:
    """Fail early, naming the file: model vs tree size, features vs model bins, missing utterances."""
    from asr.features import FeatureReader
    from asr.graph import load_graph

    graph_dir, model_dir = Path(cfg.graph_dir), Path(cfg.model_dir)
    if not (model_dir / "pdf_counts").exists():
        raise FileNotFoundError(f"{model_dir / 'pdf_counts'}: missing (the priors come from it)")
    model, meta = load_model(model_dir)
    graph = load_graph(graph_dir)
    check_compatible(int(meta["num_pdfs"]), graph.transition_model, model_dir, graph_dir / "final.mdl")
    if getattr(model, "num_classes", meta["num_pdfs"]) != meta["num_pdfs"]:
        raise ValueError(f"{model_dir}/final.pt: num_pdfs {meta['num_pdfs']} != model output size {model.num_classes}")
    read_log_priors(model_dir / "pdf_counts", int(meta["num_pdfs"]), cfg.prior_floor)
    reader = FeatureReader(cfg.feats, cmvn=cfg.cmvn)
    if not list(reader.utt_ids):
        raise ValueError(f"{cfg.feats}/feats.scp: no utterances to decode")
    bins = getattr(model, "in_bins", None)
    if bins is not None and reader.dim != 3 * bins:
        raise ValueError(f"{cfg.feats}: features have dim {reader.dim}, the model expects 3 x {bins} "
                         f"(static|delta|delta-delta of {bins} bins)")
    utts = list(reader.utt_ids)
    listed = Path(cfg.feats) / "utt2spk"
    if listed.exists():
        missing = sorted(set(read_kaldi_map(listed)) - set(utts))
        if missing:
            raise ValueError(f"{cfg.feats}/feats.scp: {len(missing)} utterance(s) of utt2spk have no features, "
                             f"e.g. '{missing[0]}'")
    words = graph.words
    info = {"model_name": meta["model_name"], "num_pdfs": int(meta["num_pdfs"]), "context": list(model.context)}
    try:
        from asr import flops

        info["flops_per_frame"] = int(flops.count(model)["flops"])
        info["params"] = int(sum(p.numel() for p in model.parameters()))
    except Exception as e:  # noqa: BLE001  (FLOPs are informative only)
        logger.warning("FLOPs not counted: %s", e)
    return words, utts, info


OUTPUTS = ("hyp.txt", "hyp_*.txt", "hyp*.ctm", "ali.ark", "ali.scp", "lat.ark", "lat.scp", "nbest.txt",
           "nbest_cost.txt", "decode.json", "wer.json", "report.md", "report.png", ".done", ".done_score")


def lock_decode_dir(out: Path):
    """Exclusive lock on `<out>/.lock` (asr.utils.lock_dir): a second decode into the same dir
    fails at once."""
    return lock_dir(out, "another decode is writing this dir", "wait for it or stop it, or decode into another --dir")


def remove_previous_outputs(out_dir: Path) -> list[str]:
    """Delete every output a previous decode (and its scoring) left in `out_dir`; returns their names."""
    import shutil

    gone = []
    for pattern in OUTPUTS:
        for f in out_dir.glob(pattern):
            f.unlink()
            gone.append(f.name)
    for f in out_dir.glob(".*.tmp"):  # temporaries of an interrupted run
        f.unlink()
        gone.append(f.name)
    if (out_dir / "scoring").is_dir():
        shutil.rmtree(out_dir / "scoring")
        gone.append("scoring/")
    return gone


def _ctm_lines(utt: str, word_ids: list[int], tids: list[int], words: dict[int, str], ctx: dict) -> str:
    """CTM lines `utt 1 start dur word` (seconds, 10 ms frames) of one best path."""
    from asr import lattice as L

    segs = L.phone_segments(tids, ctx["tid2phone"], ctx["tid_final"], ctx["tid_self_loop"])
    names = [words[i] for i in word_ids]
    return "".join(f"{utt} 1 {b * FRAME_SHIFT_S:.2f} {n * FRAME_SHIFT_S:.2f} {w}\n"
                   for w, b, n in L.word_times(names, segs, ctx["phones"], ctx["lexicon"]))


def _ctm_context(cfg: DecodeConfig) -> dict | None:
    """Per-transition-id phone and phone-exit arrays, phone names and the lexicon (None: no CTM)."""
    if not cfg.lexicon:
        return None
    from asr import lattice as L
    from asr.graph import load_graph

    graph = load_graph(cfg.graph_dir)
    tm = graph.transition_model
    n = tm.num_transition_ids
    tid2phone = np.zeros(n + 1, dtype=np.int64)
    starts = np.zeros(n + 1, dtype=bool)
    loops = np.zeros(n + 1, dtype=bool)
    for t in range(1, n + 1):
        tid2phone[t] = tm.transition_id_to_phone(t)
        starts[t] = tm.is_final(t)
        loops[t] = tm.is_self_loop(t)
    phones_txt = Path(cfg.graph_dir) / "phones.txt"
    phones = {int(i): name for name, i in (ln.split() for ln in phones_txt.read_text().splitlines() if ln.strip())}
    return {"tid2phone": tid2phone, "tid_final": starts, "tid_self_loop": loops, "phones": phones,
            "lexicon": L.read_lexicon(cfg.lexicon)}


def decode_dir(cfg: DecodeConfig, out_dir: str | Path, nj: int = 1, cmd: str = "local") -> dict:
    """Decode every utterance of `cfg.feats`; write hyp files, CTMs, lattices, alignments and `decode.json`.

    Jobs (every n-th utterance each) run on `cmd` (asr.executor: local, dask://HOST:PORT,
    slurm|pbs|sge), logging to `<out_dir>/log/decode.<job>.log`; a job's `.done` record lets a
    re-run of an interrupted decode skip it (the records are removed once the outputs are written).

    Holds a lock on `out_dir` while it runs; first removes every output of a previous run there.
    Utterances with NaN/inf features are skipped (named in the log, counted in decode.json)."""
    import kaldiio

    from asr import lattice as L
    from asr.executor import remove_done_records, run_jobs

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_decode_dir(out_dir)  # noqa: F841  (held until this function returns or the process dies)
    words, utts, info = _check_inputs(cfg)
    gone = remove_previous_outputs(out_dir)
    if gone:
        logger.info("%s: removed %d output(s) of a previous run (%s)", out_dir, len(gone), ", ".join(sorted(gone)[:8]))
    ctm_ctx = _ctm_context(cfg)
    logger.info("decoding %d utterances of %s with %s (%s), %d job(s), %s", len(utts), cfg.feats, cfg.model_dir,
                info["model_name"], nj, cfg.search_path())
    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    n = max(1, min(len(utts), 4 * nj if nj > 1 or cmd != "local" else 1))  # jobs: every n-th utterance
    inputs = [Path(p) for p in (Path(cfg.model_dir) / "final.pt", Path(cfg.model_dir) / "pdf_counts",
                                Path(cfg.graph_dir) / "HCLG.fst", Path(cfg.graph_dir) / "final.mdl",
                                Path(cfg.feats) / "feats.scp", Path(cfg.feats) / "cmvn.scp", cfg.lexicon)
              if p and Path(p).exists()]
    log_dir = out_dir / "log"
    for rs in run_jobs(_decode_chunk, [(cfg, utts[i::n]) for i in range(n)], cmd, nj, stage="decode",
                       log_dir=log_dir, inputs=inputs):
        results.update((r["utt"], r) for r in rs)
    skipped = {u: r["error"] for u, r in sorted(results.items()) if "error" in r}
    if cfg.use_lattice():
        sweep_lattices([r for u, r in sorted(results.items()) if u not in skipped], cfg)
    wall = time.perf_counter() - t0
    for u, e in skipped.items():
        logger.error("utterance '%s' of %s skipped: %s", u, cfg.feats, e)
    if len(skipped) == len(results):
        raise ValueError(f"{cfg.feats}: every utterance was skipped (e.g. '{next(iter(skipped))}': "
                         f"{next(iter(skipped.values()))})")

    def text(ids: list[int], utt: str) -> str:
        try:
            return " ".join(words[i] for i in ids)
        except KeyError as e:
            raise ValueError(f"utterance '{utt}': decoded word id {e.args[0]} not in words.txt") from None

    ordered = [results[u] for u in sorted(results) if u not in skipped]
    atomic_write_text(out_dir / "hyp.txt", "".join(f"{r['utt']} {text(r['words'], r['utt'])}".rstrip() + "\n"
                                                   for r in ordered))
    settings = sorted(ordered[0]["sweep"]) if ordered else []
    for s in settings:
        atomic_write_text(out_dir / f"hyp_{s}.txt", "".join(
            f"{r['utt']} {text(r['sweep'][s], r['utt'])}".rstrip() + "\n" for r in ordered))
    if ctm_ctx is not None:
        atomic_write_text(out_dir / "hyp.ctm", "".join(
            _ctm_lines(r["utt"], r["words"], r["ali"], words, ctm_ctx) for r in ordered))
        for s in settings:
            atomic_write_text(out_dir / f"hyp_{s}.ctm", "".join(
                _ctm_lines(r["utt"], r["sweep"][s], r["sweep_ali"][s], words, ctm_ctx) for r in ordered))
    lattice_bytes = 0
    if cfg.use_lattice():
        with atomic_path(out_dir / "lat.ark") as tmp_ark:
            w = L.LatticeArkWriter(tmp_ark)
            for r in ordered:
                w.write_raw(r["utt"], r["lattice"])
            w.close()
            lattice_bytes = tmp_ark.stat().st_size
        atomic_write_text(out_dir / "lat.scp", L.write_scp(out_dir / "lat.scp", out_dir / "lat.ark", w.offsets))
    with atomic_path(out_dir / "ali.ark") as tmp_ark:
        with kaldiio.WriteHelper(f"ark,scp:{tmp_ark},{out_dir / 'ali.scp'}") as w:
            for r in ordered:
                w(r["utt"], np.asarray(r["ali"], dtype=np.int32))
    if cfg.nbest > 0:
        atomic_write_text(out_dir / "nbest.txt", "".join(
            f"{r['utt']}-{k} {text(ids, r['utt'])}".rstrip() + "\n"
            for r in ordered for k, (ids, _) in enumerate(r["nbest"], 1)))
        atomic_write_text(out_dir / "nbest_cost.txt", "".join(
            f"{r['utt']}-{k} {c:.4f}\n" for r in ordered for k, (_, c) in enumerate(r["nbest"], 1)))
    # ali.scp points at the temporary name until the rename: rewrite it with the final path.
    scp = (out_dir / "ali.scp").read_text().replace(str(tmp_ark), str(out_dir / "ali.ark"))
    atomic_write_text(out_dir / "ali.scp", scp)

    not_final = [r["utt"] for r in ordered if not r["ok"]]
    if not_final:
        logger.warning("%d utterance(s) reached no final state (partial best path used), e.g. %s",
                       len(not_final), ", ".join(not_final[:5]))
    frames = sum(r["frames"] for r in ordered)
    audio_s = frames * FRAME_SHIFT_S
    if frames == 0:
        raise ValueError(f"{cfg.feats}: the decoded utterances have no frames (no audio: no RTF, no WER)")
    nn_s, search_s, sweep_s, nbest_s = (sum(r[k] for r in ordered) for k in ("nn_s", "search_s", "sweep_s",
                                                                              "nbest_s"))

    def per_audio_s(seconds: float) -> float | None:
        return round(seconds / audio_s, 5) if audio_s else None

    summary = {
        **info, "model_dir": str(cfg.model_dir), "graph_dir": str(cfg.graph_dir), "feats": str(cfg.feats),
        "acoustic_scale": cfg.acoustic_scale, **asdict(cfg.search), "chunk_frames": cfg.chunk_frames,
        "prior_floor": cfg.prior_floor, "lm_weights": cfg.lm_weights,
        "word_ins_penalties": cfg.word_ins_penalties if cfg.lm_weights else [], "settings": settings,
        "device": cfg.device, "nj": nj, "num_utts": len(ordered), "num_frames": frames, "audio_s": round(audio_s, 3),
        "wall_s": round(wall, 3), "nn_s": round(nn_s, 3), "search_s": round(search_s, 3),
        "sweep_s": round(sweep_s, 3), "num_settings": len(settings), "nbest": cfg.nbest, "nbest_s": round(nbest_s, 3),
        "rtf": per_audio_s(nn_s + search_s), "rtf_nn": per_audio_s(nn_s), "rtf_search": per_audio_s(search_s),
        "rtf_sweep": per_audio_s(sweep_s), "rtf_wall": per_audio_s(wall),
        "sweep_mode": "lattice" if cfg.use_lattice() else cfg.sweep if cfg.sweep != "lattice" else "research",
        "search": cfg.search_path(), "main_setting": cfg.main_setting(), "word_ins_penalty": cfg.word_ins_penalty,
        "batch_frames": cfg.batch_frames, "utts_per_block": cfg.utts_per_block, "lexicon": cfg.lexicon,
        "lattice_bytes": lattice_bytes,
        "lattice_bytes_per_audio_s": round(lattice_bytes / audio_s, 1) if audio_s else None,
        "skipped_utts": skipped, "num_skipped": len(skipped),
        "not_final_utts": not_final, "torch_threads": 1 if nj > 1 else torch.get_num_threads(),
        "note": "rtf = one decoding pass (network + search at the main setting; in lattice mode the "
                "lattice search) in process-seconds per audio second on one core, = rtf_nn + rtf_search; "
                "rtf_nn: feature reading and the network pass (log-likelihoods); rtf_search: the search; "
                "rtf_sweep = the LM-weight x penalty sweep (lattice mode: best paths of every setting from the "
                "lattice; research mode: the extra searches) (nbest_s: the n-best search); rtf_wall = wall time of the "
                "whole run (all jobs, sweep and start-up included) / audio duration",
    }
    atomic_write_text(out_dir / "decode.json", json.dumps(summary, indent=2) + "\n")
    remove_done_records(log_dir, "decode")  # complete: a later run decodes afresh
    logger.info("decoded %d utterances (%.1f s of audio) in %.1f s wall with %d job(s): RTF %.3f per core "
                "(NN %.3f + search %.3f; sweep of %d settings %.3f more); wrote %s",
                len(ordered), audio_s, wall, nj, summary["rtf"] or math.nan, summary["rtf_nn"] or math.nan,
                summary["rtf_search"] or math.nan, len(settings), summary["rtf_sweep"] or math.nan, out_dir)
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="exp/am_<tag> with final.pt and pdf_counts")
    p.add_argument("--graph-dir", required=True, help="HCLG.fst, words.txt, final.mdl (asr.graph hclg)")
    p.add_argument("--feats", required=True, help="feature data dir (feats.scp, cmvn.scp)")
    p.add_argument("--dir", required=True, help="output decode dir")
    p.add_argument("--acoustic-scale", type=float, default=0.1)
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--min-active", type=int, default=200)
    p.add_argument("--lattice-beam", type=float, default=8.0)
    p.add_argument("--nj", type=int, default=1, help="parallel decoding processes")
    p.add_argument("--cmd", default="local", help="where decoding jobs run: local, dask://HOST:PORT, slurm|pbs|sge "
                   "(asr.executor, conf/cluster.yaml)")
    p.add_argument("--chunk-frames", type=int, default=512, help="output frames per network chunk (0: whole utt)")
    p.add_argument("--batch-frames", type=int, default=1024, help="output frames per network call")
    p.add_argument("--utts-per-block", type=int, default=64, help="utterances whose network pass runs together")
    p.add_argument("--prior-floor", type=float, default=1e-8)
    p.add_argument("--lm-weights", type=float, nargs="*", default=[], help="sweep: LM weights (acoustic scale 1/w)")
    p.add_argument("--word-ins-penalties", type=float, nargs="*", default=[0.0], help="sweep: insertion penalties")
    p.add_argument("--no-cmvn", action="store_true", help="do not apply the per-speaker CMVN")
    p.add_argument("--device", default="cpu", help="network device: cpu, cuda, cuda:N or auto (jobs share it)")
    p.add_argument("--sweep", choices=["lattice", "research", "none"], default="lattice",
                   help="LM-weight x penalty sweep: rescore one lattice per utterance (Kaldi's way); re-run "
                   "the 1-best search per setting (for comparison); none: one fast 1-best search at the main "
                   "setting (--acoustic-scale, --word-ins-penalty or --setting), no lattice")
    p.add_argument("--word-ins-penalty", type=float, default=0.0, help="insertion penalty of the main setting")
    p.add_argument("--setting", help="decode only at this setting, e.g. lmwt12_wip0.5 (the one tuned on dev): "
                   "sets --acoustic-scale 1/12, --word-ins-penalty 0.5 and --sweep none")
    p.add_argument("--lexicon", help="Kaldi lexicon (data/local/dict/lexicon.txt): CTM word times per setting")
    p.add_argument("--nbest", type=int, default=0, help="also write up to N distinct best word sequences "
                   "per utterance (nbest.txt, nbest_cost.txt); 0: off")
    from asr.config_cli import parse_with_config

    a = parse_with_config(p, argv, "decode")
    setup_logging(log_file=Path(a.dir) / "log" / "decode.log")
    if a.setting:
        lm_weight, a.word_ins_penalty = parse_setting(a.setting)
        a.acoustic_scale, a.sweep = 1.0 / lm_weight, "none"
    cfg = DecodeConfig(a.model_dir, a.graph_dir, a.feats, a.acoustic_scale,
                       SearchOptions(a.beam, a.max_active, a.min_active, a.lattice_beam), a.chunk_frames,
                       a.batch_frames, a.prior_floor, list(a.lm_weights), list(a.word_ins_penalties), not a.no_cmvn,
                       a.device, a.nbest, a.sweep, a.lexicon, a.word_ins_penalty, a.utts_per_block)
    decode_dir(cfg, a.dir, a.nj, a.cmd)


if __name__ == "__main__":
    main()
