#!/usr/bin/env bash
# Switchboard 2000h (Switchboard-1 + Fisher) training, Hub5'00 (eval2000) evaluation.
# The LDC corpora are the user's: their paths are in conf/corpora.yaml.
#   ./run.sh [--stage N] [--stop-stage M] [--nj J] [--ngpu N] [--force true] [--dry-run true]
#            [--cmd local|dask://HOST:PORT|slurm] [--nnodes N --node-rank R --master ADDR:PORT]
#            [--train-set train] [--dev-set dev] [--test-set eval2000] [--am-tags "resnet22 ..."]
#            (./run.sh --help lists every option)
# Stages: 0 data prep, 1 features, 2 lang + GMM alignments to 32k CD states (or Kaldi import),
# 3 acoustic-model training (multi-GPU), 4 LM + HCLG, 5 decoding, 6 Hub5'00 scoring + report,
# 7 Table-3-style comparison.
set -euo pipefail
cd "$(dirname "$0")"
. ../../path.sh
. ../../local/log.sh

stage=0             # first stage to run (0-7)
stop_stage=7        # last stage to run (0-7)
nj=8                # parallel jobs
cmd=local           # where stages 1, 2, 5 run their jobs: local, dask://HOST:PORT, slurm|pbs|sge (asr/executor.py)
nnodes=1            # stage 3 on several nodes: run it once per node (README, "Running on a cluster")
node_rank=0         # this node's rank (0 .. nnodes-1); node 0 builds the feature cache
master=             # ADDR:PORT of the c10d rendezvous (a host of the job, a free port), for --nnodes > 1
force=false         # true: redo finished steps (their .done markers are removed first)
dry_run=false       # true: check stage 0's inputs and print every stage's commands, run nothing
ngpu=auto           # GPUs for stage 3 (auto: as many as nvidia-smi lists, else 1 CPU process)
train_set=train     # training data dir under $data
dev_set=dev         # held-out data dir (CV set of stage 3)
test_set=eval2000   # evaluation data dir (Hub5'00)
am_tags="resnet22 bl_resnet22_a2_b3"  # models of stages 3, 5-7 (tags of conf/train.yaml; all: Table 3), baseline first
conf_dir=conf       # corpora.yaml and the stage configs
data=data           # data dirs, features, lang
exp=exp             # models, graphs, decodes, reports
. ../../local/parse_options.sh
check_stage_range 0 7
am_tags=$(python -m asr.train tags "$am_tags")  # "all": the seven Table-3 speech models
if [ "$stop_stage" -ge 2 ]; then  # names Python computes from the GMM config (stages 2-7)
  ali_dir=$(python -m asr.gmm final-dir --config "$conf_dir/gmm.yaml" --exp "$exp")            # <last round>_ali
  graph_dir=$(python -m asr.gmm final-dir --config "$conf_dir/gmm.yaml" --exp "$exp" --model)/graph
fi
dry_run_missing=false  # set by stage 0's input check; the dry run still prints every stage's plan

# ---- stage 0: Switchboard/Fisher/Hub5'00 data preparation (issue 3) ----
# LDC paths: $conf_dir/corpora.yaml. lhotse recipes -> $data/manifests/swbd_*_{train,dev,eval2000},
# Kaldi data dirs $data/train (Switchboard + Fisher), $data/dev (held-out Switchboard
# conversations), $data/eval2000 (+ stm, glm, reco2file_and_channel), dict dir $data/local/dict
# (CMUdict + noise/hesitation words), all validated.
# .sph audio is read with sph2pipe when it is on PATH (needed for shorten-compressed LDC
# media), else with libsndfile (uncompressed SPHERE): exported here for every later stage.
command -v sph2pipe >/dev/null 2>&1 || export LHOTSE_AUDIO_BACKEND=LibsndfileBackend
swbd_prep=(python -m asr.corpus.swbd --config "$conf_dir/corpora.yaml" --data "$data" --nj "$nj")
if run_stage 0; then
  stage_begin 0 "Switchboard/Fisher/Hub5'00 data preparation"
  if [ "$dry_run" = true ]; then
    # Check every LDC input path in corpora.yaml; the plan is printed, what is missing named.
    "${swbd_prep[@]}" --dry-run || { log "stage 0 (dry run): inputs missing (see above)"; dry_run_missing=true; }
  fi
  step_done="already prepared" step "$data/.done_swbd_prep" "${swbd_prep[@]}"
  stage_end 0 "Switchboard/Fisher/Hub5'00 data preparation"
