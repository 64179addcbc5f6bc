#!/usr/bin/env bash
# Embedded synthetic telephone corpus: from nothing to a WER report on a laptop CPU.
#   ./run.sh [--stage N] [--stop-stage M] [--nj J] [--force true] [--conf-dir conf]
#            [--data data] [--exp exp] [--corpus corpus] [--am-tags "resnet22 ..."]
#            [--test-set test] [--tune-set dev]
# Every stage reads its options from $conf_dir/<stage>.yaml (conf/tiny/ is the smoke-test size)
# and writes under $data, $exp (Kaldi layout) and $corpus (synthesised audio).
# Stages: 0 corpus + data prep, 1 features, 2 lang + GMM alignments + tree, 3 acoustic-model
# training, 4 LM + HCLG, 5 decoding, 6 scoring + per-decode reports, 7 Table-3-style comparison.
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
am_tags="resnet22 bl_resnet22_a2_b3"  # models of stages 3, 5-7 ($conf_dir/train_<tag>.yaml), baseline first
test_set=test   # the set the report's WER is measured on
tune_set=dev    # the set whose best LM weight/penalty is applied to $test_set ("" for none)
. ../../local/parse_options.sh

# ---- stage 0: corpus synthesis and data preparation (issue 3) ----
# eSpeak NG speech through a telephone channel into $corpus (options: $conf_dir/corpus.yaml),
# lhotse manifests in $data/manifests, dict dir $data/local/dict, Kaldi data dirs
# $data/{train,dev,test} (speaker-disjoint), all validated.
if run_stage 0; then
  stage_begin 0 "corpus synthesis and data preparation"
  if ! is_done "$data/.done_synth"; then
    python -m asr.corpus.synth --config "$conf_dir/corpus.yaml" --corpus "$corpus" \
      --manifests "$data/manifests" --nj "$nj"
    mark_done "$data/.done_synth"
  fi
  if ! is_done "$data/.done_prep"; then
    python -m asr.corpus.lexicon --word-list "$corpus/vocab.txt" --out "$data/local/dict"
    python -m asr.corpus.datadir write --manifests "$data/manifests" --prefix synth \
      --lexicon "$data/local/dict/lexicon.txt" \
      --set train dev test --out "$data/train" "$data/dev" "$data/test"
    python -m asr.corpus.datadir validate "$data/train" "$data/dev" "$data/test"
    mark_done "$data/.done_prep"
  fi
  stage_end 0 "corpus synthesis and data preparation"
fi
# ---- end stage 0 ----

# ---- stage 1: features (issue 3) ----
# MFCC+deltas (GMMs) and logmel+deltas (acoustic models) into $data/<set>_{mfcc,logmel} with
# per-speaker CMVN stats; options: $conf_dir/features.yaml over ../../conf/{mfcc,logmel}.yaml.
if run_stage 1; then
  stage_begin 1 "features"
  for kind in mfcc logmel; do
    if ! is_done "$data/.done_feats_$kind"; then
      python -m asr.features compute --kind $kind --config "$conf_dir/features.yaml" --nj "$nj" \
        --data "$data/train" "$data/dev" "$data/test" \
        --out "$data/train_$kind" "$data/dev_$kind" "$data/test_$kind"
      mark_done "$data/.done_feats_$kind"
    fi
  done
  stage_end 1 "features"
fi
# ---- end stage 1 ----

# ---- stage 2: lang, monophone/triphone GMMs, tree, alignments (issue 4) ----
# lang dir from the dict dir; mono -> tri1 -> tri2 on MFCC+deltas (conf/gmm.yaml); the final
# alignments (train + dev) land in $exp/tri2_ali. Resumes per model and per iteration.
if run_stage 2; then
  stage_begin 2 "lang + GMM alignments"
  if ! is_done "$data/lang/.done"; then
    log "stage 2: lang dir $data/lang from $data/local/dict"
    python -m asr.lang "$data/local/dict" "$data/lang"
    mark_done "$data/lang/.done"
  fi
  if ! is_done "$exp/tri2_ali/.done"; then
    [ "$force" = true ] && rm -f "$exp"/{mono,tri1,tri2}/.done
    log "stage 2: GMM training (mono, tri1, tri2) -> $exp/tri2_ali"
    python -m asr.gmm train --config "$conf_dir/gmm.yaml" --nj "$nj" --lang "$data/lang" \
      --data "$data/train" --feats "$data/train_mfcc" --dev-feats "$data/dev_mfcc" --exp "$exp"
    mark_done "$exp/tri2_ali/.done"
  fi
  stage_end 2 "lang + GMM alignments"
fi
# ---- end stage 2 ----

