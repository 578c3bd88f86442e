#!/bin/sh
# The main job, from a fresh clone: set up .venv (no extras, so no libsystemd
# and no root needed), start a stem-worker node with a temporary job spool,
# feed it jobs, show them done, stop it with TERM (warm shutdown: the job in
# hand still finishes) and show its exit status.
# shellcheck disable=SC2317 # functions run indirectly: by trap and by wait_for
set -eu
cd "$(dirname "$0")/.."
scripts/venv.sh
bin=$(pwd)/.venv/bin
work=$(mktemp -d "${TMPDIR:-/tmp}/stem-demo.XXXXXX")
jobs=$work/jobs
pid=""

cleanup() {
    # Only reached with the worker still running when the demo failed midway.
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null || :
        wait "$pid" 2>/dev/null || :
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
# so the worker never claims a half-written job.
submit() {
    printf '%s\n' "$2" > "$jobs/.$1.tmp"
    mv "$jobs/.$1.tmp" "$jobs/$1"
    echo "+ job $1: work $2 s"
}

is_ready() { grep -q ' ready:' "$work/demo.log" 2>/dev/null; }
count_done() { find "$jobs/done" -type f | wc -l; }
all_done() { [ "$(count_done)" -ge "$1" ]; }
claimed() { [ -n "$(find "$jobs/active" -type f -name "$1@*")" ]; }

mkdir -p "$jobs"
echo "== start: stem-worker --node demo --concurrency 2 --jobs $jobs"
"$bin/stem-worker" --node demo --concurrency 2 --jobs "$jobs" --logfile "$work/%n%I.log" &
pid=$!
wait_for 300 is_ready
echo "worker ready: main pid $pid"

echo "== feed jobs"
submit a 1
submit b 0.5
submit c 1.5
wait_for 300 all_done 3
echo "== done"
for f in "$jobs"/done/*; do
    echo "$(basename "$f"): $(tail -n 1 "$f")"
done

echo "== stop with TERM while a job is in flight"
submit slow 2
wait_for 300 claimed slow
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
echo "stem-worker exited with status $status (0: warm shutdown)"
echo "slow: $(tail -n 1 "$jobs/done/slow")"

echo "== logs (main process, then pool processes 1 and 2)"
cat "$work/demo.log" "$work/demo-1.log" "$work/demo-2.log"
exit "$status"
