"""`python -m asr.tree info TREE`: print a Kaldi tree's sizes and leaves per phone."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence


from asr.utils import setup_logging
from asr.tree.event_map import Tree, load_context_dependency
from asr.tree.questions import read_symbols





# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _cmd_info(args) -> None:
    data = Path(args.tree).read_bytes()
    ctx_dep = load_context_dependency(data)
    print(f"num-pdfs {ctx_dep.num_pdfs}")
    print(f"context-width {ctx_dep.context_width}")
    print(f"central-position {ctx_dep.central_position}")
    if args.topo:
        import kaldi_hmm_gmm

        topo = kaldi_hmm_gmm.HmmTopology()
        topo.read(Path(args.topo).read_text())
        tree = Tree.from_bytes(data, topo.get_phone_to_num_pdf_classes())
        names = {v: k for k, v in read_symbols(args.phones).items()} if args.phones else {}
        for phone, n in tree.leaves_per_phone().items():
            print(f"leaves {names.get(phone, phone)} {n}")


def main(argv: Sequence[str] | None = None) -> None:
    setup_logging()
    parser = argparse.ArgumentParser(prog="python -m asr.tree", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="print num-pdfs, context width, central position, "
                                       "and with --topo the leaves per phone")
    info.add_argument("tree", help="Kaldi binary tree file")
    info.add_argument("--topo", help="HMM topology (data/lang/topo), to print leaves per phone")
    info.add_argument("--phones", help="phones.txt, to print phone names")
    info.set_defaults(func=_cmd_info)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main(sys.argv[1:])
