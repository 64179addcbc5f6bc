"""Reading SPHERE audio: sph2pipe or libsndfile (`sph_audio_backend`), and checks that every file can be read."""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path



log = logging.getLogger(__name__)




# ------------------------------------------------------------------------- audio reading

def sph2pipe_available() -> bool:
    return shutil.which("sph2pipe") is not None


def sph_audio_backend() -> str:
    """lhotse backend for .sph: its default (sph2pipe) when installed, else libsndfile."""
    return "default" if sph2pipe_available() else "LibsndfileBackend"


def sph_coding(path: Path) -> str:
    """The `sample_coding` field of a NIST SPHERE header ("pcm" when absent)."""
    with open(path, "rb") as f:
        head = f.read(1024)
    if not head.startswith(b"NIST_1A"):
        raise ValueError(f"{path}: not a NIST SPHERE file (no NIST_1A header)")
    m = re.search(rb"sample_coding -s\d+ (\S+)", head)
    return m.group(1).decode() if m else "pcm"


def check_sph_readable(paths: list[Path]) -> list[str]:
    """Problems reading the first .sph of each corpus with the backend in use."""
    if sph2pipe_available():
        return []
    p = []
    for path in paths:
        coding = sph_coding(path)
        if "shorten" in coding:
            p.append(f"{path}: SPHERE coding '{coding}' is shorten-compressed: put sph2pipe on PATH "
                     "(Kaldi's tools/sph2pipe_v2.5, or `lhotse install-sph2pipe`), or convert the "
                     "corpus to uncompressed SPHERE/WAV")
    return p
