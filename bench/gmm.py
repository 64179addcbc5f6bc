"""Benchmarks for the GMM stage and the graph build (figures, not tests).

    # wall time of the whole GMM stage (lang + mono + tri1 + tri2 + alignments) on a corpus
    python bench/gmm.py stage --data egs/synth/data --conf egs/synth/conf/gmm.yaml --out /tmp/bench_gmm

    # graph-build time and peak memory vs. LM size (random Zipf text over the lang's words)
    python bench/gmm.py graph --lang egs/synth/data/lang --model-dir egs/synth/exp/tri2 \
        --sentences 2000 20000 100000 --out /tmp/bench_graph

    # a 32k-leaf stand-in tree over a 5000-word CMUdict lexicon, then the graph benchmark on it
    python bench/gmm.py synthetic-model --words 5000 --leaves 32000 --out /tmp/syn32k
    python bench/gmm.py graph --lang /tmp/syn32k/lang --model-dir /tmp/syn32k/model \
        --sentences 10000 100000 --out /tmp/syn32k/graphs

    # old (compose + full rmepsilon) vs new (mkgraph.sh order) on given ARPA LMs
    python bench/stand_ins.py arpa --lang /tmp/syn32k/lang --bigrams 50000 --trigrams 20000 --out /tmp/lm100k.arpa
    python bench/gmm.py graph --lang /tmp/syn32k/lang --model-dir /tmp/syn32k/model \
        --arpa /tmp/lm100k.arpa --methods full kaldi --out /tmp/syn32k/graphs

Each graph size (and method) runs in a fresh process so the peak RSS (ru_maxrss) is that size's alone.
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


def bench_stage(args) -> None:
    from asr.gmm import GmmConfig, train_all
    from asr.lang import prepare_lang
    from asr.utils import setup_logging

    setup_logging()
    data, out = Path(args.data), Path(args.out)
    t0 = time.time()
    prepare_lang(data / "local/dict", out / "lang")
    t_lang = time.time() - t0
    cfg = GmmConfig.from_yaml(args.conf)
    if args.nj:
        cfg.nj = args.nj
    summary = train_all(data / "train", data / "train_mfcc", out / "lang", out / "exp", cfg,
                        dev_feat_dir=data / "dev_mfcc" if (data / "dev_mfcc").is_dir() else None)
    row = {"bench": "gmm_stage", "lang_s": round(t_lang, 2), "total_s": round(time.time() - t0, 1),
           "nj": cfg.nj, **{k: v for k, v in summary.items()}}
    print(json.dumps(row))


def _one_graph(lang: Path, model_dir: Path, n_sent: int, order: int, out: Path, seed: int,
               method: str = "kaldi", arpa: str | None = None) -> dict:
    import numpy as np

    from asr.graph import make_g, make_hclg, train_lm
    from asr.lang import read_symbol_table
    from bench.stand_ins import arpa_counts

    if arpa:   # a given LM (e.g. bench/stand_ins.py arpa): G and HCLG only
        counts = arpa_counts(arpa)
        t0 = time.time()
        make_g(lang, arpa, out / "lang_test")
        t_g = time.time() - t0
        info = make_hclg(out / "lang_test", model_dir, out / f"graph_{method}", method=method)
        size_mb = (out / f"graph_{method}/HCLG.fst").stat().st_size / 2**20
        return {"bench": "graph", "arpa": str(arpa), "ngrams": counts, "G_s": round(t_g, 2), **info,
                "hclg_mb": round(size_mb, 2)}

    words = [w for w in read_symbol_table(lang / "words.txt")
             if not w.startswith("#") and w not in ("<eps>", "<s>", "</s>", "!sil", "<unk>")]
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    out.mkdir(parents=True, exist_ok=True)
    lens = rng.integers(3, 12, size=n_sent)
    idx = rng.choice(len(words), size=int(lens.sum()), p=p)
    lines, k = [], 0
    for i, n in enumerate(lens):
        lines.append(f"u{i:08d} " + " ".join(words[j] for j in idx[k:k + n]))
        k += n
    (out / "text").write_text("\n".join(lines) + "\n")
    t0 = time.time()
    train_lm(out / "text", out / "lm.arpa", order)
    t_lm = time.time() - t0
    counts = arpa_counts(out / "lm.arpa")
    t0 = time.time()
    make_g(lang, out / "lm.arpa", out / "lang_test")
    t_g = time.time() - t0
    info = make_hclg(out / "lang_test", model_dir, out / "graph", method=method)
    size_mb = (out / "graph/HCLG.fst").stat().st_size / 2**20
    return {"bench": "graph", "sentences": n_sent, "ngrams": counts, "lm_s": round(t_lm, 2),
            "G_s": round(t_g, 2), **info, "hclg_mb": round(size_mb, 2),
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def synthetic_model(args) -> None:
    """A CMUdict lang of `--words` words (all ARPAbet phones) and a triphone tree with
    `--leaves` leaves grown by asr.tree from random statistics over every triphone context:
    a stand-in for the swbd 32k tree when measuring HCLG growth (no acoustics needed)."""
    import kaldi_hmm_gmm as khg
    import numpy as np

    from asr import tree as treelib
    from asr.gmm import read_topo, save_model, write_tree
    from asr.lang import prepare_lang
    from asr.utils import setup_logging
    from bench.stand_ins import cmudict_dict_dir

    setup_logging()
    out = Path(args.out)
    rng = np.random.default_rng(0)
    d = cmudict_dict_dir(out / "dict", args.words, rng)
    lang = prepare_lang(d, out / "lang")
    topo = read_topo(out / "lang")
    p2n = topo.get_phone_to_num_pdf_classes()
    t0 = time.time()
    real = lang.real_phone_ids
    ctx = np.array([(l, c, r, k) for c in real for l in [0] + real for r in [0] + real for k in range(p2n[c])],
                   dtype=np.int32)
    dim = 2
    stats = treelib.TreeStats.from_arrays(ctx, rng.uniform(50, 500, len(ctx)),
                                          rng.normal(size=(len(ctx), dim)) * 100,
                                          rng.uniform(100, 1000, (len(ctx), dim)) * 100)
    questions = treelib.cluster_phones(stats)
    tree = treelib.build_tree(stats, p2n, max_leaves=args.leaves, questions=questions, min_count=1.0)
    t_tree = time.time() - t0
    model = out / "model"
    model.mkdir(exist_ok=True)
    ctx_dep = tree.to_kaldi()
    write_tree(model / "tree", ctx_dep)
    tm = khg.TransitionModel(ctx_dep, topo)
    save_model(model / "final.mdl", tm, khg.AmDiagGmm())
    print(json.dumps({"bench": "synthetic_tree", "contexts": len(ctx), "leaves": tree.num_pdfs,
                      "tree_build_s": round(t_tree, 1), "words": args.words}), flush=True)


def bench_graph(args) -> None:
    runs = [(f"arpa{i}", ["--arpa", a]) for i, a in enumerate(args.arpa)] if args.arpa else \
        [(f"n{n}", ["--n", str(n)]) for n in args.sentences]
    for name, extra in runs:
        for method in args.methods:
            cmd = [sys.executable, __file__, "_graph1", "--lang", args.lang, "--model-dir", args.model_dir,
                   "--order", str(args.order), "--method", method, "--out", str(Path(args.out) / name), *extra]
            subprocess.run(cmd, check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("stage")
    a.add_argument("--data", required=True, help="recipe data dir (local/dict, train, train_mfcc, dev_mfcc)")
    a.add_argument("--conf", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--nj", type=int)
    a = sub.add_parser("graph")
    a.add_argument("--lang", required=True)
    a.add_argument("--model-dir", required=True)
    a.add_argument("--sentences", type=int, nargs="+", default=[2000, 20000])
    a.add_argument("--arpa", nargs="+", help="given ARPA LMs instead of --sentences (bench/stand_ins.py arpa)")
    a.add_argument("--methods", nargs="+", default=["kaldi"], choices=["kaldi", "full"],
                   help="make_hclg methods to run, each in its own process")
    a.add_argument("--order", type=int, default=3)
    a.add_argument("--out", required=True)
    a = sub.add_parser("synthetic-model", help="CMUdict lang + a random-stats tree (e.g. 32000 leaves)")
    a.add_argument("--words", type=int, default=5000)
    a.add_argument("--leaves", type=int, default=32000)
    a.add_argument("--out", required=True)
    a = sub.add_parser("_graph1")
    a.add_argument("--lang", required=True)
    a.add_argument("--model-dir", required=True)
    a.add_argument("--n", type=int)
    a.add_argument("--arpa")
    a.add_argument("--method", default="kaldi")
    a.add_argument("--order", type=int, default=3)
    a.add_argument("--out", required=True)
    args = p.parse_args()
    if args.cmd == "stage":
        bench_stage(args)
    elif args.cmd == "graph":
        bench_graph(args)
    elif args.cmd == "synthetic-model":
        synthetic_model(args)
    else:
        print(json.dumps(_one_graph(Path(args.lang), Path(args.model_dir), args.n or 0, args.order, Path(args.out), 0,
                                    method=args.method, arpa=args.arpa)), flush=True)


if __name__ == "__main__":
    main()
