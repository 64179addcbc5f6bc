"""Training throughput of the acoustic models side by side: one SGD step (forward, cross-entropy,
backward, gradient clipping, Nesterov update) per model, interleaved, `--repeats` times, medians.

Sequential training runs (as in the recipe's report) see the machine's speed drift between
them; interleaving the steps gives every model the same conditions.

    .venv/bin/python bench/train.py                                  # the embedded recipe's configs
    .venv/bin/python bench/train.py --full --batch 8 --repeats 5     # the paper's size (slow on CPU)

Prints output frames per second of each model and the ratio to the first (the baseline), next
to the FLOPs ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.flops import count  # noqa: E402
from asr.models import create_model  # noqa: E402
from bench.speed import sgd_step  # noqa: E402


def recipe_model(config: str) -> tuple[str, dict, int, int]:
    """(model name, model kwargs, chunk frames, batch size) of a training config `path[:tag]`."""
    from asr.config import apply_overrides
    from asr.train_config import tag_overrides

    path, _, tag = str(config).partition(":")
    cfg = yaml.safe_load(Path(path).read_text())
    if tag:
        cfg = apply_overrides(cfg, tag_overrides(cfg, tag, path), known=set(cfg) | {"model", "model_kwargs"})
    return cfg["model"], dict(cfg.get("model_kwargs") or {}), int(cfg["chunk_frames"]), int(cfg["batch_size"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+",
                   default=[f"{ROOT / 'egs/synth/conf/train.yaml'}:resnet22",
                            f"{ROOT / 'egs/synth/conf/train.yaml'}:bl_resnet22_a2_b3"],
                   help="training configs as path[:tag], baseline first (model, model_kwargs, chunk_frames, "
                        "batch_size)")
    p.add_argument("--num-classes", type=int, default=1000, help="output states (the recipe's tree size)")
    p.add_argument("--in-bins", type=int, default=40)
    p.add_argument("--full", action="store_true", help="the models' default size (width 128, 64 bins, "
                   "32000 states) instead of the configs' model_kwargs")
    p.add_argument("--batch", type=int, help="chunks per step (default: the configs' batch_size)")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (training uses all cores)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    runs = []
    for config in args.configs:
        name, kwargs, chunk, batch = recipe_model(config)
        kwargs = {} if args.full else {**kwargs, "num_classes": args.num_classes, "in_bins": args.in_bins}
        model = create_model(name, **kwargs).train()
        batch = args.batch or batch
        left, right = model.context
        x = torch.randn(batch, model.in_chans, chunk + left + right, model.in_bins)
        y = torch.randint(0, model.num_classes, (batch, chunk))
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-5)
        runs.append({"name": name, "model": model, "x": x, "y": y, "opt": opt, "frames": batch * chunk,
                     "flops": count(model)["flops"], "times": []})

    def step(r: dict) -> None:
        sgd_step(r["model"], r["opt"], r["x"], r["y"])

    for r in runs:  # warm-up
        step(r)
    for _ in range(args.repeats):
        for r in runs:
            t0 = time.perf_counter()
            step(r)
            r["times"].append(time.perf_counter() - t0)
    base = runs[0]
    base_fps = base["frames"] / statistics.median(base["times"])
    size = "default size" if args.full else f"num_classes {args.num_classes}, in_bins {args.in_bins}"
    print(f"torch {torch.__version__}, {args.threads} thread(s), wall clock, {size}, median of {args.repeats} "
          f"interleaved steps")
    print(f"{'model':<24} {'frames/step':>11} {'ms/step':>8} {'frames/s':>9} {'speed/base':>10} {'FLOPs/base':>10}")
    for r in runs:
        med = statistics.median(r["times"])
        fps = r["frames"] / med
        print(f"{r['name']:<24} {r['frames']:11d} {med * 1e3:8.1f} {fps:9.0f} {fps / base_fps:10.3f} "
              f"{r['flops'] / base['flops']:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
