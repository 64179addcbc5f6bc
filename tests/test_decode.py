"""Decoding: chunked likelihoods, HCLG search on a tiny real graph, bad-input errors."""

from __future__ import annotations

import math
from pathlib import Path

import kaldi_hmm_gmm as khg  # before kaldilm (imported by asr.graph.make_g)
import numpy as np
import pytest
import torch

from asr import decode as D
from asr.gmm import save_model, write_tree
from asr.graph import load_graph, make_g, make_hclg
from asr.lang import prepare_lang
from asr.models import create_model

LEXICON = {"yes": ["Y", "EH", "S"], "no": ["N", "OW"], "maybe": ["M", "EY", "B", "IY"]}


@pytest.fixture(scope="module")
def graph_dir(tmp_path_factory) -> Path:
    """A real monophone HCLG over a 3-word unigram LM (asr.lang + asr.graph)."""
    root = tmp_path_factory.mktemp("graph")
    d = root / "dict"
    d.mkdir()
    (d / "lexicon.txt").write_text("<unk> SPN\n!sil SIL\n" + "".join(f"{w} {' '.join(p)}\n" for w, p in LEXICON.items()))
    (d / "silence_phones.txt").write_text("SIL\nSPN\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("".join(f"{p}\n" for p in sorted({p for v in LEXICON.values() for p in v})))
    lang = prepare_lang(d, root / "lang")
    lp = math.log10(1 / 3)
    arpa = root / "lm.arpa"
    arpa.write_text("\\data\\\nngram 1=5\n\n\\1-grams:\n-99 <s>\n" + f"{lp:.4f} </s>\n"
                    + "".join(f"{lp:.4f} {w}\n" for w in LEXICON) + "\n\\end\\\n")
    make_g(root / "lang", arpa, root / "lang_test")
    topo = khg.HmmTopology()
    topo.read((root / "lang" / "topo").read_text())
    phones = lang.real_phone_ids
    p2n = [0] * (max(phones) + 1)
    for p in phones:
        p2n[p] = topo.num_pdf_classes(p)
    tree = khg.monophone_context_dependency(phones, p2n)
    tm = khg.TransitionModel(tree, topo)
    mono = root / "mono"
    mono.mkdir()
    save_model(mono / "final.mdl", tm, khg.AmDiagGmm())
    write_tree(mono / "tree", tree)
    make_hclg(root / "lang_test", mono, root / "graph")
    return root / "graph"


def tiny_model(num_pdfs: int, name: str = "resnet22") -> torch.nn.Module:
    torch.manual_seed(0)
    m = create_model(name, num_classes=num_pdfs, in_bins=8, width=4, head_dim=8)
    for mod in m.modules():  # non-trivial BatchNorm statistics
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 1.5)
    return m.eval()


