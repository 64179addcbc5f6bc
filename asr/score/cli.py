"""`python -m asr.score`: command line of the scorer (see asr/score/__init__.py)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from asr.config_cli import parse_with_config
from asr.score.result import score_files
from asr.utils import setup_logging

logger = logging.getLogger("asr.score")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, required=True, help="Kaldi text, or an STM (*.stm / 'stm')")
    p.add_argument("--hyp", type=Path, nargs="+", required=True,
                   help="hypothesis file(s), one per setting: Kaldi text, or CTM (*.ctm)")
    p.add_argument("--dir", type=Path, required=True, help="output dir")
    p.add_argument("--glm", type=Path, help="NIST GLM word-mapping file")
    p.add_argument("--utt2spk", type=Path, help="speakers for a Kaldi-text reference (default: beside --ref)")
    p.add_argument("--segments", type=Path, help="Kaldi segments (STM mode; default: beside --ref)")
    p.add_argument("--reco2file-and-channel", type=Path, help="STM mode; default: beside --ref, else reco 'file-channel'")
    p.add_argument("--subsets", nargs="*", default=[], help="utterance-id/STM-file prefixes scored separately (sw_ en_)")
    p.add_argument("--words-txt", type=Path, help="check reference words against this vocabulary")
    p.add_argument("--oov", choices=["warn", "error"], default="warn", help="reference OOV handling with --words-txt")
    p.add_argument("--require-all", action="store_true", help="a reference utterance without hypothesis is an error")
    p.add_argument("--scorer", choices=["asr", "sclite"], default="asr",
                   help="asr: this scorer (sclite's counts, all report files); sclite: run NIST's sclite binary "
                   "(-F -D as hubscr.pl; STM + CTM or trn) into DIR/<setting>/ and report its totals")
    a = parse_with_config(p, argv, "score")
    setup_logging(log_file=Path(a.dir) / "log" / "score.log")
    if a.scorer == "sclite":
        from asr.score.sclite import score_with_sclite

        s = score_with_sclite(a.ref, a.hyp, a.dir, a.glm)
        print((a.dir / "best_wer").read_text(), end="")
        return
    s = score_files(a.ref, a.hyp, a.dir, a.glm, a.utt2spk, a.segments, a.reco2file_and_channel, a.subsets,
                    a.words_txt, a.oov, a.require_all)
    print((a.dir / "best_wer").read_text(), end="")
    logger.info("best setting %s: WER %s%%; written %s", s["best_setting"], s["wer"], a.dir)


if __name__ == "__main__":
    main()
