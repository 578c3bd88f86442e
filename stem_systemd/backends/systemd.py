"""The systemd backend: nodes are ``stem-worker@<node>.service`` units, driven over D-Bus.

This is the only module that imports pystemd; its bytes and CamelCase stay in
here. Methods and properties are those of org.freedesktop.systemd1(5).

Every command validates all node names (pure, no D-Bus), then opens one bus
connection, issues every node's job, and waits for all of them with one
deadline by listening for the manager's ``JobRemoved`` signal (with a poll of
the job objects as a safety net). A node is then judged by its unit, not by
the job: start is ok only when the unit is active/running, which for
Type=notify means after READY=1 (systemd.service(5)).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from stem_systemd import interrupts, proc
from stem_systemd.backends import systemd_dropins as dropins
from stem_systemd.backends import systemd_units as su
from stem_systemd.backends.base import NodeReport, State
from stem_systemd.errors import NotInstalledError, PrivilegeError, StemError
from stem_systemd.nodes import NodeSpec

log = logging.getLogger("stem")

_DEST = b"org.freedesktop.systemd1"
_PATH = b"/org/freedesktop/systemd1"
_MANAGER = b"org.freedesktop.systemd1.Manager"
_UNIT = b"org.freedesktop.systemd1.Unit"
_SERVICE = b"org.freedesktop.systemd1.Service"
_JOB = b"org.freedesktop.systemd1.Job"
_PROPERTIES_IFACE = b"org.freedesktop.DBus.Properties"

# Properties read for status and judgement: (interface, name, D-Bus type).
_PROPERTIES = (
    (_UNIT, "LoadState", b"s"),
    (_UNIT, "ActiveState", b"s"),
    (_UNIT, "SubState", b"s"),
    (_UNIT, "UnitFileState", b"s"),
    (_UNIT, "ActiveEnterTimestamp", b"t"),
    (_SERVICE, "MainPID", b"u"),
    (_SERVICE, "StatusText", b"s"),
    (_SERVICE, "Result", b"s"),
    (_SERVICE, "ExecMainCode", b"i"),
    (_SERVICE, "ExecMainStatus", b"i"),
    (_SERVICE, "NRestarts", b"u"),
)

# What the user reads for a refused method call.
_DOING = {
    "StartUnit": "starting",
    "StopUnit": "stopping",
    "RestartUnit": "restarting",
    "KillUnit": "signalling",
    "EnableUnitFiles": "enabling",
    "DisableUnitFiles": "disabling",
}

_KILL_GRACE = 10.0  # seconds to wait for the cgroup to empty after SIGKILL
_ABORT_WAIT = 10.0  # seconds an interrupted start gives its nodes to stop before SIGKILL
_POLL = 0.25  # longest single bus wait; job objects are re-checked every second


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _dbus_errors() -> Any:
    """pystemd's exception module, imported late (``stem --version`` stays fast)."""
    from pystemd import dbusexc  # noqa: PLC0415

    return dbusexc


def _translate(exc: Exception, action: str, user: bool) -> StemError:
    """A D-Bus error as the StemError the user can act on (exit 4, 5 or 1)."""
    x = _dbus_errors()
    detail = _text(getattr(exc, "err_message", b"")) or str(exc)
    if isinstance(exc, x.DBusAccessDeniedError | x.DBusInteractiveAuthorizationRequiredError):
        hint = (
            "the user manager only accepts its own user"
            if user
            else "run it as root (sudo), or allow org.freedesktop.systemd1.manage-units "
            "(and manage-unit-files, reload-daemon) for this user through polkit"
        )
        return PrivilegeError(f"{action}: access denied by systemd ({detail})", hint=hint)
    if isinstance(exc, x.DBusNoSuchUnitError):
        return NotInstalledError(f"{action}: {detail}", hint=su.INSTALL_HINT)
    unreachable = (
        x.DBusServiceUnknownError,
        x.DBusNameHasNoOwnerError,
        x.DBusNoServerError,
        x.DBusDisconnectedError,
        x.DBusNoReplyError,
        x.DBusConnectionRefusedError,
        x.DBusTimedOutError,
        x.DBusTimeoutError,
    )
    if isinstance(exc, unreachable):
        return _unreachable(detail, user)
    return StemError(f"{action}: {detail}")


def _unreachable(detail: str, user: bool) -> StemError:
    manager = "the user's systemd (user bus)" if user else "systemd (system bus)"
    return StemError(
        f"cannot talk to {manager} over D-Bus: {detail}",
        hint="is systemd running as PID 1 here? Without it use --backend=pidfile",
    )