@pytest.mark.parametrize("name", ["resnet22", "bl_resnet22_a2_b3"])
def test_chunked_equals_whole(name):
    # float64: the chunking must be exact, not just within float32 rounding of conv algorithms
    model = tiny_model(11, name).double()
    feats = torch.randn(3, 57, 8).numpy()
    priors = np.log(np.full(11, 1 / 11, dtype=np.float32))
    whole = D.log_likelihoods(model, feats, priors, chunk_frames=0)
    assert whole.shape == (57, 11)
    for chunk, batch in ((10, 20), (16, 128), (100, 100), (13, 13)):
        chunked = D.log_likelihoods(model, feats, priors, chunk_frames=chunk, batch_frames=batch)
        np.testing.assert_allclose(chunked, whole, atol=1e-5, rtol=0)
    # float32 (what decoding runs): equal up to float32 rounding
    model32 = model.float()
    np.testing.assert_allclose(D.log_likelihoods(model32, feats, priors, chunk_frames=10),
                               D.log_likelihoods(model32, feats, priors, chunk_frames=0), atol=1e-4, rtol=0)
    # prior subtraction: exp(ll + prior) is a distribution over pdfs per frame
    np.testing.assert_allclose(np.exp(whole + priors).sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet22", "bl_resnet22_a2_b3"])
def test_fast_path_equals_plain(name):
    """Decoding's network path (BatchNorm folded; utterances of different lengths packed end to end
    with their own context, cut into equal chunks and batched) gives each utterance's plain
    whole-utterance posteriors:
    exactly in float64, within 1e-4 absolute (log domain) in float32."""
    model = tiny_model(11, name).double()
    gen = torch.Generator().manual_seed(3)
    feats = [torch.randn(3, n, 8, generator=gen).numpy() for n in (1, 5, 57, 130, 16, 33)]
    priors = np.log(np.full(11, 1 / 11, dtype=np.float32))
    plain = [D.log_likelihoods(model, f, priors, chunk_frames=0) for f in feats]
    fast = D.log_likelihoods_many(D.inference_model(model), feats, priors, chunk_frames=32, batch_frames=96)
    assert [f.shape for f in fast] == [p.shape for p in plain]
    for f, p in zip(fast, plain):
        np.testing.assert_allclose(f, p, atol=1e-9, rtol=0)
    model32 = model.float()
    plain32 = [D.log_likelihoods(model32, f, priors, chunk_frames=0) for f in feats]
    fast32 = D.log_likelihoods_many(D.inference_model(model32), feats, priors, chunk_frames=32, batch_frames=96)
    for f, p in zip(fast32, plain32):
        np.testing.assert_allclose(f, p, atol=1e-4, rtol=0)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model32.modules())  # the original is untouched
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.inference_model(model32).modules())
    with pytest.raises(ValueError, match="utterance 1: no frames"):
        D.log_likelihoods_many(model32, [feats[0], feats[0][:, :0]], priors)


def _pdf_sequence(graph, words: list[str], frames_per_pdf: int = 3) -> np.ndarray:
    """Scores `(frames, num_pdfs)` favouring the pdfs of `words` (monophone: pdfs of each phone)."""
    tm = graph.transition_model
    phones = {p: i for i, p in enumerate(Path(graph_dir_path[0] / "phones.txt").read_text().split()[::2])}
    seq: list[int] = []
    for w in words:
        for ph in LEXICON[w]:
            pdfs = sorted({tm.transition_id_to_pdf(t) for t in range(1, tm.num_transition_ids + 1)
                           if tm.transition_id_to_phone(t) == phones[ph]})
            for p in pdfs:
                seq += [p] * frames_per_pdf
    scores = np.full((len(seq), tm.num_pdfs), -8.0, dtype=np.float32)
    scores[np.arange(len(seq)), seq] = 0.0
    return scores


graph_dir_path: list[Path] = []


def test_search_returns_favoured_words(graph_dir):
    graph_dir_path[:] = [graph_dir]
    graph = load_graph(graph_dir)
    searcher = D.Searcher(graph.hclg, graph.transition_model, D.SearchOptions(beam=13, max_active=7000))
    for words in (["no", "yes", "maybe"], ["maybe", "maybe"], ["yes"]):
        ids, ali, ok = searcher.decode(_pdf_sequence(graph, words), acoustic_scale=1.0, utt="u")
        assert ok
        assert [graph.words[i] for i in ids] == words
        assert len(ali) == _pdf_sequence(graph, words).shape[0]
    # a word insertion penalty graph still decodes the same words when the acoustics are clear
    pen = D.Searcher(D.add_word_penalty(graph.hclg, 2.0), graph.transition_model, D.SearchOptions())
    ids, _, _ = pen.decode(_pdf_sequence(graph, ["no", "yes"]), 1.0)
    assert [graph.words[i] for i in ids] == ["no", "yes"]


def _model_dir(root: Path, num_pdfs: int, out_classes: int | None = None) -> Path:
    m = tiny_model(out_classes or num_pdfs)
    root.mkdir(parents=True, exist_ok=True)
    torch.save({"model_name": "resnet22", "model_kwargs": {"num_classes": out_classes or num_pdfs, "in_bins": 8,
                                                           "width": 4, "head_dim": 8},
                "state_dict": m.state_dict(), "num_pdfs": out_classes or num_pdfs, "feat_dim": 24,
                "context": list(m.context)}, root / "final.pt")
    (root / "pdf_counts").write_text("[ " + " ".join(str(i + 1) for i in range(out_classes or num_pdfs)) + " ]\n")
    return root


