#!/bin/sh
# The main job, from a fresh clone: set up .venv (no extras, so no libsystemd
# and no root needed), start two worker nodes with `stem worker multi` (pidfile
# backend, a temporary job spool), show their status, feed them jobs, show the
# jobs done, then stop both while a job is in flight: TERM is a warm shutdown,
# so the job in hand still finishes.
# shellcheck disable=SC2317 # functions run indirectly: by trap and by wait_for
set -eu
cd "$(dirname "$0")/.."
scripts/venv.sh
bin=$(pwd)/.venv/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/stem-demo.XXXXXX")
jobs=$work/jobs
started=""

# Every file of the demo lives under $work; an empty env file keeps a host's
# /etc/stem/stem.env out of it.
: > "$work/stem.env"
STEM_BACKEND=pidfile
STEM_PIDFILE=$work/run/%n.pid
STEM_LOGFILE=$work/log/%n%I.log
export STEM_BACKEND STEM_PIDFILE STEM_LOGFILE

multi() {
    verb=$1; shift
    echo "+ stem worker multi $verb $*"
    "$bin/stem" worker multi "$verb" --env-file "$work/stem.env" "$@"
}

cleanup() {
    # Only does something when the demo failed with nodes still running.
    if [ -n "$started" ]; then
        "$bin/stem" worker multi kill --env-file "$work/stem.env" alpha beta >/dev/null 2>&1 || :
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait up to $1 tenths of a second for the command "$2 ..." to succeed.
wait_for() {
    tries=$1; shift
    while ! "$@"; do
        tries=$((tries - 1))
        if [ "$tries" -le 0 ]; then
            echo "demo: gave up waiting for: $*" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# A job is a file in the spool; write it under a dot name, then rename it in,
# so no worker claims a half-written job.
submit() {
    printf '%s\n' "$2" > "$jobs/.$1.tmp"
    mv "$jobs/.$1.tmp" "$jobs/$1"
    echo "+ job $1: work $2 s"
}

count_done() { find "$jobs/done" -type f | wc -l; }
all_done() { [ "$(count_done)" -ge "$1" ]; }
claimed() { [ -n "$(find "$jobs/active" -type f -name "$1@*")" ]; }

mkdir -p "$jobs"
echo "== start two nodes (returns once both sent READY=1)"
started=yes
multi start alpha beta -c 2 -- --jobs "$jobs"

echo "== status"
multi status alpha beta

echo "== feed jobs"
submit a 1
submit b 0.5
submit c 1.5
submit d 0.2
wait_for 300 all_done 4
echo "== done"
for f in "$jobs"/done/*; do
    echo "$(basename "$f"): $(tail -n 1 "$f")"
done

echo "== stop both while a job is in flight (TERM: warm shutdown)"
submit slow 2
wait_for 300 claimed slow
multi stop alpha beta
started=""
echo "slow: $(tail -n 1 "$jobs/done/slow")"

echo "== status after stop (exit 3: not running)"
status=0
multi status alpha beta || status=$?
[ "$status" -eq 3 ]

echo "== logs of node alpha (main process, then pool processes 1 and 2)"
cat "$work/log/alpha.log" "$work/log/alpha-1.log" "$work/log/alpha-2.log"
