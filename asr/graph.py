"""n-gram LM (ARPA) -> G.fst, and the decoding graph HCLG.fst (Kaldi's utils/mkgraph.sh).

- `train_lm`: Kneser-Ney ARPA LM from a Kaldi `text` file with `kaldingram` (SRILM-style,
  maintained; we do not write our own).
- `make_g`: ARPA -> `G.fst` with kaldilm's arpa2fst (`#0` on back-off arcs, `<s>`/`</s>` removed).
- `make_hclg`: in mkgraph.sh's order: L_disambig o G -> determinize (log semiring) -> minimize
  -> C (compose_context with the tree's N/P) -> H (`get_h_transducer`) o CLG -> determinize
  -> disambiguation tids to epsilon (fstrmsymbols) -> local epsilon removal (fstrmepslocal)
  -> minimize -> self loops (`self_loop_scale` 0.1); the two Kaldi tools are `asr.fst_arrays`.
  (mkgraph.sh's fstpushspecial on LG is not done: kaldifst has no binding for it.)
  Writes `HCLG.fst` (OpenFst binary, as Kaldi reads it), `words.txt`, `phones.txt`, `final.mdl`,
  `tree`, `graph.json` (sizes, times, and the size + sha256 of words.txt and the size of
  HCLG.fst, which `load_graph` checks so that a graph is never decoded with another words table).
- `load_graph(graph_dir) -> Graph` for decoders (HCLG, word table, transition model, ...).

    python -m asr.graph lm --text data/train/text --order 3 --out data/lang_test/lm.arpa
    python -m asr.graph g --lang data/lang --arpa data/lang_test/lm.arpa --out data/lang_test
    python -m asr.graph hclg --lang data/lang_test --model-dir exp/tri2 --out exp/tri2/graph
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import kaldi_hmm_gmm as khg  # import the kaldi modules before kaldilm (see the notes)
import kaldifst

from asr.config import load_config
from asr.hmm_io import load_model, read_tree
from asr.lang import read_symbol_table
from asr.utils import atomic_path, atomic_write_text, read_kaldi_map, setup_logging

log = logging.getLogger(__name__)


def train_lm(text: str | Path, out_arpa: str | Path, order: int = 3, words: set[str] | None = None,
             oov: str = "<unk>") -> None:
    """ARPA LM of `order` from a Kaldi `text` file (utt-id then words); words not in `words`
    (if given) become `oov`."""
    from kaldingram import train as kn

    sents = []
    for line in read_kaldi_map(text, allow_empty_value=True).values():
        toks = line.split()
        if words is not None:
            toks = [t if t in words else oov for t in toks]
        if toks:
            sents.append(" ".join(toks))
    if not sents:
        raise ValueError(f"{text}: no sentences to train a language model")
    out_arpa = Path(out_arpa)
    with atomic_path(out_arpa.with_suffix(".txt")) as corpus, atomic_path(out_arpa) as tmp:
        corpus.write_text("\n".join(sents) + "\n")
        kn.main(["--ngram-order", str(order), "--text", str(corpus), "--lm", str(tmp)])
    log.info("LM %s: order %d from %d sentences", out_arpa, order, len(sents))


def make_g(lang_dir: str | Path, arpa: str | Path, out_dir: str | Path) -> kaldifst.StdVectorFst:
    """`out_dir/G.fst` from an ARPA file over `lang_dir/words.txt`; copies the lang dir files."""
    import kaldilm

    lang_dir, out_dir = Path(lang_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if lang_dir.resolve() != out_dir.resolve():
        for item in lang_dir.iterdir():
            dst = out_dir / item.name
            if item.is_dir():
                shutil.copytree(item, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(item, dst)
    t0 = time.time()
    with atomic_path(out_dir / "G.fst") as tmp:
        kaldilm.arpa2fst(input_arpa=str(arpa), output_fst=str(tmp), disambig_symbol="#0",
                         read_symbol_table=str(lang_dir / "words.txt"), ilabel_sort=True)
    G = kaldifst.StdVectorFst.read(str(out_dir / "G.fst"))
    log.info("G.fst: %d states, %d arcs from %s in %.1fs", G.num_states, _num_arcs(G), arpa, time.time() - t0)
    return G


def _num_arcs(fst: kaldifst.StdVectorFst) -> int:
    return sum(fst.num_arcs(s) for s in range(fst.num_states))


def _disambig_phone_ids(lang_dir: Path) -> list[int]:
    return [int(x) for x in (lang_dir / "phones" / "disambig.int").read_text().split()]


def _remove_ilabels(fst: kaldifst.StdVectorFst, labels: list[int], max_label: int) -> kaldifst.StdVectorFst:
    """Input labels in `labels` -> epsilon (Kaldi's fstrmsymbols), in C++: compose with a
    one-state transducer that copies labels 1..`max_label` and maps `labels` to epsilon (the
    binding has no relabelling or mutable arc iterator)."""
    drop = set(labels)
    R = kaldifst.StdVectorFst()
    s = R.add_state()
    R.start = s
    R.set_final(s, 0.0)
    for lab in range(1, max(max_label, max(labels, default=0)) + 1):
        R.add_arc(s, kaldifst.StdArc(0 if lab in drop else lab, lab, 0.0, s))
    kaldifst.arcsort(R, sort_type="olabel")
    return kaldifst.compose(R, fst)


def _max_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


class _Steps:
    """Seconds and peak RSS so far after each step of a graph build, logged and kept in `info`."""

    def __init__(self, info: dict):
        self.info, self.t, self.cpu = info, time.time(), time.process_time()
        info["steps"] = {}

    def __call__(self, name: str) -> None:
        now, cpu = time.time(), time.process_time()
        self.info["steps"][name] = {"s": round(now - self.t, 2), "cpu_s": round(cpu - self.cpu, 2),
                                    "max_rss_mb": _max_rss_mb()}
        log.info("HCLG step %s: %.1fs (CPU %.1fs), peak RSS %.0f MB", name, now - self.t, cpu - self.cpu,
                 _max_rss_mb())
        self.t, self.cpu = now, cpu


def make_hclg(lang_dir: str | Path, model_dir: str | Path, out_dir: str | Path,
              self_loop_scale: float = 0.1, transition_scale: float = 1.0, method: str = "kaldi") -> dict:
    """HCLG.fst for the model in `model_dir` (`final.mdl`, `tree`) and `lang_dir/G.fst`.

    `method="kaldi"` (default) follows utils/mkgraph.sh: LG = min(det_log(L_disambig o G)),
    CLG, HCLGa = min(rmepslocal(rmsymbols(det_log(H o CLG)))), then self loops; rmsymbols and
    rmepslocal are `asr.fst_arrays`. `method="full"` is the earlier build (disambiguation tids
    removed by a composition, then full epsilon removal): kept for the benchmark."""
    if method not in ("kaldi", "full"):
        raise ValueError(f"method {method!r}: expected 'kaldi' or 'full'")
    from asr import fst_arrays

    lang_dir, model_dir, out_dir = Path(lang_dir), Path(model_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tm, _ = load_model(model_dir / "final.mdl")
    tree = read_tree(model_dir / "tree")
    disambig = _disambig_phone_ids(lang_dir)
    info: dict = {"method": method}
    step = _Steps(info)
    t_all = time.time()

    t0 = time.time()
    L = kaldifst.StdVectorFst.read(str(lang_dir / "L_disambig.fst"))
    G = kaldifst.StdVectorFst.read(str(lang_dir / "G.fst"))
    kaldifst.arcsort(L, sort_type="olabel")
    step("read_L_G")
    LG = kaldifst.compose(L, G)
    del L, G
    step("LG_compose")
    kaldifst.determinize_star(LG, use_log=True)
    step("LG_determinize")
    kaldifst.minimize_encoded(LG)
    kaldifst.arcsort(LG, sort_type="ilabel")
    step("LG_minimize")
    info["LG"] = {"states": LG.num_states, "arcs": _num_arcs(LG), "s": round(time.time() - t0, 2)}

    t0 = time.time()
    CLG, ilabels = kaldifst.compose_context(disambig, tree.context_width, tree.central_position, LG)
    del LG
    kaldifst.arcsort(CLG, sort_type="ilabel")
    step("CLG")
    info["CLG"] = {"states": CLG.num_states, "arcs": _num_arcs(CLG), "ilabels": len(ilabels),
                   "s": round(time.time() - t0, 2)}

    t0 = time.time()
    H, disambig_tids = khg.get_h_transducer(ilabels, tree, tm, khg.HTransducerConfig(transition_scale=transition_scale))
    kaldifst.arcsort(H, sort_type="olabel")
    step("H")
    HCLG = kaldifst.compose(H, CLG)
    del H, CLG
    step("HCLG_compose")
    kaldifst.determinize_star(HCLG, use_log=True)
    step("HCLG_determinize")
    t1 = time.time()
    if method == "kaldi":
        # one trip into numpy and back for both (the VectorFst is dropped meanwhile)
        arrays = fst_arrays.to_arrays(HCLG)
        del HCLG
        step("HCLG_to_arrays")
        fst_arrays.remove_symbols_arrays(arrays, disambig_tids)
        step("HCLG_rmsymbols")
        info["rmepslocal"] = {}
        HCLG = fst_arrays.remove_eps_local_to_fst(arrays, info["rmepslocal"])
        del arrays
        step("HCLG_rmepslocal")
    else:
        HCLG = _remove_ilabels(HCLG, disambig_tids, tm.num_transition_ids)
        step("HCLG_rmsymbols")
        kaldifst.rmepsilon(HCLG)
        step("HCLG_rmepsilon")
    kaldifst.minimize_encoded(HCLG)
    step("HCLG_minimize")
    t2 = time.time()
    HCLG = khg.add_self_loops(self_loop_scale=self_loop_scale, disambig_syms=[], reorder=True,
                              trans_model=tm, ifst=HCLG)
    kaldifst.arcsort(HCLG, sort_type="ilabel")
    step("HCLG_self_loops")
    info["HCLG"] = {"states": HCLG.num_states, "arcs": _num_arcs(HCLG), "s": round(time.time() - t0, 2),
                    "compose_det_s": round(t1 - t0, 2), "rmsymbols_min_s": round(t2 - t1, 2)}
    info["total_s"] = round(time.time() - t_all, 2)
    info["cpu_s"] = round(sum(v["cpu_s"] for v in info["steps"].values()), 2)
    info["max_rss_mb"] = _max_rss_mb()

    with atomic_path(out_dir / "HCLG.fst") as tmp:
        HCLG.write(str(tmp))
    for name in ("words.txt", "phones.txt"):
        shutil.copy2(lang_dir / name, out_dir / name)
    info["words_txt"] = words_table_id(out_dir / "words.txt")  # checked by load_graph
    info["hclg_bytes"] = (out_dir / "HCLG.fst").stat().st_size
    (out_dir / "phones").mkdir(exist_ok=True)
    shutil.copy2(lang_dir / "phones" / "disambig.int", out_dir / "phones" / "disambig.int")
    for name in ("final.mdl", "tree", "num_pdfs"):
        if (model_dir / name).is_file():
            shutil.copy2(model_dir / name, out_dir / name)
    atomic_write_text(out_dir / "graph.json", json.dumps(info, indent=1) + "\n")
    log.info("HCLG %s: %s", out_dir, info)
    return info


def words_table_id(path: str | Path) -> dict:
    """{"size": bytes, "sha256": hex} of a words.txt, recorded in graph.json beside HCLG.fst."""
    import hashlib

    data = Path(path).read_bytes()
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def check_words_table(graph_dir: str | Path) -> None:
    """Refuse a graph dir whose words.txt is not the one HCLG.fst was built with (size and
    sha256 recorded in graph.json). Graph dirs from before the record only get a warning."""
    graph_dir = Path(graph_dir)
    meta = graph_dir / "graph.json"
    want = json.loads(meta.read_text()).get("words_txt") if meta.is_file() else None
    if not want:
        log.warning("%s: no words.txt checksum recorded (graph built by an older version); "
                    "words.txt is not checked against HCLG.fst", graph_dir)
        return
    info = json.loads(meta.read_text())
    size = (graph_dir / "HCLG.fst").stat().st_size
    if info.get("hclg_bytes") not in (None, size):
        raise ValueError(f"{graph_dir / 'HCLG.fst'} ({size} bytes) is not the graph {meta} "
                         f"describes ({info['hclg_bytes']} bytes); rebuild the graph")
    have = words_table_id(graph_dir / "words.txt")
    if have != want:
        raise ValueError(f"{graph_dir / 'words.txt'} is not the words table HCLG.fst was built "
                         f"with: {have['size']} bytes, sha256 {have['sha256'][:12]}..., but "
                         f"{meta} records {want['size']} bytes, sha256 {want['sha256'][:12]}...; "
                         "rebuild the graph or restore its words.txt")


@dataclass
class Graph:
    """A decoding graph dir loaded for a decoder."""

    hclg: kaldifst.StdVectorFst
    words: dict[int, str]             # word id -> word
    transition_model: khg.TransitionModel
    tid2pdf: list[int]                # transition id -> pdf id (index 0 unused)
    num_pdfs: int


def load_graph(graph_dir: str | Path) -> Graph:
    """Read `HCLG.fst`, `words.txt` and `final.mdl` from a graph dir written by `make_hclg`."""
    graph_dir = Path(graph_dir)
    for name in ("HCLG.fst", "words.txt", "final.mdl"):
        if not (graph_dir / name).is_file():
            raise FileNotFoundError(f"{graph_dir / name}: missing (run `python -m asr.graph hclg`)")
    check_words_table(graph_dir)
    hclg = kaldifst.StdVectorFst.read(str(graph_dir / "HCLG.fst"))
    words = {i: w for w, i in read_symbol_table(graph_dir / "words.txt").items()}
    tm, _ = load_model(graph_dir / "final.mdl")
    return Graph(hclg, words, tm, list(tm.transition_id_to_pdf_array()), tm.num_pdfs)


@dataclass
class GraphConfig:
    """graph.yaml: the LM (`lm_order`, or the user's `arpa`), HCLG per GMM model, and the GMM
    decode check that `asr.gmm decode-check` runs (`gmm_decode`, `acoustic_scales`)."""

    lm_order: int = 3
    arpa: str = ""
    self_loop_scale: float = 0.1
    gmm_models: list[str] = field(default_factory=lambda: ["tri2"])
    gmm_decode: bool = False
    acoustic_scales: list[float] = field(default_factory=lambda: [0.1])

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> "GraphConfig":
        return load_config(cls, path)


def build_all(config: str | Path, lang_dir: str | Path, lang_test: str | Path, exp: str | Path,
              text: str | Path | None = None, force: bool = False, models: list[str] | None = None) -> dict:
    """Stage 4 in one call: LM (from `text`, or the config's `arpa`), G.fst, then HCLG for each
    of `models` (the recipe passes the last GMM round, whose tree the acoustic models use) and
    each model in `gmm_models` (`exp/<model>/graph`). Finished outputs are skipped unless `force`.
    (The GMM decode check is `asr.gmm.decode.decode_check`, run by the recipe after this.)"""
    cfg = GraphConfig.from_yaml(config)
    lang_dir, lang_test, exp = Path(lang_dir), Path(lang_test), Path(exp)
    out: dict = {}
    arpa = cfg.arpa
    if not arpa:
        if text is None:
            raise ValueError(f"{config}: no `arpa` given and no --text to train an LM from")
        arpa = lang_test / "lm.arpa"
        if force or not arpa.is_file():
            t0 = time.time()
            train_lm(text, arpa, int(cfg.lm_order), set(read_symbol_table(lang_dir / "words.txt")))
            out["lm_s"] = round(time.time() - t0, 2)
    elif not Path(arpa).is_file():
        raise FileNotFoundError(f"{config}: arpa file {arpa} does not exist")
    if force or not (lang_test / "G.fst").is_file():
        t0 = time.time()
        make_g(lang_dir, arpa, lang_test)
        out["G_s"] = round(time.time() - t0, 2)
    for model in dict.fromkeys([*(models or []), *cfg.gmm_models]):
        gdir = exp / model / "graph"
        if force or not (gdir / "HCLG.fst").is_file():
            out[model] = make_hclg(lang_test, exp / model, gdir, self_loop_scale=float(cfg.self_loop_scale))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("lm", help="train an ARPA n-gram LM with kaldingram")
    a.add_argument("--text", required=True, help="Kaldi text file (utt-id words...)")
    a.add_argument("--out", required=True, help="output ARPA file")
    a.add_argument("--order", type=int, default=3)
    a.add_argument("--words", help="words.txt: map words outside it to --oov")
    a.add_argument("--oov", default="<unk>")
    a = sub.add_parser("g", help="G.fst from an ARPA file")
    a.add_argument("--lang", required=True, help="lang dir (words.txt, L_disambig.fst, ...)")
    a.add_argument("--arpa", required=True)
    a.add_argument("--out", required=True, help="output lang dir (lang_test): a copy of --lang plus G.fst")
    a = sub.add_parser("hclg", help="HCLG.fst for a model dir")
    a.add_argument("--lang", required=True, help="lang dir with G.fst")
    a.add_argument("--model-dir", required=True, help="dir with final.mdl and tree")
    a.add_argument("--out", required=True, help="graph dir")
    a.add_argument("--self-loop-scale", type=float, default=0.1)
    a = sub.add_parser("build", help="stage 4: LM, G.fst, HCLG per GMM model")
    a.add_argument("--config", required=True, help="graph.yaml (lm_order | arpa, gmm_models)")
    a.add_argument("--lang", required=True, help="lang dir (data/lang)")
    a.add_argument("--lang-test", required=True, help="output lang dir with G.fst (data/lang_test)")
    a.add_argument("--exp", required=True, help="experiment dir with the GMM model dirs")
    a.add_argument("--text", help="training transcripts for the LM (Kaldi text)")
    a.add_argument("--model", action="append", default=[],
                   help="also build exp/<MODEL>/graph (repeatable; the recipe passes its last GMM round)")
    a.add_argument("--force", action="store_true")
    args = p.parse_args(argv)
    log_dir = args.exp if args.cmd == "build" else Path(args.out).parent if args.cmd == "lm" else args.out
    setup_logging(log_file=Path(log_dir) / "log" / f"graph_{args.cmd}.log")
    if args.cmd == "lm":
        words = set(read_symbol_table(args.words)) if args.words else None
        train_lm(args.text, args.out, args.order, words, args.oov)
    elif args.cmd == "g":
        make_g(args.lang, args.arpa, args.out)
    elif args.cmd == "hclg":
        make_hclg(args.lang, args.model_dir, args.out, self_loop_scale=args.self_loop_scale)
    else:
        res = build_all(args.config, args.lang, args.lang_test, args.exp, args.text, args.force, args.model)
        log.info("stage summary: %s", json.dumps(res))


if __name__ == "__main__":
    main()
