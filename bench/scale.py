"""Switchboard-scale rehearsal: every stage that grows with the data, on generated stand-ins.

    # tree to 32k leaves from Switchboard-sized statistics (bench/stand_ins_tree.py), one core
    python bench/scale.py tree --out /tmp/scale -- --contexts 100000 --leaves 32000 --out /tmp/scale/tree
    # HCLG from a 4M n-gram ARPA over 30.5k CMUdict words with a 32k-leaf tree (bench/gmm.py graph)
    python bench/gmm.py synthetic-model --words 30500 --leaves 32000 --out /tmp/syn32k
    python bench/stand_ins.py arpa --lang /tmp/syn32k/lang --bigrams 2000000 --trigrams 2000000 --out /tmp/lm4m.arpa
    python bench/scale.py hclg --out /tmp/scale -- --lang /tmp/syn32k/lang --model-dir /tmp/syn32k/model \
        --arpa /tmp/lm4m.arpa --methods kaldi --out /tmp/scale/hclg4m
    # the training loader on a 50M-frame float16 memmap (bench/stand_ins_tree.py loader)
    python bench/scale.py loader --out /tmp/scale -- --frames 50000000 --dir /tmp/scale/mm --batches 500

    # GMM training (the recipe's gmm.yaml rounds) and alignment per hour of embedded audio
    python bench/scale.py gmm --data egs/synth/data --hours 0.3 0.6 1.2 2.5 --nj 1 2 --out /tmp/scale
    # decoding RTF through a big HCLG at the swbd beams (egs/swbd/conf/decode.yaml)
    python bench/scale.py decode --graph /tmp/scale/hclg/kaldi_n4000000/graph --utts 20 --out /tmp/scale
    # the markdown tables of docs/scale.md (log-log slopes per stage) from the JSON lines
    python bench/scale.py table /tmp/scale/results.jsonl

Every measurement runs in a fresh child process; `wall_s` is its wall time, `cpu_s` its user +
system time (its own and its reaped children's: what `--nj` jobs cost in all), `max_rss_mb` the
peak resident set of the child or of its largest descendant (`os.wait4`). One JSON line per
measurement is printed and appended to `<out>/results.jsonl`.

The stand-ins are generated, not downloaded: the GMM corpus is the embedded recipe's
speed-perturbed `train_sp` (eSpeak NG + flite speech through the telephone channel), taken in a
seeded random order up to each size in hours; the decoding stand-in scores are described in
`decode_one`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


# ---------------------------------------------------------------------------
# Measuring a child process
# ---------------------------------------------------------------------------


def measure(cmd: list[str], log_path: Path, env: dict | None = None) -> dict:
    """Run `cmd` (output to `log_path`); wall seconds, CPU seconds and peak RSS (MB) of the child
    and its reaped descendants. Raises if it fails."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with exit {code}; see {log_path}")
    return {"wall_s": round(wall, 2), "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
            "max_rss_mb": round(ru.ru_maxrss / 1024, 1)}


def emit(row: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    line = json.dumps(row)
    print(line, flush=True)
    with open(out / "results.jsonl", "a") as f:
        f.write(line + "\n")


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20, 2)


# ---------------------------------------------------------------------------
# Stages measured by their own scripts (tree, HCLG, loader): their JSON lines, collected
# ---------------------------------------------------------------------------

FORWARDED = {"tree": "stand_ins_tree.py tree", "hclg": "gmm.py graph", "loader": "stand_ins_tree.py loader"}


def forward(a) -> None:
    """Run the stage's own benchmark script in a child process; its JSON lines go to results.jsonl
    (the last one with this process's wall/CPU/peak RSS as `process`)."""
    script, sub = FORWARDED[a.cmd].split()
    out = Path(a.out)
    log = out / "log" / f"{a.cmd}.{time.strftime('%Y%m%d-%H%M%S')}.log"
    extra = [x for x in a.args if x != "--"]
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = measure([sys.executable, str(REPO / "bench" / script), sub, *extra], log, env)
    rows = [json.loads(l) for l in log.read_text().splitlines() if l.startswith("{")]
    for i, row in enumerate(rows):
        emit({**row, **({"process": proc} if i == len(rows) - 1 else {})}, out)


