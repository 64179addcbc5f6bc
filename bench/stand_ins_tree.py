"""Switchboard-size stand-ins (figures, not tests): decision-tree statistics and a float16
feature memmap for the chunk loader (issue 14). Self-contained: imports only asr.*.

    # tree: build to 32000 leaves from ~100k seen triphone contexts x 3 pdf classes, D=40,
    # as asr/gmm/train.py calls build_tree (+ --cluster -1: Kaldi build-tree's leaf clustering)
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        python bench/stand_ins_tree.py tree --contexts 100000 --leaves 32000 --out /tmp/h3/tree
    # growth law: one fresh process per (contexts, leaves), then a log-log fit
    python bench/stand_ins_tree.py tree-grid --contexts 25000 50000 100000 --leaves 2000 8000 32000

    # loader: a >= 50M-frame float16 memmap in load_utt_set's format (.npy + .utts index),
    # then ChunkLoader batches as asr/train.py draws them (swbd conf: T=64, batch 64)
    # ("cold": the file's pages dropped first with posix_fadvise(DONTNEED); "warm": right after)
    python bench/stand_ins_tree.py loader --frames 50000000 --dir /tmp/h3/mm --batches 2000

Prints one JSON line per measurement.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _rss_now_mb() -> dict:
    """Current RssAnon (heap) and RssFile (mapped file pages, e.g. a memmap's) in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            k, v = line.split(":")
            out[k.lower() + "_mb"] = round(int(v.split()[0]) / 1024, 1)
    return out


# --------------------------------------------------------------------------- tree statistics


def tree_lang(out_dir: str | Path, num_words: int = 3000, seed: int = 0):
    """A CMUdict lang (39 ARPAbet non-silence phones, SIL/SPN/NSN) made by asr.lang.prepare_lang:
    returns (phone2num_pdf_classes, roots, sets, extra_questions, non-silence phone ids)."""
    import numpy as np

    from asr import tree as treelib
    from asr.hmm_io import read_topo
    from bench.stand_ins import cmudict_dict_dir
    from asr.lang import prepare_lang

    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    d = cmudict_dict_dir(out / "dict", num_words, rng)
    lang = prepare_lang(d, out / "lang")
    p2n = list(read_topo(out / "lang").get_phone_to_num_pdf_classes())
    lp = out / "lang" / "phones"
    roots = treelib.read_roots(lp / "roots.int")
    sets = treelib.read_questions(lp / "sets.int")
    extra = treelib.read_questions(lp / "extra_questions.int") \
        if (lp / "extra_questions.int").is_file() else []
    sil = set(lang.silence_phone_ids) if hasattr(lang, "silence_phone_ids") else set()
    nonsil = [p for p in lang.real_phone_ids if p not in sil]
    return p2n, roots, sets, extra, nonsil


def tree_stats(num_contexts: int = 100_000, dim: int = 40, seed: int = 0, lang_dir="/tmp/h3/tree_lang"):
    """Switchboard-like accumulated tree statistics.

    `num_contexts` distinct seen (left, centre, right) triphones (Zipf-distributed frame counts,
    ~1e8 frames in all: the top contexts have ~1e5-1e6 frames, the tail tens), each with every pdf class
    of its centre phone; per-frame features are N(mu, sigma^2) with mu = centre-phone x class
    effect + smaller left/right effects (the left one strongest on the first class, the right
    one on the last) + a per-context offset; sums/sumsqs are the exact moments of that model.
    Returns (TreeStats, phone2num_pdf_classes, roots, questions) with questions made as
    asr/gmm/train.py makes them (cluster_phones over sets.int, + extra_questions.int).
    """
    import numpy as np

    from asr import tree as treelib

    p2n, roots, sets, extra, nonsil = tree_lang(lang_dir)
    rng = np.random.default_rng(seed)
    phones = np.array([p for p in range(1, len(p2n)) if p2n[p] > 0])
    nonsil = np.array(nonsil) if len(nonsil) else phones
    # Draw distinct triphones: centre phones with Zipf popularity, contexts likewise (0 = edge).
    pop = 1.0 / np.arange(1, len(phones) + 1) ** 0.8
    rng.shuffle(pop)
    pc = pop / pop.sum()
    ctx_phones = np.concatenate([[0], phones])
    pctx = np.concatenate([[pop.mean()], pop])
    pctx /= pctx.sum()
    P = len(p2n)
    # Distinct triphones without replacement, weighted by popularity (Gumbel top-k). With
    # position-independent phones the space is only ~(phones+1)^2 * phones; capped at it.
    lg, cg, rg = np.meshgrid(ctx_phones, phones, ctx_phones, indexing="ij")
    space = ((lg * P + cg) * P + rg).ravel()
    logw = (np.log(pctx)[:, None, None] + np.log(pc)[None, :, None] + np.log(pctx)[None, None, :]).ravel()
    num_contexts = min(num_contexts, len(space))
    pick = np.argsort(-(logw + rng.gumbel(size=len(space))), kind="stable")[:num_contexts]
    order = np.argsort(pick)
    trip = space[pick[order]].astype(np.int64)
    lft, c, rgt = trip // (P * P), (trip // P) % P, trip % P
    # Heavy-tailed frame counts per triphone: Zipf over the popularity ranking (top ~1e5 frames).
    rank = order + 1
    # ~1e8 frames in all (Switchboard 300 h ~ 1.1e8 frames).
    tri_count = np.maximum(np.round(6e5 / rank ** 0.7 * rng.lognormal(0, 1, num_contexts)), 3)
    # Expand to pdf classes.
    ncls = np.asarray(p2n)[c]
    rep = np.repeat(np.arange(num_contexts), ncls)
    cls = np.concatenate([np.arange(n) for n in ncls])
    keys = np.stack([lft[rep], c[rep], rgt[rep], cls], axis=1).astype(np.int32)
    max_cls = int(ncls.max())
    counts = np.maximum(np.round(tri_count[rep] * rng.uniform(0.6, 1.4, len(rep)) / 3), 1)
    centre_eff = rng.normal(0, 3.0, (P, max_cls, dim))
    left_eff = rng.normal(0, 1.0, (P, dim))
    right_eff = rng.normal(0, 1.0, (P, dim))
    w_left = np.where(cls == 0, 1.0, np.where(cls == max_cls - 1, 0.2, 0.5))[:, None]
    w_right = np.where(cls == 0, 0.2, np.where(cls == max_cls - 1, 1.0, 0.5))[:, None]
    mu = (centre_eff[keys[:, 1], keys[:, 3]] + w_left * left_eff[keys[:, 0]]
          + w_right * right_eff[keys[:, 2]] + rng.normal(0, 0.3, (len(keys), dim)))
    var = np.exp(rng.normal(0, 0.2, (P, 1, dim)))[keys[:, 1], 0] * rng.uniform(0.8, 1.2, (len(keys), 1))
    # Exact-ish moments of `counts` draws: the sample mean wobbles by sd/sqrt(n).
    n = counts[:, None]
    mean_hat = mu + rng.normal(size=mu.shape) * np.sqrt(var / n)
    sums = n * mean_hat
    sumsqs = n * (var + mean_hat ** 2)
    stats = treelib.TreeStats.from_arrays(keys, counts, sums, sumsqs)
    questions = treelib.cluster_phones(stats, phone_sets=sets) + extra
    return stats, p2n, roots, questions


def bench_tree(args) -> dict:
    import numpy as np

    from asr import tree as treelib

    t0 = time.process_time()
    w0 = time.time()
    stats, p2n, roots, questions = tree_stats(args.contexts, args.dim, args.seed)
    t_gen = time.time() - w0
    rss_gen = _rss_mb()
    counts = stats.counts
    row = {"bench": "tree", "contexts": args.contexts,
           "distinct_triphones": len(np.unique(stats.keys[:, :3], axis=0)), "stats_rows": stats.num_contexts, "dim": stats.dim,
           "frames": int(counts.sum()), "max_row_count": int(counts.max()),
           "median_row_count": float(np.median(counts)), "questions": len(questions), "max_leaves": args.leaves,
           "gen_s": round(t_gen, 1), "max_rss_after_gen_mb": rss_gen}
    kw = dict(max_leaves=args.leaves, roots=roots, questions=questions, min_count=args.min_count)
    if args.cluster is not None:
        kw["cluster_threshold"] = args.cluster
    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
    c0, w0 = time.process_time(), time.time()
    tree = treelib.build_tree(stats, p2n, **kw)
    row.update(build_cpu_s=round(time.process_time() - c0, 1), build_wall_s=round(time.time() - w0, 1))
    if args.profile:
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tree.write(out / "tree")
    row.update(pdfs=tree.num_pdfs, cluster_threshold=args.cluster,
               tree_file_bytes=(out / "tree").stat().st_size, max_rss_mb=_rss_mb(),
               total_cpu_s=round(time.process_time() - t0, 1))
    print(json.dumps(row), flush=True)
    return row


def bench_tree_grid(args) -> None:
    import numpy as np

    rows = []
    for n in args.contexts:
        for m in args.leaves:
            cmd = [sys.executable, __file__, "tree", "--contexts", str(n), "--leaves", str(m),
                   "--out", f"/tmp/h3/tree_{n}_{m}"]
            if args.cluster is not None:
                cmd += ["--cluster", str(args.cluster)]
            res = subprocess.run(cmd, check=True, capture_output=True, text=True)
            row = json.loads(res.stdout.strip().splitlines()[-1])
            print(json.dumps(row), flush=True)
            rows.append(row)
    # log-log slope of build CPU time vs leaves (at the most contexts) and vs contexts (at the most leaves)
    fit = {}
    big_n, big_m = max(args.contexts), max(args.leaves)
    sel = [r for r in rows if r["contexts"] == big_n]  # (the triphone space caps contexts at ~78k)
    if len(sel) > 1:
        fit["slope_vs_leaves"] = round(float(np.polyfit(np.log([r["pdfs"] for r in sel]),
                                                        np.log([r["build_cpu_s"] for r in sel]), 1)[0]), 2)
    sel = [r for r in rows if r["max_leaves"] == big_m]
    if len(sel) > 1:
        fit["slope_vs_contexts"] = round(float(np.polyfit(np.log([r["distinct_triphones"] for r in sel]),
                                                          np.log([r["build_cpu_s"] for r in sel]), 1)[0]), 2)
    print(json.dumps({"bench": "tree_fit", **fit}), flush=True)


# --------------------------------------------------------------------------- loader memmap


def feature_memmap(directory: str | Path, num_frames: int = 50_000_000, bins: int = 64, channels: int = 3,
                   num_pdfs: int = 9000, seed: int = 0):
    """A float16 `(frames, channels*bins)` .npy memmap + `.utts` index as load_utt_set writes it
    (utterances of 2-20 s at 100 frames/s), filled block by block (constant memory).
    Returns an asr.data.UttSet over it (targets random pdf ids, in RAM as the loader has them)."""
    import numpy as np

    from asr.data import UttSet

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lengths = rng.integers(200, 2001, size=num_frames // 1100 + 1000)
    ends = np.cumsum(lengths)
    k = int(np.searchsorted(ends, num_frames)) + 1
    lengths = lengths[:k]
    offsets = np.zeros(k + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    dim = channels * bins
    path = d / "train.npy"
    utts = [f"u{i:08d}" for i in range(k)]
    if not (path.exists() and np.load(path, mmap_mode="r").shape == (total, dim)):
        # Plain writes after the .npy header (no writable mapping: RSS stays small).
        block = 1 << 18
        base = rng.standard_normal((block, dim), dtype=np.float32).astype(np.float16)
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.dtype("float16").str, "fortran_order": False, "shape": (total, dim)})
            for s in range(0, total, block):
                e = min(total, s + block)
                base[: e - s, 0] = (np.arange(s, e) % 2048).astype(np.float16)  # distinct rows
                f.write(base[: e - s].tobytes())
        (d / "train.utts").write_text(f"{total} {dim} float16 0\n" + "\n".join(utts) + "\n")
    feats = np.load(path, mmap_mode="r")
    targets = rng.integers(0, num_pdfs, size=total, dtype=np.int32)  # int32 as load_utt_set keeps them
    return UttSet(utts, feats, targets, offsets, bins)


def _evict(path: Path) -> None:
    """Drop the file's clean pages from the page cache (posix_fadvise DONTNEED: no root needed)."""
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def bench_loader(args) -> None:
    import numpy as np

    from asr.data import ChunkLoader

    w0 = time.time()
    uset = feature_memmap(args.dir, args.frames, args.bins)
    t_make = time.time() - w0
    size = (Path(args.dir) / "train.npy").stat().st_size
    if args.madvise != "normal":   # experiment: the kernel's readahead policy for the mapping
        import mmap
        uset.feats._mmap.madvise({"random": mmap.MADV_RANDOM, "willneed": mmap.MADV_WILLNEED}[args.madvise])
    w0 = time.time()
    loader = ChunkLoader(uset, chunk_frames=args.chunk_frames, context=(args.left, args.right),
                         batch_size=args.batch_size, seed=0, prefetch=args.prefetch)
    t_plan = time.time() - w0
    print(json.dumps({"bench": "loader_setup", "frames": uset.num_frames, "utts": len(uset.utts),
                      "dim": uset.feats.shape[1], "file_gb": round(size / 1e9, 2), "make_s": round(t_make, 1),
                      "chunks": len(loader.chunks), "batches_per_epoch": loader.num_batches,
                      "setup_s": round(t_plan, 2), "max_rss_mb": _rss_mb()}), flush=True)
    for label in args.passes:
        if label.startswith("cold"):
            _evict(Path(args.dir) / "train.npy")
        n = 0
        w0 = time.time()
        for epoch_batch, (x, y) in enumerate(loader.iter_batches(epoch=0)):
            n += 1
            if n >= args.batches:
                break
        dt = time.time() - w0
        out_frames = n * args.batch_size * args.chunk_frames
        in_frames = n * args.batch_size * (args.chunk_frames + args.left + args.right)
        print(json.dumps({"bench": "loader", "pass": label, "batches": n, "s": round(dt, 2),
                          "batches_per_s": round(n / dt, 1), "out_frames_per_s": round(out_frames / dt),
                          "in_frames_read_per_s": round(in_frames / dt), "batch_shape": list(x.shape),
                          "max_rss_mb": _rss_mb(), **_rss_now_mb()}), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("tree")
    a.add_argument("--contexts", type=int, default=100_000)
    a.add_argument("--leaves", type=int, default=32000)
    a.add_argument("--dim", type=int, default=40)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--min-count", type=float, default=100.0)
    a.add_argument("--cluster", type=float, default=None, help="cluster_threshold (-1: Kaldi's default)")
    a.add_argument("--profile", action="store_true")
    a.add_argument("--out", default="/tmp/h3/tree")
    a = sub.add_parser("tree-grid")
    a.add_argument("--contexts", type=int, nargs="+", default=[25000, 50000, 100000])
    a.add_argument("--leaves", type=int, nargs="+", default=[2000, 8000, 32000])
    a.add_argument("--cluster", type=float, default=None)
    a = sub.add_parser("loader")
    a.add_argument("--frames", type=int, default=50_000_000)
    a.add_argument("--bins", type=int, default=64)
    a.add_argument("--dir", default="/tmp/h3/mm")
    a.add_argument("--chunk-frames", type=int, default=64)
    a.add_argument("--left", type=int, default=23)
    a.add_argument("--right", type=int, default=23)
    a.add_argument("--batch-size", type=int, default=64)
    a.add_argument("--batches", type=int, default=2000)
    a.add_argument("--prefetch", type=int, default=2)
    a.add_argument("--passes", nargs="+", default=["cold", "warm"])
    a.add_argument("--madvise", choices=["normal", "random", "willneed"], default="normal")
    args = p.parse_args()
    {"tree": bench_tree, "tree-grid": bench_tree_grid, "loader": bench_loader}[args.cmd](args)


if __name__ == "__main__":
    main()
