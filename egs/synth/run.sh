#!/usr/bin/env bash
# Embedded synthetic telephone corpus: from nothing to a WER report on a laptop CPU.
#   ./run.sh [--stage N] [--stop-stage M] [--nj J] [--cmd local] [--force true] [--conf-dir conf]
#            [--data data] [--exp exp] [--corpus corpus] [--am-tags "resnet22 ..." | all]
#            [--test-sets "test test_heldout"] [--tune-set dev] [--lattice-sets dev] [--seeds N]
#            (./run.sh --help lists every option)
# Every stage reads its options from $conf_dir/<stage>.yaml (conf/tiny/ is the smoke-test size)
# and writes under $data, $exp (Kaldi layout) and $corpus (synthesised audio).
# Stages: 0 corpus + data prep, 1 features, 2 lang + GMM alignments + tree, 3 acoustic-model
# training, 4 LM + HCLG, 5 decoding, 6 scoring + per-decode reports, 7 Table-3-style comparison.
set -euo pipefail
cd "$(dirname "$0")"
. ../../path.sh
. ../../local/log.sh

stage=0         # first stage to run (0-7)
stop_stage=7    # last stage to run (0-7)
nj=2            # parallel jobs
cmd=local       # where stages 1, 2, 5 run their jobs: local, dask://HOST:PORT, slurm|pbs|sge (asr/executor.py)
force=false     # true: redo finished steps (their .done markers are removed first)
conf_dir=conf   # stage configs: $conf_dir/<stage>.yaml (conf/tiny: the smoke-test size)
data=data       # data dirs, features, lang
exp=exp         # models, graphs, decodes, reports
corpus=corpus   # synthesised audio
am_tags="resnet22 bl_resnet22_a2_b3"  # models of stages 3, 5-7 (tags of $conf_dir/train.yaml), baseline first; all: Table 3
test_sets="test test_heldout"  # sets decoded and reported; the first is the report's `wer`
tune_set=dev    # the set whose best LM weight/penalty is applied to the test sets ("" for none)
lattice_sets=dev  # sets decoded with lattices + the 33-setting sweep ("all": every set); the others: 1-best at the tuned setting
seeds=1         # training runs per model, seeds seed, seed+1, ... of train.yaml (exp/am_<tag>, am_<tag>_seed2, ...)
. ../../local/parse_options.sh
check_stage_range 0 7
[ "$seeds" -ge 1 ] || { echo "$0: --seeds must be at least 1, not '$seeds'" >&2; exit 1; }
am_tags=$(python -m asr.train tags "$am_tags")  # "all": the seven Table-3 speech models, baseline first
if [ "$stop_stage" -ge 2 ]; then  # names Python computes from the GMM config (stages 2-7)
  ali_dir=$(python -m asr.gmm final-dir --config "$conf_dir/gmm.yaml" --exp "$exp")            # <last round>_ali
  graph_dir=$(python -m asr.gmm final-dir --config "$conf_dir/gmm.yaml" --exp "$exp" --model)/graph
fi
sets="train train_sp dev test test_heldout"   # the Kaldi data dirs of stage 0
# model dirs of every (tag, seed): exp/am_<tag> (seed 1), exp/am_<tag>_seed<k> (k = 2 .. seeds)
model_dirs() { local tag k; for tag in $am_tags; do for k in $(seq 1 "$seeds"); do
  if [ "$k" -eq 1 ]; then echo "am_$tag"; else echo "am_${tag}_seed$k"; fi; done; done; }
with_lattice() {  # with_lattice SET: is SET decoded with lattices and the sweep?
  [ "$lattice_sets" = all ] || [ -z "$tune_set" ] || [[ " $lattice_sets " == *" $1 "* ]]
}
score_decode() {  # score_decode SET DIR: sclite-style scoring of a decode dir and its report
  local set=$1 dir=$2 hyps
  hyps=("$dir"/hyp_lmwt*.txt); [ -e "${hyps[0]}" ] || hyps=("$dir/hyp.txt")  # the sweep, else 1-best
  run_cmd python -m asr.score --config "$conf_dir/decode.yaml" --ref "$data/$set/text" \
    --hyp "${hyps[@]}" --words-txt "$graph_dir/words.txt" --dir "$dir/scoring"
  run_cmd -q python -m asr.decode_report --dir "$dir"
  log "stage ${_stage_now:-?}: $(head -n 1 "$dir/scoring/best_wer") ($(basename "$(dirname "$dir")") on $set; report: $dir/report.md)"
}

