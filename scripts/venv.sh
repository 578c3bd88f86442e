#!/bin/sh
# Create or refresh .venv with the package installed (editable).
# Usage: scripts/venv.sh [EXTRAS]   e.g. scripts/venv.sh systemd,test
# Re-installs only when pyproject.toml or the extras changed.
set -eu
cd "$(dirname "$0")/.."
extras=${1:-}
venv=.venv
spec=.
[ -n "$extras" ] && spec=".[$extras]"
stamp="$venv/.stem-installed"
want="$(cksum < pyproject.toml) $extras"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -e "$spec"
    printf '%s\n' "$want" > "$stamp"
fi
