"""bL-ResNet-22 vs ResNet-22 on the clock: the decode network pass and one training step, at the
recipe's size and the paper's size, with 1 and 2 threads, printed side by side with the FLOPs ratio.

- decode: the path `asr.decode` runs (asr.likelihoods: BatchNorm folded, utterances of a block cut
  into chunks padded to a few lengths, `--batch-frames` output frames per call, log-softmax and
  priors), over utterances of `--utt-frames` lengths; milliseconds of CPU wall time per second of
  audio (100 frames).
- train: one SGD step as `asr.train` takes it (forward, cross-entropy, backward, gradient
  clipping, Nesterov update) on `--batch` chunks of `--chunk` output frames; output frames per s.

The models of one (size, threads) cell run interleaved, `--repeats` times each; medians.

    .venv/bin/python bench/speed.py                     # ~3 min on 2 cores, nothing else running
    .venv/bin/python bench/speed.py --sizes recipe --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.flops import count  # noqa: E402
from asr.likelihoods import inference_model, log_likelihoods_many  # noqa: E402
from asr.models import create_model  # noqa: E402

MODELS = ("resnet22", "bl_resnet22_a2_b3")
SIZES = {  # the embedded recipe's model (egs/synth/conf/train.yaml, 1000-state tree) and the paper's
    "recipe": {"width": 32, "head_dim": 128, "in_bins": 40, "num_classes": 1000},
    "paper": {"width": 128, "head_dim": 512, "in_bins": 64, "num_classes": 32000},
}


def sgd_step(model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """One training step of asr.train: x (batch, 3, T + context, bins), y (batch, T) pdf ids."""
    logits = model(x)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    opt.step()


def interleaved(fns: dict[str, callable], repeats: int) -> dict[str, float]:
    """Median wall seconds of each function, called in turn `repeats` times after one warm-up."""
    for f in fns.values():
        f()
    times: dict[str, list[float]] = {n: [] for n in fns}
    for _ in range(repeats):
        for n, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[n].append(time.perf_counter() - t0)
    return {n: statistics.median(v) for n, v in times.items()}


def decode_cell(kwargs: dict, lengths: list[int], batch_frames: int, repeats: int) -> dict[str, float]:
    """ms of network pass per second of audio, per model."""
    torch.manual_seed(0)
    fns = {}
    for name in MODELS:
        model = inference_model(create_model(name, **kwargs))
        feats = [np.random.default_rng(n).standard_normal((3, n, kwargs["in_bins"]), dtype=np.float32)
                 for n in lengths]
        priors = np.zeros(kwargs["num_classes"], dtype=np.float32)
        fns[name] = (lambda m=model, f=feats, p=priors: log_likelihoods_many(m, f, p, 512, batch_frames))
    med = interleaved(fns, repeats)
    audio_s = sum(lengths) / 100.0
    return {n: 1e3 * t / audio_s for n, t in med.items()}


def train_cell(kwargs: dict, batch: int, chunk: int, repeats: int) -> dict[str, float]:
    """Training output frames per second, per model."""
    torch.manual_seed(0)
    fns = {}
    for name in MODELS:
        model = create_model(name, **kwargs).train()
        left, right = model.context
        x = torch.randn(batch, model.in_chans, chunk + left + right, model.in_bins)
        y = torch.randint(0, model.num_classes, (batch, chunk))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-5)
        fns[name] = (lambda m=model, o=opt, a=x, b=y: sgd_step(m, o, a, b))
    med = interleaved(fns, repeats)
    return {n: batch * chunk / t for n, t in med.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["recipe", "paper"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--utt-frames", nargs="+", type=int, default=[180, 240, 300, 330, 360, 420],
                   help="utterance lengths of the decode pass (frames; the embedded test set's are 150-500)")
    p.add_argument("--utts", type=int, default=32, help="utterances per decode pass (asr.decode's block)")
    p.add_argument("--batch-frames", type=int, default=2048)
    p.add_argument("--batch", type=int, default=16, help="training chunks per step (the recipe's batch_size)")
    p.add_argument("--chunk", type=int, default=64, help="training output frames per chunk")
    a = p.parse_args(argv)
    lengths = [a.utt_frames[i % len(a.utt_frames)] for i in range(a.utts)]
    print(f"torch {torch.__version__}, wall clock, median of {a.repeats} interleaved runs, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    head = (f"{'size':<7} {'thr':>3} {'FLOPs bL/R':>10} | {'decode ms/s R':>13} {'bL':>7} {'bL/R':>6} | "
            f"{'train fr/s R':>12} {'bL':>7} {'bL/R time':>9}")
    print(head + "\n" + "-" * len(head))
    for size in a.sizes:
        kw = SIZES[size]
        with torch.device("meta"):
            flops = {n: count(create_model(n, **kw))["flops"] for n in MODELS}
        fr = flops[MODELS[1]] / flops[MODELS[0]]
        for t in a.threads:
            torch.set_num_threads(t)
            dec = decode_cell(kw, lengths, a.batch_frames, a.repeats)
            tr = train_cell(kw, a.batch if size == "recipe" else max(1, a.batch // 2), a.chunk,
                            a.repeats if size == "recipe" else max(2, a.repeats // 2))
            r, b = MODELS
            print(f"{size:<7} {t:3d} {fr:10.3f} | {dec[r]:13.2f} {dec[b]:7.2f} {dec[b] / dec[r]:6.3f} | "
                  f"{tr[r]:12.0f} {tr[b]:7.0f} {tr[r] / tr[b]:9.3f}", flush=True)
    print("decode ms/s: network pass per second of audio; bL/R: time ratio (lower is faster); "
          "train bL/R time = ResNet-22 frames/s over bL's (a step's time ratio).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