class _Conn:
    """One bus connection: typed calls to the manager and units, errors translated."""

    def __init__(self, bus: Any, user: bool, direct: bool = False) -> None:
        self.bus = bus
        self.user = user
        self.direct = direct  # peer-to-peer with the manager: messages carry no sender
        self.removed: dict[bytes, str] = {}  # job path -> JobRemoved result
        self._callback: Callable[..., None] | None = None  # kept alive: pystemd holds no ref

    def call(self, method: str, signature: bytes, *args: object) -> Any:
        """Call a Manager method; D-Bus errors propagate (the caller decides per node)."""
        from pystemd.dbuslib import apply_signature  # noqa: PLC0415

        log.debug(
            "+ dbus %s%r", method, tuple(_text(a) if isinstance(a, bytes) else a for a in args)
        )
        msg = self.bus.call_method(
            _DEST, _PATH, _MANAGER, method.encode(), apply_signature(signature, list(args))
        )
        return msg.body

    def manager(self, method: str, signature: bytes, *args: object, action: str) -> Any:
        """Call a Manager method; any D-Bus error becomes a StemError."""
        try:
            return self.call(method, signature, *args)
        except _dbus_errors().DBusBaseError as exc:
            raise _translate(exc, action, self.user) from exc

    def prop(self, path: bytes, iface: bytes, name: str, kind: bytes) -> object:
        value = self.bus.get_property(_DEST, path, iface, name.encode(), kind)
        return _text(value) if kind == b"s" else value

    def load(self, unit: str) -> bytes:
        """LoadUnit: the unit's object path, loaded if needed (listings see loaded units only)."""
        return bytes(self.manager("LoadUnit", b"s", unit.encode(), action=f"loading {unit}"))

    def active_state(self, unit: str, path: bytes) -> str:
        """ActiveState alone: one round-trip to PID 1 where :meth:`info` makes eleven."""
        try:
            return str(self.prop(path, _UNIT, "ActiveState", b"s"))
        except _dbus_errors().DBusBaseError as exc:
            raise _translate(exc, f"reading {unit}", self.user) from exc

    def info(self, unit: str, path: bytes) -> su.UnitInfo:
        # One GetAll per interface, not a Get per property: once a stopped unit
        # is inactive, systemd lets go of it and loads it again for every call
        # (64 units after a stop: 0.59 s with 11 Gets per unit, 0.30 s with 2 GetAlls).
        from pystemd.dbuslib import apply_signature  # noqa: PLC0415

        props: dict[str, object] = {}
        try:
            for iface in (_UNIT, _SERVICE):
                values = self.bus.call_method(
                    _DEST, path, _PROPERTIES_IFACE, b"GetAll", apply_signature(b"s", [iface])
                ).body
                for i, name, kind in _PROPERTIES:
                    value = values.get(name.encode()) if i == iface else None
                    if value is not None:
                        props[name] = _text(value) if kind == b"s" else value
        except _dbus_errors().DBusBaseError as exc:
            raise _translate(exc, f"reading {unit}", self.user) from exc
        return su.info_from_properties(unit, props)

    def watch_jobs(self) -> None:
        """Listen for JobRemoved before any job exists, so no completion can be missed.

        Once per connection: systemd refuses a second Subscribe ("Client is
        already subscribed"), e.g. when an interrupted start stops its units.
        """
        if self._callback is not None:
            return

        def on_removed(msg: Any, error: object = None, userdata: object = None) -> None:
            # Exceptions cannot propagate out of a pystemd callback: log them instead.
            try:
                msg.process_reply(False)
                _id, job, _unit, result = msg.body
                self.removed[bytes(job)] = _text(result)
            except Exception:
                log.debug("unreadable JobRemoved signal", exc_info=True)

        self._callback = on_removed
        try:
            sender = None if self.direct else _DEST
            self.bus.match_signal(sender, _PATH, _MANAGER, b"JobRemoved", on_removed)
            self.call("Subscribe", b"")
        except _dbus_errors().DBusBaseError as exc:
            raise _translate(exc, "subscribing to systemd job signals", self.user) from exc

    def live_jobs(self, candidates: Iterable[bytes]) -> set[bytes]:
        """Which of ``candidates`` are still queued: one ListJobs call for all of them.

        (A Get per job is a round-trip each to PID 1 while it is busiest: with
        64 nodes those sweeps cost 0.8 s of a 5 s start; bench/RESULTS.md.)
        """
        try:
            listed = {bytes(job[4]) for job in self.call("ListJobs", b"")}
        except _dbus_errors().DBusBaseError:
            return {job for job in candidates if self.job_exists(job)}
        return {job for job in candidates if job in listed}

    def job_exists(self, job: bytes) -> bool:
        try:
            self.bus.get_property(_DEST, job, _JOB, b"State", b"s")
        except _dbus_errors().DBusBaseError:
            return False
        return True

    def wait_jobs(self, jobs: Sequence[bytes], deadline: float) -> dict[bytes, str | None]:
        """Wait for every job to be removed or the deadline; job -> result (None: still queued)."""
        pending = set(jobs) - set(self.removed)
        last_check = time.monotonic()
        while pending:
            now = time.monotonic()
            if now >= deadline:
                break
            self.bus.process()
            pending -= set(self.removed)
            if not pending:
                break
            if now - last_check >= 1.0:
                # Safety net: a job that vanished without our seeing its signal is done.
                for job in pending - self.live_jobs(pending):
                    self.removed.setdefault(job, "done")
                    pending.discard(job)
                last_check = now
            remaining = max(0.0, min(deadline - now, _POLL))
            self.bus.wait(int(remaining * 1_000_000))
        return {job: self.removed.get(job) for job in jobs}


