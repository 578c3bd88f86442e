#!/bin/sh
# Create or refresh the bench environment: a venv of its own (git-ignored,
# under .build/) with the tools we compare against (celery, supervisor) and
# this package. Kept apart from .venv so the comparison tools never leak
# into the tests.
#
# The package goes in as a regular (non-editable) install, rebuilt from the
# working tree on every call: an editable install adds a path finder to
# site.py that imports pathlib, urllib and more at every interpreter start
# (about 20 ms and 1 MB per process here), which every node, every celery
# worker and the floor would pay, and which no installed deployment pays.
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
    echo "+ pip install celery supervisor stem-systemd's dependencies (into $venv)" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip uninstall --quiet --yes stem-systemd >/dev/null 2>&1 || true
    "$venv/bin/python" -m pip install --quiet "celery>=5.3" "supervisor>=4.2" .
    printf '%s\n' "$want" > "$stamp"
fi
echo "+ pip install --no-deps --force-reinstall . (into $venv)" >&2
"$venv/bin/python" -m pip install --quiet --no-deps --force-reinstall . >&2
echo "$venv/bin/python"
