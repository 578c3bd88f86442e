#!/bin/sh
# `systemd-analyze verify` on our units, on the host, without systemd as PID 1.
# A template cannot be verified as such: each is copied under an instance
# name (stem-worker@alpha.service, and an escaped one) into a scratch root
# that holds a copy of the host's system units and a stand-in
# /usr/local/bin/stem (ExecStart= must name an executable), then verified
# with --root. Fails on a non-zero exit and on ANY line of output about our
# units: systemd reports unknown keys and bad values as warnings with exit 0.
# Then applies sysusers.d/stem.conf and tmpfiles.d/stem.conf to the same
# scratch root (--root: the host is never touched) and checks the result:
# a `stem` user and group, and /run/stem etc. owned by it.
set -eu
cd "$(dirname "$0")/.."
command -v systemd-analyze >/dev/null 2>&1 || {
    echo "Error: systemd-analyze not found" >&2
    echo "Hint: run scripts/host-deps.sh (package systemd)" >&2
    exit 5
}
root=$(mktemp -d "${TMPDIR:-/tmp}/stem-verify.XXXXXX")
trap 'rm -rf "$root"' EXIT
units=/usr/lib/systemd/system
[ -d "$units" ] || units=/lib/systemd/system
mkdir -p "$root/usr/lib/systemd" "$root/usr/local/bin" "$root/etc/systemd/system"
cp -r "$units" "$root/usr/lib/systemd/system"
printf '#!/bin/sh\n' >"$root/usr/local/bin/stem"
chmod 755 "$root/usr/local/bin/stem"

escaped=$(systemd-escape --template=stem-worker@.service "my worker")
cp "units/stem-worker@.service" "$root/etc/systemd/system/stem-worker@alpha.service"
cp "units/stem-worker@.service" "$root/etc/systemd/system/$escaped"
cp units/stem-scheduler.service "$root/etc/systemd/system/"

out=$(systemd-analyze --root="$root" verify \
    stem-worker@alpha.service "$escaped" stem-scheduler.service 2>&1) && rc=0 || rc=$?
if [ "$rc" -ne 0 ] || printf '%s\n' "$out" | grep -q 'stem'; then
    printf '%s\n' "$out" >&2
    echo "Error: systemd-analyze verify found problems in units/ (exit $rc)" >&2
    exit 1
fi
mkdir -p "$root/etc/sysusers.d" "$root/etc/tmpfiles.d"
cp units/sysusers.d/stem.conf "$root/etc/sysusers.d/"
cp units/tmpfiles.d/stem.conf "$root/etc/tmpfiles.d/"
: >"$root/etc/passwd"; : >"$root/etc/group"
systemd-sysusers --root="$root" 2>/dev/null
uid=$(sed -n 's|^stem:x:\([0-9]*\):[0-9]*:.*:/usr/sbin/nologin$|\1|p' "$root/etc/passwd")
[ -n "$uid" ] || { echo "Error: units/sysusers.d/stem.conf made no stem user" >&2; exit 1; }
systemd-tmpfiles --root="$root" --create
for dir in run/stem var/log/stem var/lib/stem; do
    if [ ! -d "$root/$dir" ] || [ "$(stat -c %u "$root/$dir")" != "$uid" ]; then
        echo "Error: units/tmpfiles.d/stem.conf did not create /$dir owned by stem" >&2
        exit 1
    fi
done
echo "verify-units: stem-worker@alpha.service, $escaped, stem-scheduler.service, sysusers.d, tmpfiles.d: clean" >&2
