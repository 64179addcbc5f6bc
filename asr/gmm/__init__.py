"""Monophone and triphone GMM-HMM systems (Kaldi's steps/train_mono.sh, train_deltas.sh,
train_lda_mllt.sh, train_sat.sh, align_fmllr.sh), a package.

Modules, one job each:
- `config`: GmmConfig/StageConfig (gmm.yaml) and the round/dir names they imply;
- `feature_store`: features read from the ark on access (`StoredFeatures`, `FeatureView`): the
  corpus is never held in RAM;
- `stats`: Viterbi statistics per pdf (numpy, a bounded block of frames at a time), the MLE
  update, Gaussian splitting;
- `align`: training graphs (compiled once per round to a temporary ark, read per utterance),
  equal and Viterbi forced alignment, alignment files;
- `train`: monophone and triphone rounds (tree from `asr.tree`), `train_all`;
- `transforms`: splicing, LDA, MLLT, fMLLR estimation in numpy (the bindings have none), Kaldi matrix files;
- `feature_pipeline`: the features of a round (delta | lda_mllt | sat), per-speaker fMLLR;
- `import_ali`: Kaldi pdf alignments imported and checked;
- `decode`: the GMM decode check through HCLG, scored by `asr.score`;
- `__main__`: `python -m asr.gmm {train,align,import-ali,decode,decode-check,final-dir}`.
Model/tree/topology files are `asr.hmm_io` (shared with `asr.graph`).

Final alignment dir (`docs/interfaces.md`): `final.mdl`, `tree`, `num_pdfs`, `ali.{ark,scp}`
(transition ids), `pdf_ali.{ark,scp}` (pdf ids), `failed_utts`, and `*_dev.*` for a dev set.
Features: MFCC+delta+delta-delta, `(frames, 39)` float32, per-speaker mean normalisation;
lda_mllt/sat rounds: LDA+MLLT (`final.mat`) of the spliced static MFCCs, sat: then fMLLR per speaker.
"""

import os

# Small per-pdf matrix products: multi-threaded BLAS only adds synchronisation (3-10x slower
# on a loaded 2-core machine); parallelism comes from alignment jobs. Effective when this
# package is imported before numpy (as under `python -m asr.gmm`).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from asr.gmm.align import (align, align_dir, compile_graphs, equal_align, load_features,  # noqa: E402
                           oov_utterances, read_text, warn_oov, write_alignments)
from asr.gmm.config import GmmConfig, StageConfig, final_ali_dir, final_model_dir  # noqa: E402
from asr.gmm.decode import decode, decode_and_score, decode_check  # noqa: E402
from asr.gmm.import_ali import import_alignments  # noqa: E402
from asr.gmm.stats import GmmStats, accumulate, init_single_gaussians, update  # noqa: E402
from asr.gmm.train import train_all, train_mono, train_tri  # noqa: E402
from asr.hmm_io import load_model, read_topo, read_tree, save_model, write_tree  # noqa: E402

__all__ = ["GmmConfig", "GmmStats", "StageConfig", "accumulate", "align", "align_dir", "compile_graphs",
           "decode", "decode_and_score", "decode_check", "equal_align", "final_ali_dir", "final_model_dir",
           "import_alignments", "init_single_gaussians", "load_features", "load_model", "oov_utterances",
           "read_text", "read_topo", "warn_oov", "read_tree", "save_model", "train_all", "train_mono", "train_tri", "update",
           "write_alignments", "write_tree"]
