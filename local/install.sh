#!/usr/bin/env bash
# Install everything the recipes and tests need, idempotently:
#   Debian packages (NIST SCTK's sclite, flite, sox, Festival + two voices), then .venv with torch
#   2.13.0 (the local CPU wheel) and this package with its pinned dependencies.
#   bash local/install.sh            # from the repository root; needs root (or sudo) for apt-get
# A package already installed is not touched; one that cannot be installed is named.
set -euo pipefail
cd "$(dirname "$0")/.."
APT_PACKAGES="sctk flite sox festival festvox-kdlpc16k festvox-us-slt-hts"
missing=()
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install.sh: installing Debian packages: ${missing[*]}"
  sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  if ! command -v apt-get >/dev/null; then
    echo "install.sh: apt-get not found; install these Debian packages by hand: ${missing[*]}" >&2; exit 1
  fi
  $sudo apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null; then
    echo "install.sh: apt-get could not install: ${missing[*]}" >&2; exit 1
  fi
fi
export PATH="$PATH:/usr/lib/sctk/bin"  # Debian's sctk keeps sclite there (path.sh adds it too)
for prog in sclite flite sox festival; do
  command -v $prog >/dev/null || { echo "install.sh: '$prog' is still not on PATH after installing ${APT_PACKAGES}" >&2; exit 1; }
done
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e '.[test]'
echo "install.sh: done (apt: $APT_PACKAGES; python: .venv)"
