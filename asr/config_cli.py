"""argparse + YAML option defaults for the command-line tools (`--config FILE`, one section per tool)."""

from __future__ import annotations

import argparse
from pathlib import Path


def parse_with_config(parser: argparse.ArgumentParser, argv: list[str] | None, section: str) -> argparse.Namespace:
    """Parse `argv`; options of `--config FILE` (YAML, mapping `section:` -> {option: value}) become
    defaults, so command-line flags override them. Unknown options in the file are an error."""
    import yaml

    parser.add_argument("--config", type=Path, help=f"YAML file; its '{section}:' mapping sets option defaults")
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.config is not None:
        doc = yaml.safe_load(known.config.read_text()) or {}
        values = doc.get(section, {}) if isinstance(doc, dict) else None
        if not isinstance(values, dict):
            raise ValueError(f"{known.config}: '{section}' must be a mapping of option: value")
        norm = {str(k).replace("-", "_"): v for k, v in values.items()}
        unknown = sorted(set(norm) - {a.dest for a in parser._actions})
        if unknown:
            raise ValueError(f"{known.config}: unknown {section} option(s) {unknown}")
        parser.set_defaults(**norm)
    return parser.parse_args(argv)

