"""Stage configuration: dataclasses loaded from YAML, with an error for every unknown key.

One mechanism for every stage (`asr.train`, `asr.gmm`, `asr.graph`, `asr.features`):
`load_config(Cls, path)` or `from_dict(Cls, mapping, where)` builds the dataclass `Cls`
from a mapping; nested dataclass fields and `list[Dataclass]` fields are built from nested
mappings (a nested mapping starts from the nested class's own defaults). A key that is not a
field raises ValueError naming the file (or "command line") and the known keys.
`apply_overrides(mapping, {"a.b": v})` applies `--key value` style overrides (dotted keys reach
into dict fields).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_dict(cls: type[T], raw: dict | None, where: str) -> T:
    """`cls(**raw)` with nested dataclasses built recursively; unknown keys -> ValueError."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping of option: value, got {type(raw).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ValueError(f"{where}: unknown {cls.__name__} option(s) {unknown} (known: {', '.join(sorted(names))})")
    types = _field_types(cls)
    kw = {}
    for key, value in raw.items():
        tp = types.get(key)
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            value = from_dict(tp, value, f"{where}: {key}")
        elif typing.get_origin(tp) is list and value is not None:
            (item,) = typing.get_args(tp) or (None,)
            if dataclasses.is_dataclass(item):
                value = [from_dict(item, v, f"{where}: {key}[{i}]") for i, v in enumerate(value)]
        kw[key] = value
    return cls(**kw)


def read_yaml(path: str | Path) -> dict:
    """A YAML file's top-level mapping ({} for an empty file); ValueError naming the file otherwise."""
    raw = yaml.safe_load(Path(path).read_text())
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of option: value at the top level")
    return raw


def load_config(cls: type[T], path: str | Path | None) -> T:
    """`cls` from a YAML file (its defaults when `path` is None)."""
    return cls() if path is None else from_dict(cls, read_yaml(path), str(path))


def apply_overrides(base: dict, overrides: dict, known: set[str] | None = None, where: str = "command line") -> dict:
    """A copy of `base` with `overrides` applied: `a.b` sets key b of dict field a; a dict value
    updates a dict field; anything else replaces. Keys outside `known` (default: base's keys) fail."""
    out = dict(base)
    known = set(base) if known is None else known
    for key, value in overrides.items():
        top, _, sub = key.partition(".")
        if top not in known:
            raise ValueError(f"{where}: unknown config key '{top}' (known: {', '.join(sorted(known))})")
        if sub:
            out[top] = dict(out.get(top) or {})
            out[top][sub] = value
        elif isinstance(value, dict) and isinstance(out.get(top), dict):
            out[top] = {**out[top], **value}
        else:
            out[top] = value
    return out
