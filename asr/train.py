"""Frame-level cross-entropy training of a speech model on CD-state (pdf-id) alignments.

    python -m asr.train --config conf/train.yaml --tag resnet22 --dir exp/am_resnet22 \\
        [--resume] [--stop-after-steps N] [--<key> value ...]
    torchrun --nproc_per_node=N -m asr.train ...        # DDP: nccl on GPU, gloo on CPU
    python -m asr.train tags "all"                      # the tags `--am-tags all` stands for

Any config key can be overridden as `--key value` (`--model_kwargs.width 8`, `--model
bl_resnet22_a2_b3`; values are parsed as YAML); `--tag` picks an entry of the config's `models:`
(see asr.train_config). Relative paths are relative to the working directory (the recipe dir).

Optimiser: SGD with Nesterov momentum, weight decay and gradient-norm clipping. The learning
rate is `lr` for epochs 1..anneal_start_epoch, then multiplied by `anneal_factor` at the start
of every later epoch (epoch k >= anneal_start_epoch + 1 runs at lr * factor**(k -
anneal_start_epoch)), after an optional linear warm-up of `warmup_steps` steps.

The steps (icefall's names): `get_params` (bookkeeping state), `load_data`, `build_model`,
`load_checkpoint`, `compute_loss`, `train_one_epoch`, `compute_validation_loss`,
`save_checkpoint`, `save_final_model`; `train` runs them.

Model dir (docs/interfaces.md, "Training"): final.pt, pdf_counts, config.yaml,
train_log.csv (one row per epoch), train_steps.csv (every log_every_steps), curves.png,
checkpoints/{last.pt, epoch-N.pt}, summary.json, log/train.log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from asr import data as D
from asr.train_support import (Dist, amp_setup, lock_dir, lr_lambda, plot_curves, rng_state,
                               set_rng_state, sync_buffers, write_csv)
from asr.train_config import DEFAULTS, TrainConfig, expand_tags, load_config, model_hparams, model_tag, parse_args
from asr.utils import atomic_path, atomic_write_text, seed_everything, setup_logging

log = logging.getLogger("asr.train")

__all__ = ["DEFAULTS", "TrainConfig", "load_config", "parse_args", "train", "main"]


# --------------------------------------------------------------------------- steps


@torch.no_grad()
def compute_validation_loss(model, uset: D.UttSet, cfg: dict, context, dd: Dist, autocast
                            ) -> tuple[float, float, int]:
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



def remove_stale_tmp(out: Path) -> list[Path]:
    """Delete `.*.tmp` files that a killed atomic write left in `out` and its checkpoints/ (only
    called while holding the dir's lock, so no live writer owns them). Returns what was removed."""
    gone = []
    for d in (out, out / "checkpoints"):
        for f in sorted(d.glob(".*.tmp")) if d.is_dir() else []:
            f.unlink(missing_ok=True)
            gone.append(f)
    if gone:
        log.warning("removed %d stale temporary file(s) of an interrupted write: %s", len(gone),
                    " ".join(str(f) for f in gone))
    return gone


@dataclass
class TrainState:
    """What a checkpoint carries besides the weights: position and running statistics."""

    epoch: int = 0                 # next position: epoch (0-based) ...
    batch: int = 0                 # ... and batch within it
    step: int = 0                  # optimiser steps so far
    stats: list = field(default_factory=lambda: [0.0, 0.0, 0.0])  # this rank's (loss sum, correct, frames)
    train_time: float = 0.0        # seconds, earlier (interrupted) runs included
    wall_before: float = 0.0       # wall seconds of earlier runs
    epoch_rows: list = field(default_factory=list)
    step_rows: list = field(default_factory=list)


def get_params() -> TrainState:
    """The bookkeeping state of a fresh run (icefall's get_params)."""
    return TrainState()


@dataclass
class Run:
    """What the steps share: options, process group, data, model, optimiser."""

    args: argparse.Namespace
    cfg: dict
    dd: "Dist"
    out: Path
    t_start: float
    tr: D.UttSet | None = None
    cv: D.UttSet | None = None
    num_pdfs: int = 0
    counts: np.ndarray | None = None
    model: torch.nn.Module | None = None
    ddp_model: torch.nn.Module | None = None
    model_kwargs: dict = field(default_factory=dict)
    hparams: dict = field(default_factory=dict)
    tag: str = ""
    context: tuple = (0, 0)
    params: int = 0
    loader: D.ChunkLoader | None = None
    spe: int = 0
    opt: torch.optim.Optimizer | None = None
    sched: object = None
    scaler: object = None
    autocast: object = None
    amp_mode: str = "off"
    lock: object = None            # the open lock file of the model dir (rank 0)

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"


def load_data(run: Run) -> None:
    """Alignments, train and CV utterance sets (rank 0 builds a memmap cache first), pdf counts."""
    cfg, dd, out = run.cfg, run.dd, run.out
    run.num_pdfs = num_pdfs = D.read_num_pdfs(cfg["ali_dir"])
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
    for turn in ([0, 1] if dd.world_size > 1 and cfg["storage"] == "memmap" else [None]):
        if turn is None or (turn == 0) == dd.main:
            run.tr = D.load_utt_set(cfg["feat_dir"], alis, num_pdfs, utts=train_utts,
                                    cache_path=cache_dir / "train.npy", **load_kw)
            run.cv = D.load_utt_set(cv_spec[0], cv_spec[1], num_pdfs, utts=cv_spec[2],
                                    cache_path=cache_dir / "cv.npy", **load_kw)
        if turn is not None:
            dd.barrier()
    run.counts = D.pdf_counts({u: alis[u] for u in run.tr.utts}, num_pdfs)


def build_model(run: Run) -> None:
    """Model (resolved hyper-parameters and tag), chunk loader, optimiser, scheduler, AMP."""
    from asr.models import create_model

    cfg, dd = run.cfg, run.dd
    run.model_kwargs = {**(cfg["model_kwargs"] or {}), "num_classes": run.num_pdfs, "in_bins": run.tr.dim}
    run.model = model = create_model(cfg["model"], **run.model_kwargs).to(dd.device)
    run.hparams = model_hparams(model)
    run.tag = model_tag(cfg["model"], run.hparams) if run.hparams else cfg["model"]
    run.context = tuple(int(c) for c in model.context)
    run.params = sum(p.numel() for p in model.parameters())
    run.loader = D.ChunkLoader(run.tr, chunk_frames=int(cfg["chunk_frames"]), context=run.context,
                               batch_size=int(cfg["batch_size"]), seed=int(cfg["seed"]),
                               rank=dd.rank, world_size=dd.world_size,
                               max_frames_per_epoch=cfg["max_frames_per_epoch"],
                               prefetch=int(cfg["prefetch"]),
                               pin_memory=dd.device.type == "cuda")
    run.spe = run.loader.num_batches
    run.ddp_model = (torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[dd.local_rank] if dd.device.type == "cuda" else None)
        if dd.world_size > 1 else model)
    run.opt = torch.optim.SGD(model.parameters(), lr=float(cfg["lr"]), momentum=float(cfg["momentum"]),
                              nesterov=bool(cfg["nesterov"]), weight_decay=float(cfg["weight_decay"]))
    run.sched = torch.optim.lr_scheduler.LambdaLR(run.opt, lr_lambda(cfg, run.spe))
    run.autocast, run.scaler, run.amp_mode = amp_setup(cfg, dd.device)


