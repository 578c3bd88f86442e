#!/bin/sh
# Install the Debian packages the test suite needs, when any is missing:
# the Docker engine and docker-compose (v1) for the container suites,
# debootstrap to build the base image offline, libsystemd-dev and pkg-config to
# build pystemd, shellcheck, and systemd for systemd-analyze/systemd-escape.
set -eu
need=""
for pair in dockerd:docker.io docker-compose:docker-compose debootstrap:debootstrap \
            pkg-config:pkg-config shellcheck:shellcheck systemd-analyze:systemd; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || need="$need $pkg"
done
[ -f /usr/include/systemd/sd-daemon.h ] || need="$need libsystemd-dev"
[ -z "$need" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
        echo "Error: missing packages:$need" >&2
        echo "Hint: run as root, or: apt-get install$need" >&2
        exit 4
    fi
else SUDO=""; fi
echo "+ apt-get install$need" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086 # $need is a list of package names
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
