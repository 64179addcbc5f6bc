"""`python -m asr.corpus.swbd --config conf/corpora.yaml --data data [--nj 8] [--dry-run]`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


from asr.utils import setup_logging
from asr.corpus.swbd.layout import load_corpora, resolve_layout
from asr.corpus.swbd.prepare import plan, prepare

log = logging.getLogger(__name__)




def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="corpora.yaml with the LDC paths")
    ap.add_argument("--data", default="data", help="output data directory (default: data)")
    ap.add_argument("--nj", type=int, default=1, help="parallel jobs for reading Fisher audio headers")
    ap.add_argument("--dry-run", action="store_true",
                    help="check that every input exists, print the plan, exit 1 naming what is missing")
    args = ap.parse_args(argv)
    setup_logging(log_file=None if args.dry_run else Path(args.data) / "log" / "swbd_prep.log")  # a dry run writes nothing
    try:
        c = load_corpora(args.config)
    except (ValueError, OSError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    if args.dry_run:
        lay = resolve_layout(c)
        print(plan(c, lay, Path(args.data)))
        if lay.problems:
            print("MISSING:\n  " + "\n  ".join(lay.problems), file=sys.stderr)
            return 1
        print("all stage 0 inputs found")
        return 0
    prepare(args.config, args.data, args.nj)
    return 0


if __name__ == "__main__":
    sys.exit(main())