def load_checkpoint(run: Run, state: TrainState, path: Path) -> None:
    """Resume weights, optimiser, scheduler, scaler, position, statistics and RNG from `path`.
    Raises ValueError naming the file when it is unreadable (e.g. truncated) or was written by a
    different model, alignment set, batch plan or number of processes."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError/EOFError/UnpicklingError
        raise ValueError(f"{path}: cannot read the checkpoint ({type(e).__name__}: {e}); it is "
                         f"truncated or not a checkpoint: remove it (or {path.parent}) to start over") from e
    dd = run.dd
    for key, now in (("num_pdfs", run.num_pdfs), ("model_kwargs", run.model_kwargs),
                     ("model_name", run.cfg["model"]), ("steps_per_epoch", run.spe)):
        if ck.get(key) != now:
            raise ValueError(f"{path}: checkpoint has {key}={ck.get(key)!r} but this run has "
                             f"{now!r} (alignments or config changed): remove {path.parent} "
                             f"or start without --resume")
    if ck["world_size"] != dd.world_size:
        raise ValueError(f"{path}: written by {ck['world_size']} processes, resuming with "
                         f"{dd.world_size} would change the data shards")
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["optimizer"])
    run.sched.load_state_dict(ck["scheduler"])
    run.scaler.load_state_dict(ck["scaler"])
    state.epoch, state.batch, state.step = ck["epoch"], ck["batch"], ck["step"]
    state.train_time, state.epoch_rows = ck["train_time"], ck["epoch_rows"]
    state.wall_before = ck["wall_s"]
    state.step_rows = ck["step_rows"]
    mine = ck["ranks"][dd.rank]
    state.stats = list(mine["stats"])
    set_rng_state(mine["rng"])
    if dd.main:
        log.info("resumed from %s at epoch %d batch %d (step %d)", path, state.epoch + 1, state.batch, state.step)


def save_checkpoint(run: Run, state: TrainState, name: str = "last.pt", also_epoch: int | None = None) -> None:
    """`checkpoints/<name>` atomically (every rank's RNG and statistics gathered on rank 0);
    `also_epoch`: also hard-link it as `epoch-N.pt`."""
    dd = run.dd
    sync_buffers(run.model, dd)
    ranks = dd.gather_objects({"rng": rng_state(), "stats": list(state.stats)})
    if not dd.main:
        return
    ck = {"model": run.model.state_dict(), "optimizer": run.opt.state_dict(),
          "scheduler": run.sched.state_dict(), "scaler": run.scaler.state_dict(),
          "epoch": state.epoch, "batch": state.batch, "step": state.step, "train_time": state.train_time,
          "epoch_rows": state.epoch_rows, "step_rows": state.step_rows, "ranks": ranks,
          "world_size": dd.world_size, "config": run.cfg, "num_pdfs": run.num_pdfs,
          "model_kwargs": run.model_kwargs, "model_name": run.cfg["model"], "steps_per_epoch": run.spe,
          "wall_s": state.wall_before + time.time() - run.t_start}
    with atomic_path(run.ckpt_dir / name) as tmp:
        torch.save(ck, tmp)
    if also_epoch is not None:
        ep = run.ckpt_dir / f"epoch-{also_epoch}.pt"
        if ep.exists():
            ep.unlink()
        os.link(run.ckpt_dir / name, ep)


def compute_loss(model, x: torch.Tensor, y: torch.Tensor, autocast):
    """Cross-entropy of a batch: x (B, 3, T + left + right, bins), y (B, T) pdf ids (IGNORE: no
    target). Returns (loss summed over frames, loss per frame, logits (B*T, pdfs), y (B*T,), valid
    mask (B*T,), frames)."""
    with autocast():
        logits = model(x)
    logits = logits.float().reshape(-1, logits.shape[-1])
    y = y.reshape(-1)
    valid = y != D.IGNORE
    n = valid.sum()
    loss_sum = F.cross_entropy(logits, y, ignore_index=D.IGNORE, reduction="sum")
    return loss_sum, loss_sum / n.clamp(min=1), logits, y, valid, n


def train_one_epoch(run: Run, state: TrainState) -> bool:
    """Train from `state`'s position to the end of the epoch (or `--stop-after-steps`), with
    mid-epoch checkpoints every `ckpt_every_steps`. Returns True when stopped before the epoch's end."""
    from tqdm import tqdm

    cfg, dd, opt, scaler = run.cfg, run.dd, run.opt, run.scaler
    epochs, spe = int(cfg["epochs"]), run.spe
    log_every, ckpt_every = int(cfg["log_every_steps"]), int(cfg["ckpt_every_steps"])
    clip = float(cfg["clip_grad_norm"] or 0)
    stop_after = run.args.stop_after_steps
    bar = tqdm(total=spe, initial=state.batch, desc=f"epoch {state.epoch + 1}/{epochs}",
               disable=not dd.main, mininterval=1.0, dynamic_ncols=True)
    # running sums (loss, correct, frames) kept on the device: no host sync per step
    acc = torch.tensor(state.stats, dtype=torch.float64, device=dd.device)
    win = torch.zeros(3, dtype=torch.float64, device=dd.device)
    t0 = time.time()
    stopped = False
    for x, y in run.loader.iter_batches(state.epoch, state.batch):
        x, y = x.to(dd.device, non_blocking=True), y.to(dd.device, non_blocking=True)
        loss_sum, loss, logits, y, valid, n = compute_loss(run.ddp_model, x, y, run.autocast)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if clip > 0:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(run.model.parameters(), clip)
        scaler.step(opt)
        scaler.update()
        lr_used = opt.param_groups[0]["lr"]
        run.sched.step()
        state.step += 1
        state.batch += 1
        correct = (logits.detach().argmax(-1) == y).logical_and(valid).sum()
        cur = torch.stack([loss_sum.detach(), correct, n]).double()
        acc += cur
        win += cur
        bar.update(1)
        if state.step % log_every == 0 or state.batch == spe:
            l, c, f = dd.all_sum(win.tolist())
            row = {"step": state.step, "epoch": state.epoch + 1, "batch": state.batch,
                   "lr": lr_used, "loss": l / max(f, 1), "frame_acc": c / max(f, 1)}
            state.step_rows.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{100 * row['frame_acc']:.1f}%")
            win.zero_()
        stop_now = stop_after is not None and state.step >= stop_after
        if state.batch < spe and (stop_now or (ckpt_every > 0 and state.step % ckpt_every == 0)):
            state.train_time += time.time() - t0
            t0 = time.time()
            state.stats = acc.tolist()
            save_checkpoint(run, state)
        if stop_now:
            stopped = True
            break
    bar.close()
    state.stats = acc.tolist()
    if stopped and state.batch < spe:
        return True
    state.train_time += time.time() - t0
    return False


def end_epoch(run: Run, state: TrainState) -> None:
    """CV loss/accuracy, the epoch's log row, `epoch-N.pt`, CSVs and curves."""
    cfg, dd, out = run.cfg, run.dd, run.out
    sync_buffers(run.model, dd)
    l, c, f = dd.all_sum(state.stats)
    cv_loss, cv_acc, cv_frames = compute_validation_loss(run.model, run.cv, cfg, run.context, dd, run.autocast)
    row = {"epoch": state.epoch + 1, "step": state.step,
           "lr": float(cfg["lr"]) * lr_lambda(cfg, run.spe)(max(state.step - 1, 0)),
           "train_loss": l / max(f, 1), "train_frame_acc": c / max(f, 1),
           "train_frames": int(f), "cv_loss": cv_loss, "cv_frame_acc": cv_acc,
           "cv_frames": cv_frames, "train_time_s": round(state.train_time, 2)}
    state.epoch_rows.append(row)
    if dd.main:
        log.info("epoch %d: train loss %.4f acc %.2f%% | CV loss %.4f acc %.2f%% (%d frames)",
                 state.epoch + 1, row["train_loss"], 100 * row["train_frame_acc"], cv_loss,
                 100 * cv_acc, cv_frames)
    state.epoch, state.batch, state.stats = state.epoch + 1, 0, [0.0, 0.0, 0.0]
    save_checkpoint(run, state, also_epoch=state.epoch)
    if dd.main:
        write_csv(out / "train_log.csv", state.epoch_rows)
        write_csv(out / "train_steps.csv", state.step_rows)
        plot_curves(out / "curves.png", state.step_rows, state.epoch_rows)


def check_finite(model) -> None:
    """Raise FloatingPointError naming the parameters/buffers that hold NaN or inf."""
    bad = [n for n, t in list(model.named_parameters()) + list(model.named_buffers())
           if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise FloatingPointError(f"{len(bad)} parameter/buffer tensor(s) are not finite (e.g. {', '.join(bad[:5])}): "
                                 f"the loss diverged; final.pt is not written (lower lr or check the features)")


def save_final_model(run: Run, state: TrainState) -> dict:
    """final.pt and summary.json (rank 0), after checking every weight is finite."""
    cfg, dd, out = run.cfg, run.dd, run.out
    check_finite(run.model)
    final = {"model_name": cfg["model"], "model_kwargs": run.model_kwargs, "tag": run.tag, "hparams": run.hparams,
             "state_dict": run.model.state_dict(), "num_pdfs": run.num_pdfs,
             "feat_dim": run.tr.dim * 3, "in_bins": run.tr.dim, "context": list(run.context)}
    with atomic_path(out / "final.pt") as tmp:
        torch.save(final, tmp)
    frames = sum(r["train_frames"] for r in state.epoch_rows)
    last_row = state.epoch_rows[-1]
    summary = {"model": cfg["model"], "tag": run.tag, "model_kwargs": run.model_kwargs, "hparams": run.hparams,
               "params": run.params, "num_pdfs": run.num_pdfs, "context": list(run.context),
               "epochs": int(cfg["epochs"]), "steps": state.step, "world_size": dd.world_size,
               "device": str(dd.device), "amp": run.amp_mode, "cv_frame_acc": last_row["cv_frame_acc"],
               "cv_loss": last_row["cv_loss"],
               "train_frame_acc": last_row["train_frame_acc"],
               "train_loss": last_row["train_loss"], "train_frames": frames,
               "train_time_s": round(state.train_time, 2),
               "train_frames_per_s": frames / max(state.train_time, 1e-9),
               "wall_s": round(state.wall_before + time.time() - run.t_start, 2),
               "cv_utts": len(run.cv.utts), "train_utts": len(run.tr.utts)}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    log.info("done: %s, CV frame acc %.2f%%, %.0f train frames/s, %s", run.tag, 100 * summary["cv_frame_acc"],
             summary["train_frames_per_s"], out / "final.pt")
    return summary


def train(args: argparse.Namespace, cfg: dict) -> dict | None:
    """Run (or resume) training; returns the summary on rank 0 when finished."""
    dd = Dist()
    run = Run(args=args, cfg=cfg, dd=dd, out=Path(args.dir), t_start=time.time())
    if dd.main:
        run.ckpt_dir.mkdir(parents=True, exist_ok=True)
        run.lock = lock_dir(run.out)  # held until this process exits, even if killed
        remove_stale_tmp(run.out)
    if dd.device.type == "cuda":
        torch.backends.cudnn.benchmark = True     # fixed input shapes
    else:
        torch.set_num_threads(int(cfg["threads"] or max(1, (os.cpu_count() or 1) // dd.local_world)))
    seed_everything(int(cfg["seed"]))

    load_data(run)
    if args.prepare_only:
        if dd.main:
            log.info("data ready: %d train / %d CV utterances", len(run.tr.utts), len(run.cv.utts))
        dd.close()
        return None
    build_model(run)

    state = get_params()
    last = run.ckpt_dir / "last.pt"
    if args.resume and last.exists():
        load_checkpoint(run, state, last)
    elif args.resume and dd.main:
        log.info("no checkpoint in %s: starting from scratch", run.ckpt_dir)
    epochs = int(cfg["epochs"])
    if state.epoch >= epochs and (run.out / "final.pt").exists():
        if dd.main:
            log.info("%s: training already finished (%d epochs)", run.out, state.epoch)
        dd.barrier()
        dd.close()
        return None

    if dd.main:
        atomic_write_text(run.out / "config.yaml", yaml.safe_dump(cfg, sort_keys=True))
        D.write_kaldi_vector(run.out / "pdf_counts", run.counts)
        log.info("model %s (%s) %s: %.2fM params, context %s, %d pdfs, bins %d; %d processes on %s, "
                 "amp %s; %d steps/epoch x %d chunks x %d frames", cfg["model"], run.tag, run.model_kwargs,
                 run.params / 1e6, run.context, run.num_pdfs, run.tr.dim, dd.world_size, dd.device,
                 run.amp_mode, run.spe, run.loader.batch_size * dd.world_size, run.loader.T)

    stopped = False
    run.ddp_model.train()
    while state.epoch < epochs and not stopped:
        if train_one_epoch(run, state):
            break
        end_epoch(run, state)
        stopped = args.stop_after_steps is not None and state.step >= args.stop_after_steps

    summary = None
    if state.epoch >= epochs:
        sync_buffers(run.model, dd)
        if cfg["dump_rank_states"]:  # every rank's weights (the DDP test checks that they agree)
            torch.save(run.model.state_dict(), run.out / f"rank{dd.rank}_state.pt")
        if dd.main:
            summary = save_final_model(run, state)
    elif dd.main:
        log.info("stopped after step %d (epoch %d, batch %d); continue with --resume",
                 state.step, state.epoch + 1, state.batch)
    dd.barrier()
    dd.close()
    return summary


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["tags"]:  # `python -m asr.train tags "all"`: the recipe's --am-tags expanded
        print(" ".join(expand_tags(" ".join(argv[1:]))))
        return 0
    args, overrides = parse_args(argv, __doc__)
    rank = int(os.environ.get("RANK", "0"))
    setup_logging(log_file=Path(args.dir) / "log" / ("train.log" if rank == 0 else f"train.rank{rank}.log"))
    cfg = load_config(args.config, overrides, args.tag)
    if rank != 0:
        logging.getLogger().setLevel(logging.WARNING)
    train(args, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
