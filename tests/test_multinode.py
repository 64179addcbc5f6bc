"""Multi-node training: two torchrun agents on 127.0.0.1 (one process each, c10d rendezvous through
local/torchrun.sh, gloo) train the same weights as one agent with 2 processes on the same global
batch, also when the 2-node run is stopped mid-epoch and resumed from its checkpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from test_data import make_corpus
from test_train import write_conf

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "local" / "torchrun.sh"


def _env() -> dict:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_nodes(train_args: list[str], cwd: Path, rdzv_id: str) -> None:
    """One agent per 'node', both on this machine; the rendezvous store on 127.0.0.1."""
    master = f"127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen(["bash", str(LAUNCH), "--nnodes", "2", "--node-rank", str(r), "--master", master,
                               "--rdzv-id", rdzv_id, "--join-timeout", "120", "-m", "asr.train", *train_args],
                              env=_env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for r in (0, 1)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]


def test_two_node_c10d_training_equals_single_node(tmp_path):
    c = make_corpus(tmp_path, num_spk=4, utts_per_spk=4, num_pdfs=5, bins=16, seed=3)
    conf = write_conf(tmp_path, c, batch_size=4, epochs=2)
    common = ["--config", str(conf)]
    single, multi = tmp_path / "single", tmp_path / "multi"
    res = subprocess.run(["bash", str(LAUNCH), "--nproc-per-node", "2", "-m", "asr.train", *common,
                          "--dir", str(single)], env=_env(), cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    # 2 nodes x 1 process: stopped after 5 steps (mid-epoch 2, between checkpoints), then resumed
    _two_nodes([*common, "--dir", str(multi), "--stop-after-steps", "5"], tmp_path, "stop")
    ck = torch.load(multi / "checkpoints" / "last.pt", weights_only=False)
    assert ck["step"] == 5 and not (multi / "final.pt").exists()
    _two_nodes([*common, "--dir", str(multi), "--resume"], tmp_path, "resume")
    a = torch.load(single / "final.pt", weights_only=False)
    b = torch.load(multi / "final.pt", weights_only=False)
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k in a["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    import json

    for d in (single, multi):
        assert json.loads((d / "summary.json").read_text())["world_size"] == 2