# ---------------------------------------------------------------------------
# GMM training and alignment per hour of audio
# ---------------------------------------------------------------------------


def _read_map(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition(" ")
        if k:
            out[k] = v
    return out


def _write_map(path: Path, m: dict[str, str], keys) -> None:
    path.write_text("".join(f"{k} {m[k]}\n" for k in keys))


def subset_by_hours(data_dir: Path, feat_dir: Path, hours: float, out: Path, seed: int = 0) -> tuple[Path, Path, float]:
    """The utterances of `data_dir` in a seeded random order, up to `hours` of audio (from
    utt2num_frames at 100 frames/s): a Kaldi data dir (text, utt2spk, spk2utt) and a feature dir
    (feats.scp, cmvn.scp, utt2num_frames, ...) under `out`. Returns both and the hours taken."""
    import numpy as np

    frames = {k: int(v) for k, v in _read_map(feat_dir / "utt2num_frames").items()}
    utts = sorted(frames)
    order = np.random.default_rng(seed).permutation(len(utts))
    chosen, total = [], 0
    for i in order:
        if total >= hours * 360000:
            break
        chosen.append(utts[i])
        total += frames[utts[i]]
    chosen.sort()
    utt2spk = _read_map(feat_dir / "utt2spk")
    spks = sorted({utt2spk[u] for u in chosen})
    spk2utt = {s: [] for s in spks}
    for u in chosen:
        spk2utt[utt2spk[u]].append(u)
    d, f = out / "data", out / "feats"
    for dst in (d, f):
        dst.mkdir(parents=True, exist_ok=True)
        _write_map(dst / "text", _read_map(data_dir / "text"), chosen)
        _write_map(dst / "utt2spk", utt2spk, chosen)
        (dst / "spk2utt").write_text("".join(f"{s} {' '.join(spk2utt[s])}\n" for s in spks))
    _write_map(f / "feats.scp", _read_map(feat_dir / "feats.scp"), chosen)
    _write_map(f / "utt2num_frames", {k: str(v) for k, v in frames.items()}, chosen)
    _write_map(f / "cmvn.scp", _read_map(feat_dir / "cmvn.scp"), spks)
    for name in ("feat_dim", "feature_config.yaml"):
        if (feat_dir / name).exists():
            shutil.copy2(feat_dir / name, f / name)
    return d, f, total / 360000


def bench_gmm(a) -> None:
    data = Path(a.data)
    out = Path(a.out)
    for hours in a.hours:
        work = out / "gmm" / f"h{hours:g}"
        if work.exists():
            shutil.rmtree(work)
        sub_data, sub_feats, got = subset_by_hours(data / a.train_set, data / f"{a.train_set}_mfcc", hours, work)
        num_utts = len(_read_map(sub_data / "text"))
        for nj in a.nj:
            exp = work / f"exp_nj{nj}"
            py = sys.executable
            env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
            tr = measure([py, "-m", "asr.gmm", "train", "--config", a.conf, "--nj", str(nj), "--lang",
                          str(data / "lang"), "--data", str(sub_data), "--feats", str(sub_feats), "--exp", str(exp)],
                         exp / "log" / "bench_train.log", env)
            final = subprocess.run([py, "-m", "asr.gmm", "final-dir", "--config", a.conf, "--exp", str(exp),
                                    "--model"], capture_output=True, text=True, check=True).stdout.strip()
            al = measure([py, "-m", "asr.gmm", "align", "--config", a.conf, "--nj", str(nj), "--model-dir", final,
                          "--lang", str(data / "lang"), "--data", str(sub_data), "--feats", str(sub_feats),
                          "--out", str(exp / "ali_again")], exp / "log" / "bench_align.log", env)
            emit({"bench": "gmm", "hours": round(got, 3), "utterances": num_utts, "nj": nj,
                  "train": tr, "align": al, "train_s_per_hour": round(tr["wall_s"] / got, 1),
                  "align_s_per_hour": round(al["wall_s"] / got, 1), "model_mb": dir_mb(Path(final))}, out)


# ---------------------------------------------------------------------------
# Decoding RTF through a big graph
# ---------------------------------------------------------------------------


def stand_in_scores(tree, lexicon: dict[str, list[int]], words: list[str], num_pdfs: int, rng,
                    sil_phone: int, frame_acc_margin: float, noise: float):
    """Per-frame pdf scores (T, num_pdfs) float32 for a word sequence: the reference pdf path
    (each word's phones in context through `tree`, 3 HMM states of 2-6 frames each, silence
    at both ends), and a network stand-in whose log-posteriors are log_softmax(noise * N(0, 1)
    + margin on the reference pdf). Returns (scores, reference pdfs (T,))."""
    import numpy as np

    phones = [sil_phone] + [p for w in words for p in lexicon[w]] + [sil_phone]
    ref = []
    for i, c in enumerate(phones):
        left = phones[i - 1] if i > 0 else 0
        right = phones[i + 1] if i + 1 < len(phones) else 0
        for k in range(3):
            pdf = tree.compute((left, c, right), k)
            if pdf is None:
                pdf = tree.compute((0, c, 0), k)
            ref += [pdf] * int(rng.integers(2, 7))
    ref = np.asarray(ref, dtype=np.int64)
    logits = (noise * rng.standard_normal((len(ref), num_pdfs))).astype(np.float32)
    logits[np.arange(len(ref)), ref] += frame_acc_margin
    m = logits.max(axis=1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))
    return logp + math.log(num_pdfs), ref   # / uniform prior


