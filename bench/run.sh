#!/bin/sh
# Reproduce bench/results/{results.json,RESULTS.md,plot.svg}: set up the bench
# venv (celery, supervisor, this package), then measure every tool.
# Usage: bench/run.sh [python -m bench options]   e.g. bench/run.sh --runs 5
# The systemd part needs the testbed (scripts/testbed.sh) and root; without
# it that part is reported as not run.
set -eu
cd "$(dirname "$0")/.."
py=$(bench/setup.sh)
exec "$py" -m bench "$@"
