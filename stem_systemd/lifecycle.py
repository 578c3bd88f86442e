"""Spawning nodes, waiting for READY=1, stopping them: plain functions, no pidfiles.

The pidfile backend and the container supervisor share this machinery:

- :func:`node_environment` -- the environment additions of one node
  (STEM_WORKER_NODE/INDEX/PIDFILE/LOGFILE and NOTIFY_SOCKET).
- :func:`spawn_node` ``(spec, notify_address, workdir=None) -> Spawned`` --
  start one node: argv list (no shell), its own session (setsid), stdin
  /dev/null, stdout and stderr appended to its main logfile. The caller is the
  parent and must reap (``Spawned.proc``); a PID-1 supervisor reaps all.
- :func:`wait_ready` ``(spawned, listener, deadline, ready_after=None) ->
  {pid: Readiness}`` -- wait until every node sent READY=1 from its main PID
  (sd_notify(3); systemd's NotifyAccess=main rule), exited, or the monotonic
  deadline passed. With ``ready_after`` a node also counts as ready once it is
  still alive that many seconds after spawning (launchers without sd_notify).
- :func:`abort_node` ``(spawned)`` -- SIGKILL a node's whole process group and
  reap it: a node that failed to start leaves no process behind.
- :func:`stop_nodes` ``(targets, deadline) -> {name: StopOutcome}`` -- SIGTERM
  every main process at once, wait on pidfds until the deadline, SIGKILL what
  is left of each group (systemd's KillMode=mixed: the launcher drains its own
  pool on TERM; leftovers and laggards get KILL, and the outcome says so).
- :func:`log_tail` ``(path, lines, since)`` -- the last lines of a logfile, for failure
  reports.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stem_systemd import procs
from stem_systemd.errors import NotInstalledError, PrivilegeError, StemError
from stem_systemd.nodes import NodeSpec
from stem_systemd.notify import NotifyListener, NotifyMessage, strip_notify_env
from stem_systemd.proc import describe_status

KILL_WAIT = 10.0  # seconds to wait for SIGKILLed processes to be gone (they cannot refuse)
EXEC_WAIT = 1.0  # seconds for a spawned node's /proc/PID/cmdline to show its program


def node_environment(spec: NodeSpec, notify_address: str | None) -> dict[str, str]:
    """The variables a node gets on top of stem's own environment."""
    env = dict(spec.env)
    env.update(
        STEM_WORKER_NODE=spec.name,
        STEM_WORKER_INDEX=str(spec.index),
        STEM_WORKER_PIDFILE=str(spec.pidfile),
        STEM_WORKER_LOGFILE=spec.logfile,  # keeps %I: the launcher expands it per process
    )
    if notify_address is not None:
        env["NOTIFY_SOCKET"] = notify_address
    return env