def bench_decode(a) -> None:
    py = sys.executable
    out = Path(a.out)
    work = out / "decode"
    row = measure([py, __file__, "_decode1", "--graph", a.graph, "--utts", str(a.utts), "--out", str(work),
                   "--config", a.config, "--lang", a.lang, "--lexicon", a.lexicon, "--margin", str(a.margin), "--noise", str(a.noise), "--searchers", *a.searchers],
                  work / "log" / "bench_decode.log", {"OMP_NUM_THREADS": "1"})
    res = json.loads((work / "decode1.json").read_text())
    emit({"bench": "decode", **res, "process": row}, out)


def decode_one(a) -> None:
    """Load the graph (timed), decode `--utts` stand-in utterances with each of `--searchers` at
    the config's beams on one core; RTF = search CPU seconds / audio seconds (100 frames/s)."""
    import numpy as np
    import yaml

    from asr.graph import load_graph
    from asr.search import LatticeSearcher, Searcher, SearchOptions
    from asr.tree import read_tree
    from asr.lang import read_symbol_table

    graph_dir = Path(a.graph)
    t0 = time.perf_counter()
    g = load_graph(graph_dir)
    t_load = time.perf_counter() - t0
    import resource
    rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # the graph, before any scores
    cfg = yaml.safe_load(Path(a.config).read_text())["decode"]
    opts = SearchOptions(cfg["beam"], cfg["max_active"], cfg["min_active"], cfg["lattice_beam"])
    tm = g.transition_model
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array(), dtype=np.int64)[1:]
    lang = Path(a.lang)
    phones = read_symbol_table(lang / "phones.txt")
    words_id = read_symbol_table(graph_dir / "words.txt")
    lexicon = {}
    for line in Path(a.lexicon).read_text().splitlines():
        w, *pr = line.split()
        if w in words_id and pr and all(p in phones for p in pr) and w not in lexicon and w.isalpha():
            lexicon[w] = [phones[p] for p in pr]
    words = sorted(lexicon)
    tree = read_tree(graph_dir / "tree")
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()
    from asr.lattice import best_paths
    import kaldialign

    sents = [[words[i] for i in rng.choice(len(words), size=int(rng.integers(5, 16)), p=p)] for _ in range(a.utts)]
    utts = [stand_in_scores(tree, lexicon, s, g.num_pdfs, rng, phones.get("SIL", 1), a.margin, a.noise) for s in sents]
    frames = sum(len(ref) for _, ref in utts)
    frame_acc = sum(int((sc.argmax(axis=1) == ref).sum()) for sc, ref in utts) / frames
    res = {"graph": str(graph_dir), "hclg_mb": round((graph_dir / "HCLG.fst").stat().st_size / 2**20, 1),
           "load_s": round(t_load, 1),
           "rss_after_load_mb": round(rss_load, 1), "utterances": a.utts, "audio_s": frames / 100,
           "beam": opts.beam, "max_active": opts.max_active, "lattice_beam": opts.lattice_beam,
           "stand_in_frame_acc": round(frame_acc, 3)}
    for kind in a.searchers:
        if kind == "lattice":   # kaldi-decoder's LatticeSimpleDecoder: the beam only, no max-active
            searcher = LatticeSearcher(g.hclg, tid2pdf, opts)
        else:                   # kaldi-hmm-gmm's LatticeFasterDecoder: best path, max-active applies
            searcher = Searcher(g.hclg, tm, opts)
        search_s = errors = ref_words = 0
        for sent, (scores, ref) in zip(sents, utts):
            t = time.process_time()   # the search is one thread: CPU seconds, robust to other load
            if kind == "lattice":
                lat, ok = searcher.decode(scores, cfg["acoustic_scale"])
                hyp_ids = best_paths(lat, [(1.0 / cfg["acoustic_scale"], 0.0)])[0].words
            else:
                hyp_ids, _, ok = searcher.decode(scores, cfg["acoustic_scale"])
            search_s += time.process_time() - t
            hyp = [g.words[w] for w in hyp_ids]
            errors += sum(1 for x, y in kaldialign.align(sent, hyp, "*") if x != y)
            ref_words += len(sent)
        res[kind] = {"search_s": round(search_s, 2), "rtf": round(search_s / (frames / 100), 4),
                     "stand_in_wer": round(100 * errors / ref_words, 2)}
    Path(a.out).mkdir(parents=True, exist_ok=True)
    (Path(a.out) / "decode1.json").write_text(json.dumps(res))