def test_model_tree_mismatch_is_an_error(graph_dir, tmp_path):
    n = load_graph(graph_dir).num_pdfs
    md = _model_dir(tmp_path / "am_bad", n, out_classes=n + 3)
    cfg = D.DecodeConfig(str(md), str(graph_dir), str(tmp_path / "feats"))
    with pytest.raises(ValueError, match=rf"am_bad/final.pt: model has {n + 3} outputs .* {n} pdfs"):
        D.decode_dir(cfg, tmp_path / "decode")


def test_prior_counts_must_match_outputs(tmp_path):
    (tmp_path / "pdf_counts").write_text("[ 1 2 3 ]\n")
    with pytest.raises(ValueError, match="3 pdf counts, but the model has 5 outputs"):
        D.read_log_priors(tmp_path / "pdf_counts", 5)
    (tmp_path / "pdf_counts").write_text("[ 1 0 3 ]\n")
    lp = D.read_log_priors(tmp_path / "pdf_counts", 3, floor=1e-6)
    np.testing.assert_allclose(lp, np.log([0.25, 1e-6, 0.75]), rtol=1e-6)


def _feats_dir(root: Path, utts: dict[str, int], dim: int = 24, extra_utt2spk: str = "") -> Path:
    """A real feature dir (binary ark + scp, per-speaker Kaldi CMVN stats) via kaldiio."""
    import kaldiio

    from asr.features import cmvn_stats

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    mats = {u: rng.standard_normal((n, dim)).astype(np.float32) for u, n in utts.items()}
    with kaldiio.WriteHelper(f"ark,scp:{root / 'feats.ark'},{root / 'feats.scp'}") as w:
        for u in sorted(mats):
            w(u, mats[u])
    spk = {u: u.split("-")[0] for u in utts}
    with kaldiio.WriteHelper(f"ark,scp:{root / 'cmvn.ark'},{root / 'cmvn.scp'}") as w:
        for s in sorted(set(spk.values())):
            w(s, cmvn_stats(np.concatenate([mats[u] for u in sorted(mats) if spk[u] == s])))
    (root / "utt2spk").write_text("".join(f"{u} {spk[u]}\n" for u in sorted(utts)) + extra_utt2spk)
    return root


