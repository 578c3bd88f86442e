"""The pidfile backend: nodes as process trees whose main PID lives in a pidfile.

Used on SysV hosts, in containers and wherever systemd is not PID 1. The
process work (spawn, READY=1, stop with escalation) is :mod:`stem_systemd.lifecycle`;
pidfile I/O, identity checks and the per-node lock are :mod:`stem_systemd.pidfiles`.
This module strings them together per verb and turns outcomes into
:class:`NodeReport` lines.

Locking: start, stop and kill take every affected node's lock, in pidfile
order (so two runs cannot deadlock), before looking at a pidfile; a second
``start`` racing the first waits, then finds the node running. The pidfile is
written right after spawn (``ready=0``) so a node is never untracked, and
rewritten with ``ready=1`` once it sent READY=1.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stem_systemd import interrupts, lifecycle, pidfiles, procs
from stem_systemd.backends.base import NodeReport, State
from stem_systemd.errors import PrivilegeError, StemError, UsageError
from stem_systemd.nodes import NodeSpec
from stem_systemd.notify import NotifyListener, NotifyMessage
from stem_systemd.pidfiles import Liveness
from stem_systemd.proc import describe_status

LOCK_GRACE = 10.0  # extra seconds a start waits for a racing run's lock beyond its own timeout


def format_uptime(seconds: float) -> str:
    """'3d 4h', '2h 5m', '4m 2s', '12s'."""
    s = int(seconds)
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {s}s"
    return f"{s}s"


def _missing_dirs(directory: Path) -> list[Path]:
    """``directory`` and those of its ancestors that do not exist, outermost first."""
    missing = []
    while not os.path.lexists(directory) and directory.parent != directory:
        missing.append(directory)
        directory = directory.parent
    return missing[::-1]


def _ensure_dir(directory: Path, what: str) -> None:
    """Create a pid/log directory (0755) or raise one clear error naming it."""
    try:
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    except PermissionError as exc:
        raise PrivilegeError(
            f"cannot create {what} directory {directory}: permission denied",
            hint=f"create it for this user (mkdir -p {directory}; chown), or run as root",
        ) from exc
    except (FileExistsError, NotADirectoryError) as exc:
        raise StemError(
            f"cannot create {what} directory {directory}: a path component is not a directory",
            hint=f"choose another --{what}",
        ) from exc
    except OSError as exc:
        raise StemError(f"cannot create {what} directory {directory}: {exc.strerror}") from exc
    if not directory.is_dir():
        raise StemError(f"{what} directory {directory} is not a directory")
    # Root passes every mode check, so test by writing for real.
    probe = directory / f".stem-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PrivilegeError(
                f"cannot write to {what} directory {directory}: {exc.strerror}",
                hint=f"make it writable for this user (chown), or choose another --{what}",
            ) from exc
        raise StemError(f"cannot write to {what} directory {directory}: {exc.strerror}") from exc
    os.close(fd)
    os.unlink(probe)


def _check_workdir(workdir: Path) -> None:
    """The nodes' working directory must exist and be enterable: one error naming it."""
    hint = f"create it (mkdir -p {workdir}) or fix --workdir / STEM_WORKDIR"
    if not workdir.exists():
        raise StemError(f"working directory {workdir} does not exist", hint=hint)
    if not workdir.is_dir():
        raise StemError(
            f"working directory {workdir} is not a directory", hint="fix --workdir / STEM_WORKDIR"
        )
    if not os.access(workdir, os.X_OK):
        raise PrivilegeError(
            f"cannot enter working directory {workdir}: permission denied",
            hint="make it accessible to this user (chmod/chown), or fix --workdir",
        )


def check_distinct(nodes: Sequence[NodeSpec]) -> None:
    """Two nodes sharing a pidfile would lock each other out: refuse before acting."""
    owner: dict[Path, str] = {}
    for spec in nodes:
        other = owner.setdefault(spec.pidfile, spec.name)
        if other != spec.name:
            raise UsageError(
                f"nodes {other} and {spec.name} would share the pidfile {spec.pidfile}",
                hint="put %n (node name) or %i (index) in --pidfile / STEM_PIDFILE",
            )