# ---------------------------------------------------------------------------
# Tables with growth laws
# ---------------------------------------------------------------------------


def _loglog_fit(xs, ys) -> tuple[float, float] | None:
    """(slope, intercept) of the least-squares line log(y) = k log(x) + c over the positive
    points (None with fewer than two distinct x)."""
    import numpy as np

    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    x, y = np.array(pts).T
    k, c = np.polyfit(x, y, 1)
    return float(k), float(c)


def loglog_slope(xs, ys) -> float | None:
    """Least-squares slope of log(y) on log(x) (None with fewer than two distinct x)."""
    fit = _loglog_fit(xs, ys)
    return None if fit is None else fit[0]


def extrapolate(xs, ys, target: float) -> float | None:
    """y at `target` from the log-log fit of (xs, ys)."""
    fit = _loglog_fit(xs, ys)
    return None if fit is None else math.exp(fit[1] + fit[0] * math.log(target))


SWB_HOURS = (300, 2000)       # Switchboard 300 h, Switchboard + Fisher 2000 h
SWB_FRAMES = {300: 108e6, 2000: 720e6}
EVAL2000_HOURS = 3.8          # Hub5'00 (eval2000), the test set the swbd recipe decodes
MACHINE_GB = 24


def _md(header: list[str], rows: list[list]) -> None:
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")
    print()


def _fit_line(what: str, xs, ys, targets, unit: str, fmt=lambda v: f"{v:.3g}") -> list:
    s = loglog_slope(xs, ys)
    return [what, "-" if s is None else f"{s:.2f}",
            *("-" if s is None else f"{fmt(extrapolate(xs, ys, t))} {unit}" for t in targets)]


def affine_fit(xs, ys) -> tuple[float, float]:
    """(a, b) of the least-squares line y = a + b x: a fixed cost plus a cost per unit."""
    import numpy as np

    b, a = np.polyfit(np.asarray(xs, float), np.asarray(ys, float), 1)
    return float(a), float(b)


