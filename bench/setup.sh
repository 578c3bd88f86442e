#!/bin/sh
# Create or refresh the bench environment: a venv of its own (git-ignored,
# under .build/) with the tools we compare against (celery, supervisor),
# and this package installed editable.
# Kept apart from .venv so the comparison tools never leak into the tests.
# Usage: bench/setup.sh            (prints the venv's python on stdout)
set -eu
cd "$(dirname "$0")/.."
venv=.build/bench-venv
stamp="$venv/.bench-installed"
want="$(cksum < bench/setup.sh) $(cksum < pyproject.toml)"
if [ ! -x "$venv/bin/python" ]; then
    mkdir -p .build
    python3 -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "+ pip install celery supervisor -e . (into $venv)" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet \
        "celery>=5.3" "supervisor>=4.2" -e .
    printf '%s\n' "$want" > "$stamp"
fi
echo "$venv/bin/python"
