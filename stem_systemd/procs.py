"""Process facts from /proc, waiting on pidfds, signalling a node's process group.

Why pidfds: a PID is only a number and gets reused; a pidfd (pidfd_open(2))
names one process for its whole life. Signals go through
``pidfd_send_signal(2)`` after the identity check, so they can never land on a
process that took over the PID in between. Exit is judged by the pidfd
becoming readable (poll(2) reports POLLIN once the process has exited, reaped
or not), never by ``kill(pid, 0)``, which keeps succeeding for zombies that an
init slow to reap leaves behind for seconds.

A node runs in its own session (setsid), so its session and process group ids
equal its main PID; the group is everything the node forked that did not leave
on purpose.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import signal
import time
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat stem needs (proc(5))."""

    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    starttime: int  # clock ticks after boot

    @property
    def exited(self) -> bool:
        """Zombie (Z) or dead (X): the process has exited, only its entry is left."""
        return self.state in ("Z", "X", "x")


def read_stat(pid: int) -> ProcStat | None:
    """Parse /proc/PID/stat, or None when there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces and
    # parentheses itself: the fields we want follow the *last* ')'. proc(5).
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            state=rest[0],
            ppid=int(rest[1]),
            pgid=int(rest[2]),
            sid=int(rest[3]),
            starttime=int(rest[19]),
        )
    except (IndexError, ValueError):
        return None


def real_uid(pid: int) -> int | None:
    """The real user id of a live process (None when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def cmdline_digest(pid: int) -> str | None:
    """SHA-256 of /proc/PID/cmdline (None when the process is gone or a zombie)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            raw = fh.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    if not raw:  # zombies and kernel threads have an empty cmdline
        return None
    return hashlib.sha256(raw).hexdigest()


@cache
def boot_id() -> str:
    """This boot's random id: start times are only comparable within one boot."""
    with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
        return fh.read().strip()


def uptime_of(starttime: int) -> float:
    """Seconds a process with this start time (clock ticks after boot) has been running."""
    with open("/proc/uptime", encoding="ascii") as fh:
        system_uptime = float(fh.read().split()[0])
    return max(0.0, system_uptime - starttime / os.sysconf("SC_CLK_TCK"))


def protected_pids() -> frozenset[int]:
    """PIDs that are never a live node: 0, 1, ourselves and every ancestor of ours."""
    pids = {0, 1, os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        st = read_stat(pid)
        if st is None:
            break
        pid = st.ppid
    return frozenset(pids)


def pidfd_open(pid: int) -> int | None:
    """A pidfd for pid, or None when no such process exists any more."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def pidfd_signal(pidfd: int, signum: int) -> bool:
    """Send signum through a pidfd; False when the process has already exited."""
    try:
        signal.pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        return False
    return True


def may_signal(pidfd: int) -> bool:
    """Would a signal reach this process? Signal 0 checks permission only (kill(2))."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except PermissionError:
        return False
    except ProcessLookupError:
        return True  # gone: nothing to be refused
    return True


def wait_exits(pidfds: Mapping[K, int], deadline: float) -> set[K]:
    """Block until every pidfd is readable (process exited) or the monotonic deadline.

    Returns the keys whose process has exited.
    """
    poller = select.poll()
    by_fd: dict[int, K] = {}
    for key, fd in pidfds.items():
        poller.register(fd, select.POLLIN)
        by_fd[fd] = key
    exited: set[K] = set()
    while len(exited) < len(by_fd):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for fd, _event in poller.poll(remaining * 1000):
            exited.add(by_fd[fd])
            poller.unregister(fd)
    return exited


def wait_exec_done(pid: int, pidfd: int, deadline: float) -> None:
    """Return once a just-spawned child shows its new command line, has exited, or at deadline.

    execve(2) wakes a vfork parent (and closes the CLOEXEC pipe subprocess
    reads) before the new program's argument area is set up: right after
    Popen returns, /proc/PID/cmdline is often still empty (about 1 in 3 here),
    and an identity read then would have no command line to pin.
    """
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    while cmdline_digest(pid) is None:
        left = deadline - time.monotonic()
        if left <= 0 or poller.poll(min(left * 1000, 1.0)):
            return  # exited (readable pidfd), or the deadline: the caller judges


def has_exited(pidfd: int) -> bool:
    """Is the process behind pidfd gone (pidfd readable)? Does not block."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))


@dataclass(frozen=True)
class Member:
    """A process of a node's group, pinned by a pidfd opened after the scan."""

    pid: int
    pidfd: int


def group_members(pgid: int, not_before: int) -> list[Member]:
    """Live processes in process group pgid that started at or after ``not_before``.

    The start-time floor keeps out any process that merely reuses the number:
    every member of a node's group was forked after the node's main process.
    Callers close the returned pidfds (see :func:`close_all`).
    """
    return groups_members({pgid: not_before})[pgid]


def groups_members(floors: Mapping[int, int]) -> dict[int, list[Member]]:
    """:func:`group_members` for many groups (pgid -> start-time floor) in one /proc scan."""
    members: dict[int, list[Member]] = {pgid: [] for pgid in floors}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        st = read_stat(pid)
        if st is None or st.pgid not in floors or st.starttime < floors[st.pgid] or st.exited:
            continue
        fd = pidfd_open(pid)
        if fd is None:
            continue
        # Re-read after pinning: the pidfd is this very process only if the
        # PID still shows the same start time now.
        again = read_stat(pid)
        if again is None or again.starttime != st.starttime or again.pgid != st.pgid:
            os.close(fd)
            continue
        members[st.pgid].append(Member(pid, fd))
    return members


def session_leaders_by_env(key: str) -> dict[str, int]:
    """Live session leaders whose environment sets ``key``: its value -> PID (the oldest wins).

    One /proc scan. Only processes whose environment we may read (our own
    user's, or any as root) are seen; proc(5).
    """
    prefix = os.fsencode(key) + b"="
    found: dict[str, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        st = read_stat(pid)
        if st is None or st.sid != pid or st.exited:
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(prefix):
                value = os.fsdecode(item[len(prefix) :])
                if value not in found or st.starttime < found[value][1]:
                    found[value] = (pid, st.starttime)
                break
    return {value: pid for value, (pid, _) in found.items()}


def signal_group(pgid: int, not_before: int, signum: int) -> list[Member]:
    """Signal every member of the group (see :func:`group_members`); return them.

    The caller owns (and closes) the pidfds of the returned members, which it
    can wait on with :func:`wait_exits`.
    """
    return signal_groups({pgid: not_before}, signum)[pgid]


def signal_groups(floors: Mapping[int, int], signum: int) -> dict[int, list[Member]]:
    """:func:`signal_group` for many groups (pgid -> start-time floor) in one /proc scan."""
    found = groups_members(floors)
    for members in found.values():
        for member in members:
            pidfd_signal(member.pidfd, signum)
    return found


def close_all(fds: Iterable[int]) -> None:
    """Close file descriptors, ignoring ones already closed."""
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
