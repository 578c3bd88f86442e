#!/bin/sh
# The container testbed for the integration suites: a Docker engine, a Debian
# base image built offline-capable from Debian packages, and a wheelhouse.
# Idempotent; safe to run again (and concurrently: one run at a time holds a
# lock). Runs as root on a fresh Debian 12 machine (scripts/host-deps.sh
# installs docker.io, docker-compose and debootstrap first).
#
# What it leaves behind, for every image under tests/integration/images/:
#   stem-testbed-base:bookworm        Debian 12 minbase + systemd as PID 1,
#                                     dbus, python3 + venv, procps, service
#                                     (init-system-helpers), setpriv
#                                     (util-linux), /lib/lsb/init-functions
#                                     (sysvinit-utils), libsystemd0.
#                                     Build FROM it with
#                                     `--build-arg BASE=stem-testbed-base:bookworm`.
#   stem-testbed-base:bookworm-KEY    the same image; KEY hashes the package
#                                     list, so changing PACKAGES rebuilds it.
#   .build/wheelhouse/                (git-ignored) wheels of this project and
#                                     of pystemd and every dependency, built on
#                                     the host (same Debian, same Python minor):
#                                     images `COPY .build/wheelhouse /wheelhouse`
#                                     (build context: the repository root) and
#                                     `pip install --no-index --find-links
#                                     /wheelhouse 'stem-systemd[systemd]'`.
# Builds and containers use network none: dockerd runs with --bridge=none
# (../shared facts: no default bridge, no registry to pull from).
#
# Usage: scripts/testbed.sh            everything above
#        scripts/testbed.sh wheels     only refresh the wheelhouse
# Environment: STEM_DEBIAN_MIRROR      a Debian mirror for debootstrap
#                                      (default: debootstrap's own)
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

SUITE=bookworm
BASE_REPO=stem-testbed-base
# Comma-separated, as debootstrap --include wants it. Keep it sorted.
PACKAGES=dbus,init-system-helpers,libsystemd0,procps,python3,python3-venv,sysvinit-utils,systemd,systemd-sysv,util-linux
WHEELHOUSE=$root/.build/wheelhouse

say() { echo "testbed: $*" >&2; }
die() { echo "Error: $1" >&2; [ -n "${2:-}" ] && echo "Hint: $2" >&2; exit "${3:-1}"; }

# One run at a time: several shells may share this work tree and engine.
lockfile=${TMPDIR:-/tmp}/stem-testbed.flock
exec 9>"$lockfile"
if ! flock -w 900 9; then
    die "another scripts/testbed.sh held $lockfile for 15 minutes" "check for a stuck run"
fi

# poll CMD... with a deadline in seconds (first argument); quiet.
poll() {
    deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$deadline" ] && return 1
        sleep 0.5
    done
}

ensure_engine() {
    docker info >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] || die "the Docker engine is not running and starting it needs root" \
        "run scripts/testbed.sh as root, or start dockerd yourself" 4
    command -v dockerd >/dev/null 2>&1 || die "dockerd is not installed" \
        "run scripts/host-deps.sh (installs docker.io, docker-compose, debootstrap)" 5
    log=/var/log/stem-dockerd.log
    say "starting dockerd (log: $log)"
    # No bridge, no iptables: every container and build runs with network none.
    # 9>&-: the engine outlives us and must not inherit (and hold) our lock.
    setsid dockerd --bridge=none --iptables=false --ip-forward=false \
        </dev/null >"$log" 2>&1 9>&- &
    poll 60 docker info || die "dockerd did not answer within 60 s" "see $log"
}

ensure_base() {
    key=$(printf '%s %s\n' "$SUITE" "$PACKAGES" | cksum | cut -d' ' -f1)
    tag=$BASE_REPO:$SUITE-$key
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        command -v debootstrap >/dev/null 2>&1 || die "debootstrap is not installed" \
            "run scripts/host-deps.sh" 5
        rootfs=$(mktemp -d "${TMPDIR:-/tmp}/stem-rootfs.XXXXXX")
        # shellcheck disable=SC2064 # expand now: the path is fixed
        trap "rm -rf '$rootfs'" EXIT
        say "debootstrap $SUITE into $rootfs (about a minute)"
        # shellcheck disable=SC2086 # the optional mirror is one word or none
        debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" \
            ${STEM_DEBIAN_MIRROR:-} >"$rootfs.log" 2>&1 \
            || { tail -n 20 "$rootfs.log" >&2; die "debootstrap failed" "full log: $rootfs.log"; }
        rm -f "$rootfs.log"
        # An empty machine-id makes systemd generate one per container boot
        # (machine-id(5)); apt caches are dead weight without a network.
        : >"$rootfs/etc/machine-id"
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        say "docker import $tag"
        tar -C "$rootfs" -c . | docker import \
            -c 'CMD ["/lib/systemd/systemd"]' -c 'ENV container=docker' - "$tag" >/dev/null
        rm -rf "$rootfs"
        trap - EXIT
    fi
    docker tag "$tag" "$BASE_REPO:$SUITE"
    say "base image $BASE_REPO:$SUITE = $tag"
}

ensure_wheels() {
    py=$root/.venv/bin/python
    [ -x "$py" ] || scripts/venv.sh systemd,test
    mkdir -p "$WHEELHOUSE"
    # This project's wheel changes with every edit: always rebuilt. The others
    # (pystemd takes ~20 s to compile) are found in the wheelhouse. Built
    # aside, then renamed in one by one: an image build copying the
    # wheelhouse meanwhile sees the old wheel or the new one, never none.
    tmp=$(mktemp -d "$root/.build/wheels.XXXXXX")
    say "pip wheel .[systemd] -> .build/wheelhouse"
    if ! "$py" -m pip wheel --quiet --disable-pip-version-check \
        --find-links "$WHEELHOUSE" -w "$tmp" ".[systemd]"; then
        rm -rf "$tmp"
        die "building the wheelhouse failed" \
            "pystemd needs libsystemd-dev and pkg-config: run scripts/host-deps.sh"
    fi
    new=$(cd "$tmp" && ls stem_systemd-*.whl)
    for whl in "$tmp"/*.whl; do mv -f "$whl" "$WHEELHOUSE/"; done
    rm -rf "$tmp"
    for whl in "$WHEELHOUSE"/stem_systemd-*.whl; do
        [ "${whl##*/}" = "$new" ] || rm -f "$whl"
    done
}

case "${1:-all}" in
    wheels) ensure_wheels ;;
    all) ensure_engine; ensure_base; ensure_wheels ;;
    *) die "unknown argument: $1" "usage: scripts/testbed.sh [wheels]" 2 ;;
esac
