"""Parameter and FLOPs counts of registered models, measured with forward hooks.

FLOPs are multiply-adds of Conv2d and Linear layers, read from the output shapes each
layer actually produces:
- speech models: per output frame, asymptotically for a long utterance, i.e. each layer's
  multiply-adds per frame it produces (context frames of a finite chunk do not count);
- image models: per image at 224x224.
Models are built on the `meta` device by default, so even ResNet-152 costs no real compute.

    python -m asr.flops            # table of every registered model
    python -m asr.flops --json     # list of objects (name, kind, params, flops, ...)
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from torch import nn

from .models import create_model, get_entry, list_models



def output_layer(model: nn.Module) -> nn.Module:
    """The layer producing the class scores (`model.classifier`)."""
    layer = getattr(model, "classifier", None)
    if layer is None:
        raise AttributeError(f"{type(model).__name__} has no `classifier` output layer")
    return layer


def is_speech(model: nn.Module) -> bool:
    return hasattr(model, "context")


@torch.no_grad()
def count(model: nn.Module, image_size: int = 224) -> dict:
    """Count parameters and multiply-adds of `model` (on any device, meta included).

    Returns {"params", "params_no_output", "flops", "flops_no_output", "kind", "unit"}:
    flops per output frame for speech models, per `image_size`^2 image otherwise.
    """
    device = next(model.parameters()).device
    speech = is_speech(model)
    if speech:
        left, right = model.context
        x = torch.zeros(1, model.in_chans, left + right + 1, model.in_bins, device=device)
    else:
        x = torch.zeros(1, getattr(model, "in_chans", 3), image_size, image_size, device=device)
    out_layer = output_layer(model)
    per_module: dict[nn.Module, float] = {}

    def hook(mod: nn.Module, inputs, out: torch.Tensor) -> None:
        if isinstance(mod, nn.Conv2d):
            kh, kw = mod.kernel_size
            per_out = (mod.in_channels // mod.groups) * kh * kw
        else:
            per_out = mod.in_features
        n_out = out.numel() / out.shape[0]
        if speech and out.dim() == 4:
            n_out /= out.shape[2]  # per frame this layer produces: (batch, C, frames, bins) ...
        elif speech and out.dim() == 3:
            n_out /= out.shape[1]  # ... or (batch, frames, C)
        per_module[mod] = per_module.get(mod, 0.0) + n_out * per_out

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    flops = sum(per_module.values())
    out_flops = sum(v for m, v in per_module.items() if m is out_layer or m in set(out_layer.modules()))
    params = sum(p.numel() for p in model.parameters())
    out_params = sum(p.numel() for p in out_layer.parameters())
    return {
        "kind": "speech" if speech else "image",
        "unit": "per output frame" if speech else f"per {image_size}x{image_size} image",
        "params": int(params),
        "params_no_output": int(params - out_params),
        "flops": int(round(flops)),
        "flops_no_output": int(round(flops - out_flops)),
    }


def count_named(name: str, device: str = "meta", **overrides) -> dict:
    """Build registered model `name` (with overrides) on `device` and count it."""
    with torch.device(device):
        model = create_model(name, **overrides)
    return {"name": name, **count(model)}


def table(names: list[str] | None = None, **overrides) -> list[dict]:
    """Counts of every (or the named) registered model with ratios to its baseline.

    `overrides` apply to speech models only (e.g. width=32, num_classes=500).
    """
    names = names or list_models()
    cache: dict[str, dict] = {}

    def get(n: str) -> dict:
        if n not in cache:
            kw = overrides if get_entry(n).kind == "speech" else {}
            cache[n] = count_named(n, **kw)
        return cache[n]

    rows = []
    for n in names:
        row = dict(get(n))
        base = get(get_entry(n).baseline)
        row["baseline"] = get_entry(n).baseline
        for key in ("params", "params_no_output", "flops", "flops_no_output"):
            row[f"{key}_ratio"] = row[key] / base[key]
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    head = (f"{'model':<24} {'kind':<6} {'params(M)':>9} {'-out(M)':>8} {'FLOPs':>9} {'-out':>9} "
            f"{'FLOPs/base':>10} {'-out/base':>9} {'params/base':>11}  baseline")
    lines = [head, "-" * len(head)]
    for r in rows:
        scale, unit = (1e6, "M") if r["kind"] == "speech" else (1e9, "G")
        lines.append(
            f"{r['name']:<24} {r['kind']:<6} {r['params'] / 1e6:9.2f} {r['params_no_output'] / 1e6:8.2f} "
            f"{r['flops'] / scale:8.2f}{unit} {r['flops_no_output'] / scale:8.2f}{unit} "
            f"{r['flops_ratio']:10.3f} {r['flops_no_output_ratio']:9.3f} {r['params_ratio']:11.3f}  {r['baseline']}")
    lines.append("FLOPs = multiply-adds of Conv2d/Linear; speech: per output frame (M), image: per 224x224 (G); "
                 "'-out' = without the output layer.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--models", nargs="*", help="model names (default: all registered)")
    p.add_argument("--kind", choices=["speech", "image"], help="only this kind")
    p.add_argument("--width", type=int, help="speech override: width")
    p.add_argument("--in-bins", type=int, help="speech override: in_bins")
    p.add_argument("--num-classes", type=int, help="speech override: num_classes")
    p.add_argument("--head-dim", type=int, help="speech override: head_dim")
    args = p.parse_args(argv)
    names = args.models or list_models(kind=args.kind)
    overrides = {k: v for k, v in (("width", args.width), ("in_bins", args.in_bins),
                                   ("num_classes", args.num_classes), ("head_dim", args.head_dim)) if v}
    rows = table(names, **overrides)
    print(json.dumps(rows, indent=1) if args.json else format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