def _table_gmm(rows: list[dict], cores: list[int]) -> None:
    print("### GMM training and alignment per hour of audio\n")
    _md(["hours", "utts", "nj", "train wall s", "train CPU s", "train peak RSS MB", "align wall s",
         "align CPU s", "align peak RSS MB"],
        [[r["hours"], r["utterances"], r["nj"], r["train"]["wall_s"], r["train"]["cpu_s"], r["train"]["max_rss_mb"],
          r["align"]["wall_s"], r["align"]["cpu_s"], r["align"]["max_rss_mb"]]
         for r in sorted(rows, key=lambda r: (r["nj"], r["hours"]))])
    # Every pass touches every frame, so cost is asymptotically linear in hours; a log-log slope
    # below 1 over a small range measures the fixed part (mono on a fixed subset, model updates).
    # The projections therefore use the affine fit a + b * hours; the slope is shown as measured.
    fits = []
    for nj in sorted({r["nj"] for r in rows}):
        sel = [r for r in rows if r["nj"] == nj]
        hs = [r["hours"] for r in sel]
        for what in ("train", "align"):
            for key, label, unit, per, big_unit in (("cpu_s", "CPU", "CPU s", 3600, "CPU h"),
                                                    ("max_rss_mb", "peak RSS", "MB", 1024, "GB")):
                ys = [r[what][key] for r in sel]
                a, b = affine_fit(hs, ys)
                fits.append([f"nj {nj} {what} {label}", f"{loglog_slope(hs, ys):.2f}", f"{a:.0f} {unit} + {b:.1f} {unit}/h",
                             *(f"{(a + b * h) / per:.3g} {big_unit}" for h in SWB_HOURS)])
    _md(["fit", "log-log slope (range measured)", "affine fit", *(f"at {h} h (affine)" for h in SWB_HOURS)], fits)
    one = [r for r in rows if r["nj"] == min(x["nj"] for x in rows)]
    hs = [r["hours"] for r in one]
    a_c, b_c = affine_fit(hs, [r["train"]["cpu_s"] + r["align"]["cpu_s"] for r in one])
    a_m, b_m = affine_fit(hs, [r["train"]["max_rss_mb"] for r in one])
    cpu = {h: (a_c + b_c * h) / 3600 for h in SWB_HOURS}
    rss = {h: (a_m + b_m * h) / 1024 for h in SWB_HOURS}
    _md(["GMM stage (train + align), the embedded rounds", *(f"{h} h" for h in SWB_HOURS)],
        [["CPU hours", *(f"{cpu[h]:.1f}" for h in SWB_HOURS)],
         *[[f"wall on {n} cores, if all work splits {n} ways", *(f"{cpu[h] / n:.2f} h" for h in SWB_HOURS)]
           for n in cores],
         ["peak RSS of the training process", *(f"{rss[h]:.0f} GB" + (" (does not fit)" if rss[h] > MACHINE_GB else "")
                                                for h in SWB_HOURS)]])


def _table_tree(rows: list[dict]) -> None:
    print("### Decision tree from Switchboard-sized statistics (one core)\n")
    _md(["distinct triphones", "stats rows", "frames", "leaves asked", "pdfs", "build CPU s", "build wall s",
         "peak RSS MB", "tree file MB"],
        [[r["distinct_triphones"], r["stats_rows"], f"{r['frames']:.3g}", r["max_leaves"], r["pdfs"], r["build_cpu_s"],
          r["build_wall_s"], r["max_rss_mb"], round(r["tree_file_bytes"] / 2**20, 2)]
         for r in sorted(rows, key=lambda r: (r["distinct_triphones"], r["max_leaves"]))])
    big = max(r["distinct_triphones"] for r in rows)
    sel = [r for r in rows if r["distinct_triphones"] == big]
    if len({r["pdfs"] for r in sel}) > 1:
        _md(["fit (log-log)", "slope", "at 32k leaves"],
            [_fit_line("build CPU s vs leaves", [r["pdfs"] for r in sel], [r["build_cpu_s"] for r in sel], [32000], "s")])
    print("The tree's input is per-context statistics, so its cost does not grow with hours of audio.\n")