fi
# ---- end stage 0 ----

# ---- stage 1: features (issue 3) ----
# MFCC+deltas (GMMs, 23 mel bins) and logmel+deltas (acoustic models, 64 bins) for the train,
# dev and eval2000 data dirs into $data/<set>_{mfcc,logmel} with per-speaker CMVN stats.
# Defaults: ../../conf/{mfcc,logmel}.yaml, overridden by $conf_dir/features.yaml if present.
if run_stage 1; then
  stage_begin 1 "features"
  feat_sets="$train_set $dev_set $test_set"
  feat_conf=(); [ -f "$conf_dir/features.yaml" ] && feat_conf=(--config "$conf_dir/features.yaml")
  for kind in mfcc logmel; do
    step "$data/.done_feats_$kind" \
      python -m asr.features compute --kind $kind "${feat_conf[@]}" --nj "$nj" --cmd "$cmd" \
        --batch-size 1000 --data $(for s in $feat_sets; do echo "$data/$s"; done) \
        --out $(for s in $feat_sets; do echo "$data/${s}_$kind"; done)
  done
  stage_end 1 "features"
fi
# ---- end stage 1 ----

# ---- stage 2: lang, GMMs, 32k-leaf tree, alignments or Kaldi import (issue 4) ----
# conf/gmm.yaml: mono -> tri1 -> tri2 (deltas) -> tri3 (LDA+MLLT) -> tri4 (SAT, 32000 leaves) -> $exp/tri4_ali, or, with
# `import_ali` set, the user's Kaldi `ali-to-pdf` alignments checked against the features.
if run_stage 2; then
  stage_begin 2 "lang + GMM alignments"
  step "$data/lang/.done" python -m asr.lang "$data/local/dict" "$data/lang"
  f=; [ "$force" = true ] && f=--force  # --force: every GMM round's .done is removed and it retrains
  step "$ali_dir/.done" \
    python -m asr.gmm train --config "$conf_dir/gmm.yaml" --nj "$nj" --cmd "$cmd" --lang "$data/lang" \
      --data "$data/$train_set" --feats "$data/${train_set}_mfcc" \
      --dev-feats "$data/${dev_set}_mfcc" --exp "$exp" $f
  stage_end 2 "lang + GMM alignments"
fi
# ---- end stage 2 ----

# ---- stage 3: acoustic-model training, multi-GPU (issue 5) ----
# One torchrun process per GPU (DDP, nccl); --ngpu N overrides the GPU count. The feature
# memmap cache (exp/feat_cache, float16) is built once by a single process first (on node 0).
# Re-running after a kill resumes from the last checkpoint. What is run, for 8 GPUs
# (local/torchrun.sh: `torchrun --standalone` on one node; with --nnodes N, run on every node,
# a c10d rendezvous at --master; under SLURM: local/slurm_stage3.sbatch):
#   torchrun --standalone --nnodes=1 --nproc_per_node=8 -m asr.train --config conf/train.yaml \
#       --tag resnet22 --dir exp/am_resnet22 --resume
if run_stage 3; then
  stage_begin 3 "acoustic-model training"
  [ "$ngpu" = auto ] && ngpu=$( (nvidia-smi -L 2>/dev/null || true) | wc -l)
  [ "$ngpu" -ge 1 ] || ngpu=1
  resume=--resume; [ "$force" = true ] && resume=
  train_am() {  # train_am TAG: the feature cache by one process, then one process per GPU
    local dir=$exp/am_$1
    local args=(--config "$conf_dir/train.yaml" --tag "$1" --dir "$dir" --feat_dir "$data/${train_set}_logmel"
                --ali_dir "$ali_dir" --dev_feat_dir "$data/${dev_set}_logmel")
    log "stage 3: training $1 on $nnodes node(s) x $ngpu GPU(s) -> $dir"
    [ "$node_rank" = 0 ] && run_cmd python -m asr.train "${args[@]}" --prepare-only  # the others wait at the rendezvous
    run_cmd torchrun.sh --nnodes "$nnodes" --node-rank "$node_rank" --master "$master" --nproc-per-node "$ngpu" \
      -m asr.train "${args[@]}" $resume
  }
  for tag in $am_tags; do
    step_done="already trained" step "$exp/am_$tag/.done" train_am "$tag"
  done
  stage_end 3 "acoustic-model training"
fi
# ---- end stage 3 ----