# ---- stage 0: corpus synthesis and data preparation (issues 3, 12) ----
# eSpeak NG + flite speech (train/dev/test, disjoint voices) and Festival speech (test_heldout:
# an engine no other set uses) through a telephone channel (room, noise, band, mu-law/GSM) into
# $corpus (options: $conf_dir/corpus.yaml); train_sp = train speed-perturbed 0.9/1.0/1.1
# (lhotse). lhotse manifests in $data/manifests, dict dir $data/local/dict, Kaldi data dirs
# $data/{train,train_sp,dev,test,test_heldout} (speaker-disjoint), all validated; LM training
# text (train transcripts + extra grammar sentences) in $data/local/lm/text.
if run_stage 0; then
  stage_begin 0 "corpus synthesis and data preparation"
  step "$data/.done_synth" \
    python -m asr.corpus.synth --config "$conf_dir/corpus.yaml" --corpus "$corpus" \
      --manifests "$data/manifests" --nj "$nj"
  prepare_data() {
    run_cmd python -m asr.corpus.lexicon --word-list "$corpus/vocab.txt" --out "$data/local/dict"
    run_cmd python -m asr.corpus.datadir write --manifests "$data/manifests" --prefix synth \
      --lexicon "$data/local/dict/lexicon.txt" \
      --set $sets --out $(for s in $sets; do echo "$data/$s"; done)
    run_cmd python -m asr.corpus.datadir validate $(for s in $sets; do echo "$data/$s"; done)
    mkdir -p "$data/local/lm"
    cat "$data/train/text" "$corpus/lm_text.txt" > "$data/local/lm/text"
  }
  step "$data/.done_prep" prepare_data
  stage_end 0 "corpus synthesis and data preparation"
fi
# ---- end stage 0 ----

# ---- stage 1: features (issue 3) ----
# MFCC+deltas (GMMs: train, train_sp, dev, test) and logmel+deltas (acoustic models: train_sp,
# dev, test, test_heldout) into $data/<set>_{mfcc,logmel} with per-speaker CMVN stats; options:
# $conf_dir/features.yaml over ../../conf/{mfcc,logmel}.yaml.
if run_stage 1; then
  stage_begin 1 "features"
  for kind in mfcc logmel; do
    if [ $kind = mfcc ]; then fsets="train train_sp dev test"; else fsets="train_sp dev $test_sets"; fi
    step "$data/.done_feats_$kind" \
      python -m asr.features compute --kind $kind --config "$conf_dir/features.yaml" --nj "$nj" --cmd "$cmd" \
        --data $(for s in $fsets; do echo "$data/$s"; done) \
        --out $(for s in $fsets; do echo "$data/${s}_$kind"; done)
  done
  stage_end 1 "features"
fi
# ---- end stage 1 ----

# ---- stage 2: lang, monophone/triphone GMMs, tree, alignments (issue 4) ----
# lang dir from the dict dir; mono -> tri1 -> tri2 on MFCC+deltas (conf/gmm.yaml); the final
# alignments (train + dev) land in $exp/<last round>_ali (tri2_ali); the final model then aligns the
# speed-perturbed train_sp into $exp/<last round>_ali_sp (Kaldi's align_si.sh on data/train_sp).
# Resumes per model and per iteration.
if run_stage 2; then
  stage_begin 2 "lang + GMM alignments"
  step "$data/lang/.done" python -m asr.lang "$data/local/dict" "$data/lang"
  f=; [ "$force" = true ] && f=--force  # --force: every GMM round's .done is removed and it retrains
  step "$ali_dir/.done" \
    python -m asr.gmm train --config "$conf_dir/gmm.yaml" --nj "$nj" --cmd "$cmd" --lang "$data/lang" \
      --data "$data/train" --feats "$data/train_mfcc" --dev-feats "$data/dev_mfcc" --exp "$exp" $f
  step "${ali_dir}_sp/.done" \
    python -m asr.gmm align --config "$conf_dir/gmm.yaml" --cmd "$cmd" --model-dir "$ali_dir" --lang "$data/lang" \
      --data "$data/train_sp" --feats "$data/train_sp_mfcc" --out "${ali_dir}_sp"
  stage_end 2 "lang + GMM alignments"