def open_logfile(path: Path) -> int:
    """Open a node's main logfile for appending; never through a symlink or into a FIFO."""
    try:
        fd = os.open(
            path,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
            0o640,
        )
    except PermissionError as exc:
        raise PrivilegeError(
            f"cannot write logfile {path}: permission denied",
            hint=f"make {path.parent} writable for this user, or choose another --logfile",
        ) from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StemError(
                f"logfile {path} is a symlink; stem does not write through one",
                hint=f"remove it (rm {path})",
            ) from exc
        if exc.errno == errno.ENXIO:  # O_NONBLOCK write-open of a FIFO nobody reads
            raise StemError(
                f"logfile {path} is not a regular file (a FIFO)", hint=f"remove it (rm {path})"
            ) from exc
        raise StemError(f"cannot open logfile {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StemError(f"logfile {path} is not a regular file", hint=f"remove it (rm {path})")
    os.set_blocking(fd, True)
    return fd


@dataclass
class Spawned:
    """A node we started and are the parent of."""

    spec: NodeSpec
    proc: subprocess.Popen[bytes]
    pidfd: int
    starttime: int  # clock ticks after boot (/proc/PID/stat), pins the process group
    spawned_at: float  # time.monotonic()
    log_offset: int = 0  # size of the main logfile at spawn: this run's lines start here

    @property
    def pid(self) -> int:
        return self.proc.pid

    def target(self) -> Target:
        """This node as a stop target."""
        return Target(self.spec.name, self.pid, self.pidfd, self.starttime)


def spawn_node(
    spec: NodeSpec,
    notify_address: str | None,
    *,
    workdir: Path | None = None,
    base_env: Mapping[str, str] | None = None,
) -> Spawned:
    """Start one node (see the module docstring). Raises StemError when exec fails."""
    env = strip_notify_env(os.environ if base_env is None else base_env)
    env.update(node_environment(spec, notify_address))
    log_existed = os.path.lexists(spec.main_logfile)
    logfd = open_logfile(spec.main_logfile)
    log_offset = os.fstat(logfd).st_size
    try:
        # Popen returns only after exec succeeded (it reports exec errors
        # through a pipe), so /proc/PID already shows the node's own program.
        proc = subprocess.Popen(
            list(spec.argv),
            stdin=subprocess.DEVNULL,
            stdout=logfd,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # setsid(2): own session and process group
            close_fds=True,
            env=env,
            cwd=workdir,
        )
    except OSError as exc:
        if not log_existed and os.fstat(logfd).st_size == 0:
            # Nothing ran: leave no empty logfile behind either.
            with contextlib.suppress(OSError):
                os.unlink(spec.main_logfile)
        raise _exec_error(spec, env, workdir, exc) from exc
    finally:
        os.close(logfd)
    pidfd = os.pidfd_open(proc.pid)
    procs.wait_exec_done(proc.pid, pidfd, time.monotonic() + EXEC_WAIT)
    st = procs.read_stat(proc.pid)
    starttime = st.starttime if st is not None else 0
    return Spawned(spec, proc, pidfd, starttime, time.monotonic(), log_offset)


def _exec_error(
    spec: NodeSpec, env: Mapping[str, str], workdir: Path | None, exc: OSError
) -> StemError:
    """The error for a node whose command could not be run (exit 5, 4 or 1)."""
    if isinstance(exc, FileNotFoundError):
        missing = workdir if workdir is not None and not workdir.is_dir() else spec.argv[0]
        return NotInstalledError(
            f"node {spec.name}: {missing}: not found",
            hint="set STEM_WORKER_COMMAND (or --cmd) to an installed launcher"
            if missing == spec.argv[0]
            else "create the directory or fix --workdir",
        )
    if isinstance(exc, PermissionError):
        if "/" in spec.argv[0] and os.path.isdir(spec.argv[0]):
            return NotInstalledError(
                f"node {spec.name}: {spec.argv[0]} is a directory, not a program",
                hint="set STEM_WORKER_COMMAND (or --cmd) to the launcher's path",
            )
        program = shutil.which(spec.argv[0], mode=os.F_OK, path=env.get("PATH"))
        if program is not None and os.path.isfile(program) and not os.stat(program).st_mode & 0o111:
            # Like `stem worker exec`: a launcher without any execute bit is not installed
            # (5); one that only this user may not run is a privilege problem (4).
            return NotInstalledError(
                f"node {spec.name}: {program} is not executable",
                hint=f"chmod +x {program}, or set STEM_WORKER_COMMAND (or --cmd) to the launcher",
            )
        return PrivilegeError(
            f"node {spec.name}: {spec.argv[0]}: permission denied",
            hint="make the command executable for this user",
        )
    return StemError(f"node {spec.name}: cannot run {spec.argv[0]}: {exc.strerror}")


@dataclass
class Readiness:
    """How waiting for one node ended."""

    ready: bool
    returncode: int | None = None  # set when the node exited before READY=1
    reason: str = ""  # human words for a failure
    status: str | None = None  # the node's last STATUS= text
    seconds: float = 0.0  # from spawn to ready/failure


def wait_ready(
    spawned: Sequence[Spawned],
    listener: NotifyListener | None,
    deadline: float,
    ready_after: float | None = None,
    backlog: Sequence[NotifyMessage] = (),
    *,
    wake_fd: int | None = None,
    interrupted: Callable[[], bool] | None = None,
) -> dict[int, Readiness]:
    """Wait for READY=1 (or ``ready_after`` seconds alive) from every spawned node.

    Returns one Readiness per main PID. A node that exits first is reaped and
    reported with its exit status; one still waiting at the deadline is
    reported as not ready (the caller decides to :func:`abort_node` it).
    ``backlog``: datagrams the caller drained from ``listener`` before (while
    spawning), read first. ``wake_fd`` (a signal wakeup fd) also ends a wait;
    once ``interrupted()`` is true every node still waiting is reported as
    interrupted (a supervisor asked to stop while starting).
    """
    early = list(backlog)
    pending = {sp.pid: sp for sp in spawned}
    results: dict[int, Readiness] = {}
    statuses: dict[int, str] = {}

    def finish(sp: Spawned, readiness: Readiness) -> None:
        readiness.status = statuses.get(sp.pid)
        readiness.seconds = time.monotonic() - sp.spawned_at
        results[sp.pid] = readiness
        del pending[sp.pid]

    while pending:
        if listener is not None:
            messages, early = [*early, *listener.drain()], []
            for message in messages:
                if message.pid not in pending:
                    continue  # a pool child or a stranger: only the main PID counts
                if message.status is not None:
                    statuses[message.pid] = message.status
                if message.ready:
                    finish(pending[message.pid], Readiness(ready=True))
        now = time.monotonic()
        for sp in list(pending.values()):
            outcome = _exited_or_aged(sp, now, ready_after)
            if outcome is not None:
                finish(sp, outcome)
        if pending and (now >= deadline or (interrupted is not None and interrupted())):
            reason = (
                "not ready before the start timeout" if now >= deadline else "start interrupted"
            )
            for sp in list(pending.values()):
                finish(sp, Readiness(ready=False, reason=reason))
        if pending:
            _sleep_until_event(pending.values(), listener, deadline, ready_after, wake_fd)
    return results


def _exited_or_aged(sp: Spawned, now: float, ready_after: float | None) -> Readiness | None:
    """A node's outcome when it exited (reaped here) or lived ``ready_after`` seconds."""
    if procs.has_exited(sp.pidfd):
        code = sp.proc.wait()
        return Readiness(
            ready=False, returncode=code, reason=f"{describe_status(code)} before it was ready"
        )
    if ready_after is not None and now - sp.spawned_at >= ready_after:
        return Readiness(ready=True)
    return None


def _sleep_until_event(
    pending: Iterable[Spawned],
    listener: NotifyListener | None,
    deadline: float,
    ready_after: float | None,
    wake_fd: int | None = None,
) -> None:
    """poll(2) on the notify socket and every pidfd until one is readable or a timer is due."""
    poller = select.poll()
    if listener is not None:
        poller.register(listener.fileno(), select.POLLIN)
    if wake_fd is not None:
        poller.register(wake_fd, select.POLLIN)
    wake = deadline
    for sp in pending:
        poller.register(sp.pidfd, select.POLLIN)
        if ready_after is not None:
            wake = min(wake, sp.spawned_at + ready_after)
    poller.poll(max(0.0, wake - time.monotonic()) * 1000 + 1)


def abort_node(sp: Spawned) -> int:
    """SIGKILL every process of the node's group, wait until gone, reap; returns how many."""
    members = procs.signal_group(sp.pid, sp.starttime, signal.SIGKILL)
    try:
        procs.wait_exits({m.pid: m.pidfd for m in members}, time.monotonic() + KILL_WAIT)
    finally:
        procs.close_all(m.pidfd for m in members)
    with contextlib.suppress(subprocess.TimeoutExpired):
        sp.proc.wait(timeout=KILL_WAIT)
    return len(members)


def log_tail(path: Path, lines: int = 10, since: int = 0) -> list[str]:
    """The last ``lines`` lines of a logfile after byte ``since`` ([] when unreadable).

    ``since`` is :attr:`Spawned.log_offset`, so a failed start shows its own
    lines, not an earlier run's (ignored when the file shrank: rotated). Never
    follows a symlink.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return []
        size = 16384
        start = since if since <= st.st_size else 0
        os.lseek(fd, max(start, st.st_size - size), os.SEEK_SET)
        data = os.read(fd, size)
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace").splitlines()[-lines:]


@dataclass(frozen=True)
class Target:
    """A running node to stop: its main PID pinned by a pidfd, and its start time."""

    name: str
    pid: int
    pidfd: int
    starttime: int


@dataclass
class StopOutcome:
    """How stopping one node went."""

    exited: bool = False  # the main process is gone
    timed_out: bool = False  # the main process outlived the deadline
    killed: int = 0  # processes that got SIGKILL (leftovers or laggards)
    seconds: float = 0.0
    survivors: list[int] = field(default_factory=list)  # PIDs still there after KILL_WAIT


def stop_nodes(
    targets: Sequence[Target], deadline: float, signum: int = signal.SIGTERM
) -> dict[str, StopOutcome]:
    """Stop every target at once (see the module docstring); never raises for gone PIDs."""
    began = time.monotonic()
    outcomes = {t.name: StopOutcome() for t in targets}
    for t in targets:
        procs.pidfd_signal(t.pidfd, signum)
    exited = procs.wait_exits({t.name: t.pidfd for t in targets}, deadline)
    for t in targets:
        outcome = outcomes[t.name]
        outcome.exited = t.name in exited
        outcome.timed_out = not outcome.exited
        outcome.seconds = time.monotonic() - began
    # Whatever is left of each group (the laggard main process, or pool
    # processes it left behind) gets SIGKILL, all groups at once.
    groups = procs.signal_groups({t.pid: t.starttime for t in targets}, signal.SIGKILL)
    leftovers: dict[tuple[str, int], int] = {}
    for t in targets:
        members = groups[t.pid]
        outcomes[t.name].killed = len(members)
        leftovers.update({(t.name, m.pid): m.pidfd for m in members})
    if leftovers:
        try:
            gone = procs.wait_exits(leftovers, time.monotonic() + KILL_WAIT)
        finally:
            procs.close_all(leftovers.values())
        for name, pid in set(leftovers) - gone:
            outcomes[name].survivors.append(pid)
        for t in targets:
            if (t.name, t.pid) in gone:
                outcomes[t.name].exited = True
    return outcomes
