"""LM, G.fst and HCLG.fst: real graphs built from a toy system, decoded with Kaldi's decoder."""

from __future__ import annotations

import json

import kaldifst
import pytest
import yaml

from test_gmm import make_toy_corpus


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    """Toy corpus, lang, mono + one triphone round, LM, G and HCLG for both (via `build_all`)."""
    from asr.gmm import GmmConfig, train_all
    from asr.graph import build_all
    from asr.lang import prepare_lang

    root = tmp_path_factory.mktemp("graph")
    paths = make_toy_corpus(root, n_train=40, n_test=6, seed=1)
    prepare_lang(paths["dict_dir"], root / "lang")
    cfg = GmmConfig.from_yaml(None)
    cfg.nj = 1
    cfg.mono.num_iters, cfg.mono.num_gauss, cfg.mono.realign_iters = 6, 150, [1, 2, 3, 4]
    cfg.tri = cfg.tri[:1]
    cfg.tri[0].num_iters, cfg.tri[0].num_leaves, cfg.tri[0].min_leaf_count = 3, 90, 30
    cfg.tri[0].num_gauss, cfg.tri[0].realign_iters = 250, [1]
    train_all(paths["train"], paths["train"], root / "lang", root / "exp", cfg)
    (root / "graph.yaml").write_text(yaml.safe_dump({"lm_order": 2, "gmm_models": ["mono", "tri1"],
                                                     "gmm_decode": True}))
    info = build_all(root / "graph.yaml", root / "lang", root / "lang_test", root / "exp",
                     text=paths["train"] / "text")
    assert not (root / "exp" / "tri1" / "decode_test").exists()   # build_all builds graphs only
    return {**paths, "root": root, "info": info}


def test_lm_and_g(system):
    root = system["root"]
    arpa = (root / "lang_test/lm.arpa").read_text()
    assert "\\data\\" in arpa and "ngram 2=" in arpa and "\\2-grams:" in arpa
    G = kaldifst.StdVectorFst.read(str(root / "lang_test/G.fst"))
    assert G.num_states > 2
    words = dict(line.split() for line in (root / "lang_test/words.txt").read_text().splitlines())
    olabels = {a.olabel for s in range(G.num_states) for a in kaldifst.ArcIterator(G, s)}
    assert int(words["seven"]) in olabels and int(words["#0"]) not in olabels  # #0 only on the input side


@pytest.mark.parametrize("model", ["mono", "tri1"])
def test_hclg_files_and_sizes(system, model):
    g = system["root"] / "exp" / model / "graph"
    for name in ("HCLG.fst", "words.txt", "phones.txt", "final.mdl", "tree", "graph.json"):
        assert (g / name).is_file(), name
    info = json.loads((g / "graph.json").read_text())
    assert info["HCLG"]["states"] > info["LG"]["states"] > 0
    if model == "tri1":
        assert info["CLG"]["ilabels"] > system["info"]["mono"]["CLG"]["ilabels"]  # triphone contexts


@pytest.mark.parametrize("model", ["mono", "tri1"])
def test_hclg_decodes_training_utterances(system, model):
    from asr.gmm import decode, load_features, read_text
    from asr.graph import load_graph

    graph = load_graph(system["root"] / "exp" / model / "graph")
    assert graph.num_pdfs == graph.transition_model.num_pdfs and len(graph.tid2pdf) > graph.num_pdfs
    refs = read_text(system["train"])
    utts = sorted(refs)[:8]
    feats = load_features(system["train"], utts)
    hyps = decode(system["root"] / "exp" / model / "graph", feats)
    exact = sum(hyps[u] == refs[u] for u in utts)
    assert exact >= 6, {u: (refs[u], hyps[u]) for u in utts}


