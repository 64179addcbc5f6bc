#!/usr/bin/env bash
# Switchboard 2000h (Switchboard-1 + Fisher) training, Hub5'00 (eval2000) evaluation.
# The LDC corpora are the user's: their paths are in conf/corpora.yaml.
#   ./run.sh [--stage N] [--stop-stage M] [--nj J] [--ngpu N] [--force true] [--dry-run true]
#            [--train-set train] [--dev-set dev] [--test-set eval2000] [--am-tags "resnet22 ..."]
# Stages: 0 data prep, 1 features, 2 lang + GMM alignments to 32k CD states (or Kaldi import),
# 3 acoustic-model training (multi-GPU), 4 LM + HCLG, 5 decoding, 6 Hub5'00 scoring + report,
# 7 Table-3-style comparison.
set -euo pipefail
cd "$(dirname "$0")"
. ../../path.sh
. ../../local/log.sh

stage=0
stop_stage=100
nj=8
force=false
dry_run=false
dry_run_missing=false  # set by stage 0's input check; the dry run still prints every stage's plan
ngpu=auto           # GPUs for stage 3 (auto: as many as nvidia-smi lists, else 1 CPU process)
train_set=train
dev_set=dev
test_set=eval2000
am_tags="resnet22 bl_resnet22_a2_b3"  # models of stages 3, 5-7 (conf/train_<tag>.yaml), baseline first
conf_dir=conf
data=data
exp=exp
. ../../local/parse_options.sh

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
    # Check every LDC input path in corpora.yaml and print the plan; stop, naming what is missing.
    "${swbd_prep[@]}" --dry-run || { log "stage 0 (dry run): inputs missing (see above)"; dry_run_missing=true; }
    log "stage 0 (dry run): ${swbd_prep[*]}"
  elif ! is_done "$data/.done_swbd_prep"; then
    "${swbd_prep[@]}"
    mark_done "$data/.done_swbd_prep"
  else
    log "stage 0: $data already prepared (--force true redoes it)"
  fi
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
    feat_cmd=(python -m asr.features compute --kind $kind "${feat_conf[@]}" --nj "$nj"
              --batch-size 1000 --data $(for s in $feat_sets; do echo "$data/$s"; done)
              --out $(for s in $feat_sets; do echo "$data/${s}_$kind"; done))
    if [ "$dry_run" = true ]; then
      log "stage 1 (dry run): ${feat_cmd[*]}"
    elif ! is_done "$data/.done_feats_$kind"; then
      "${feat_cmd[@]}"
      mark_done "$data/.done_feats_$kind"
    fi
  done
  stage_end 1 "features"
fi
# ---- end stage 1 ----

# ---- stage 2: lang, GMMs, 32k-leaf tree, alignments or Kaldi import (issue 4) ----
# conf/gmm.yaml: mono -> tri1 (3200 leaves) -> tri2 (32000 leaves) -> $exp/tri2_ali, or, with
# `import_ali` set, the user's Kaldi `ali-to-pdf` alignments checked against the features.
if run_stage 2; then
  stage_begin 2 "lang + GMM alignments"
  lang_cmd=(python -m asr.lang "$data/local/dict" "$data/lang")
  gmm_cmd=(python -m asr.gmm train --config "$conf_dir/gmm.yaml" --nj "$nj" --lang "$data/lang"
           --data "$data/$train_set" --feats "$data/${train_set}_mfcc"
           --dev-feats "$data/${dev_set}_mfcc" --exp "$exp")
  if [ "$dry_run" = true ]; then
    log "stage 2 (dry run): ${lang_cmd[*]}"; log "stage 2 (dry run): ${gmm_cmd[*]}"
  else
    if ! is_done "$data/lang/.done"; then
      "${lang_cmd[@]}"; mark_done "$data/lang/.done"
    fi
    if ! is_done "$exp/tri2_ali/.done"; then
      [ "$force" = true ] && rm -f "$exp"/{mono,tri1,tri2}/.done
      "${gmm_cmd[@]}"; mark_done "$exp/tri2_ali/.done"
    fi
  fi
  stage_end 2 "lang + GMM alignments"
fi
# ---- end stage 2 ----

