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