def test_decode_dir_end_to_end(graph_dir, tmp_path):
    import kaldiio

    n = load_graph(graph_dir).num_pdfs
    md = _model_dir(tmp_path / "am_tiny", n)
    feats = _feats_dir(tmp_path / "feats", {"s1-u1": 40, "s1-u2": 25, "s2-u1": 70})
    out = tmp_path / "decode"
    D.main(["--model-dir", str(md), "--graph-dir", str(graph_dir), "--feats", str(feats), "--dir", str(out),
            "--chunk-frames", "16", "--lm-weights", "1", "2", "--word-ins-penalties", "0", "0.5", "--nbest", "3"])
    hyp = (out / "hyp.txt").read_text().splitlines()
    # n-best: distinct word sequences, cheapest first, the first one being the 1-best
    nbest = [ln.split(maxsplit=1) + [""] for ln in (out / "nbest.txt").read_text().splitlines()]
    costs = dict(ln.split() for ln in (out / "nbest_cost.txt").read_text().splitlines())
    assert [k for k, *_ in nbest] == list(costs)
    for line in hyp:
        utt, *best = line.split()
        entries = [(k, w.split()) for k, w, *_ in nbest if k.rsplit("-", 1)[0] == utt]
        assert 1 <= len(entries) <= 3 and [k for k, _ in entries] == [f"{utt}-{i}" for i in range(1, len(entries) + 1)]
        assert entries[0][1] == best
        seqs = [tuple(w) for _, w in entries]
        assert len(set(seqs)) == len(seqs)
        c = [float(costs[k]) for k, _ in entries]
        assert c == sorted(c)
    assert [ln.split()[0] for ln in hyp] == ["s1-u1", "s1-u2", "s2-u1"]
    words = {"yes", "no", "maybe", "!sil", "<unk>"}
    assert all(w in words for ln in hyp for w in ln.split()[1:])
    assert sorted(p.name for p in out.glob("hyp_*.txt")) == [
        "hyp_lmwt1_wip0.5.txt", "hyp_lmwt1_wip0.txt", "hyp_lmwt2_wip0.5.txt", "hyp_lmwt2_wip0.txt"]
    ali = dict(kaldiio.load_scp(str(out / "ali.scp")))
    assert {u: len(a) for u, a in ali.items()} == {"s1-u1": 40, "s1-u2": 25, "s2-u1": 70}
    info = __import__("json").loads((out / "decode.json").read_text())
    assert info["num_utts"] == 3 and info["num_frames"] == 135 and info["audio_s"] == 1.35
    assert info["rtf"] > 0 and info["nn_s"] > 0 and info["search_s"] > 0 and info["sweep_s"] > 0
    # rtf is one pass (network + main search) per audio second; the sweep's searches are apart
    assert info["rtf"] == pytest.approx(info["rtf_nn"] + info["rtf_search"], abs=3e-5)
    assert info["rtf_sweep"] > 0 and info["rtf_wall"] > 0 and info["nbest"] == 3 and info["nbest_s"] > 0
    assert info["model_name"] == "resnet22" and info["flops_per_frame"] > 0
    # scoring + per-decode report on the decode dir
    from asr import decode_report, score

    ref = tmp_path / "text"
    ref.write_text("".join(f"{ln} yes\n" for ln in hyp))  # the decoder's words + one it did not say
    score.main(["--ref", str(ref), "--hyp", *map(str, sorted(out.glob("hyp*.txt"))), "--dir", str(out / "scoring")])
    scored = __import__("json").loads((out / "scoring" / "wer.json").read_text())["settings"]["hyp"]
    assert scored["err"] == scored["del"] == 3
    report = decode_report.build(out)
    assert "resnet22" in report and "FLOPs per output frame" in report and (out / "report.png").stat().st_size > 0
    assert (out / "wer.json").exists()
    # parallel jobs give the same hypotheses
    D.main(["--model-dir", str(md), "--graph-dir", str(graph_dir), "--feats", str(feats), "--dir",
            str(tmp_path / "decode2"), "--chunk-frames", "0", "--nj", "2"])
    assert (tmp_path / "decode2" / "hyp.txt").read_text().splitlines() == hyp


def test_missing_features_is_an_error(graph_dir, tmp_path):
    n = load_graph(graph_dir).num_pdfs
    md = _model_dir(tmp_path / "am_tiny", n)
    feats = _feats_dir(tmp_path / "feats", {"s1-u1": 30}, extra_utt2spk="s1-u9 s1\n")
    cfg = D.DecodeConfig(str(md), str(graph_dir), str(feats))
    with pytest.raises(ValueError, match="'s1-u9'"):
        D.decode_dir(cfg, tmp_path / "decode")
    wrong_dim = _feats_dir(tmp_path / "feats40", {"s1-u1": 30}, dim=30)
    with pytest.raises(ValueError, match="dim 30, the model expects 3 x 8"):
        D.decode_dir(D.DecodeConfig(str(md), str(graph_dir), str(wrong_dim)), tmp_path / "decode")


def _decode(md, graph_dir, feats, out, *extra):
    D.main(["--model-dir", str(md), "--graph-dir", str(graph_dir), "--feats", str(feats), "--dir", str(out),
            "--beam", "30", "--lattice-beam", "12", "--max-active", "100000", *extra])


