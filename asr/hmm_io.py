"""HMM/GMM model, tree and topology files: the I/O that `asr.gmm`, `asr.graph` and decoders share.

- `final.mdl`: a pickle of `{"transition_model": TransitionModel, "am": AmDiagGmm}` (the
  bindings' own pickled state), written atomically;
- `tree`: Kaldi's binary ContextDependency (`write_tree` / `read_tree`; the binding has no
  reader, so triphone trees are parsed by `asr.tree`);
- `topo`: the HMM topology text of a lang dir.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import kaldi_hmm_gmm as khg
import numpy as np

from asr.utils import atomic_path
from asr.tree import load_context_dependency



def save_model(path: str | Path, tm: khg.TransitionModel, am: khg.AmDiagGmm) -> None:
    """Write `final.mdl`-style model atomically (pickle of the bindings' own state)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            pickle.dump({"transition_model": tm, "am": am}, f, protocol=pickle.HIGHEST_PROTOCOL)


def load_model(path: str | Path) -> tuple[khg.TransitionModel, khg.AmDiagGmm]:
    with open(path, "rb") as f:
        d = pickle.load(f)
    return d["transition_model"], d["am"]


def write_tree(path: str | Path, tree: khg.ContextDependency) -> None:
    """Kaldi binary ContextDependency (what Kaldi's `tree` file holds), atomically."""
    with atomic_path(path) as tmp:
        tree.write(True, str(tmp))


def read_tree(path: str | Path) -> khg.ContextDependency:
    """Load a Kaldi binary `tree` file (the binding has no reader: its pickled state is the
    Kaldi bytes). Triphone trees are validated by `asr.tree`; monophone trees (N=1) load as is."""
    data = Path(path).read_bytes()
    if data[:2] != b"\0B" or not data[2:].startswith(b"ContextDependency "):
        raise ValueError(f"{path}: not a Kaldi binary tree")
    if data[2 + len(b"ContextDependency "):][:5] == b"\x04\x03\x00\x00\x00":  # N == 3
        return load_context_dependency(data)
    tree = khg.ContextDependency.__new__(khg.ContextDependency)
    tree.__setstate__((np.frombuffer(data[2:], dtype=np.int8).tolist(),))
    return tree


def read_topo(lang_dir: str | Path) -> khg.HmmTopology:
    topo = khg.HmmTopology()
    topo.read((Path(lang_dir) / "topo").read_text())
    return topo
