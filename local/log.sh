# Shared recipe helpers: log lines with time and caller, and stage guards with .done markers.
log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') ($fname:${BASH_LINENO[0]}:${FUNCNAME[1]:-main}) $*"
}
# run_stage N NAME: true when stage N is inside [stage, stop_stage].
run_stage() {
  [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]
}
# is_done MARKER / mark_done MARKER: a finished step leaves MARKER; force=true redoes it.
is_done() { [ "${force:-false}" != true ] && [ -f "$1" ]; }
mark_done() { mkdir -p "$(dirname "$1")" && date '+%s' > "$1"; }

# stage_begin N NAME / stage_end N NAME: log a stage's start and wall time, and record the time
# in $exp/stage_times (one "N NAME SECONDS" line per run of the stage; the report sums the
# latest line of each stage, so a resumed run counts each stage once).
stage_begin() {
  _stage_t0=$SECONDS
  log "stage $1: $2 (begin)"
}
stage_end() {
  local dt=$((SECONDS - _stage_t0))
  log "stage $1: $2 done in ${dt}s"
  [ "${dry_run:-false}" = true ] && return 0
  mkdir -p "$exp" && echo "$1 $2 $dt" >> "$exp/stage_times"
}