fi
# ---- end stage 2 ----

# ---- stage 3: acoustic-model training (issue 5) ----
# ResNet-22 and bL-ResNet-22 (a2_b3) of the same width on the speed-perturbed train_sp and its
# tri2 pdf alignments; dev alignments are the CV set; --seeds N trains each N times (seeds
# seed .. seed+N-1 of train.yaml). Re-running after a kill resumes each model from its last checkpoint.
if run_stage 3; then
  stage_begin 3 "acoustic-model training"
  resume=--resume; [ "$force" = true ] && resume=
  base_seed=$(python -c "import sys, yaml; print(int(yaml.safe_load(open(sys.argv[1]))['seed']))" "$conf_dir/train.yaml")
  for tag in $am_tags; do
    for k in $(seq 1 "$seeds"); do
      dir=$exp/am_$tag; [ "$k" -eq 1 ] || dir=${dir}_seed$k
      step_done="already trained" step "$dir/.done" \
        python -m asr.train --config "$conf_dir/train.yaml" --tag "$tag" --dir "$dir" $resume \
          --feat_dir "$data/train_sp_logmel" --ali_dir "$ali_dir" --ali_scp "${ali_dir}_sp/pdf_ali.scp" \
          --dev_feat_dir "$data/dev_logmel" --seed $((base_seed + k - 1))
    done
  done
  stage_end 3 "acoustic-model training"
fi
# ---- end stage 3 ----

# ---- stage 4: language model and HCLG (issue 4) ----
# Kneser-Ney LM on $data/local/lm/text (train transcripts + grammar text; kaldingram,
# conf/graph.yaml), G.fst in
# $data/lang_test, HCLG.fst per GMM model in $exp/<model>/graph (the DNN decoder uses $graph_dir,
# the last round's), and a GMM decode of the test set as a check of the alignments.
if run_stage 4; then
  stage_begin 4 "LM + HCLG"
  f=; [ "$force" = true ] && f=--force
  graph_and_check() {
    run_cmd python -m asr.graph build --config "$conf_dir/graph.yaml" --lang "$data/lang" \
      --lang-test "$data/lang_test" --exp "$exp" --text "$data/local/lm/text" \
      --model "$(basename "$(dirname "$graph_dir")")" $f
    run_cmd python -m asr.gmm decode-check --config "$conf_dir/graph.yaml" --exp "$exp" \
      --test-feats "$data/test_mfcc" --dev-feats "$data/dev_mfcc" $f
  }
  step "$graph_dir/.done" graph_and_check
  stage_end 4 "LM + HCLG"
fi
# ---- end stage 4 ----