# ---- stage 3: acoustic-model training, multi-GPU (issue 5) ----
# One torchrun process per GPU (DDP, nccl); --ngpu N overrides the GPU count. The feature
# memmap cache (exp/feat_cache, float16) is built once by a single process first. Re-running
# after a kill resumes from the last checkpoint. What is run, for 8 GPUs:
#   torchrun --standalone --nproc_per_node=8 -m asr.train --config conf/train_resnet22.yaml \
#       --dir exp/am_resnet22 --resume
if run_stage 3; then
  stage_begin 3 "acoustic-model training"
  [ "$ngpu" = auto ] && ngpu=$( (nvidia-smi -L 2>/dev/null || true) | wc -l)
  [ "$ngpu" -ge 1 ] || ngpu=1
  for tag in $am_tags; do
    dir=$exp/am_$tag
    if is_done "$dir/.done"; then
      log "stage 3: $dir already trained (--force true retrains)"; continue
    fi
    resume=--resume; [ "$force" = true ] && resume=
    args=(--config "$conf_dir/train_$tag.yaml" --dir "$dir" --feat_dir "$data/${train_set}_logmel"
          --ali_dir "$exp/tri2_ali" --dev_feat_dir "$data/${dev_set}_logmel")
    prep=(python -m asr.train "${args[@]}" --prepare-only)
    launch=(torchrun --standalone --nproc_per_node="$ngpu" -m asr.train "${args[@]}" $resume)
    log "stage 3: training $tag on $ngpu GPU(s) -> $dir"
    if [ "$dry_run" = true ]; then
      log "stage 3 (dry run): ${prep[*]}"; log "stage 3 (dry run): ${launch[*]}"; continue
    fi
    "${prep[@]}"
    "${launch[@]}"
    mark_done "$dir/.done"
  done
  stage_end 3 "acoustic-model training"
fi
# ---- end stage 3 ----

# ---- stage 4: user's ARPA LM and HCLG (issue 4) ----
# G.fst from the ARPA file named in conf/graph.yaml, HCLG.fst in $exp/tri2/graph.
if run_stage 4; then
  stage_begin 4 "LM + HCLG"
  graph_cmd=(python -m asr.graph build --config "$conf_dir/graph.yaml" --lang "$data/lang"
             --lang-test "$data/lang_test" --exp "$exp")
  if [ "$dry_run" = true ]; then
    log "stage 4 (dry run): ${graph_cmd[*]}"
  elif ! is_done "$exp/tri2/graph/.done"; then
    [ "$force" = true ] && graph_cmd+=(--force)
    "${graph_cmd[@]}"; mark_done "$exp/tri2/graph/.done"
  fi
  stage_end 4 "LM + HCLG"
fi
# ---- end stage 4 ----

# ---- stage 5: decoding (issue 6) ----
# Each acoustic model decodes Hub5'00 ($data/eval2000_logmel) through $exp/tri2/graph (options:
# $conf_dir/decode.yaml, `decode:`) into $exp/am_<tag>/decode_eval2000: one lattice search per
# utterance (lat.ark/lat.scp), the LM-weight x insertion-penalty sweep rescored from the lattices
# (hyp_lmwt*_wip*.{txt,ctm}, CTM word times from the lexicon), hyp.txt, ali.ark, decode.json (RTF).
if run_stage 5; then
  stage_begin 5 "decoding"
  for tag in $am_tags; do
    dir=$exp/am_$tag/decode_$test_set
    dec_cmd=(python -m asr.decode --config "$conf_dir/decode.yaml" --model-dir "$exp/am_$tag"
             --graph-dir "$exp/tri2/graph" --feats "$data/${test_set}_logmel" --dir "$dir" --nj "$nj"
             --lexicon "$data/local/dict/lexicon.txt")
    if [ "$dry_run" = true ]; then
      log "stage 5 (dry run): ${dec_cmd[*]}"; continue
    fi
    if is_done "$dir/.done"; then
      log "stage 5: $dir already decoded (--force true redoes it)"; continue
    fi
    "${dec_cmd[@]}"
    mark_done "$dir/.done"
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
  for tag in $am_tags; do
    dir=$exp/am_$tag/decode_$test_set
    ref=$data/$test_set
    score_cmd=(python -m asr.score --config "$conf_dir/decode.yaml" --ref "$ref/stm" --glm "$ref/glm"
               --segments "$ref/segments" --dir "$dir/scoring")
    [ -f "$ref/reco2file_and_channel" ] && score_cmd+=(--reco2file-and-channel "$ref/reco2file_and_channel")
    if [ "$dry_run" = true ]; then
      log "stage 6 (dry run): ${score_cmd[*]} --hyp $dir/hyp_lmwt*.ctm"; continue
    fi
    if is_done "$dir/.done_score"; then
      log "stage 6: $dir already scored (--force true redoes it)"; continue
    fi
    hyps=("$dir"/hyp_lmwt*.ctm); [ -e "${hyps[0]}" ] || hyps=("$dir"/hyp_lmwt*.txt)  # the sweep's CTMs
    [ -e "${hyps[0]}" ] || hyps=("$dir/hyp.ctm"); [ -e "${hyps[0]}" ] || hyps=("$dir/hyp.txt")  # else 1-best
    "${score_cmd[@]}" --hyp "${hyps[@]}"
    python -m asr.decode_report --dir "$dir" > /dev/null
    log "stage 6: $tag: $(tr '\n' ';' < "$dir/scoring/best_wer")"
    mark_done "$dir/.done_score"
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
