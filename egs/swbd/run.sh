#!/usr/bin/env bash
# Switchboard 2000h (Switchboard-1 + Fisher) training, Hub5'00 (eval2000) evaluation.
# The LDC corpora are the user's: their paths are in conf/corpora.yaml.
#   ./run.sh [--stage N] [--stop-stage M] [--nj J] [--force true] [--dry-run true]
# Stages: 0 data prep, 1 features, 2 lang + GMM alignments to 32k CD states (or Kaldi import),
# 3 acoustic-model training (multi-GPU), 4 LM + HCLG, 5 decoding, 6 Hub5'00 scoring + report.
set -euo pipefail
cd "$(dirname "$0")"
. ../../path.sh
. ../../local/log.sh

stage=0
stop_stage=100
nj=8
force=false
dry_run=false
conf_dir=conf
data=data
exp=exp
. ../../local/parse_options.sh

# ---- stage 0: Switchboard/Fisher/Hub5'00 data preparation (issue 3) ----
# ---- end stage 0 ----

# ---- stage 1: features (issue 3) ----
# ---- end stage 1 ----

# ---- stage 2: lang, GMMs, 32k-leaf tree, alignments or Kaldi import (issue 4) ----
# ---- end stage 2 ----

# ---- stage 3: acoustic-model training, multi-GPU (issue 5) ----
# ---- end stage 3 ----

# ---- stage 4: user's ARPA LM and HCLG (issue 4) ----
# ---- end stage 4 ----

# ---- stage 5: decoding (issue 6) ----
# ---- end stage 5 ----

# ---- stage 6: Hub5'00 scoring and report (issues 6, 7) ----
# ---- end stage 6 ----
