"""End-to-end smoke test: the embedded recipe, every stage, on the tiny configuration."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
    for set_name in ("train", "dev", "test"):
        for f in ("wav.scp", "segments", "text", "utt2spk", "spk2utt"):
            assert (data / set_name / f).stat().st_size > 0, f"{set_name}/{f}"
        for kind in ("mfcc", "logmel"):
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
        for set_name in ("dev", "test"):  # dev tunes the LM weight reported on test
            dec = am / f"decode_{set_name}"
            for f in ("hyp.txt", "decode.json", "wer.json", "report.md", "nbest.txt"):
                assert (dec / f).exists(), f"{dec}/{f}"
            assert (dec / "scoring" / "wer-summary").exists()

    # The comparison report parses and has the documented schema.
    report = json.loads((exp / "report.json").read_text())
    assert report["wall_s"] > 0
    assert [m["model"] for m in report["models"]] == list(tags)
    for m in report["models"]:
        for key in ("flops_per_frame", "params", "cv_frame_acc", "wer", "rtf", "train_frames_per_s"):
            assert isinstance(m[key], (int, float)), key
        assert 0.0 <= m["cv_frame_acc"] <= 1.0 and m["wer"] >= 0.0 and m["rtf"] > 0
        dev = json.loads((exp / f"am_{m['model']}" / "decode_dev" / "wer.json").read_text())
        assert m["tuned_setting"] == dev["best_setting"] and m["wer"] == m["wer_tuned"]
    base, bl = report["models"]
    assert bl["flops_per_frame"] < base["flops_per_frame"]
    assert (exp / "report.png").stat().st_size > 0
    assert "bl_resnet22_a2_b3" in proc.stdout  # the table is printed

    # Re-running is idempotent: finished stages are skipped, the report is rebuilt.
    again = run_recipe(tmp_path)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "already trained" in again.stdout + again.stderr
