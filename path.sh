# Environment for the recipes: source it from a recipe's run.sh.
# Resolves the repository root from this file, so it works from any egs/<corpus>/ directory.
BL_ASR_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export BL_ASR_ROOT
if [ -f "$BL_ASR_ROOT/.venv/bin/activate" ] && [ -z "${VIRTUAL_ENV:-}" ]; then
  . "$BL_ASR_ROOT/.venv/bin/activate"
fi
export PYTHONPATH="$BL_ASR_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$BL_ASR_ROOT/local:$PATH"
[ -d /usr/lib/sctk/bin ] && export PATH="$PATH:/usr/lib/sctk/bin"  # Debian's sctk: sclite, hubscr.pl
export LC_ALL=C
export PYTHONUNBUFFERED=1