# ---- stage 3: acoustic-model training (issue 5) ----
# ResNet-22 and bL-ResNet-22 (a2_b3) of the same width on the tri2 pdf alignments; dev alignments
# are the CV set. Re-running after a kill resumes each model from its last checkpoint.
if run_stage 3; then
  stage_begin 3 "acoustic-model training"
  for tag in $am_tags; do
    dir=$exp/am_$tag
    if is_done "$dir/.done"; then
      log "stage 3: $dir already trained (--force true retrains)"; continue
    fi
    resume=--resume; [ "$force" = true ] && resume=
    log "stage 3: training $tag -> $dir"
    python -m asr.train --config "$conf_dir/train_$tag.yaml" --dir "$dir" $resume \
      --feat_dir "$data/train_logmel" --ali_dir "$exp/tri2_ali" --dev_feat_dir "$data/dev_logmel"
    mark_done "$dir/.done"
  done
  stage_end 3 "acoustic-model training"
fi
# ---- end stage 3 ----

# ---- stage 4: language model and HCLG (issue 4) ----
# Kneser-Ney LM on the training transcripts (kaldingram, conf/graph.yaml), G.fst in
# $data/lang_test, HCLG.fst per GMM model in $exp/<model>/graph (the DNN decoder uses
# $exp/tri2/graph), and a GMM decode of the test set as a check of the alignments.
if run_stage 4; then
  stage_begin 4 "LM + HCLG"
  if ! is_done "$exp/tri2/graph/.done"; then
    f=; [ "$force" = true ] && f=--force
    python -m asr.graph build --config "$conf_dir/graph.yaml" --lang "$data/lang" \
      --lang-test "$data/lang_test" --exp "$exp" --text "$data/train/text" \
      --test-feats "$data/test_mfcc" --dev-feats "$data/dev_mfcc" $f
    mark_done "$exp/tri2/graph/.done"
  fi
  stage_end 4 "LM + HCLG"
fi
# ---- end stage 4 ----

# ---- stage 5: decoding (issue 6) ----
# Each model of stage 3 decodes $data/{$tune_set,$test_set}_logmel through $exp/tri2/graph/HCLG.fst
# (options: $conf_dir/decode.yaml, `decode:`): $exp/am_<tag>/decode_<set>/{hyp.txt, lat.ark + lat.scp
# (one lattice search per utterance), hyp_lmwt*_wip*.{txt,ctm} (the LM-weight x insertion-penalty
# sweep rescored from the lattices; CTM word times from the lexicon), ali.ark, decode.json (RTF)}.
if run_stage 5; then
  stage_begin 5 "decoding"
  for tag in $am_tags; do
    for set in $tune_set $test_set; do
      dir=$exp/am_$tag/decode_$set
      if is_done "$dir/.done"; then
        log "stage 5: $dir already decoded (--force true redoes it)"; continue
      fi
      log "stage 5: decoding $data/${set}_logmel with $exp/am_$tag -> $dir"
      python -m asr.decode --config "$conf_dir/decode.yaml" --model-dir "$exp/am_$tag" \
        --graph-dir "$exp/tri2/graph" --feats "$data/${set}_logmel" --dir "$dir" --nj "$nj" \
        --lexicon "$data/local/dict/lexicon.txt"
      mark_done "$dir/.done"
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
  for tag in $am_tags; do
    for set in $tune_set $test_set; do
      dir=$exp/am_$tag/decode_$set
      if is_done "$dir/.done_score"; then
        log "stage 6: $dir already scored (--force true redoes it)"; continue
      fi
      log "stage 6: scoring $dir"
      hyps=("$dir"/hyp_lmwt*.txt); [ -e "${hyps[0]}" ] || hyps=("$dir/hyp.txt")  # the sweep, else 1-best
      python -m asr.score --config "$conf_dir/decode.yaml" --ref "$data/$set/text" \
        --hyp "${hyps[@]}" --words-txt "$exp/tri2/graph/words.txt" --dir "$dir/scoring"
      python -m asr.decode_report --dir "$dir" > /dev/null
      log "stage 6: $(head -n 1 "$dir/scoring/best_wer") ($tag on $set; report: $dir/report.md)"
      mark_done "$dir/.done_score"
    done
  done
  stage_end 6 "scoring and report"
fi
# ---- end stage 6 ----

# ---- stage 7: Table-3-style comparison (issue 7) ----
# FLOPs/frame (and ratio), params, CV frame accuracy, test WER (at the LM weight and penalty
# tuned on $tune_set), decode RTF and training frames/s of every model: printed, and written to
# $exp/report.{json,md,png}.
if run_stage 7; then
  log "stage 7: comparison report -> $exp/report.json"
  python -m asr.report --exp "$exp" --models $(for t in $am_tags; do echo "am_$t"; done) \
    --test-set "$test_set" --tune-set "$tune_set"
fi
# ---- end stage 7 ----