def test_lattice_sweep_equals_research_sweep_and_lattices_read_back(graph_dir, tmp_path):
    import json

    import kaldiio

    from asr import lattice as L

    n = load_graph(graph_dir).num_pdfs
    md = _model_dir(tmp_path / "am_tiny", n)
    feats = _feats_dir(tmp_path / "feats", {"s1-u1": 40, "s1-u2": 25, "s2-u1": 70, "s2-u2": 55})
    sweep = ["--lm-weights", "0.2", "1", "2", "--word-ins-penalties", "-4", "0", "1.0",
             "--lexicon", str(graph_dir.parent / "dict" / "lexicon.txt")]
    _decode(md, graph_dir, feats, tmp_path / "lat", *sweep)
    _decode(md, graph_dir, feats, tmp_path / "re", *sweep, "--sweep", "research")
    lat_info = json.loads((tmp_path / "lat" / "decode.json").read_text())
    assert lat_info["sweep_mode"] == "lattice" and lat_info["num_settings"] == 9
    assert json.loads((tmp_path / "re" / "decode.json").read_text())["sweep_mode"] == "research"
    names = sorted(p.name for p in (tmp_path / "re").glob("hyp*.txt"))
    assert len(names) == 10
    texts = {nm: (tmp_path / "lat" / nm).read_text() for nm in names}
    for nm in names:  # same best paths from the lattice as from a new search per setting
        assert texts[nm] == (tmp_path / "re" / nm).read_text(), nm
    # (this random model says nothing; test_lattice_rescoring_equals_search_per_setting has words)
    # lattices: written with an scp, read back, rescored at the decoder's setting -> its 1-best
    assert lat_info["lattice_bytes"] == (tmp_path / "lat" / "lat.ark").stat().st_size > 0
    assert lat_info["lattice_bytes_per_audio_s"] > 0
    words = load_graph(graph_dir).words
    hyp = {ln.split()[0]: ln.split()[1:] for ln in texts["hyp.txt"].splitlines()}
    ali = dict(kaldiio.load_scp(str(tmp_path / "lat" / "ali.scp")))
    got = dict(L.read_lattices(tmp_path / "lat" / "lat.scp"))
    assert sorted(got) == sorted(hyp)
    for utt, lat in got.items():
        (best,) = L.best_paths(lat, [(10.0, 0.0)])  # acoustic scale 0.1
        assert [words[w] for w in best.words] == hyp[utt]
        assert best.tids == ali[utt].tolist()
    # the command-line rescorer: LM weight 2, penalty 1 from the lattices = that setting's hypotheses
    import subprocess
    import sys

    cli = subprocess.run([sys.executable, "-m", "asr.lattice", "--lat-scp", str(tmp_path / "lat" / "lat.scp"),
                          "--words-txt", str(graph_dir / "words.txt"), "--lm-weight", "2", "--wip", "1"],
                         capture_output=True, text=True, check=True)
    assert cli.stdout == texts["hyp_lmwt2_wip1.txt"]
    # the stored bytes are an OpenFst lattice kaldifst reads
    import kaldifst

    ark, off = L.read_scp(tmp_path / "lat" / "lat.scp")["s1-u1"]
    one = tmp_path / "one.fst"
    data = ark.read_bytes()
    _, size = L.from_bytes(memoryview(data)[off:], "x")
    one.write_bytes(data[off:off + size])
    k = kaldifst.Lattice.read(str(one))
    assert k.num_states == got["s1-u1"].num_states
    # CTM per setting: the hypothesis words in order, times inside the utterance, increasing
    frames = {"s1-u1": 40, "s1-u2": 25, "s2-u1": 70, "s2-u2": 55}
    for nm in names:
        ctm = (tmp_path / "lat" / nm.replace(".txt", ".ctm")).read_text().splitlines()
        by: dict[str, list] = {}
        for ln in ctm:
            utt, ch, start, dur, w = ln.split()
            assert ch == "1"
            by.setdefault(utt, []).append((float(start), float(dur), w))
        ref = {ln.split()[0]: ln.split()[1:] for ln in texts[nm].splitlines()}
        for utt, ws in ref.items():
            got_w = by.get(utt, [])
            assert [w for *_, w in got_w] == ws
            starts = [s for s, _, _ in got_w]
            assert starts == sorted(starts)
            assert all(d > 0 and s + d <= frames[utt] * 0.01 + 1e-6 for s, d, _ in got_w)


