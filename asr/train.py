"""Frame-level cross-entropy training of a speech model on CD-state (pdf-id) alignments.

    python -m asr.train --config conf/train_resnet22.yaml --dir exp/am_resnet22 \\
        [--resume] [--stop-after-steps N] [--<key> value ...]
    torchrun --nproc_per_node=N -m asr.train ...        # DDP: nccl on GPU, gloo on CPU

Any config key can be overridden as `--key value` (`--model_kwargs.width 8`; values are
parsed as YAML). Relative paths are relative to the working directory (the recipe dir).

Optimiser: SGD with Nesterov momentum, weight decay and gradient-norm clipping. The learning
rate is `lr` for epochs 1..anneal_start_epoch, then multiplied by `anneal_factor` at the start
of every later epoch (epoch k >= anneal_start_epoch + 1 runs at lr * factor**(k -
anneal_start_epoch)), after an optional linear warm-up of `warmup_steps` steps.

Model dir (docs/interfaces.md, "Training"): final.pt, pdf_counts, config.yaml,
train_log.csv (one row per epoch), train_steps.csv (every log_every_steps), curves.png,
checkpoints/{last.pt, epoch-N.pt}, summary.json.
"""

from __future__ import annotations

import argparse
import copy
import csv
import datetime
import json
import logging
import math
import os
import random
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import yaml

from asr import data as D
from asr.utils import atomic_path, atomic_write_text, seed_everything, setup_logging

log = logging.getLogger("asr.train")

DEFAULTS: dict = {
    # data
    "feat_dir": None,            # train logmel feature dir (feats.scp, cmvn.scp)
    "ali_dir": None,             # alignment dir: num_pdfs, pdf_ali.scp[, pdf_ali_dev.scp]
    "ali_scp": None,             # default: <ali_dir>/pdf_ali.scp
    "dev_feat_dir": None,        # CV features; with dev_ali_scp (default <ali_dir>/pdf_ali_dev.scp)
    "dev_ali_scp": None,
    "cv_fraction": 0.1,          # held-out share of train utterances when there is no dev set
    "chunk_frames": 32,          # T output frames per example
    "batch_size": 64,            # chunks per process per step
    "eval_batch_size": None,     # default: batch_size
    "max_frames_per_epoch": None,  # cap on output frames per epoch (all ranks), None: all
    "storage": "memory",         # memory | memmap
    "cache_dir": None,           # memmap cache dir (default: <dir>/feat_cache)
    "cache_dtype": "float32",
    "on_mismatch": "error",      # alignment/feature length mismatch: error | skip (counted)
    "prefetch": 2,               # batches built ahead in a background thread (0: off)
    # model
    "model": "resnet22",
    "model_kwargs": {},          # width, head_dim, ...; num_classes and in_bins are set here
    # optimisation
    "epochs": 4,
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 1e-5,
    "clip_grad_norm": 10.0,
    "anneal_factor": 0.7071,
    "anneal_start_epoch": 2,
    "warmup_steps": 0,
    "seed": 1234,
    "amp": "auto",               # auto (bf16 if supported else fp16) | bf16 | fp16 | off; GPU only
    "threads": None,             # CPU threads per process (default: cores / local processes)
    # bookkeeping
    "ckpt_every_steps": 200,
    "log_every_steps": 20,
}


# --------------------------------------------------------------------------- config


