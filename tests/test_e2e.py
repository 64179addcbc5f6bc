"""End-to-end smoke test: the embedded recipe, every stage, on the tiny configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "egs" / "synth" / "run.sh"


def run_recipe(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    cmd = ["bash", str(RECIPE), "--conf-dir", "conf/tiny", "--data", str(tmp / "data"),
           "--exp", str(tmp / "exp"), "--corpus", str(tmp / "corpus"), "--nj", "2", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1200)


def test_tiny_recipe_end_to_end(tmp_path):
    proc = run_recipe(tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    data, exp = tmp_path / "data", tmp_path / "exp"

    # Every stage left its files.
    for set_name in ("train", "train_sp", "dev", "test", "test_heldout"):
        for f in ("wav.scp", "segments", "text", "utt2spk", "spk2utt"):
            assert (data / set_name / f).stat().st_size > 0, f"{set_name}/{f}"
    for kind, sets in (("mfcc", ("train", "train_sp", "dev", "test")),
                       ("logmel", ("train_sp", "dev", "test", "test_heldout"))):
        for set_name in sets:
            assert (data / f"{set_name}_{kind}" / "feats.scp").stat().st_size > 0
            assert (data / f"{set_name}_{kind}" / "cmvn.scp").stat().st_size > 0
    assert (data / "local" / "dict" / "lexicon.txt").exists()
    for f in ("L.fst", "L_disambig.fst", "words.txt", "phones.txt", "topo"):
        assert (data / "lang" / f).exists(), f
    ali = exp / "tri2_ali"
    for f in ("tree", "final.mdl", "num_pdfs", "pdf_ali.scp"):
        assert (ali / f).exists(), f
    assert (exp / "tri2" / "graph" / "HCLG.fst").stat().st_size > 0
    tags = ("resnet22", "bl_resnet22_a2_b3")
    for tag in tags:
        am = exp / f"am_{tag}"
        for f in ("final.pt", "pdf_counts", "summary.json", "train_log.csv", "curves.png"):
            assert (am / f).exists(), f"{am}/{f}"
        for set_name in ("dev", "dev_1best", "test", "test_heldout"):  # dev tunes the LM weight reported on test
            dec = am / f"decode_{set_name}"
            for f in ("hyp.txt", "decode.json", "wer.json", "report.md", "nbest.txt"):
                assert (dec / f).exists(), f"{dec}/{f}"
            assert (dec / "scoring" / "wer-summary").exists()
        # dev: lattices and the 33-setting sweep; dev_1best: the fast search's LM-weight sweep; the test
        # sets: the fast 1-best search at the weight that scored best there (no lattice)
        modes = {s: json.loads((am / f"decode_{s}" / "decode.json").read_text())
                 for s in ("dev", "dev_1best", "test", "test_heldout")}
        assert modes["dev"]["sweep_mode"] == "lattice" and (am / "decode_dev" / "lat.scp").exists()
        assert modes["dev_1best"]["sweep_mode"] == "research" and modes["dev_1best"]["num_settings"] == 11
        best = json.loads((am / "decode_dev_1best" / "scoring" / "wer.json").read_text())["best_setting"]
        for s in ("test", "test_heldout"):
            assert modes[s]["sweep_mode"] == "none" and modes[s]["main_setting"] == best
            assert modes[s]["search"].startswith("1-best: FasterDecoder") and not (am / f"decode_{s}" / "lat.scp").exists()
            assert modes[s]["rtf"] == pytest.approx(modes[s]["rtf_nn"] + modes[s]["rtf_search"], abs=3e-5)
            assert (am / f"decode_{s}" / "hyp.txt").read_text() == (am / f"decode_{s}" / f"hyp_{best}.txt").read_text()

    # The comparison report parses and has the documented schema.
    report = json.loads((exp / "report.json").read_text())
    assert report["wall_s"] > 0
    assert [m["model"] for m in report["models"]] == list(tags)
    for m in report["models"]:
        for key in ("flops_per_frame", "params", "cv_frame_acc", "wer", "rtf", "train_frames_per_s"):
            assert isinstance(m[key], (int, float)), key
        assert 0.0 <= m["cv_frame_acc"] <= 1.0 and m["rtf"] > 0
        dev = json.loads((exp / f"am_{m['model']}" / "decode_dev_1best" / "wer.json").read_text())
        test = json.loads((exp / f"am_{m['model']}" / "decode_test" / "wer.json").read_text())
        assert m["tuned_setting"] == dev["best_setting"] and m["wer"] == m["wer_tuned"]
        # the report's WER is the scored WER: the test set's score at the setting tuned on dev,
        # and that score is errors / reference words of the scoring files
        scored = test["settings"][m["tuned_setting"]]
        assert m["wer"] == scored["wer"]
        assert scored["wer"] == round(100.0 * scored["err"] / scored["ref_words"], 4) and scored["ref_words"] > 0
        assert m["wer_best_sweep"] is None and list(test["settings"]) == [m["tuned_setting"]]  # one setting: no sweep
        assert m["rtf_nn"] > 0 and m["rtf_search"] > 0 and m["search"].startswith("1-best")
        summary = json.loads((exp / f"am_{m['model']}" / "summary.json").read_text())
        assert m["hparams"] == summary["hparams"] and m["tag"] == summary["tag"] == m["model"]
    # Every test set: its facts, each model's WER with a 95% interval, the paired test.
    assert list(report["test_sets"]) == ["test", "test_heldout"]
    for set_name, info in report["test_sets"].items():
        n_words = sum(len(line.split()) - 1 for line in (data / set_name / "text").read_text().splitlines())
        assert info["words"] == n_words and info["oov_rate"] == 0.0 and info["perplexity"] > 1.0
        for m in report["models"]:
            entry = m["wer_by_set"][set_name]
            scored = json.loads((exp / f"am_{m['model']}" / f"decode_{set_name}" / "wer.json").read_text())
            assert entry["wer"] == scored["settings"][m["tuned_setting"]]["wer"]
            assert entry["ci"][0] <= entry["wer"] <= entry["ci"][1]
        pair = report["paired"][set_name]
        diff = report["models"][1]["wer_by_set"][set_name]["wer"] - report["models"][0]["wer_by_set"][set_name]["wer"]
        assert abs(pair["diff"] - diff) < 0.02 and pair["ci"][0] <= pair["diff"] <= pair["ci"][1]
        assert 0.0 <= pair["p"] <= 1.0 and "separable" in pair["verdict"]
    assert report["models"][0]["wer_by_set"]["test"]["wer"] == report["models"][0]["wer"]
    assert "Are the models separable?" in (exp / "report.md").read_text()
    base, bl = report["models"]
    assert bl["flops_per_frame"] < base["flops_per_frame"]
    assert (bl["hparams"]["alpha"], bl["hparams"]["beta"], bl["hparams"]["bl_stages"]) == (2, 3, 3)
    assert "bl_resnet22_a2_b3: alpha 2, beta 3, bl_stages 3" in (exp / "report.md").read_text()
    assert (exp / "report.png").stat().st_size > 0
    assert "bl_resnet22_a2_b3" in proc.stdout  # the table is printed

    # The fast path and the lattice path at the same beam, at the decoder's own setting (LM weight
    # 1/acoustic scale, no penalty: the one the lattice search runs at), with max-active set so
    # high that it never binds (the lattice search has none): the same best path for at least 95%
    # of the test utterances (ties between equal-cost paths may break apart), WERs within 0.5.
    from asr import score

    for tag in tags:
        am = exp / f"am_{tag}"
        hyps = {}
        for way, extra in (("fast", ["--sweep", "none"]), ("lat", ["--lm-weights", "10", "--word-ins-penalties", "0", "1"])):
            out = tmp_path / f"{tag}_{way}"
            cmd = [sys.executable, "-m", "asr.decode", "--config", str(ROOT / "egs/synth/conf/tiny/decode.yaml"),
                   "--model-dir", str(am), "--graph-dir", str(exp / "tri2" / "graph"), "--feats",
                   str(data / "test_logmel"), "--dir", str(out), "--nbest", "0", "--max-active", "1000000", *extra]
            subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
            hyps[way] = out / ("hyp.txt" if way == "fast" else "hyp_lmwt10_wip0.txt")
        a = [ln.split() for ln in hyps["fast"].read_text().splitlines()]
        b = [ln.split() for ln in hyps["lat"].read_text().splitlines()]
        assert [x[0] for x in a] == [x[0] for x in b]
        assert np.mean([x == y for x, y in zip(a, b)]) >= 0.95, (tag, a, b)
        wers = [score.score_files(data / "test" / "text", [h], tmp_path / f"{tag}_{w}_sc")["wer"]
                for w, h in hyps.items()]
        assert abs(wers[0] - wers[1]) <= 0.5, (tag, wers)

    # The GMM check of stage 4 (asr.gmm decode-check) is scored by asr.score.
    gmm = json.loads((exp / "tri2" / "decode_test" / "wer.json").read_text())
    gmm_scored = json.loads((exp / "tri2" / "decode_test" / "scoring" / "wer.json").read_text())
    assert gmm["wer"] == gmm_scored["wer"] and gmm["words"] == gmm_scored["ref_words"] > 0

    # Logs on disk: every python stage wrote <dir>/log/<step>.log.
    for log in (data / "lang" / "log" / "prepare_lang.log", exp / "log" / "gmm_train.log",
                exp / "log" / "graph_build.log", exp / "log" / "gmm_decode_check.log",
                exp / "am_resnet22" / "log" / "train.log", data / "log" / "features_mfcc.log",
                exp / "am_resnet22" / "decode_test" / "log" / "decode.log"):
        assert log.stat().st_size > 0, log
    assert "done: bl_resnet22_a2_b3" in (exp / "am_bl_resnet22_a2_b3" / "log" / "train.log").read_text()

    # Re-running is idempotent: every finished stage is skipped (its .done marker stays, and
    # no output is rewritten), only the comparison report is rebuilt.
    markers = sorted(p for p in list(data.rglob(".done*")) + list(exp.rglob(".done*")))
    assert {p.relative_to(tmp_path).as_posix() for p in markers} >= {
        "data/.done_synth", "data/.done_prep", "data/.done_feats_mfcc", "data/.done_feats_logmel",
        "data/lang/.done", "exp/tri2_ali/.done", "exp/tri2/graph/.done", "exp/am_resnet22/.done",
        "exp/am_resnet22/decode_test/.done", "exp/am_resnet22/decode_test/.done_score"}
    outputs = markers + [data / "train_sp_logmel" / "feats.scp", data / "lang" / "L.fst", exp / "tri2_ali" / "pdf_ali.scp",
                         exp / "tri2" / "graph" / "HCLG.fst", exp / "tri2" / "decode_test" / "wer.json"]
    for tag in tags:
        outputs += [exp / f"am_{tag}" / "final.pt", exp / f"am_{tag}" / "decode_test" / "hyp.txt",
                    exp / f"am_{tag}" / "decode_test" / "scoring" / "wer.json"]
    before = {p: p.stat().st_mtime_ns for p in outputs}
    again = run_recipe(tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    changed = [str(p) for p in outputs if p.stat().st_mtime_ns != before[p]]
    assert not changed, changed
    for tag in tags:
        assert f"am_{tag}/.done: already trained" in again.stdout
        assert f"am_{tag}/decode_test/.done: already decoded" in again.stdout
    assert json.loads((exp / "report.json").read_text())["models"] == report["models"]