def _table_hclg(rows: list[dict]) -> None:
    print("### HCLG (30.5k CMUdict words, the 32k-leaf tree)\n")
    def n(r):
        return sum(int(v) for v in r["ngrams"].values())
    _md(["method", "n-grams", "wall s", "CPU s", "peak RSS MiB", "HCLG states", "HCLG arcs", "HCLG MB"],
        [[r["method"], f"{n(r):,}", r["total_s"], r["cpu_s"], r["max_rss_mb"], f"{r['HCLG']['states']:,}",
          f"{r['HCLG']['arcs']:,}", r["hclg_mb"]] for r in sorted(rows, key=lambda r: (n(r), r["method"]))])
    fits = []
    for method in sorted({r["method"] for r in rows}):
        sel = [r for r in rows if r["method"] == method]
        xs = [n(r) for r in sel]
        fits.append(_fit_line(f"{method}: CPU", xs, [r["cpu_s"] for r in sel], [4e6], "s"))
        fits.append(_fit_line(f"{method}: peak RSS", xs, [r["max_rss_mb"] / 1024 for r in sel], [4e6], "GiB"))
        fits.append(_fit_line(f"{method}: arcs", xs, [r["HCLG"]["arcs"] for r in sel], [4e6], ""))
    _md(["fit (log-log on n-grams)", "slope", "at 4M n-grams"], fits)
    for r in rows:
        if n(r) == max(n(x) for x in rows):
            print(f"Steps at {n(r):,} n-grams ({r['method']}; CPU s / peak RSS MiB so far): " + ", ".join(
                f"{k} {v['cpu_s']:.0f} / {v['max_rss_mb']:.0f}" for k, v in r["steps"].items()) + "\n")
    print("The graph depends on the LM and the tree, not on hours of audio.\n")


