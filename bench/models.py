"""CPU inference time of the speech models (per output frame) and of ResNet-50 vs
bL-ResNet-50 (per 224x224 image), measured side by side: the models of a group run
interleaved, `--repeats` times each, and the median is reported next to the FLOPs ratio.

The default clock is the process CPU time with one torch thread: on a shared machine it
counts the work done rather than the time spent waiting for a core. `--clock wall
--threads 2` measures latency on an idle machine instead.

    .venv/bin/python bench/models.py                      # default, ~1-2 min
    .venv/bin/python bench/models.py --repeats 15 --frames 256 --clock wall --threads 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.flops import count  # noqa: E402
from asr.models import create_model, list_models  # noqa: E402


CLOCKS = {"process": time.process_time, "wall": time.perf_counter}
clock = time.process_time


def time_group(models: dict[str, torch.nn.Module], inputs: dict[str, torch.Tensor], repeats: int) -> dict[str, float]:
    """Median seconds per forward pass of each model, runs interleaved across models."""
    times: dict[str, list[float]] = {n: [] for n in models}
    with torch.inference_mode():
        for n, m in models.items():  # warm-up
            m(inputs[n])
        for _ in range(repeats):
            for n, m in models.items():
                t0 = clock()
                m(inputs[n])
                times[n].append(clock() - t0)
    return {n: statistics.median(v) for n, v in times.items()}


def bench_speech(names: list[str], overrides: dict, frames: int, batch: int, repeats: int) -> None:
    torch.manual_seed(0)
    models, inputs, counts = {}, {}, {}
    for n in names:
        m = create_model(n, **overrides).eval()
        left, right = m.context
        models[n], counts[n] = m, count(m)
        inputs[n] = torch.randn(batch, m.in_chans, frames + left + right, m.in_bins)
    med = time_group(models, inputs, repeats)
    base = names[0]
    print(f"\nspeech models {overrides or '(defaults)'}: batch {batch} x {frames} output frames, "
          f"median of {repeats}")
    print(f"{'model':<24} {'ms/frame':>9} {'time/base':>9} {'FLOPs/base':>10} {'-out/base':>9} {'MFLOPs/frame':>12}")
    for n in names:
        per_frame = med[n] / (batch * frames)
        print(f"{n:<24} {per_frame * 1e3:9.4f} {med[n] / med[base]:9.3f} "
              f"{counts[n]['flops'] / counts[base]['flops']:10.3f} "
              f"{counts[n]['flops_no_output'] / counts[base]['flops_no_output']:9.3f} "
              f"{counts[n]['flops'] / 1e6:12.2f}")


def bench_image(names: list[str], batch: int, repeats: int) -> None:
    torch.manual_seed(0)
    models = {n: create_model(n).eval() for n in names}
    inputs = {n: torch.randn(batch, 3, 224, 224) for n in names}
    counts = {n: count(m) for n, m in models.items()}
    med = time_group(models, inputs, repeats)
    base = names[0]
    print(f"\nimage models: batch {batch} x 224x224, median of {repeats}")
    print(f"{'model':<24} {'ms/image':>9} {'time/base':>9} {'FLOPs/base':>10} {'GFLOPs':>8}")
    for n in names:
        print(f"{n:<24} {med[n] / batch * 1e3:9.2f} {med[n] / med[base]:9.3f} "
              f"{counts[n]['flops'] / counts[base]['flops']:10.3f} {counts[n]['flops'] / 1e9:8.2f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=9, help="timed runs per model (median)")
    p.add_argument("--frames", type=int, default=64, help="output frames per speech chunk")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--image-batch", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="process",
                   help="process: CPU seconds of this process (robust on a shared machine); wall: elapsed")
    p.add_argument("--skip-image", action="store_true")
    p.add_argument("--small-only", action="store_true", help="speech: only the small configuration")
    args = p.parse_args(argv)
    global clock
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.clock} clock, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    speech = list_models(kind="speech")
    assert speech[0] == "resnet22"
    configs = [{"width": 32, "in_bins": 40, "num_classes": 500, "head_dim": 256}]
    if not args.small_only:
        configs.insert(0, {})
    for cfg in configs:
        bench_speech(speech, cfg, args.frames, args.batch, args.repeats)
    if not args.skip_image:
        bench_image(["resnet50", "bl_resnet50"], args.image_batch, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