def _failure(node: str, message: str, exc: StemError | None = None) -> NodeReport:
    code = exc.exit_code if exc is not None else 1
    hint = exc.hint if exc is not None else None
    return NodeReport(
        node=node,
        state=State.UNKNOWN,
        ok=False,
        message=message,
        exit_code=code,
        details={"hint": hint} if hint else {},
    )


def _details(spec: NodeSpec, **extra: object) -> dict[str, object]:
    return {"pidfile": str(spec.pidfile), "logfile": str(spec.main_logfile), **extra}


@dataclass
class _Live:
    """A verified running node: its record and a pidfd pinning the main process."""

    spec: NodeSpec
    record: pidfiles.Record
    pidfd: int
    starttime: int


class PidfileBackend:
    """Backend for hosts without systemd as PID 1 (see the module docstring)."""

    name = "pidfile"

    def __init__(
        self,
        *,
        start_timeout: float = 30.0,
        stop_timeout: float = 30.0,
        ready_after: float | None = None,
        workdir: Path | None = None,
    ) -> None:
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.ready_after = ready_after
        self.workdir = workdir
        self._orphans: dict[str, int] | None = None  # see _orphan

    # -- helpers -------------------------------------------------------------

    @contextlib.contextmanager
    def _locks(
        self, nodes: Sequence[NodeSpec], deadline: float | None
    ) -> Iterator[tuple[list[NodeSpec], list[NodeReport]]]:
        """Lock every node (pidfile order); yield (locked nodes, failure reports)."""
        check_distinct(nodes)
        reports: list[NodeReport] = []
        held: list[NodeSpec] = []
        with contextlib.ExitStack() as stack:
            for spec in sorted(nodes, key=lambda s: str(s.pidfile)):
                try:
                    got = stack.enter_context(pidfiles.locked(spec.pidfile, deadline))
                except FileNotFoundError:
                    held.append(spec)  # no pid directory: nothing can be running
                    continue
                except StemError as exc:
                    if isinstance(exc, PrivilegeError) and not os.path.lexists(spec.pidfile):
                        # No lock for us, but no pidfile either: nothing of this
                        # node runs (start checks the directory before this).
                        held.append(spec)
                    else:
                        reports.append(_failure(spec.name, f"failed: {exc.message}", exc))
                    continue
                if got:
                    held.append(spec)
                else:
                    held_by = StemError(
                        "another stem run holds the node's lock",
                        hint="wait for it; a `start --foreground` supervisor (a container's"
                        " PID 1) holds its nodes' locks while it runs: stop it instead"
                        " (docker stop, or TERM to it)",
                    )
                    reports.append(_failure(spec.name, f"failed: {held_by.message}", held_by))
            yield held, reports

    def _inspect(self, spec: NodeSpec) -> tuple[_Live | None, NodeReport | None, str]:
        """Look at a node's pidfile: (live node, or a report to give instead, stale note).

        Stale pidfiles are removed here (the caller holds the node's lock).
        """
        try:
            check = pidfiles.check(spec.pidfile)
        except StemError as exc:
            return None, _failure(spec.name, f"failed: {exc.message}", exc), ""
        if check.liveness is Liveness.STALE:
            try:
                pidfiles.remove(spec.pidfile)
            except StemError as exc:
                return None, _failure(spec.name, f"failed: {check.reason}; {exc.message}", exc), ""
            return None, None, f"stale pidfile removed: {check.reason}"
        if check.liveness is Liveness.UNVERIFIABLE:
            return (
                None,
                NodeReport(
                    node=spec.name,
                    state=State.UNKNOWN,
                    ok=False,
                    message=f"unknown: {check.reason}; not touching it",
                    exit_code=1,
                    details=_details(spec, hint=f"check PID, then remove {spec.pidfile}"),
                ),
                "",
            )
        if check.liveness is Liveness.ABSENT or check.record is None:
            return self._adopt(spec)
        return self._pin(spec, check.record)

    def _orphan(self, spec: NodeSpec) -> int | None:
        """The PID of a node of ours that runs without its pidfile, if any.

        A `stem` killed outright (SIGKILL, the OOM killer) between spawning a
        node and writing its pidfile leaves such a node: its own session, and
        STEM_WORKER_PIDFILE naming this pidfile in its environment. One /proc
        scan per command, on the first node found without a pidfile.
        """
        if self._orphans is None:
            self._orphans = procs.session_leaders_by_env("STEM_WORKER_PIDFILE")
        return self._orphans.pop(str(spec.pidfile), None)

    def _adopt(self, spec: NodeSpec) -> tuple[_Live | None, NodeReport | None, str]:
        """Give an orphaned node (see :meth:`_orphan`) its pidfile back and pin it."""
        pid = self._orphan(spec)
        if pid is None:
            return None, None, ""
        record = pidfiles.record_for(pid, ready=False)  # readiness unknown: "starting"
        if record.identity is None:
            return None, None, ""  # gone meanwhile
        try:
            pidfiles.write(spec.pidfile, record)
        except (StemError, OSError):
            return None, None, ""  # then it stays an orphan; the write error shows at spawn
        live, report, _ = self._pin(spec, record)
        return live, report, f"pidfile restored for pid {pid}, which ran without one"

    def _pin(
        self, spec: NodeSpec, record: pidfiles.Record
    ) -> tuple[_Live | None, NodeReport | None, str]:
        """Pin a running node's main process with a pidfd, re-checking identity after."""
        pidfd = procs.pidfd_open(record.pid)
        identity = pidfiles.Identity.of_pid(record.pid)
        if pidfd is None or identity is None or identity != record.identity:
            # It exited (or was replaced) between the check and pinning it.
            if pidfd is not None:
                os.close(pidfd)
            pidfiles.remove(spec.pidfile)
            return None, None, "stale pidfile removed: the process just exited"
        if not procs.may_signal(pidfd):
            os.close(pidfd)
            error = PrivilegeError(
                f"not allowed to signal PID {record.pid} (another user's process)",
                hint="run as the user that started the node, or as root",
            )
            return None, _failure(spec.name, f"failed: {error.message}", error), ""
        return _Live(spec, record, pidfd, identity.starttime), None, ""

    # -- verbs ---------------------------------------------------------------

    def prepare(self, nodes: Sequence[NodeSpec]) -> None:
        """Create pid and log directories, or raise one error before anything runs."""
        check_distinct(nodes)
        if self.workdir is not None:
            _check_workdir(self.workdir)
        seen: set[tuple[Path, str]] = set()
        created: list[Path] = []
        try:
            for spec in nodes:
                for directory, what in (
                    (spec.pidfile.parent, "pidfile"),
                    (spec.main_logfile.parent, "logfile"),
                ):
                    if (directory, what) not in seen:
                        seen.add((directory, what))
                        created += _missing_dirs(directory)
                        _ensure_dir(directory, what)
        except BaseException:
            # One directory failed: take back the ones made for this run.
            for directory in reversed(created):
                with contextlib.suppress(OSError):
                    directory.rmdir()  # only while empty
            raise

    def start(self, nodes: Sequence[NodeSpec], timeout: float) -> list[NodeReport]:
        """Start every node not running; return when each is ready or has failed."""
        self.prepare(nodes)
        reports: dict[str, NodeReport] = {}
        lock_deadline = time.monotonic() + timeout + LOCK_GRACE
        with self._locks(nodes, lock_deadline) as (held, lock_failures):
            reports.update((r.node, r) for r in lock_failures)
            deadline = time.monotonic() + timeout
            spawned: list[tuple[lifecycle.Spawned, str]] = []
            try:
                with NotifyListener() as listener:
                    backlog: list[NotifyMessage] = []
                    for spec in held:
                        # A signal between the spawn and the append would
                        # leave a node no cleanup knows of: held until here.
                        with interrupts.deferred():
                            report, started = self._spawn_one(spec, listener.address)
                            if started is not None:
                                spawned.append(started)
                        if report is not None:
                            reports[spec.name] = report
                        # Keep the notify queue short while spawning: past
                        # net.unix.max_dgram_qlen queued datagrams (10 where
                        # systemd's sysctl.d does not raise it) a node's
                        # sd_notify blocks, and may time out, READY=1 included.
                        backlog += listener.drain()
                    results = lifecycle.wait_ready(
                        [sp for sp, _ in spawned],
                        listener,
                        deadline,
                        self.ready_after,
                        backlog=backlog,
                    )
            except BaseException:
                # Interrupted (Ctrl-C) while spawning or waiting: leave nothing
                # half-started behind, no process and no pidfile; a second
                # Ctrl-C must not cut this short.
                with interrupts.deferred(reraise=False):
                    for sp, _ in spawned:
                        lifecycle.abort_node(sp)
                        pidfiles.remove(sp.spec.pidfile)
                        os.close(sp.pidfd)
                raise
            # Every ready node gets its ready=1 pidfile, even when a signal comes now.
            with interrupts.deferred():
                for sp, note in spawned:
                    reports[sp.spec.name] = self._start_report(sp, results[sp.pid], note)
                    os.close(sp.pidfd)
        return [reports[spec.name] for spec in nodes]

    def _spawn_one(
        self, spec: NodeSpec, notify_address: str
    ) -> tuple[NodeReport | None, tuple[lifecycle.Spawned, str] | None]:
        """Spawn one locked node unless it runs: (a report now, or the spawned node and a note)."""
        live, report, note = self._inspect(spec)
        if report is not None:
            return report, None
        if live is not None:
            os.close(live.pidfd)
            return NodeReport(
                node=spec.name,
                state=State.RUNNING,
                ok=True,
                message=f"already running (pid {live.record.pid})",
                pid=live.record.pid,
                details=_details(spec),
            ), None
        try:
            sp = lifecycle.spawn_node(spec, notify_address, workdir=self.workdir)
        except StemError as exc:
            return _failure(spec.name, f"failed: {exc.message}", exc), None
        try:
            # Tracked from the start: a node is never running without a pidfile.
            pidfiles.write(spec.pidfile, pidfiles.record_for(sp.pid, ready=False))
        except (StemError, OSError) as exc:
            lifecycle.abort_node(sp)
            os.close(sp.pidfd)
            message = exc.message if isinstance(exc, StemError) else str(exc)
            return _failure(spec.name, f"failed: cannot write pidfile: {message}"), None
        return None, (sp, note)

    def _start_report(
        self, sp: lifecycle.Spawned, readiness: lifecycle.Readiness, note: str
    ) -> NodeReport:
        spec = sp.spec
        suffix = f"; {note}" if note else ""
        record = pidfiles.record_for(sp.pid, ready=True) if readiness.ready else None
        if readiness.ready and record is not None and record.identity is None:
            # Gone right after READY=1 (or never really there): that is a failure.
            code = sp.proc.wait()
            readiness = lifecycle.Readiness(
                ready=False, returncode=code, reason=f"{describe_status(code)} right after READY=1"
            )
        if readiness.ready and record is not None:
            # Rewrite with ready=1 and the identity as of now: the node may
            # have exec'd again before it became ready.
            try:
                pidfiles.write(spec.pidfile, record)
            except (StemError, OSError) as exc:
                lifecycle.abort_node(sp)
                pidfiles.remove(spec.pidfile)
                message = exc.message if isinstance(exc, StemError) else str(exc)
                return _failure(spec.name, f"failed: cannot write pidfile: {message}")
            return NodeReport(
                node=spec.name,
                state=State.RUNNING,
                ok=True,
                message=f"started (pid {sp.pid}, ready in {readiness.seconds:.1f} s){suffix}",
                pid=sp.pid,
                details=_details(spec, status=readiness.status, ready_seconds=readiness.seconds),
            )
        killed = lifecycle.abort_node(sp)
        pidfiles.remove(spec.pidfile)
        reason = readiness.reason
        if readiness.returncode is None:
            reason += f" ({readiness.seconds:.0f} s); killed its {killed} process(es)"
        return NodeReport(
            node=spec.name,
            state=State.FAILED,
            ok=False,
            message=f"failed: {reason}{suffix}",
            exit_code=1,
            pid=sp.pid,
            details=_details(spec, returncode=readiness.returncode, status=readiness.status),
            log_tail=lifecycle.log_tail(spec.main_logfile, since=sp.log_offset),
        )

    def stop(self, nodes: Sequence[NodeSpec], timeout: float) -> list[NodeReport]:
        """TERM every running node at once, KILL what outlives the timeout."""
        deadline = time.monotonic() + timeout
        reports: dict[str, NodeReport] = {}
        with self._locks(nodes, deadline) as (held, lock_failures):
            reports.update((r.node, r) for r in lock_failures)
            live: list[_Live] = []
            for spec in held:
                found, report, note = self._inspect(spec)
                if report is not None:
                    reports[spec.name] = report
                elif found is None:
                    reports[spec.name] = NodeReport(
                        node=spec.name,
                        state=State.STOPPED,
                        ok=True,
                        message="not running" + (f" ({note})" if note else ""),
                        details=_details(spec),
                    )
                else:
                    live.append(found)
            targets = [
                lifecycle.Target(n.spec.name, n.record.pid, n.pidfd, n.starttime) for n in live
            ]
            outcomes = lifecycle.stop_nodes(targets, deadline)
            for n in live:
                reports[n.spec.name] = self._stop_report(n, outcomes[n.spec.name], timeout)
                os.close(n.pidfd)
        return [reports[spec.name] for spec in nodes]

    def _stop_report(self, n: _Live, outcome: lifecycle.StopOutcome, timeout: float) -> NodeReport:
        spec, pid = n.spec, n.record.pid
        if outcome.survivors:
            return NodeReport(
                node=spec.name,
                state=State.UNKNOWN,
                ok=False,
                message=f"failed: processes {outcome.survivors} survived SIGKILL",
                exit_code=1,
                pid=pid,
                details=_details(spec),
            )
        pidfiles.remove(spec.pidfile)
        if outcome.timed_out:
            message = (
                f"killed: still running after the {timeout:g} s stop timeout, "
                f"sent SIGKILL to {outcome.killed} process(es) of its group"
            )
        elif outcome.killed:
            message = (
                f"stopped (pid {pid}, {outcome.seconds:.1f} s); "
                f"sent SIGKILL to {outcome.killed} leftover process(es)"
            )
        else:
            message = f"stopped (pid {pid}, {outcome.seconds:.1f} s)"
        return NodeReport(
            node=spec.name,
            state=State.STOPPED,
            ok=True,
            message=message,
            pid=pid,
            details=_details(spec, killed=outcome.killed, timed_out=outcome.timed_out),
        )

    def restart(self, nodes: Sequence[NodeSpec], timeout: float, rolling: bool) -> list[NodeReport]:
        """Stop then start; ``timeout`` bounds the stop, the start uses start_timeout.

        Rolling: one node at a time, each ready before the next stops; the
        first node that fails to come back halts the roll (the rest are left
        running and reported as not restarted).
        """
        if not rolling:
            self.prepare(nodes)
            stopped = {r.node: r for r in self.stop(nodes, timeout)}
            startable = [s for s in nodes if stopped[s.name].ok]
            started = {r.node: r for r in self.start(startable, self.start_timeout)}
            return [started.get(s.name, stopped[s.name]) for s in nodes]
        reports: list[NodeReport] = []
        halted: str | None = None
        for spec in nodes:
            if halted is not None:
                reports.append(
                    _failure(spec.name, f"not restarted: rolling restart halted at {halted}")
                )
                continue
            (stop_report,) = self.stop([spec], timeout)
            if not stop_report.ok:
                reports.append(stop_report)
                halted = spec.name
                continue
            (start_report,) = self.start([spec], self.start_timeout)
            reports.append(start_report)
            if not start_report.ok:
                halted = spec.name
        return reports

    def kill(self, nodes: Sequence[NodeSpec], signum: int, whom: str) -> list[NodeReport]:
        """Send signum to each node's group (whom='all') or main process ('main')."""
        signame = signal.Signals(signum).name
        reports: dict[str, NodeReport] = {}
        with self._locks(nodes, time.monotonic() + self.stop_timeout) as (held, lock_failures):
            reports.update((r.node, r) for r in lock_failures)
            for spec in held:
                found, report, note = self._inspect(spec)
                if report is not None:
                    reports[spec.name] = report
                    continue
                if found is None:
                    reports[spec.name] = NodeReport(
                        node=spec.name,
                        state=State.STOPPED,
                        ok=True,
                        message="not running" + (f" ({note})" if note else ""),
                        details=_details(spec),
                    )
                    continue
                reports[spec.name] = self._kill_one(found, signum, signame, whom)
                os.close(found.pidfd)
        return [reports[spec.name] for spec in nodes]

    def _kill_one(self, n: _Live, signum: int, signame: str, whom: str) -> NodeReport:
        spec, pid = n.spec, n.record.pid
        if whom == "main":
            procs.pidfd_signal(n.pidfd, signum)
            count = 1
        else:
            members = procs.signal_group(pid, n.starttime, signum)
            procs.close_all(m.pidfd for m in members)
            count = len(members)
        message = f"sent {signame} to {count} process(es) (pid {pid})"
        state = State.RUNNING
        # KILL cannot be refused: wait for the exit and drop the pidfile.
        if signum == signal.SIGKILL and procs.wait_exits(
            {pid: n.pidfd}, time.monotonic() + lifecycle.KILL_WAIT
        ):
            pidfiles.remove(spec.pidfile)
            state = State.STOPPED
            message += "; exited"
        return NodeReport(
            node=spec.name,
            state=state,
            ok=True,
            message=message,
            pid=pid,
            details=_details(spec, signal=signame, whom=whom, processes=count),
        )

    def status(self, nodes: Sequence[NodeSpec]) -> list[NodeReport]:
        """One report per node with LSB codes; stale pidfiles are removed and reported."""
        return [self._status_one(spec) for spec in nodes]

    def _status_one(self, spec: NodeSpec) -> NodeReport:
        try:
            check = pidfiles.check(spec.pidfile)
        except StemError as exc:
            return NodeReport(
                node=spec.name,
                state=State.UNKNOWN,
                ok=False,
                message=f"unknown: {exc.message}",
                exit_code=4,
                details=_details(spec, hint=exc.hint),
            )
        record = check.record
        if check.liveness is Liveness.ABSENT or record is None:
            orphan = self._orphan(spec)  # status takes no lock: it reports, start/stop adopt
            if orphan is not None:
                return NodeReport(
                    node=spec.name,
                    state=State.RUNNING,
                    ok=True,
                    message=f"running without a pidfile (pid {orphan}); stop or start restores it",
                    pid=orphan,
                    details=_details(spec),
                )
            return NodeReport(
                node=spec.name,
                state=State.STOPPED,
                ok=True,
                message="not running",
                exit_code=3,
                details=_details(spec),
            )
        if check.liveness is Liveness.STALE:
            removed = self._remove_stale(spec, record)
            return NodeReport(
                node=spec.name,
                state=State.DEAD,
                ok=False,
                message=f"dead: {check.reason}"
                + ("; stale pidfile removed" if removed else "; pidfile left in place"),
                exit_code=1,
                pid=record.pid,
                details=_details(spec, stale_removed=removed),
            )
        if check.liveness is Liveness.UNVERIFIABLE:
            return NodeReport(
                node=spec.name,
                state=State.UNKNOWN,
                ok=False,
                message=f"unknown: {check.reason}",
                exit_code=4,
                pid=record.pid,
                details=_details(spec),
            )
        assert record.identity is not None
        uptime = procs.uptime_of(record.identity.starttime)
        state = State.RUNNING if record.ready else State.STARTING
        return NodeReport(
            node=spec.name,
            state=state,
            ok=True,
            message=f"{state.value} (pid {record.pid}, up {format_uptime(uptime)})",
            exit_code=0,
            pid=record.pid,
            details=_details(spec, uptime_seconds=round(uptime, 1)),
        )

    def _remove_stale(self, spec: NodeSpec, seen: pidfiles.Record) -> bool:
        """Remove a stale pidfile unless a start/stop holds the node (it may be rewriting it).

        False when it was left: the node is locked, or we may not remove it.
        """
        try:
            with pidfiles.locked(spec.pidfile, None) as got:
                if not got:
                    return False
                if pidfiles.read(spec.pidfile) != seen:
                    return False  # rewritten meanwhile: not ours to judge any more
                pidfiles.remove(spec.pidfile)
                return True
        except (StemError, OSError):
            return False
