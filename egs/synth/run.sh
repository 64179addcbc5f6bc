#!/usr/bin/env bash
# Embedded synthetic telephone corpus: from nothing to a WER report on a laptop CPU.
#   ./run.sh [--stage N] [--stop-stage M] [--nj J] [--force true] [--conf-dir conf]
#            [--data data] [--exp exp] [--corpus corpus]
# Every stage reads its options from $conf_dir/<stage>.yaml (conf/tiny/ is the smoke-test size)
# and writes under $data, $exp (Kaldi layout) and $corpus (synthesised audio).
# Stages: 0 corpus + data prep, 1 features, 2 lang + GMM alignments + tree, 3 acoustic-model
# training, 4 LM + HCLG, 5 decoding, 6 scoring + report.
set -euo pipefail
cd "$(dirname "$0")"
. ../../path.sh
. ../../local/log.sh

stage=0
stop_stage=100
nj=2
force=false
conf_dir=conf
data=data
exp=exp
corpus=corpus
. ../../local/parse_options.sh

# ---- stage 0: corpus synthesis and data preparation (issue 3) ----
# ---- end stage 0 ----

# ---- stage 1: features (issue 3) ----
# ---- end stage 1 ----

# ---- stage 2: lang, monophone/triphone GMMs, tree, alignments (issue 4) ----
# ---- end stage 2 ----

# ---- stage 3: acoustic-model training (issue 5) ----
# ---- end stage 3 ----

# ---- stage 4: language model and HCLG (issue 4) ----
# ---- end stage 4 ----

# ---- stage 5: decoding (issue 6) ----
# ---- end stage 5 ----

# ---- stage 6: scoring and report (issues 6, 7) ----
# ---- end stage 6 ----
