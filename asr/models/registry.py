"""Model registry: named configurations are small functions registered by decorator."""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass
from typing import Callable

from torch import nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    fn: Callable[..., nn.Module]
    kind: str  # "speech" or "image"
    baseline: str  # name of the model its FLOPs/params ratio is taken against


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(kind: str, baseline: str | None = None) -> Callable:
    """Decorator: register `fn` under its function name. `baseline` defaults to itself."""
    if kind not in ("speech", "image"):
        raise ValueError(f"kind must be 'speech' or 'image', not {kind!r}")

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = fn.__name__
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, fn, kind, baseline or name)
        return fn

    return wrap


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}{hint} (see asr.models.list_models())") from None


def create_model(name: str, **overrides) -> nn.Module:
    """Build the registered model `name`; keyword overrides go to its constructor."""
    return get_entry(name).fn(**overrides)


def list_models(kind: str | None = None, pattern: str | None = None) -> list[str]:
    """Registered names (registration order), optionally filtered by kind and glob pattern."""
    return [n for n, e in _REGISTRY.items()
            if (kind is None or e.kind == kind) and (pattern is None or fnmatch.fnmatch(n, pattern))]
