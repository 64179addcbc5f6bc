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
  _stage_now=$1
  log "stage $1: $2 (begin)"
}
stage_end() {
  local dt=$((SECONDS - _stage_t0))
  log "stage $1: $2 done in ${dt}s"
  [ "${dry_run:-false}" = true ] && return 0
  mkdir -p "$exp" && echo "$1 $2 $dt" >> "$exp/stage_times"
}

# check_stage_range FIRST LAST: --stage and --stop-stage are whole numbers within the recipe's
# stages FIRST..LAST, with stage <= stop-stage; otherwise exit 1 naming them.
check_stage_range() {
  local v
  for v in stage stop_stage; do
    if ! [[ "${!v}" =~ ^[0-9]+$ ]] || [ "${!v}" -lt "$1" ] || [ "${!v}" -gt "$2" ]; then
      echo "$0: --${v//_/-} must be a stage number from $1 to $2, not '${!v}'" >&2; exit 1
    fi
  done
  if [ "$stage" -gt "$stop_stage" ]; then
    echo "$0: --stage $stage is after --stop-stage $stop_stage: nothing would run" >&2; exit 1
  fi
}

# run_cmd [-q] CMD...: log CMD and run it; in a dry run (dry_run=true) only log it.
# -q: discard CMD's standard output.
run_cmd() {
  local quiet=false
  [ "${1:-}" = -q ] && { quiet=true; shift; }
  if [ "${dry_run:-false}" = true ]; then
    log "stage ${_stage_now:-?} (dry run): $*"; return 0
  fi
  log "stage ${_stage_now:-?}: $*"
  if [ "$quiet" = true ]; then "$@" > /dev/null; else "$@"; fi
}

# step MARKER CMD...: one resumable unit of work, done once.
#  - dry run: print what would run (CMD, or, when CMD is a shell function, the commands it runs
#    through run_cmd) and return;
#  - MARKER exists and force is not true: log that the step is done (`step_done="already
#    trained" step ...` words it) and return;
#  - otherwise remove MARKER first (so a forced redo that is interrupted is redone by a plain
#    re-run), run CMD (set -e stops the recipe when it fails) and write MARKER.
step() {
  local marker=$1; shift
  if [ "${dry_run:-false}" = true ]; then
    if declare -F "$1" > /dev/null; then "$@"; else log "stage ${_stage_now:-?} (dry run): $*"; fi
    return 0
  fi
  if is_done "$marker"; then
    log "stage ${_stage_now:-?}: $marker: ${step_done:-already done} (--force true redoes it)"
    return 0
  fi
  rm -f "$marker"
  if declare -F "$1" > /dev/null; then "$@"; else log "stage ${_stage_now:-?}: $*"; "$@"; fi
  mark_done "$marker"
}