# ---- stage 4: user's ARPA LM and HCLG (issue 4) ----
# G.fst from the ARPA file named in conf/graph.yaml, HCLG.fst in $graph_dir (the last GMM round's).
if run_stage 4; then
  stage_begin 4 "LM + HCLG"
  f=; [ "$force" = true ] && f=--force
  step "$graph_dir/.done" \
    python -m asr.graph build --config "$conf_dir/graph.yaml" --lang "$data/lang" \
      --lang-test "$data/lang_test" --exp "$exp" --model "$(basename "$(dirname "$graph_dir")")" $f
  stage_end 4 "LM + HCLG"
fi
# ---- end stage 4 ----

# ---- stage 5: decoding (issue 6) ----
# Each acoustic model decodes Hub5'00 ($data/eval2000_logmel) through $graph_dir (options:
# $conf_dir/decode.yaml, `decode:`) into $exp/am_<tag>/decode_eval2000: one lattice search per
# utterance (lat.ark/lat.scp), the LM-weight x insertion-penalty sweep rescored from the lattices
# (hyp_lmwt*_wip*.{txt,ctm}, CTM word times from the lexicon), hyp.txt, ali.ark, decode.json (RTF).
if run_stage 5; then
  stage_begin 5 "decoding"
  for tag in $am_tags; do
    dir=$exp/am_$tag/decode_$test_set
    step_done="already decoded" step "$dir/.done" \
      python -m asr.decode --config "$conf_dir/decode.yaml" --model-dir "$exp/am_$tag" \
        --graph-dir "$graph_dir" --feats "$data/${test_set}_logmel" --dir "$dir" --nj "$nj" \
        --cmd "$cmd" --lexicon "$data/local/dict/lexicon.txt"
  done
  stage_end 5 "decoding"
fi
# ---- end stage 5 ----

# ---- stage 6: Hub5'00 scoring and report (issues 6, 7) ----
# As Kaldi's local/score_sclite.sh + hubscr.pl: the NIST stm and glm of $data/eval2000, GLM
# mapping, hesitations/noise/fragments handled as csrfilt + sclite -D -F do, the whole set and the
# sw_ (Switchboard) / en_ (CallHome) portions plus their average, best over the LM-weight x
# insertion-penalty sweep: scoring/{wer.json, best_wer, wer-summary, <setting>/score.{sys,pra,dtl}}.
# The Kaldi way: each setting's CTM against the STM (words placed in segments by their midpoint).
if run_stage 6; then
  stage_begin 6 "Hub5'00 scoring and report"
  score_decode() {  # score_decode TAG DIR
    local dir=$2 ref=$data/$test_set hyps r2fc=()
    [ -f "$ref/reco2file_and_channel" ] && r2fc=(--reco2file-and-channel "$ref/reco2file_and_channel")
    hyps=("$dir"/hyp_lmwt*.ctm); [ -e "${hyps[0]}" ] || hyps=("$dir"/hyp_lmwt*.txt)  # the sweep's CTMs
    [ -e "${hyps[0]}" ] || hyps=("$dir/hyp.ctm"); [ -e "${hyps[0]}" ] || hyps=("$dir/hyp.txt")  # else 1-best
    run_cmd python -m asr.score --config "$conf_dir/decode.yaml" --ref "$ref/stm" --glm "$ref/glm" \
      --segments "$ref/segments" --dir "$dir/scoring" "${r2fc[@]}" --hyp "${hyps[@]}"
    run_cmd -q python -m asr.decode_report --dir "$dir"
    [ "$dry_run" = true ] || log "stage 6: $1: $(tr '\n' ';' < "$dir/scoring/best_wer")"
  }
  for tag in $am_tags; do
    dir=$exp/am_$tag/decode_$test_set
    step_done="already scored" step "$dir/.done_score" score_decode "$tag" "$dir"
  done
  stage_end 6 "Hub5'00 scoring and report"
fi
# ---- end stage 6 ----

# ---- stage 7: Table-3-style comparison (issue 7) ----
if run_stage 7; then
  report_cmd=(python -m asr.report --exp "$exp" --models $(for t in $am_tags; do echo "am_$t"; done)
              --test-set "$test_set")
  if [ "$dry_run" = true ]; then
    log "stage 7 (dry run): ${report_cmd[*]}"
  else
    log "stage 7: comparison report -> $exp/report.json"
    "${report_cmd[@]}"
  fi
fi
# ---- end stage 7 ----

if [ "$dry_run" = true ] && [ "$dry_run_missing" = true ]; then
  log "dry run: some inputs are missing (listed under stage 0); fix conf/corpora.yaml"; exit 1
fi