# ---- stage 5: decoding (issues 6, 28) ----
# Each model of stage 3 decodes $data/{$tune_set,$test_sets}_logmel through $graph_dir/HCLG.fst
# (options: $conf_dir/decode.yaml, `decode:`). Sets of $lattice_sets (default: the tune set) get one
# lattice search per utterance: lat.ark + lat.scp, hyp_lmwt*_wip*.{txt,ctm} (the LM-weight x
# insertion-penalty sweep rescored from the lattices; CTM word times from the lexicon). The tune set
# is scored at once; the fast 1-best search (FasterDecoder: beam and max-active, no lattice) then
# sweeps the LM weights on it ($exp/<model>/decode_${tune_set}_1best, one search per weight), and the
# other sets are decoded by that search at the weight that scored best there: hyp.txt = hyp_<setting>.txt,
# hyp.ctm. (A setting tuned on the lattices does not carry over: rescoring a lattice searched at LM
# weight 1/acoustic-scale is not a search at another weight.)
# decode.json: RTF of the network pass and of the search apart, and which search ran.
if run_stage 5; then
  stage_begin 5 "decoding"
  for d in $(model_dirs); do
    for set in $tune_set $test_sets; do
      dir=$exp/$d/decode_$set
      opts=()
      if ! with_lattice "$set"; then
        best=$exp/$d/decode_${tune_set}_1best/scoring/wer.json
        [ -f "$best" ] || { echo "$0: $best missing: decode and score $tune_set first" >&2; exit 1; }
        opts=(--setting "$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['best_setting'])" "$best")")
      fi
      step_done="already decoded" step "$dir/.done" \
        python -m asr.decode --config "$conf_dir/decode.yaml" --model-dir "$exp/$d" \
          --graph-dir "$graph_dir" --feats "$data/${set}_logmel" --dir "$dir" --nj "$nj" \
          --cmd "$cmd" --lexicon "$data/local/dict/lexicon.txt" ${opts[@]+"${opts[@]}"}
      if [ "$set" = "$tune_set" ]; then
        step_done="already scored" step "$dir/.done_score" score_decode "$set" "$dir"
        if [ "$lattice_sets" != all ]; then  # the fast search's own LM-weight sweep picks its setting
          fast=$exp/$d/decode_${tune_set}_1best
          step_done="already decoded" step "$fast/.done" \
            python -m asr.decode --config "$conf_dir/decode.yaml" --model-dir "$exp/$d" \
              --graph-dir "$graph_dir" --feats "$data/${set}_logmel" --dir "$fast" --nj "$nj" \
              --cmd "$cmd" --sweep research --word-ins-penalties 0
          step_done="already scored" step "$fast/.done_score" score_decode "$set" "$fast"
        fi
      fi
    done
  done
  stage_end 5 "decoding"
fi
# ---- end stage 5 ----

# ---- stage 6: scoring and report (issues 6, 7) ----
# Scoring with sclite's own alignment rule (identical per-utterance counts) of every hypothesis file
# against $data/<set>/text (`score:` options in
# $conf_dir/decode.yaml): scoring/{wer.json, wer-summary, best_wer, <setting>/score.{sys,raw,pra,dtl},
# confusion_pairs}; then report.md + report.png + wer.json in each decode dir.
if run_stage 6; then
  stage_begin 6 "scoring and report"
  for d in $(model_dirs); do
    for set in $tune_set $test_sets; do
      dir=$exp/$d/decode_$set
      step_done="already scored" step "$dir/.done_score" score_decode "$set" "$dir"
    done
  done
  stage_end 6 "scoring and report"
fi
# ---- end stage 6 ----

# ---- stage 7: Table-3-style comparison (issue 7) ----
# FLOPs/frame (and ratio), params, CV frame accuracy, WER on each of $test_sets (at the LM weight
# and penalty tuned on $tune_set) with 95% bootstrap intervals, the paired difference of each
# model to the baseline (interval, p-value), test-set OOV rate and LM perplexity, decode RTF and
# training frames/s of every model: printed, and written to $exp/report.{json,md,png}.
if run_stage 7; then
  log "stage 7: comparison report -> $exp/report.json"
  report_tune=$tune_set  # the sweep whose best setting the test sets were decoded at
  [ -n "$tune_set" ] && [ "$lattice_sets" != all ] && report_tune=${tune_set}_1best
  python -m asr.report --exp "$exp" --models $(for t in $am_tags; do echo "am_$t"; done) \
    --test-sets $test_sets --tune-set "$report_tune" --lm "$data/lang_test/lm.arpa" \
    --words-txt "$graph_dir/words.txt" --seeds "$seeds"
fi
# ---- end stage 7 ----
if [ -f "$exp/stage_times" ]; then  # the latest time of each stage, as the report counts them
  log "stage wall times: $(awk '{t[$1] = $NF} END {for (k = 0; k <= 7; k++) if (k in t) {s += t[k]; printf "%d: %ds, ", k, t[k]}; printf "total %ds", s}' "$exp/stage_times")"
fi
