"""Training infrastructure for `asr.train`: the process group, RNG state, the LR schedule, AMP,
CSV/plot writers, and the model dir's exclusive lock."""

from __future__ import annotations

import csv
import datetime
import logging
import os
import random
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from asr.utils import atomic_path
from asr.utils import lock_dir as utils_lock_dir

log = logging.getLogger("asr.train")


def init_distributed(device: torch.device) -> None:
    """Join the torchrun process group (env:// rendezvous: RANK, WORLD_SIZE, MASTER_ADDR/PORT):
    nccl on GPU, gloo on CPU. The one place a multi-node launch needs to touch."""
    cuda = device.type == "cuda"
    # generous timeout: rank 0 may build a memmap cache while the others wait
    dist.init_process_group(backend="nccl" if cuda else "gloo", device_id=device if cuda else None,
                            timeout=datetime.timedelta(hours=2))


# --------------------------------------------------------------------------- distributed


class Dist:
    """Process-group facts: rank, world size, device; no-ops when single-process.
    `Dist()` joins the process group (`init_distributed` below is the one place that does)."""

    def __init__(self):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(self.world_size)))
        cuda = torch.cuda.is_available()
        self.device = torch.device(f"cuda:{self.local_rank}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
        if self.world_size > 1:
            init_distributed(self.device)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def all_sum(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def gather_objects(self, obj) -> list:
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def barrier(self):
        if self.world_size > 1:
            dist.barrier()

    def close(self):
        if self.world_size > 1:
            dist.destroy_process_group()


# --------------------------------------------------------------------------- helpers


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def lr_lambda(cfg: dict, steps_per_epoch: int):
    """Multiplier of `lr` at optimiser step `s` (0-based)."""
    warm, factor, start = int(cfg["warmup_steps"]), float(cfg["anneal_factor"]), int(cfg["anneal_start_epoch"])

    def f(s: int) -> float:
        epoch = s // steps_per_epoch + 1
        w = min(1.0, (s + 1) / warm) if warm > 0 else 1.0
        return w * factor ** max(0, epoch - start)
    return f


def amp_setup(cfg: dict, device: torch.device):
    """(autocast context factory, GradScaler, dtype name)."""
    mode = str(cfg["amp"]).lower()
    if device.type != "cuda" or mode in ("off", "false", "none"):
        if device.type != "cuda" and mode not in ("off", "false", "none", "auto"):
            log.info("amp=%s ignored on CPU", mode)
        return nullcontext, torch.amp.GradScaler("cpu", enabled=False), "off"
    if mode == "auto":
        mode = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if mode not in ("bf16", "fp16"):
        raise ValueError(f"amp must be auto, bf16, fp16 or off, got {cfg['amp']!r}")
    dtype = torch.bfloat16 if mode == "bf16" else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=(mode == "fp16"))
    return (lambda: torch.autocast("cuda", dtype=dtype)), scaler, mode


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def plot_curves(path: Path, steps: list[dict], epochs: list[dict]) -> None:
    """PNG of train loss/accuracy per logged step and CV loss/accuracy per epoch."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    if steps:
        s = [r["step"] for r in steps]
        a1.plot(s, [r["loss"] for r in steps], label="train", lw=1)
        a2.plot(s, [100 * r["frame_acc"] for r in steps], label="train", lw=1)
    if epochs:
        s = [r["step"] for r in epochs]
        a1.plot(s, [r["cv_loss"] for r in epochs], "o-", label="CV")
        a2.plot(s, [100 * r["cv_frame_acc"] for r in epochs], "o-", label="CV")
    a1.set(xlabel="step", ylabel="cross-entropy (nats/frame)", title="loss")
    a2.set(xlabel="step", ylabel="frame accuracy (%)", title="frame accuracy")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def sync_buffers(model, dd: Dist) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics), as DDP's next forward would."""
    if dd.world_size > 1:
        for b in model.buffers():
            dist.broadcast(b, src=0)


# --------------------------------------------------------------------------- main


def lock_dir(out: Path):
    """Exclusive lock on `<out>/.lock` (asr.utils.lock_dir): a second training into the same dir
    fails at once instead of overwriting the first one's checkpoints."""
    return utils_lock_dir(out, "another training process is using this dir",
                          "wait for it or stop it before training or resuming here")
