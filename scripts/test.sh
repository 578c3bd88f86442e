#!/bin/sh
# The whole test suite, from a fresh machine: host packages, venv, linters,
# unit tests, then the container suites (real systemd as PID 1, SysV, the
# container entrypoint). Usage: scripts/test.sh [pytest args for the unit run]
set -eu
cd "$(dirname "$0")/.."
scripts/host-deps.sh
scripts/venv.sh systemd,test
. .venv/bin/activate

echo "== lint" >&2
ruff check .
ruff format --check .
mypy
shellcheck scripts/*.sh sysv/init.d/* sysv/default/stem container/*.sh .ci/run
scripts/verify-units.sh

echo "== unit tests" >&2
pytest -m "not integration" "$@"

echo "== integration tests (real systemd and SysV in containers)" >&2
scripts/testbed.sh
# Fail, never skip, when Docker or the testbed is missing.
STEM_REQUIRE_INTEGRATION=1 pytest -m integration tests/integration
