"""Command line of the GMM stage: `python -m asr.gmm {train,align,import-ali,decode,decode-check,final-dir}`."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


from asr.utils import setup_logging
from asr.gmm.align import align_dir
from asr.gmm.config import GmmConfig, final_ali_dir, final_model_dir
from asr.gmm.decode import decode_and_score, decode_check
from asr.gmm.import_ali import import_alignments
from asr.gmm.train import train_all


log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m asr.gmm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("train", help="mono -> tri1 -> tri2 ... and the final alignment dir")
    a.add_argument("--data", required=True, help="Kaldi data dir with `text` (e.g. data/train)")
    a.add_argument("--feats", required=True, help="feature dir (feats.scp, cmvn.scp), e.g. data/train_mfcc")
    a.add_argument("--dev-feats", help="dev feature dir (with `text`) to align with the final model")
    a.add_argument("--lang", required=True)
    a.add_argument("--exp", required=True, help="experiment dir: mono/, tri1/, ..., <last>_ali/")
    a.add_argument("--config", help="YAML (GmmConfig fields; mono: and tri: [..] rounds)")
    a.add_argument("--nj", type=int, help="parallel alignment jobs (overrides the config)")
    a.add_argument("--cmd", dest="job_cmd", help="where alignment jobs run: local, dask://HOST:PORT, "
                   "slurm|pbs|sge (asr.executor; overrides the config)")
    a.add_argument("--force", action="store_true", help="retrain every round (removes their .done markers first)")
    a = sub.add_parser("align", help="align a data set with a trained model dir")
    a.add_argument("--model-dir", required=True)
    a.add_argument("--lang", required=True)
    a.add_argument("--data", required=True)
    a.add_argument("--feats", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--suffix", default="")
    a.add_argument("--config")
    a.add_argument("--nj", type=int, help="parallel alignment jobs (overrides the config)")
    a.add_argument("--cmd", dest="job_cmd", help="where alignment jobs run: local, dask://HOST:PORT, "
                   "slurm|pbs|sge (asr.executor; overrides the config)")
    a = sub.add_parser("import-ali", help="import Kaldi pdf alignments (ali-to-pdf output)")
    a.add_argument("--pdf-ali", required=True, help="ark or scp of int32 vectors")
    a.add_argument("--feats", required=True, help="feature dir the alignments must match")
    a.add_argument("--out", required=True)
    a.add_argument("--num-pdfs", type=int)
    a.add_argument("--suffix", default="")
    a = sub.add_parser("decode", help="GMM decode through HCLG, scored by asr.score")
    a.add_argument("--graph", required=True, help="graph dir (HCLG.fst, words.txt, final.mdl)")
    a.add_argument("--data", required=True, help="data dir with `text`")
    a.add_argument("--feats", required=True)
    a.add_argument("--out", required=True, help="decode dir: hyp.txt, scoring/, wer.json")
    a.add_argument("--acoustic-scale", type=float, default=0.1)
    a.add_argument("--beam", type=float, default=13.0)
    a.add_argument("--model-dir", help="the GMM round's dir: its final.mat / fMLLR (lda_mllt, sat models)")
    a = sub.add_parser("decode-check", help="stage 4's GMM decode of the test set (graph.yaml gmm_decode)")
    a.add_argument("--config", required=True, help="graph.yaml (gmm_decode, gmm_models, acoustic_scales)")
    a.add_argument("--exp", required=True, help="experiment dir with <model>/graph")
    a.add_argument("--test-feats", required=True, help="test feature dir (with text)")
    a.add_argument("--dev-feats", help="dev feature dir (with text) to pick the acoustic scale")
    a.add_argument("--force", action="store_true")
    a = sub.add_parser("final-dir", help="print the final alignment dir (or --model: the last round's model dir)")
    a.add_argument("--config", help="gmm.yaml")
    a.add_argument("--exp", required=True)
    a.add_argument("--model", action="store_true", help="print the last round's model dir instead")
    args = p.parse_args(argv)
    if args.cmd == "final-dir":
        cfg = GmmConfig.from_yaml(args.config)
        print(final_model_dir(cfg, args.exp) if args.model else final_ali_dir(cfg, args.exp))
        return
    log_dir = args.exp if args.cmd in ("train", "decode-check") else args.out
    setup_logging(log_file=Path(log_dir) / "log" / f"gmm_{args.cmd.replace('-', '_')}.log")
    if args.cmd == "train":
        cfg = GmmConfig.from_yaml(args.config)
        if args.nj:
            cfg.nj = args.nj
        if args.job_cmd:
            cfg.cmd = args.job_cmd
        if args.force:
            for name in cfg.round_names:
                (Path(args.exp) / name / ".done").unlink(missing_ok=True)
        if cfg.import_ali:  # a Kaldi setup's alignments: no GMM training here
            import_alignments(cfg.import_ali, args.feats, final_ali_dir(cfg, args.exp), cfg.import_num_pdfs or None)
        else:
            train_all(args.data, args.feats, args.lang, args.exp, cfg, args.dev_feats)
    elif args.cmd == "align":
        cfg = GmmConfig.from_yaml(args.config)
        cfg.nj = args.nj or cfg.nj
        cfg.cmd = args.job_cmd or cfg.cmd
        align_dir(args.model_dir, args.lang, args.data, args.feats, args.out, cfg, args.suffix)
    elif args.cmd == "import-ali":
        import_alignments(args.pdf_ali, args.feats, args.out, args.num_pdfs, args.suffix)
    elif args.cmd == "decode-check":
        log.info("GMM decode check: %s", json.dumps(decode_check(args.config, args.exp, args.test_feats,
                                                                    args.dev_feats, args.force)))
    else:
        decode_and_score(args.graph, args.data, args.feats, args.out, args.acoustic_scale, args.beam, args.model_dir)


if __name__ == "__main__":
    main()
