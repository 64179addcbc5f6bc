"""Every `python -m asr.*` stage writes `<dir>/log/<step>.log` (Kaldi's exp/<dir>/log/)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from asr.utils import setup_logging

ROOT = Path(__file__).resolve().parents[1]


def test_setup_logging_writes_the_log_file_too(tmp_path):
    setup_logging(log_file=tmp_path / "exp" / "log" / "step.log")
    logging.getLogger("asr.test").info("hello %d", 42)
    setup_logging()  # back to stderr only; the file handler is closed
    text = (tmp_path / "exp" / "log" / "step.log").read_text()
    assert "INFO [asr.test] hello 42" in text


def test_cli_stage_writes_its_log_file(tmp_path):
    """`asr.graph lm` logs to <dir of the ARPA file>/log/graph_lm.log as well as stderr."""
    (tmp_path / "text").write_text("u1 a b c\nu2 a b\n")
    out = tmp_path / "lang_test"
    subprocess.run([sys.executable, "-m", "asr.graph", "lm", "--text", str(tmp_path / "text"), "--order", "2",
                    "--out", str(out / "lm.arpa")], capture_output=True, text=True, cwd=ROOT, check=True)
    text = (out / "log" / "graph_lm.log").read_text()
    assert "order 2 from 2 sentences" in text and str(out / "lm.arpa") in text