class SystemdBackend:
    """Nodes as instances of the ``stem-worker@.service`` template (system or user manager)."""

    name = "systemd"

    def __init__(
        self,
        user: bool = False,
        runtime_dir: Path | None = None,
        journal_lines: int = 10,
        start_timeout: float = 30.0,
    ) -> None:
        self.user = user
        self.start_timeout = start_timeout  # the start half of a restart
        self.runtime_dir = runtime_dir or dropins.default_runtime_dir(user)
        self.journal_lines = journal_lines

    # -- connection ---------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[_Conn]:
        bus, direct = _open_bus(self.user)
        try:
            yield _Conn(bus, self.user, direct=direct)
        finally:
            bus.close()

    def _units(self, nodes: Sequence[NodeSpec]) -> list[str]:
        """Every node's unit name; a bad name raises before any D-Bus call."""
        return [su.unit_for(n.name) for n in nodes]

    def _load_all(self, conn: _Conn, units: Sequence[str]) -> list[bytes]:
        """Load every unit; a template that is not installed stops the command (exit 5)."""
        paths = []
        for unit in units:
            path = conn.load(unit)
            try:
                load_state = _text(conn.prop(path, _UNIT, "LoadState", b"s"))
            except _dbus_errors().DBusBaseError as exc:
                raise _translate(exc, f"reading {unit}", self.user) from exc
            if load_state == "not-found":
                where = "user" if self.user else "system"
                raise NotInstalledError(
                    f"{su.TEMPLATE} is not installed for the {where} manager ({unit} not found)",
                    hint=su.INSTALL_HINT,
                )
            paths.append(path)
        return paths

    def _journal(self, unit: str) -> list[str]:
        """The unit's last journal lines (journalctl(1)); empty when the journal is not readable."""
        argv = ["journalctl", *(["--user"] if self.user else [])]
        argv += ["-u", unit, "-n", str(self.journal_lines), "--no-pager", "-o", "cat", "-q"]
        try:
            out = proc.run(argv, check=False, timeout=15)
        except StemError:
            return []
        return out.stdout.splitlines()[-self.journal_lines :]

    def _attach_journal(self, report: NodeReport, unit: str) -> None:
        report.log_tail = self._journal(unit)
        if report.log_tail:
            # The renderer titles a log tail with the node's "logfile".
            report.details["logfile"] = f"journalctl {'--user ' if self.user else ''}-u {unit}"

    # -- jobs -------------------------------------------------------------

    def _issue(
        self, conn: _Conn, method: str, units: Sequence[str]
    ) -> tuple[dict[str, bytes], dict[str, str]]:
        """Queue ``method`` (mode "replace") for every unit before waiting for any.

        Returns unit -> job path, and unit -> reason for units whose job systemd
        refused to queue (masked, destructive transaction, ...). Access denied
        stops the command at the first unit, before anything was done.
        """
        conn.watch_jobs()
        issued: dict[str, bytes] = {}
        refused: dict[str, str] = {}
        x = _dbus_errors()
        for unit in units:
            try:
                issued[unit] = bytes(conn.call(method, b"ss", unit.encode(), b"replace"))
            except (x.DBusAccessDeniedError, x.DBusInteractiveAuthorizationRequiredError) as exc:
                raise _translate(exc, f"{_DOING[method]} {unit}", self.user) from exc
            except x.DBusBaseError as exc:
                refused[unit] = _text(exc.err_message) or str(exc)
        return issued, refused

    def _reload(self, conn: _Conn) -> None:
        """Manager.Reload = ``systemctl daemon-reload``; the reply comes after the reload."""
        conn.manager("Reload", b"", action="reloading systemd (daemon-reload)")

    def _start_like(
        self, nodes: Sequence[NodeSpec], timeout: float, method: str, clear_args: bool
    ) -> list[NodeReport]:
        units = self._units(nodes)
        verb = "start" if method == "StartUnit" else "restart"
        with self._connect() as conn:
            paths = self._load_all(conn, units)
            before = {u: conn.active_state(u, p) for u, p in zip(units, paths, strict=True)}
            changed = dropins.write_args(self.runtime_dir, nodes, units, clear=clear_args)
            if changed:
                self._reload(conn)
            issued: dict[str, bytes] = {}
            try:
                with interrupts.deferred():  # every job queued is one we know of
                    issued, refused = self._issue(conn, method, units)
                done = conn.wait_jobs(list(issued.values()), time.monotonic() + timeout)
            except (KeyboardInterrupt, interrupts.Terminated):
                # Ctrl-C, TERM or HUP while systemd works on our jobs: take back
                # what this run began, as the pidfile backend does, instead of
                # saying "Aborted" while the nodes come up anyway.
                begun = [u for u in issued if not (verb == "start" and before[u] == "active")]
                with interrupts.deferred(reraise=False):
                    self._stop_units(conn, begun, _ABORT_WAIT)
                raise
            results = {unit: done[job] for unit, job in issued.items()}
            reports = []
            for node, unit, path in zip(nodes, units, paths, strict=True):
                info = conn.info(unit, path)
                if unit in refused:
                    reports.append(su.refused_report(node.name, info, verb, refused[unit]))
                    continue
                # StartUnit on an active unit is a no-op job: say so, like the pidfile backend.
                was_running = verb == "start" and before[unit] == "active"
                report = su.start_report(
                    node.name, info, results[unit], timeout, verb=verb, was_running=was_running
                )
                if was_running and unit in changed:
                    report.message += "; its new arguments apply at the next restart"
                if not report.ok:
                    self._attach_journal(report, unit)
                reports.append(report)
        return reports

    # -- the Backend protocol ---------------------------------------------

    def start(self, nodes: Sequence[NodeSpec], timeout: float) -> list[NodeReport]:
        """StartUnit every node, then wait until each is active/running (READY=1) or failed."""
        return self._start_like(nodes, timeout, "StartUnit", clear_args=True)

    def restart(self, nodes: Sequence[NodeSpec], timeout: float, rolling: bool) -> list[NodeReport]:
        """RestartUnit (args kept unless new ones are given); rolling: one node at a time.

        ``timeout`` is the stop timeout; a RestartUnit job stops and then
        starts, so its deadline is that plus the start timeout.
        """
        timeout += self.start_timeout
        if not rolling:
            return self._start_like(nodes, timeout, "RestartUnit", clear_args=False)
        self._units(nodes)  # refuse a bad name before touching any node
        reports: list[NodeReport] = []
        for i, node in enumerate(nodes):
            [report] = self._start_like([node], timeout, "RestartUnit", clear_args=False)
            reports.append(report)
            if not report.ok:
                # Taking down the next node while this one is broken would defeat a
                # rolling restart: the rest stay as they are, and say so.
                reports += [
                    NodeReport(
                        node=rest.name,
                        state=State.UNKNOWN,
                        ok=False,
                        message=f"not restarted: rolling restart stopped at {node.name}",
                        exit_code=1,
                    )
                    for rest in nodes[i + 1 :]
                ]
                break
        return reports

    def stop(self, nodes: Sequence[NodeSpec], timeout: float) -> list[NodeReport]:
        """StopUnit every node; what is still running at the deadline gets SIGKILL (cgroup)."""
        units = self._units(nodes)
        with self._connect() as conn:
            paths = self._load_all(conn, units)
            before = {u: conn.active_state(u, p) for u, p in zip(units, paths, strict=True)}
            refused, results, late = self._stop_units(conn, units, timeout)
            reports = []
            for node, unit, path in zip(nodes, units, paths, strict=True):
                info = conn.info(unit, path)
                if unit in refused:
                    reports.append(su.refused_report(node.name, info, "stop", refused[unit]))
                    continue
                report = su.stop_report(
                    node.name,
                    info,
                    results[unit],
                    timeout,
                    killed=unit in late,
                    was_stopped=before[unit] in ("inactive", "failed"),
                )
                if not report.ok:
                    self._attach_journal(report, unit)
                reports.append(report)
        return reports

    def _stop_units(
        self, conn: _Conn, units: Sequence[str], timeout: float
    ) -> tuple[dict[str, str], dict[str, str | None], list[str]]:
        """StopUnit all, wait, SIGKILL the cgroups still there: (refused, job results, killed)."""
        issued, refused = self._issue(conn, "StopUnit", units)
        done = conn.wait_jobs(list(issued.values()), time.monotonic() + timeout)
        results = {unit: done[job] for unit, job in issued.items()}
        late = [unit for unit, result in results.items() if result is None]
        for unit in late:
            # The unit's TimeoutStopSec= may be longer than ours: enforce ours,
            # as the pidfile backend does (KILL what is left of the node).
            with contextlib.suppress(_dbus_errors().DBusBaseError):
                conn.call("KillUnit", b"ssi", unit.encode(), b"all", signal.SIGKILL)
        if late:
            conn.wait_jobs([issued[u] for u in late], time.monotonic() + _KILL_GRACE)
        return refused, results, late

    def kill(self, nodes: Sequence[NodeSpec], signum: int, whom: str) -> list[NodeReport]:
        """KillUnit with ``whom`` main (the main PID) or all (every process in the cgroup)."""
        if whom not in ("main", "all"):
            raise StemError(f"--whom {whom}: expected main or all")
        units = self._units(nodes)
        signame = su.signal_name(signum)
        reports = []
        x = _dbus_errors()
        with self._connect() as conn:
            paths = self._load_all(conn, units)
            for node, unit, path in zip(nodes, units, paths, strict=True):
                info = conn.info(unit, path)
                if info.active_state in ("inactive", "failed"):
                    reports.append(
                        NodeReport(
                            node=node.name,
                            state=su.state_of(info),
                            ok=True,
                            message=f"not running ({unit}), nothing to signal",
                            details=info.fields(),
                        )
                    )
                    continue
                try:
                    conn.call("KillUnit", b"ssi", unit.encode(), whom.encode(), signum)
                except (x.DBusAccessDeniedError, x.DBusInteractiveAuthorizationRequiredError) as e:
                    raise _translate(e, f"signalling {unit}", self.user) from e
                except x.DBusBaseError as exc:
                    reports.append(
                        su.refused_report(node.name, info, "kill", _text(exc.err_message))
                    )
                    continue
                target = (
                    f"main process (pid {info.main_pid})" if whom == "main" else "all processes"
                )
                reports.append(
                    NodeReport(
                        node=node.name,
                        state=su.state_of(info),
                        ok=True,
                        message=f"sent {signame} to {target} of {unit}",
                        pid=info.main_pid or None,
                        details={**info.fields(), "signal": signame, "whom": whom},
                    )
                )
        return reports

    def status(self, nodes: Sequence[NodeSpec]) -> list[NodeReport]:
        """Each node's unit state; with no nodes, every loaded or enabled stem-worker@ instance."""
        names = [n.name for n in nodes]
        units = self._units(nodes)
        with self._connect() as conn:
            if not names:
                names = self._discover(conn)
                units = [su.unit_for(n) for n in names]
            paths = self._load_all(conn, units)
            return [
                su.status_report(name, conn.info(unit, path))
                for name, unit, path in zip(names, units, paths, strict=True)
            ]

    # -- systemd only: enable / disable -------------------------------------

    def enable(
        self, nodes: Sequence[NodeSpec], now: bool, timeout: float = 30.0
    ) -> list[NodeReport]:
        """EnableUnitFiles + Reload (+ start with ``now``), like ``systemctl enable --now``."""
        units = self._units(nodes)
        with self._connect() as conn:
            self._load_all(conn, units)
            reports = self._unit_files(conn, nodes, units, "EnableUnitFiles")
            self._reload(conn)
        if not now:
            return reports
        enabled = [n for n, r in zip(nodes, reports, strict=True) if r.ok]
        return su.merge_reports(reports, self.start(enabled, timeout) if enabled else [])

    def disable(
        self, nodes: Sequence[NodeSpec], now: bool, timeout: float = 30.0
    ) -> list[NodeReport]:
        """DisableUnitFiles + Reload (+ stop with ``now``), like ``systemctl disable --now``."""
        units = self._units(nodes)
        with self._connect() as conn:
            self._load_all(conn, units)
            reports = self._unit_files(conn, nodes, units, "DisableUnitFiles")
            self._reload(conn)
        if not now:
            return reports
        disabled = [n for n, r in zip(nodes, reports, strict=True) if r.ok]
        return su.merge_reports(reports, self.stop(disabled, timeout) if disabled else [])

    def _unit_files(
        self, conn: _Conn, nodes: Sequence[NodeSpec], units: Sequence[str], method: str
    ) -> list[NodeReport]:
        x = _dbus_errors()
        verb = "enabled" if method == "EnableUnitFiles" else "disabled"
        reports = []
        for node, unit in zip(nodes, units, strict=True):
            try:
                if method == "EnableUnitFiles":
                    # (runtime=false, force=false) -> (carries_install_info, changes)
                    carries_install_info, changes = conn.call(
                        method, b"asbb", [unit.encode()], False, False
                    )
                else:
                    # (runtime=false) -> changes
                    changes = conn.call(method, b"asb", [unit.encode()], False)
                    carries_install_info = True
            except (x.DBusAccessDeniedError, x.DBusInteractiveAuthorizationRequiredError) as exc:
                raise _translate(exc, f"{_DOING[method]} {unit}", self.user) from exc
            except x.DBusBaseError as exc:
                reports.append(
                    NodeReport(
                        node=node.name,
                        state=State.UNKNOWN,
                        ok=False,
                        message=f"could not be {verb} ({unit}): {_text(exc.err_message)}",
                        exit_code=1,
                    )
                )
                continue
            lines = [
                f"{_text(kind)} {_text(dest)} -> {_text(src)}" for kind, dest, src in changes or []
            ]
            if not carries_install_info:
                message = f"not {verb}: {su.TEMPLATE} has no [Install] section"
                ok = False
            else:
                message = f"{verb} ({unit})" + ("" if lines else f": already {verb}")
                ok = True
            reports.append(
                NodeReport(
                    node=node.name,
                    state=State.UNKNOWN,
                    ok=ok,
                    message=message,
                    exit_code=0 if ok else 1,
                    details={"unit": unit, "changes": lines},
                )
            )
        return reports

    def _discover(self, conn: _Conn) -> list[str]:
        """Node names of every loaded or enabled instance (ListUnits sees loaded units only)."""
        pattern = [su.UNIT_PATTERN.encode()]
        loaded = conn.manager(
            "ListUnitsByPatterns", b"asas", [], pattern, action="listing stem-worker units"
        )
        files = conn.manager(
            "ListUnitFilesByPatterns", b"asas", [], pattern, action="listing stem-worker unit files"
        )
        units = {_text(row[0]) for row in loaded or []}
        units |= {os.path.basename(_text(row[0])) for row in files or []}
        names = {n for n in map(su.node_for, units) if n is not None}
        return sorted(names)


