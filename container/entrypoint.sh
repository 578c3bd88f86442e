#!/bin/sh
# Container entrypoint: `stem worker multi start --foreground` as PID 1, no
# systemd. The supervisor starts the nodes, waits for their READY=1, restarts
# a node that dies, reaps every orphan, and on `docker stop` (TERM) stops the
# nodes gracefully before it exits 0.
#
# Configuration, all from the environment (docker run -e ...), read by `stem`
# itself with the same rules as everywhere else:
#   STEM_WORKER_NODES    node names ("alpha beta") or a count ("3")
#   STEM_WORKER_COMMAND  the launcher command line (shlex-split; %n etc. allowed)
#   STEM_PIDFILE         pidfile template   (image default /run/stem/%n.pid)
#   STEM_LOGFILE         logfile template   (image default /var/log/stem/%n%I.log)
#   STEM_START_TIMEOUT, STEM_STOP_TIMEOUT, STEM_READY_AFTER, STEM_WORKDIR
# Keep `docker stop -t` above STEM_STOP_TIMEOUT so the supervisor, not the
# engine's KILL, ends the nodes.
#
# Arguments: options (starting with "-") are worker options for every node
# (`docker run IMAGE -c 2`); anything else runs instead of the supervisor
# (`docker run IMAGE stem worker multi show`).
set -eu
# As PID 1 without a handler a TERM would simply be dropped by the kernel;
# until `exec` hands over to stem (which records signals from its first
# lines on), a docker stop ends the container at once, nothing started yet.
# Between the two, while the Python interpreter itself starts (20-30 ms),
# a TERM can still be lost: `docker run --init` closes that window.
trap 'exit 143' TERM
trap 'exit 130' INT

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

if [ -z "${STEM_WORKER_NODES:-}" ]; then
    echo "Error: STEM_WORKER_NODES is empty" >&2
    echo "Hint: docker run -e STEM_WORKER_NODES='alpha beta' ..." >&2
    exit 2
fi

# No names on the command line: stem reads STEM_WORKER_NODES itself, with
# the same quoting rules as `stem worker multi show` ("alpha 'my worker'").
exec stem worker multi start --foreground --backend=pidfile "$@"
