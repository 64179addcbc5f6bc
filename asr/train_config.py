"""Training options: TrainConfig (train.yaml), `--key value` overrides, and which model a tag trains.

One train.yaml per recipe. `model` / `model_kwargs` give the default model; `models:` maps a
tag (the recipe's `--am-tags` entry, `exp/am_<tag>`) to `{model, model_kwargs}` overrides, and a
tag that is not in `models:` is the registered model of that name. `--am-tags all` stands for
the seven Table-3 speech models (`TABLE3_TAGS`). The resolved model hyper-parameters are
recorded in final.pt and summary.json, and a model whose structural kwargs (alpha, beta,
bl_stages, merge, branches, ...) differ from its registered name's defaults gets a tag that says
so, e.g. `bl_resnet22_a2_b3-alpha3`.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from asr.config import apply_overrides, read_yaml

TABLE3_TAGS = ["resnet22", "bl_resnet22_a4_b1", "bl_resnet22_a4_b2", "bl_resnet22_a4_b3", "bl_resnet22_a2_b3",
               "bl_resnet22_a4_b1_cat", "bl_pyr_resnet22_a4_b1"]
# kwargs that the registered names fix (a difference from the name's value renames the model)
STRUCTURE_KEYS = ("stage_convs", "stage_mults", "bl_stages", "alpha", "beta", "merge", "branches", "deep_mults")


@dataclass
class TrainConfig:
    """Every key of train.yaml, with its default."""

    # data
    feat_dir: str | None = None            # train logmel feature dir (feats.scp, cmvn.scp)
    ali_dir: str | None = None             # alignment dir: num_pdfs, pdf_ali.scp[, pdf_ali_dev.scp]
    ali_scp: str | None = None             # default: <ali_dir>/pdf_ali.scp
    dev_feat_dir: str | None = None        # CV features; with dev_ali_scp (default <ali_dir>/pdf_ali_dev.scp)
    dev_ali_scp: str | None = None
    cv_fraction: float = 0.1               # held-out share of train utterances when there is no dev set
    chunk_frames: int = 32                 # T output frames per example
    batch_size: int = 64                   # chunks per process per step
    eval_batch_size: int | None = None     # default: batch_size
    max_frames_per_epoch: int | None = None  # cap on output frames per epoch (all ranks), None: all
    storage: str = "memory"                # memory | memmap
    cache_dir: str | None = None           # memmap cache dir (default: <dir>/feat_cache)
    cache_dtype: str = "float32"
    on_mismatch: str = "error"             # alignment/feature length mismatch: error | skip (counted)
    prefetch: int = 2                      # batches built ahead in a background thread (0: off)
    # model
    model: str = "resnet22"
    model_kwargs: dict = field(default_factory=dict)  # width, head_dim, ...; num_classes, in_bins set here
    models: dict = field(default_factory=dict)        # tag -> {model, model_kwargs} (per-tag overrides)
    # optimisation
    epochs: int = 4
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-5
    clip_grad_norm: float = 10.0
    anneal_factor: float = 0.7071
    anneal_start_epoch: int = 2
    warmup_steps: int = 0
    seed: int = 1234
    amp: str = "auto"                      # auto (bf16 if supported else fp16) | bf16 | fp16 | off; GPU only
    threads: int | None = None             # CPU threads per process (default: cores / local processes)
    # bookkeeping
    ckpt_every_steps: int = 200
    log_every_steps: int = 20
    dump_rank_states: bool = False         # every rank also writes <dir>/rank<N>_state.pt at the end
                                           # (its final weights: checks that DDP ranks agree)


DEFAULTS: dict = asdict(TrainConfig())


def parse_args(argv=None, description: str = "") -> tuple[argparse.Namespace, dict]:
    """(options, `--key value` config overrides; values parsed as YAML)."""
    p = argparse.ArgumentParser(prog="python -m asr.train", description=description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", required=True, help="YAML config (keys: see asr.train_config.TrainConfig)")
    p.add_argument("--dir", required=True, help="model dir, e.g. exp/am_resnet22")
    p.add_argument("--tag", help="model tag: an entry of the config's `models:` or a registered model name")
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


def load_config(path: str | Path, overrides: dict, tag: str | None = None) -> dict:
    """DEFAULTS <- YAML file <- the tag's `models:` entry <- overrides (dotted keys reach into
    dicts). Unknown keys fail, naming the file or "command line". Returns a plain dict."""
    user = read_yaml(path)
    cfg = apply_overrides(copy.deepcopy(DEFAULTS), user, where=str(path))  # keys: TrainConfig's fields
    if tag is not None:
        cfg = apply_overrides(cfg, tag_overrides(cfg, tag, str(path)), where=f"{path}: models: {tag}")
    cfg = apply_overrides(cfg, overrides)
    for key in ("feat_dir", "ali_dir"):
        if not cfg[key]:
            raise ValueError(f"config key '{key}' is required")
    return cfg


def tag_overrides(cfg: dict, tag: str, where: str) -> dict:
    """What tag `tag` changes: its `models:` entry, or `model: <tag>` for a registered name."""
    from asr.models import list_models

    entry = (cfg.get("models") or {}).get(tag)
    if entry is None:
        if tag not in list_models("speech"):
            raise ValueError(f"{where}: tag '{tag}' is neither in `models:` nor a registered speech model "
                             f"({', '.join(list_models('speech'))})")
        return {"model": tag}
    if not isinstance(entry, dict) or set(entry) - {"model", "model_kwargs"}:
        raise ValueError(f"{where}: models: {tag} must be a mapping with `model` and/or `model_kwargs`")
    return {"model": entry.get("model", tag), **({"model_kwargs": entry["model_kwargs"]} if "model_kwargs" in entry
                                                  else {})}


def expand_tags(tags: str) -> list[str]:
    """The recipe's `--am-tags` value: `all` -> TABLE3_TAGS, other words as given; each tag once,
    in order of first mention (the baseline first when it is named first)."""
    out: list[str] = []
    for w in tags.split():
        out += [t for t in (TABLE3_TAGS if w == "all" else [w]) if t not in out]
    return out


def model_hparams(model) -> dict:
    """The resolved hyper-parameters of a built speech model (its `hparams`), JSON-friendly."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in getattr(model, "hparams", {}).items()}


def model_tag(name: str, hparams: dict) -> str:
    """`name`, plus `-key<value>` for each structural hyper-parameter that differs from the
    registered model's own (e.g. bl_resnet22_a2_b3-alpha3)."""
    from asr.models import create_model

    ref = model_hparams(create_model(name, num_classes=2, in_bins=16, width=4, head_dim=4))
    diffs = []
    for k in STRUCTURE_KEYS:
        if k in hparams and hparams[k] != ref.get(k):
            v = hparams[k]
            diffs.append(f"{k}{'x'.join(map(str, v)) if isinstance(v, list) else v}")
    return "-".join([name] + diffs)