def _open_bus(user: bool) -> tuple[Any, bool]:
    """The manager's bus: system bus, or the user bus; (bus, direct).

    A user manager without a session bus (no dbus-user-session) is still
    reachable on its private socket, as ``systemctl --user`` does it
    ($XDG_RUNTIME_DIR/systemd/private, only for its own user).
    """
    try:
        from pystemd.dbuslib import DBus, DBusAddress  # noqa: PLC0415
    except ImportError as exc:
        raise NotInstalledError(
            "the systemd backend needs pystemd, which is not installed",
            hint="pip install 'stem-systemd[systemd]' (needs libsystemd-dev and pkg-config), "
            "or use --backend=pidfile",
        ) from exc
    x = _dbus_errors()
    bus = DBus(user_mode=user)
    try:
        bus.open()
    except x.DBusBaseError as exc:
        first = _text(exc.err_message) or str(exc)
        private = dropins.default_runtime_dir(True).parent / "private"
        if not (user and private.exists()):
            raise _unreachable(first, user) from exc
        bus = DBusAddress(f"unix:path={private}".encode(), peer_to_peer=True)
        try:
            bus.open()
        except x.DBusBaseError as exc2:
            raise _unreachable(_text(exc2.err_message) or str(exc2), user) from exc2
        return bus, True
    return bus, False