def _table_decode(rows: list[dict], cores: list[int]) -> None:
    print("### Decoding RTF through the graph (stand-in scores, one core per job)\n")
    out, proj = [], []
    for r in sorted(rows, key=lambda r: r["hclg_mb"]):
        rss = r["process"]["max_rss_mb"] / 1024
        job = r.get("rss_after_load_mb", r["process"]["max_rss_mb"]) / 1024 + 1.0  # + 1 GB: an utterance's scores, lattice
        out.append([r["hclg_mb"], r["load_s"], r["utterances"], r["audio_s"], r.get("1best", {}).get("rtf", "-"),
                    r.get("lattice", {}).get("rtf", "-"), f"{r.get('rss_after_load_mb', 0) / 1024:.1f}", f"{rss:.1f}"])
        rtf = max(v["rtf"] for k, v in r.items() if k in ("1best", "lattice"))
        jobs = max(1, int(MACHINE_GB // job))
        proj.append([r["hclg_mb"], f"{rtf * EVAL2000_HOURS:.2f}",
                     *(f"{rtf * EVAL2000_HOURS * 60 / min(c, jobs):.0f} min ({min(c, jobs)} jobs)" for c in cores)])
    _md(["HCLG MB", "graph load s", "utts", "audio s", "1-best RTF", "lattice RTF",
         "RSS after graph load GB", "process peak RSS GB (all utterances' scores held)"], out)
    _md(["HCLG MB", f"eval2000 ({EVAL2000_HOURS} h) CPU h", *(f"wall on {c} cores of {MACHINE_GB} GB" for c in cores)],
        proj)


def _table_loader(rows: list[dict]) -> None:
    print("### Training data loader: random chunks from a float16 memmap (one reader process)\n")
    setup = [r for r in rows if r["bench"] == "loader_setup"]
    for s in setup:
        print(f"{s['frames']:,} frames x {s['dim']} ({s['file_gb']} GB), {s['chunks']:,} chunks, "
              f"{s['batches_per_epoch']:,} batches an epoch; setup {s['setup_s']} s, file written in {s['make_s']} s.\n")
    _md(["pass", "batches/s", "output frames/s", "anonymous RSS MB", "mapped file MB",
         *(f"epoch of {h} h at this rate" for h in SWB_HOURS)],
        [[r["pass"], r["batches_per_s"], f"{r['out_frames_per_s']:,}", r.get("rssanon_mb", "-"),
          r.get("rssfile_mb", "-"), *(f"{SWB_FRAMES[h] / r['out_frames_per_s'] / 3600:.2f} h" for h in SWB_HOURS)]
         for r in rows if r["bench"] == "loader"])


def table(a) -> None:
    """docs/scale.md's tables from results.jsonl files: one per stage, with log-log fits and the
    extrapolation to Switchboard 300 h / 2000 h on `--cores` cores."""
    rows = [json.loads(l) for p in a.files for l in Path(p).read_text().splitlines() if l.strip()]
    by = lambda *kinds: [r for r in rows if r["bench"] in kinds]  # noqa: E731
    if by("tree"):
        _table_tree(by("tree"))
    if by("graph"):
        _table_hclg(by("graph"))
    if by("decode"):
        _table_decode(by("decode"), a.cores)
    if by("gmm"):
        _table_gmm(by("gmm"), a.cores)
    if by("loader"):
        _table_loader(by("loader", "loader_setup"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("gmm", help="GMM training + alignment per hour of audio")
    a.add_argument("--data", default=str(REPO / "egs/synth/data"), help="recipe data dir after stage 2")
    a.add_argument("--train-set", default="train_sp")
    a.add_argument("--conf", default=str(REPO / "egs/synth/conf/gmm.yaml"))
    a.add_argument("--hours", type=float, nargs="+", default=[0.3, 0.6, 1.2, 2.5])
    a.add_argument("--nj", type=int, nargs="+", default=[1, 2])
    a.add_argument("--out", required=True)
    a = sub.add_parser("decode", help="decoding RTF through a big HCLG on stand-in scores")
    a.add_argument("--graph", required=True, help="graph dir (HCLG.fst, words.txt, final.mdl, tree)")
    a.add_argument("--lang", required=True, help="its lang dir (phones.txt)")
    a.add_argument("--lexicon", required=True, help="lexicon.txt of its dict dir")
    a.add_argument("--config", default=str(REPO / "egs/swbd/conf/decode.yaml"))
    a.add_argument("--utts", type=int, default=20)
    a.add_argument("--margin", type=float, default=20.0, help="stand-in: logit bonus of the reference pdf")
    a.add_argument("--noise", type=float, default=5.0, help="stand-in: logit noise std (5 and 20: ~48%% frame accuracy)")
    a.add_argument("--searchers", nargs="+", default=["1best", "lattice"], help="1best (max-active) and/or lattice")
    a.add_argument("--out", required=True)
    a = sub.add_parser("_decode1")
    for name in ("--graph", "--config", "--out"):
        a.add_argument(name, required=True)
    a.add_argument("--utts", type=int, default=20)
    a.add_argument("--margin", type=float, default=20.0)
    a.add_argument("--noise", type=float, default=5.0)
    a.add_argument("--searchers", nargs="+", default=["1best", "lattice"])
    a.add_argument("--lang", required=True)
    a.add_argument("--lexicon", required=True)
    for name, target in FORWARDED.items():
        a = sub.add_parser(name, help=f"bench/{target} (its options after --)")
        a.add_argument("--out", required=True)
        a.add_argument("args", nargs=argparse.REMAINDER)
    a = sub.add_parser("table", help="markdown tables + log-log slopes from results.jsonl files")
    a.add_argument("files", nargs="+")
    a.add_argument("--cores", type=int, nargs="+", default=[2, 32], help="cores of the projected machine(s)")
    args = p.parse_args()
    {"gmm": bench_gmm, "decode": bench_decode, "_decode1": decode_one, "table": table,
     **{k: forward for k in FORWARDED}}[args.cmd](args)


if __name__ == "__main__":
    main()