def test_truncated_lattice_named_and_rerun_replaces_old_outputs(graph_dir, tmp_path):
    from asr import lattice as L

    n = load_graph(graph_dir).num_pdfs
    md = _model_dir(tmp_path / "am_tiny", n)
    feats = _feats_dir(tmp_path / "feats", {"s1-u1": 40, "s1-u2": 25})
    out = tmp_path / "dec"
    _decode(md, graph_dir, feats, out, "--lm-weights", "1", "2")
    ark = out / "lat.ark"
    full = ark.read_bytes()
    ark.write_bytes(full[: len(full) - 30])
    with pytest.raises(ValueError, match=r"lat\.ark \(utterance 's1-u2' at byte \d+\): truncated lattice"):
        list(L.read_lattices(out / "lat.scp"))
    # a re-run leaves nothing of the previous one: stale settings, partial temporaries, the old scoring
    (out / "hyp_lmwt99_wip0.txt").write_text("s1-u1 yes\n")
    (out / ".lat.ark.abc.tmp").write_bytes(b"partial")
    (out / "scoring").mkdir()
    (out / "scoring" / "wer.json").write_text("{}")
    _decode(md, graph_dir, feats, out, "--lm-weights", "1", "3")
    assert not (out / "hyp_lmwt99_wip0.txt").exists() and not (out / ".lat.ark.abc.tmp").exists()
    assert not (out / "scoring").exists() and not (out / "hyp_lmwt2_wip0.txt").exists()
    assert ark.read_bytes() != full[: len(full) - 30]
    assert len(dict(L.read_lattices(out / "lat.scp"))) == 2


def test_nan_features_skip_the_utterance_and_empty_sets_are_errors(graph_dir, tmp_path, capfd):
    import json

    import kaldiio

    n = load_graph(graph_dir).num_pdfs
    md = _model_dir(tmp_path / "am_tiny", n)
    feats = _feats_dir(tmp_path / "feats", {"s1-u1": 40, "s1-u2": 25, "s1-u3": 30})
    mats = {u: np.array(m) for u, m in kaldiio.load_scp(str(feats / "feats.scp")).items()}
    mats["s1-u2"][7, 3] = np.nan
    mats["s1-u3"][2, 0] = np.inf
    with kaldiio.WriteHelper(f"ark,scp:{feats / 'feats.ark'},{feats / 'feats.scp'}") as w:
        for u in sorted(mats):
            w(u, mats[u])
    out = tmp_path / "dec"
    _decode(md, graph_dir, feats, out, "--lm-weights", "1", "2")
    info = json.loads((out / "decode.json").read_text())
    assert info["num_skipped"] == 2 and info["num_utts"] == 1
    assert "frame 7" in info["skipped_utts"]["s1-u2"] and "frame 2" in info["skipped_utts"]["s1-u3"]
    err = capfd.readouterr().err
    assert "utterance 's1-u2'" in err and "NaN/inf" in err
    assert [ln.split()[0] for ln in (out / "hyp.txt").read_text().splitlines()] == ["s1-u1"]
    # an empty feature set: a clear error, no RTF of nan
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "feats.scp").write_text("")
    (empty / "cmvn.scp").write_text("")
    with pytest.raises(ValueError, match="no utterances"):
        D.decode_dir(D.DecodeConfig(str(md), str(graph_dir), str(empty), cmvn=False), tmp_path / "dec_empty")


def test_second_decode_into_the_same_dir_fails_at_once(graph_dir, tmp_path):
    n = load_graph(graph_dir).num_pdfs
    md = _model_dir(tmp_path / "am_tiny", n)
    feats = _feats_dir(tmp_path / "feats", {"s1-u1": 20})
    out = tmp_path / "dec"
    out.mkdir()
    held = D.lock_decode_dir(out)  # what a running decode holds
    try:
        with pytest.raises(RuntimeError, match=rf"{out}: another decode is writing this dir"):
            D.decode_dir(D.DecodeConfig(str(md), str(graph_dir), str(feats)), out)
    finally:
        held.close()
    D.decode_dir(D.DecodeConfig(str(md), str(graph_dir), str(feats)), out)
    assert (out / "hyp.txt").exists()


