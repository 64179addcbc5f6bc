#!/usr/bin/env bash
# The main job: the embedded synthetic corpus end to end (all options pass through).
set -euo pipefail
exec "$(dirname "$0")/egs/synth/run.sh" "$@"