def parse_args(argv=None) -> tuple[argparse.Namespace, dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML config (keys: see asr.train.DEFAULTS)")
    p.add_argument("--dir", required=True, help="model dir, e.g. exp/am_resnet22")
    p.add_argument("--resume", action="store_true", help="continue from <dir>/checkpoints/last.pt")
    p.add_argument("--stop-after-steps", type=int, default=None,
                   help="checkpoint and exit after this many optimiser steps in total")
    p.add_argument("--prepare-only", action="store_true",
                   help="check the data and build the memmap feature caches, then exit "
                        "(run once before a multi-GPU launch)")
    args, rest = p.parse_known_args(argv)
    overrides: dict = {}
    i = 0
    while i < len(rest):
        key = rest[i]
        if not key.startswith("--") or i + 1 >= len(rest):
            p.error(f"expected '--key value' overrides, got {' '.join(rest[i:])!r}")
        overrides[key[2:].replace("-", "_")] = yaml.safe_load(rest[i + 1])
        i += 2
    return args, overrides


def load_config(path: str | Path, overrides: dict) -> dict:
    """DEFAULTS <- YAML file <- overrides (dotted keys reach into dicts). Unknown keys fail."""
    cfg = copy.deepcopy(DEFAULTS)
    with open(path) as f:
        user = yaml.safe_load(f) or {}
    for src, items in ((str(path), user.items()), ("command line", overrides.items())):
        for key, value in items:
            top, _, sub = key.partition(".")
            if top not in DEFAULTS:
                raise ValueError(f"{src}: unknown config key '{top}' "
                                 f"(known: {', '.join(sorted(DEFAULTS))})")
            if sub:
                cfg[top] = dict(cfg[top] or {})
                cfg[top][sub] = value
            elif isinstance(value, dict) and isinstance(cfg[top], dict):
                cfg[top] = {**cfg[top], **value}
            else:
                cfg[top] = value
    for key in ("feat_dir", "ali_dir"):
        if not cfg[key]:
            raise ValueError(f"config key '{key}' is required")
    return cfg


# --------------------------------------------------------------------------- distributed


class Dist:
    """Process-group facts: rank, world size, device; no-ops when single-process."""

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
            # generous timeout: rank 0 may build a memmap cache while the others wait
            dist.init_process_group(backend="nccl" if cuda else "gloo",
                                    device_id=self.device if cuda else None,
                                    timeout=datetime.timedelta(hours=2))

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


@torch.no_grad()
def evaluate(model, uset: D.UttSet, cfg: dict, context, dd: Dist, autocast) -> tuple[float, float, int]:
    """CV (loss per frame, frame accuracy, frames) over all ranks' shares."""
    model.eval()
    loss_sum = correct = frames = 0.0
    bs = int(cfg["eval_batch_size"] or cfg["batch_size"])
    for x, y in D.iter_eval_batches(uset, chunk_frames=int(cfg["chunk_frames"]), context=context,
                                    batch_size=bs, rank=dd.rank, world_size=dd.world_size):
        x, y = x.to(dd.device, non_blocking=True), y.to(dd.device, non_blocking=True)
        with autocast():
            logits = model(x)
        logits = logits.float().reshape(-1, logits.shape[-1])
        y = y.reshape(-1)
        loss_sum += F.cross_entropy(logits, y, ignore_index=D.IGNORE, reduction="sum").item()
        valid = y != D.IGNORE
        correct += (logits.argmax(-1)[valid] == y[valid]).sum().item()
        frames += valid.sum().item()
    loss_sum, correct, frames = dd.all_sum([loss_sum, correct, frames])
    model.train()
    return loss_sum / max(frames, 1), correct / max(frames, 1), int(frames)


def sync_buffers(model, dd: Dist) -> None:
    """Give every rank rank 0's buffers (BatchNorm statistics), as DDP's next forward would."""
    if dd.world_size > 1:
        for b in model.buffers():
            dist.broadcast(b, src=0)


# --------------------------------------------------------------------------- main


def lock_dir(out: Path):
    """Exclusive lock on `<out>/.lock` (the returned open file holds it; the OS frees it when
    the process ends, also on a kill). A second training into the same dir fails at once
    instead of overwriting the first one's checkpoints."""
    import fcntl

    f = open(out / ".lock", "a")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise RuntimeError(f"{out}: another training process is using this dir (it holds {out / '.lock'}); "
                           f"wait for it or stop it before training or resuming here") from None
    return f


def train(args: argparse.Namespace, cfg: dict) -> dict | None:
    """Run (or resume) training; returns the summary on rank 0 when finished."""
    from asr.models import create_model
    from tqdm import tqdm

    t_start = time.time()
    dd = Dist()
    out = Path(args.dir)
    ckpt_dir = out / "checkpoints"
    if dd.main:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        lock = lock_dir(out)  # noqa: F841  (held until this process exits, even if killed)
    if dd.device.type == "cuda":
        torch.backends.cudnn.benchmark = True     # fixed input shapes
    else:
        torch.set_num_threads(int(cfg["threads"] or max(1, (os.cpu_count() or 1) // dd.local_world)))
    seed_everything(int(cfg["seed"]))

    # ---- data
    num_pdfs = D.read_num_pdfs(cfg["ali_dir"])
    ali_scp = cfg["ali_scp"] or str(Path(cfg["ali_dir"]) / "pdf_ali.scp")
    alis = D.read_pdf_alignments(ali_scp)
    load_kw = dict(storage=cfg["storage"], cache_dtype=cfg["cache_dtype"], on_mismatch=cfg["on_mismatch"])
    cache_dir = Path(cfg["cache_dir"] or out / "feat_cache")
    dev_ali_scp = cfg["dev_ali_scp"] or (str(Path(cfg["ali_dir"]) / "pdf_ali_dev.scp")
                                         if cfg["dev_feat_dir"] else None)
    if cfg["dev_feat_dir"] and Path(dev_ali_scp).exists():
        train_utts = None
        cv_spec = (cfg["dev_feat_dir"], D.read_pdf_alignments(dev_ali_scp), None)
    else:
        if cfg["dev_feat_dir"]:
            log.warning("no dev alignments %s: holding out %.0f%% of train instead",
                        dev_ali_scp, 100 * cfg["cv_fraction"])
        from asr.features import FeatureReader
        ids = [u for u in FeatureReader(cfg["feat_dir"], cmvn=False).utt_ids if u in alis]
        train_utts, cv_utts = D.split_cv(ids, float(cfg["cv_fraction"]), int(cfg["seed"]))
        cv_spec = (cfg["feat_dir"], alis, cv_utts)
    # rank 0 builds a memmap cache first; the others then reuse it
    for turn in ([0, 1] if dd.world_size > 1 and cfg["storage"] == "memmap" else [None]):
        if turn is None or (turn == 0) == dd.main:
            tr = D.load_utt_set(cfg["feat_dir"], alis, num_pdfs, utts=train_utts,
                                cache_path=cache_dir / "train.npy", **load_kw)
            cv = D.load_utt_set(cv_spec[0], cv_spec[1], num_pdfs, utts=cv_spec[2],
                                cache_path=cache_dir / "cv.npy", **load_kw)
        if turn is not None:
            dd.barrier()
    counts = D.pdf_counts({u: alis[u] for u in tr.utts}, num_pdfs)
    if args.prepare_only:
        if dd.main:
            log.info("data ready: %d train / %d CV utterances", len(tr.utts), len(cv.utts))
        dd.close()
        return None

    # ---- model
    model_kwargs = {**(cfg["model_kwargs"] or {}), "num_classes": num_pdfs, "in_bins": tr.dim}
    model = create_model(cfg["model"], **model_kwargs).to(dd.device)
    context = tuple(int(c) for c in model.context)
    params = sum(p.numel() for p in model.parameters())
    loader = D.ChunkLoader(tr, chunk_frames=int(cfg["chunk_frames"]), context=context,
                           batch_size=int(cfg["batch_size"]), seed=int(cfg["seed"]),
                           rank=dd.rank, world_size=dd.world_size,
                           max_frames_per_epoch=cfg["max_frames_per_epoch"],
                           prefetch=int(cfg["prefetch"]),
                           pin_memory=dd.device.type == "cuda")
    spe = loader.num_batches
    ddp_model = (torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[dd.local_rank] if dd.device.type == "cuda" else None)
        if dd.world_size > 1 else model)
    opt = torch.optim.SGD(model.parameters(), lr=float(cfg["lr"]), momentum=float(cfg["momentum"]),
                          nesterov=bool(cfg["nesterov"]), weight_decay=float(cfg["weight_decay"]))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, spe))
    autocast, scaler, amp_mode = amp_setup(cfg, dd.device)

    # ---- state that checkpoints carry
    epoch, batch, step = 0, 0, 0          # next position: epoch (0-based), batch in epoch
    stats = [0.0, 0.0, 0.0]               # this rank's running (loss sum, correct, frames)
    train_time = wall_before = 0.0     # seconds spent by earlier (interrupted) runs count too
    epoch_rows: list[dict] = []
    step_rows: list[dict] = []
    last = ckpt_dir / "last.pt"
    if args.resume and last.exists():
        ck = torch.load(last, map_location="cpu", weights_only=False)
        for key, now in (("num_pdfs", num_pdfs), ("model_kwargs", model_kwargs),
                         ("model_name", cfg["model"]), ("steps_per_epoch", spe)):
            if ck.get(key) != now:
                raise ValueError(f"{last}: checkpoint has {key}={ck.get(key)!r} but this run has "
                                 f"{now!r} (alignments or config changed): remove {ckpt_dir} "
                                 f"or start without --resume")
        if ck["world_size"] != dd.world_size:
            raise ValueError(f"{last}: written by {ck['world_size']} processes, resuming with "
                             f"{dd.world_size} would change the data shards")
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        epoch, batch, step = ck["epoch"], ck["batch"], ck["step"]
        train_time, epoch_rows = ck["train_time"], ck["epoch_rows"]
        wall_before = ck["wall_s"]
        step_rows = ck["step_rows"]
        mine = ck["ranks"][dd.rank]
        stats = list(mine["stats"])
        set_rng_state(mine["rng"])
        if dd.main:
            log.info("resumed from %s at epoch %d batch %d (step %d)", last, epoch + 1, batch, step)
    elif args.resume and dd.main:
        log.info("no checkpoint in %s: starting from scratch", ckpt_dir)
    if epoch >= int(cfg["epochs"]) and (out / "final.pt").exists():
        if dd.main:
            log.info("%s: training already finished (%d epochs)", out, epoch)
        dd.barrier()
        dd.close()
        return None

    if dd.main:
        atomic_write_text(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=True))
        D.write_kaldi_vector(out / "pdf_counts", counts)
        log.info("model %s %s: %.2fM params, context %s, %d pdfs, bins %d; %d processes on %s, "
                 "amp %s; %d steps/epoch x %d chunks x %d frames", cfg["model"], model_kwargs,
                 params / 1e6, context, num_pdfs, tr.dim, dd.world_size, dd.device, amp_mode, spe,
                 loader.batch_size * dd.world_size, loader.T)

    def save(name: str = "last.pt", also_epoch: int | None = None):
        sync_buffers(model, dd)
        ranks = dd.gather_objects({"rng": rng_state(), "stats": list(stats)})
        if not dd.main:
            return
        ck = {"model": model.state_dict(), "optimizer": opt.state_dict(),
              "scheduler": sched.state_dict(), "scaler": scaler.state_dict(),
              "epoch": epoch, "batch": batch, "step": step, "train_time": train_time,
              "epoch_rows": epoch_rows, "step_rows": step_rows, "ranks": ranks,
              "world_size": dd.world_size, "config": cfg, "num_pdfs": num_pdfs,
              "model_kwargs": model_kwargs, "model_name": cfg["model"], "steps_per_epoch": spe,
              "wall_s": wall_before + time.time() - t_start}
        with atomic_path(ckpt_dir / name) as tmp:
            torch.save(ck, tmp)
        if also_epoch is not None:
            ep = ckpt_dir / f"epoch-{also_epoch}.pt"
            if ep.exists():
                ep.unlink()
            os.link(ckpt_dir / name, ep)

    # ---- loop
    epochs = int(cfg["epochs"])
    log_every, ckpt_every = int(cfg["log_every_steps"]), int(cfg["ckpt_every_steps"])
    clip = float(cfg["clip_grad_norm"] or 0)
    stopped = False
    ddp_model.train()
    while epoch < epochs and not stopped:
        bar = tqdm(total=spe, initial=batch, desc=f"epoch {epoch + 1}/{epochs}",
                   disable=not dd.main, mininterval=1.0, dynamic_ncols=True)
        # running sums (loss, correct, frames) kept on the device: no host sync per step
        acc = torch.tensor(stats, dtype=torch.float64, device=dd.device)
        win = torch.zeros(3, dtype=torch.float64, device=dd.device)
        t0 = time.time()
        for x, y in loader.iter_batches(epoch, batch):
            x, y = x.to(dd.device, non_blocking=True), y.to(dd.device, non_blocking=True)
            with autocast():
                logits = ddp_model(x)
            logits = logits.float().reshape(-1, logits.shape[-1])
            y = y.reshape(-1)
            valid = y != D.IGNORE
            n = valid.sum()
            loss_sum = F.cross_entropy(logits, y, ignore_index=D.IGNORE, reduction="sum")
            loss = loss_sum / n.clamp(min=1)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            scaler.step(opt)
            scaler.update()
            lr_used = opt.param_groups[0]["lr"]
            sched.step()
            step += 1
            batch += 1
            correct = (logits.detach().argmax(-1) == y).logical_and(valid).sum()
            cur = torch.stack([loss_sum.detach(), correct, n]).double()
            acc += cur
            win += cur
            bar.update(1)
            if step % log_every == 0 or batch == spe:
                l, c, f = dd.all_sum(win.tolist())
                row = {"step": step, "epoch": epoch + 1, "batch": batch,
                       "lr": lr_used, "loss": l / max(f, 1),
                       "frame_acc": c / max(f, 1)}
                step_rows.append(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{100 * row['frame_acc']:.1f}%")
                win.zero_()
            stop_now = args.stop_after_steps is not None and step >= args.stop_after_steps
            if batch < spe and (stop_now or (ckpt_every > 0 and step % ckpt_every == 0)):
                train_time += time.time() - t0
                t0 = time.time()
                stats = acc.tolist()
                save()
            if stop_now:
                stopped = True
                break
        bar.close()
        stats = acc.tolist()
        if stopped and batch < spe:
            break
        train_time += time.time() - t0
        # ---- end of epoch
        sync_buffers(model, dd)
        l, c, f = dd.all_sum(stats)
        cv_loss, cv_acc, cv_frames = evaluate(model, cv, cfg, context, dd, autocast)
        row = {"epoch": epoch + 1, "step": step,
               "lr": float(cfg["lr"]) * lr_lambda(cfg, spe)(max(step - 1, 0)),
               "train_loss": l / max(f, 1), "train_frame_acc": c / max(f, 1),
               "train_frames": int(f), "cv_loss": cv_loss, "cv_frame_acc": cv_acc,
               "cv_frames": cv_frames, "train_time_s": round(train_time, 2)}
        epoch_rows.append(row)
        if dd.main:
            log.info("epoch %d: train loss %.4f acc %.2f%% | CV loss %.4f acc %.2f%% (%d frames)",
                     epoch + 1, row["train_loss"], 100 * row["train_frame_acc"], cv_loss,
                     100 * cv_acc, cv_frames)
        epoch, batch, stats = epoch + 1, 0, [0.0, 0.0, 0.0]
        save(also_epoch=epoch)
        if dd.main:
            write_csv(out / "train_log.csv", epoch_rows)
            write_csv(out / "train_steps.csv", step_rows)
            plot_curves(out / "curves.png", step_rows, epoch_rows)
        stopped = stopped or (args.stop_after_steps is not None and step >= args.stop_after_steps)

    summary = None
    if epoch >= epochs:
        sync_buffers(model, dd)
        if os.environ.get("ASR_TRAIN_DUMP_RANKS"):  # used by the DDP test: every rank's weights
            torch.save(model.state_dict(), out / f"rank{dd.rank}_state.pt")
        if dd.main:
            final = {"model_name": cfg["model"], "model_kwargs": model_kwargs,
                     "state_dict": model.state_dict(), "num_pdfs": num_pdfs,
                     "feat_dim": tr.dim * 3, "in_bins": tr.dim, "context": list(context)}
            with atomic_path(out / "final.pt") as tmp:
                torch.save(final, tmp)
            frames = sum(r["train_frames"] for r in epoch_rows)
            last_row = epoch_rows[-1]
            summary = {"model": cfg["model"], "model_kwargs": model_kwargs, "params": params,
                       "num_pdfs": num_pdfs, "context": list(context), "epochs": epochs,
                       "steps": step, "world_size": dd.world_size, "device": str(dd.device),
                       "amp": amp_mode, "cv_frame_acc": last_row["cv_frame_acc"],
                       "cv_loss": last_row["cv_loss"],
                       "train_frame_acc": last_row["train_frame_acc"],
                       "train_loss": last_row["train_loss"], "train_frames": frames,
                       "train_time_s": round(train_time, 2),
                       "train_frames_per_s": frames / max(train_time, 1e-9),
                       "wall_s": round(wall_before + time.time() - t_start, 2),
                       "cv_utts": len(cv.utts), "train_utts": len(tr.utts)}
            atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
            log.info("done: CV frame acc %.2f%%, %.0f train frames/s, %s", 100 * summary["cv_frame_acc"],
                     summary["train_frames_per_s"], out / "final.pt")
    elif dd.main:
        log.info("stopped after step %d (epoch %d, batch %d); continue with --resume",
                 step, epoch + 1, batch)
    dd.barrier()
    dd.close()
    return summary


def main(argv=None) -> int:
    setup_logging()
    args, overrides = parse_args(argv)
    cfg = load_config(args.config, overrides)
    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger().setLevel(logging.WARNING)
    train(args, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