def test_build_makes_the_graph_of_the_model_it_is_given(system, tmp_path):
    """The recipe's `--model <last round>` builds that model's HCLG even when graph.yaml's
    `gmm_models` does not list it (an SAT ladder decodes through exp/tri4/graph)."""
    import shutil

    from asr.graph import main

    exp = tmp_path / "exp"
    (exp / "tri1").mkdir(parents=True)
    for name in ("final.mdl", "tree"):
        shutil.copy(system["root"] / "exp" / "tri1" / name, exp / "tri1" / name)
    shutil.copytree(system["root"] / "lang_test", tmp_path / "lang_test")
    (tmp_path / "graph.yaml").write_text(yaml.safe_dump({"lm_order": 2, "gmm_models": []}))
    main(["build", "--config", str(tmp_path / "graph.yaml"), "--lang", str(system["root"] / "lang"),
          "--lang-test", str(tmp_path / "lang_test"), "--exp", str(exp), "--text", str(system["train"] / "text"), "--model", "tri1"])
    built = (exp / "tri1" / "graph" / "HCLG.fst").read_bytes()
    assert built == (system["root"] / "exp" / "tri1" / "graph" / "HCLG.fst").read_bytes()


def test_words_table_checked_against_hclg(system, tmp_path):
    """graph.json records words.txt's size and sha256 (and HCLG.fst's size): a graph dir whose
    words.txt was swapped for another table is refused where decoders load it."""
    import shutil

    from asr.graph import load_graph

    src = system["root"] / "exp" / "mono" / "graph"
    info = json.loads((src / "graph.json").read_text())
    assert info["words_txt"]["size"] == (src / "words.txt").stat().st_size
    g = tmp_path / "graph"
    shutil.copytree(src, g)
    load_graph(g)  # the copy as built loads
    lines = (g / "words.txt").read_text().splitlines()
    (g / "words.txt").write_text("\n".join([lines[0], lines[2], lines[1]] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match="words.txt is not the words table HCLG.fst was built with"):
        load_graph(g)
    shutil.copy2(src / "words.txt", g / "words.txt")
    (g / "HCLG.fst").write_bytes((g / "HCLG.fst").read_bytes() + b"\0")
    with pytest.raises(ValueError, match="HCLG.fst .* is not the graph"):
        load_graph(g)


def test_gmm_decode_check_is_scored_by_asr_score(system):
    """`asr.gmm decode-check` (the recipe's stage-4 check) writes wer.json from asr.score's scoring."""
    from asr.gmm import decode_check

    root = system["root"]
    (root / "check.yaml").write_text(yaml.safe_dump({"lm_order": 2, "gmm_models": ["tri1"], "gmm_decode": True}))
    res = decode_check(root / "check.yaml", root / "exp", system["test"])
    ddir = root / "exp" / "tri1" / "decode_test"
    wer = json.loads((ddir / "wer.json").read_text())
    scored = json.loads((ddir / "scoring" / "wer.json").read_text())
    assert res["tri1_test"]["wer"] == wer["wer"] == scored["wer"]
    assert wer["errors"] == scored["err"] and wer["words"] == scored["ref_words"] > 0
    assert wer["utts"] == len((system["test"] / "text").read_text().splitlines())
    assert wer["wer"] < 50.0   # a working system on its own speakers' digits
    assert (ddir / "scoring" / "best_wer").read_text().startswith(f"%WER {wer['wer']:.2f}")


# -- asr.fst_arrays (Kaldi's fstrmsymbols and fstrmepslocal) and the two HCLG builds --

def _fst(num_states, arcs, finals, start=0):
    f = kaldifst.StdVectorFst()
    for _ in range(num_states):
        f.add_state()
    f.start = start
    for s, w in finals.items():
        f.set_final(s, w)
    for s, i, o, w, t in arcs:
        f.add_arc(s, kaldifst.StdArc(i, o, w, t))
    return f


def _arcs(f):
    return [(s, a.ilabel, a.olabel, a.nextstate) for s in range(f.num_states) for a in kaldifst.ArcIterator(f, s)]


def _language(f):
    """{(input labels, output labels): min weight} over all paths of an acyclic FST (epsilons dropped)."""
    out = {}

    def walk(s, ins, outs, w):
        fw = f.final(s).value
        if fw != float("inf"):
            key = (ins, outs)
            out[key] = min(out.get(key, float("inf")), w + fw)
        for a in kaldifst.ArcIterator(f, s):
            walk(a.nextstate, ins + ((a.ilabel,) if a.ilabel else ()), outs + ((a.olabel,) if a.olabel else ()),
                 w + a.weight.value)

    if f.start >= 0:
        walk(f.start, (), (), 0.0)
    return out


def _same_language(f, g):
    lf, lg = _language(f), _language(g)
    assert lf.keys() == lg.keys()
    for k in lf:
        assert lf[k] == pytest.approx(lg[k], abs=1e-4), k


def _random_dag(rng, n=9, p_eps=0.4, p_oeps=0.6):
    arcs = []
    for s in range(n - 1):
        for _ in range(int(rng.integers(1, 3))):
            t = int(rng.integers(s + 1, n))
            i = 0 if rng.random() < p_eps else int(rng.integers(1, 4))
            o = 0 if rng.random() < p_oeps else int(rng.integers(1, 4))
            arcs.append((s, i, o, round(float(rng.uniform(0, 2)), 3), t))
    finals = {n - 1: 0.5}
    if rng.random() < 0.5:
        finals[int(rng.integers(1, n - 1))] = round(float(rng.uniform(0, 1)), 3)
    return _fst(n, arcs, finals)


def test_fst_arrays_round_trip_is_byte_identical(system, tmp_path):
    from asr.fst_arrays import from_arrays, to_arrays

    hclg = kaldifst.StdVectorFst.read(str(system["root"] / "exp" / "tri1" / "graph" / "HCLG.fst"))
    small = _fst(3, [(0, 1, 2, 0.5, 1), (0, 0, 0, 0.25, 2), (1, 3, 0, 1.0, 2)], {2: 1.5})
    for f in (small, hclg):
        a = to_arrays(f)
        assert a.num_states == f.num_states and a.num_arcs == sum(f.num_arcs(s) for s in range(f.num_states))
        f.write(str(tmp_path / "a.fst"))
        from_arrays(a).write(str(tmp_path / "b.fst"))
        assert (tmp_path / "a.fst").read_bytes() == (tmp_path / "b.fst").read_bytes()
    a = to_arrays(small)
    assert a.ilabel.tolist() == [1, 0, 3] and a.nextstate.tolist() == [1, 2, 2]
    assert a.offsets.tolist() == [0, 2, 3, 3] and a.final[2] == 1.5 and a.final[0] == float("inf")


def test_remove_eps_local_collapses_a_chain():
    from asr.fst_arrays import remove_eps_local

    f = _fst(6, [(0, 1, 0, 0.1, 1), (1, 0, 0, 0.2, 2), (2, 0, 7, 0.3, 3), (3, 0, 0, 0.4, 4), (4, 2, 0, 0.5, 5)],
             {5: 0.5})
    g = remove_eps_local(f)
    assert [(i, o) for _, i, o, _ in _arcs(g)] == [(1, 7), (2, 0)]   # one arc per input label
    _same_language(f, g)


def test_remove_eps_local_keeps_an_epsilon_that_is_not_local():
    """1 -eps-> 3: state 3 has two ways in and two ways out, state 1 two of each too."""
    from asr.fst_arrays import remove_eps_local

    f = _fst(5, [(0, 1, 1, 0.1, 1), (0, 2, 2, 0.2, 1), (0, 6, 6, 0.3, 3), (1, 0, 0, 0.4, 3), (1, 5, 5, 0.5, 4),
                 (3, 3, 3, 0.6, 4), (3, 4, 4, 0.7, 4)], {4: 0.0})
    g = remove_eps_local(f)
    assert sorted(a[1:3] for a in _arcs(g)) == sorted(a[1:3] for a in _arcs(f))   # nothing merged
    assert g.num_states == 4 and sum(1 for a in _arcs(g) if a[1] == 0) == 1      # (state 2 was unused)
    _same_language(f, g)


def test_remove_eps_local_keeps_the_weighted_language_of_random_fsts():
    import numpy as np

    from asr.fst_arrays import remove_eps_local

    rng = np.random.default_rng(3)
    removed = 0
    for _ in range(60):
        f = _random_dag(rng)
        g = remove_eps_local(f)
        _same_language(f, g)
        n_f, n_g = len(_arcs(f)), len(_arcs(g))
        assert n_g <= n_f and g.num_states <= f.num_states   # never grows
        removed += sum(1 for a in _arcs(f) if a[1] == 0) - sum(1 for a in _arcs(g) if a[1] == 0)
    assert removed > 30


def test_remove_symbols_equals_the_compose_based_removal():
    import numpy as np

    from asr.fst_arrays import remove_symbols, to_arrays
    from asr.graph import _remove_ilabels

    rng = np.random.default_rng(5)
    for _ in range(20):
        f = _random_dag(rng, p_eps=0.1)
        new, old = remove_symbols(f, [2, 3]), _remove_ilabels(f, [2, 3], 3)
        a, b = to_arrays(f), to_arrays(new)
        assert b.ilabel.tolist() == [0 if i in (2, 3) else i for i in a.ilabel.tolist()]
        assert b.olabel.tolist() == a.olabel.tolist() and b.nextstate.tolist() == a.nextstate.tolist()
        _same_language(new, old)


def test_kaldi_order_hclg_decodes_as_the_full_build(system):
    """The default (mkgraph.sh order: rmsymbols + rmepslocal) and the earlier build (compose +
    full rmepsilon) decode the same words, and a decoded path costs the same in both graphs."""
    import kaldi_hmm_gmm as khg

    from asr.gmm import load_features, read_text
    from asr.graph import make_hclg
    from asr.hmm_io import load_model

    root = system["root"]
    new_dir, old_dir = root / "exp" / "tri1" / "graph", root / "exp" / "tri1" / "graph_full"
    info = make_hclg(root / "lang_test", root / "exp" / "tri1", old_dir, method="full")
    assert info["method"] == "full" and json.loads((new_dir / "graph.json").read_text())["method"] == "kaldi"
    new_info = json.loads((new_dir / "graph.json").read_text())
    assert "HCLG_rmepslocal" in new_info["steps"] and "HCLG_rmepsilon" in info["steps"]
    eps = new_info["rmepslocal"]
    assert eps["ieps_before"] > eps["ieps_after"] and eps["arcs_after"] < eps["arcs_before"]  # it removed some
    graphs = {d: kaldifst.StdVectorFst.read(str(d / "HCLG.fst")) for d in (new_dir, old_dir)}
    tm, am = load_model(root / "exp" / "tri1" / "final.mdl")
    utts = sorted(read_text(system["train"]))[:6]
    feats = load_features(system["train"], utts)
    cfg = khg.LatticeFasterDecoderConfig(beam=13.0, max_active=7000, lattice_beam=6.0)
    for utt in utts:
        res = {}
        for d, g in graphs.items():
            dec = khg.DecodableAmDiagGmmScaled(am, tm, feats[utt], 0.1)
            ok, ali, words, _ = khg.decode_utterance_lattice_faster(khg.LatticeFasterDecoder(g, cfg), dec, tm,
                                                                     utt, True)
            assert ok
            res[d] = (list(ali), list(words))
        assert res[new_dir][1] == res[old_dir][1], utt
        ali, words = res[new_dir]
        costs = []
        for g in graphs.values():
            path = kaldifst.shortest_path(kaldifst.compose(kaldifst.make_linear_acceptor(ali), g))
            ok, _, osyms, w = kaldifst.get_linear_symbol_sequence(path)
            assert ok and list(osyms) == words
            costs.append(w.value)
        assert costs[0] == pytest.approx(costs[1], abs=1e-3), utt