def test_lattice_rescoring_equals_search_per_setting(graph_dir, tmp_path):
    """One lattice search (at LM weight 3), then best paths at 20 (LM weight, penalty) settings around
    it = 20 searches. (Far from the decoding setting a best path can lie outside the lattice beam,
    as in Kaldi, whose sweep 7..17 surrounds its decoding LM weight 10.)"""
    from asr import lattice as L

    graph_dir_path[:] = [graph_dir]
    graph = load_graph(graph_dir)
    tm = graph.transition_model
    rng = np.random.default_rng(3)
    opts = D.SearchOptions(beam=40, max_active=100000, lattice_beam=40)
    base = D.Searcher(graph.hclg, tm, opts)
    lat_search = D.LatticeSearcher(graph.hclg, base.tid2pdf, opts)
    settings = [(w, p) for w in (2.0, 2.5, 3.0, 4.0, 5.0) for p in (-2.0, 0.0, 1.0, 3.0)]
    searchers = {p: D.Searcher(D.add_word_penalty(graph.hclg, p), tm, opts) for p in (-2.0, 0.0, 1.0, 3.0)}
    distinct = set()
    for words in (["no", "yes", "maybe", "no"], ["maybe", "yes"], ["yes", "no", "no"]):
        scores = _pdf_sequence(graph, words, frames_per_pdf=2) + rng.normal(0, 4.0, (1, 1)).astype(np.float32) \
            + rng.normal(0, 7.0, (2 * sum(len(LEXICON[w]) * 3 for w in words), tm.num_pdfs)).astype(np.float32)
        lat, ok = lat_search.decode(scores, 1.0 / 3.0)
        assert ok
        paths = L.best_paths(lat, settings)
        for (lmwt, p), path in zip(settings, paths):
            ids, ali, _ = searchers[p].decode(scores, 1.0 / lmwt)
            assert path.words == ids, (words, lmwt, p)
            assert path.tids == ali
            distinct.add(tuple(ids))
        # serialised and parsed back: the same lattice
        back, size = L.from_bytes(L.to_bytes(lat), "mem")
        assert size == len(L.to_bytes(lat)) and back.num_states == lat.num_states
        np.testing.assert_array_equal(back.arcs, lat.arcs)
    assert len(distinct) > 3, "the settings should give different hypotheses"


def test_ctm_word_times_follow_the_phones(graph_dir):
    from asr import lattice as L

    graph_dir_path[:] = [graph_dir]
    graph = load_graph(graph_dir)
    tm = graph.transition_model
    words = ["no", "yes", "maybe"]
    ids, ali, ok = D.Searcher(graph.hclg, tm, D.SearchOptions()).decode(_pdf_sequence(graph, words, 3), 1.0)
    assert ok and [graph.words[i] for i in ids] == words
    n = tm.num_transition_ids
    tid2phone = np.array([0] + [tm.transition_id_to_phone(t) for t in range(1, n + 1)])
    final = np.array([False] + [tm.is_final(t) for t in range(1, n + 1)])
    loop = np.array([False] + [tm.is_self_loop(t) for t in range(1, n + 1)])
    phones = {int(i): p for p, i in (ln.split() for ln in (graph_dir / "phones.txt").read_text().splitlines())}
    segs = L.phone_segments(ali, tid2phone, final, loop)
    lex = {w: [tuple(p)] for w, p in LEXICON.items()}
    got = L.word_times([graph.words[i] for i in ids], segs, phones, lex)
    # monophone, 3 pdfs per phone x 3 frames: "no" = 2 phones = 18 frames, "yes" 27, "maybe" 36
    assert got == [("no", 0, 18), ("yes", 18, 27), ("maybe", 45, 36)]
