"""Pure parts of the systemd backend: unit names, the args drop-in, judging unit states.

Nothing here talks D-Bus (that is ``systemd.py``, the only pystemd importer):
this module turns node names into unit names, renders the runtime drop-in
that carries a node's own worker arguments, and turns the properties systemd
reports for a unit into a :class:`NodeReport`. It is tested without systemd.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass

from stem_systemd import escape
from stem_systemd.backends.base import NodeReport, State, lsb_status_code

TEMPLATE = "stem-worker@.service"
UNIT_PREFIX = "stem-worker@"
UNIT_SUFFIX = ".service"
UNIT_PATTERN = "stem-worker@*.service"

# The variable `stem worker exec` (ExecStart of the template) reads the node's
# extra worker arguments from: a shlex-quoted string appended to the argv it
# builds from STEM_WORKER_COMMAND.
ARGS_VARIABLE = "STEM_WORKER_ARGS"

INSTALL_HINT = (
    "install units/stem-worker@.service into /etc/systemd/system (user manager: "
    "~/.config/systemd/user) and run `systemctl daemon-reload`, or use --backend=pidfile"
)


def unit_for(node: str) -> str:
    """The unit of a node: ``stem-worker@<systemd-escaped node>.service`` (refuses bad names)."""
    return escape.unit_name(node)


def node_for(unit: str) -> str | None:
    """The node name behind a ``stem-worker@`` instance unit; None for the template or others."""
    if not (unit.startswith(UNIT_PREFIX) and unit.endswith(UNIT_SUFFIX)):
        return None
    instance = unit[len(UNIT_PREFIX) : -len(UNIT_SUFFIX)]
    if not instance:
        return None
    return escape.unescape_instance(instance)


def describe_exit(code: int, status: int) -> str:
    """ExecMainCode/ExecMainStatus as words (codes are siginfo CLD_*, see waitid(2))."""
    if code == 0:
        return "not run"
    if code == 1:  # CLD_EXITED
        return f"exit status {status}"
    try:
        name = signal.Signals(status).name
    except ValueError:
        name = f"signal {status}"
    return f"{'dumped core on' if code == 3 else 'killed by'} {name}"


def format_uptime(seconds: float) -> str:
    """Compact uptime: 42s, 3m07s, 2h05m, 4d03h."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


@dataclass(frozen=True)
class UnitInfo:
    """The unit properties the backend reads (names as in org.freedesktop.systemd1(5))."""

    unit: str
    load_state: str = "loaded"
    active_state: str = "inactive"
    sub_state: str = "dead"
    main_pid: int = 0
    status_text: str = ""
    result: str = "success"
    exec_main_code: int = 0
    exec_main_status: int = 0
    n_restarts: int = 0
    unit_file_state: str = ""
    active_enter_usec: int = 0  # ActiveEnterTimestamp, µs since the epoch

    @property
    def uptime(self) -> float | None:
        """Seconds since the unit became active, while it is active."""
        if self.active_state not in ("active", "reloading") or not self.active_enter_usec:
            return None
        return max(0.0, time.time() - self.active_enter_usec / 1e6)

    def fields(self) -> dict[str, object]:
        """The ``--json`` details of a node on the systemd backend."""
        return {
            "unit": self.unit,
            "load_state": self.load_state,
            "active_state": self.active_state,
            "sub_state": self.sub_state,
            "main_pid": self.main_pid or None,
            "status_text": self.status_text,
            "result": self.result,
            "exit": describe_exit(self.exec_main_code, self.exec_main_status)
            if self.exec_main_code
            else None,
            "n_restarts": self.n_restarts,
            "unit_file_state": self.unit_file_state,
            "uptime_s": None if self.uptime is None else round(self.uptime, 1),
        }


def state_of(info: UnitInfo) -> State:
    """Map ActiveState/SubState to our State (systemd.unit(5), org.freedesktop.systemd1(5)).

    A failed unit, or one waiting to be restarted after a failure, counts as
    DEAD: LSB status 1, the analogue of "dead but pidfile exists".
    """
    if info.load_state not in ("loaded",) and info.active_state == "inactive":
        return State.UNKNOWN if info.load_state != "not-found" else State.STOPPED
    if info.sub_state == "auto-restart" or info.active_state == "failed":
        return State.DEAD
    return {
        "active": State.RUNNING,
        "reloading": State.RUNNING,
        "activating": State.STARTING,
        "deactivating": State.STOPPING,
        "inactive": State.STOPPED,
    }.get(info.active_state, State.UNKNOWN)


def _summary(info: UnitInfo) -> str:
    """``active/running pid 123, "STATUS text", up 3m07s, 2 restarts, enabled``."""
    parts = [f"{info.active_state}/{info.sub_state}"]
    if info.main_pid:
        parts[0] += f" pid {info.main_pid}"
    if info.status_text and info.active_state not in ("inactive", "failed"):
        # systemd keeps the last STATUS= after the process is gone: stale then.
        parts.append(f'"{info.status_text}"')
    if info.uptime is not None:
        parts.append(f"up {format_uptime(info.uptime)}")
    if info.n_restarts:
        parts.append(f"{info.n_restarts} restart{'s' if info.n_restarts != 1 else ''}")
    if info.unit_file_state:
        parts.append(info.unit_file_state)
    return ", ".join(parts)


def _why(info: UnitInfo, job_result: str | None) -> str:
    """The reasons systemd gives: job result, unit Result, how the main process ended."""
    bits = []
    if job_result and job_result != "done":
        bits.append(f"job {job_result}")
    if info.result and info.result != "success":
        bits.append(f"result {info.result}")
    if info.exec_main_code and (info.exec_main_code, info.exec_main_status) != (1, 0):
        bits.append(describe_exit(info.exec_main_code, info.exec_main_status))
    return ", ".join(bits)


def status_report(node: str, info: UnitInfo) -> NodeReport:
    """One ``status`` line for a node, ok while the unit runs; exit_code is its LSB status."""
    state = state_of(info)
    message = f"{state.value} ({info.unit}): {_summary(info)}"
    if state is State.DEAD:
        why = _why(info, None)
        message += f" [{why}]" if why else ""
    return NodeReport(
        node=node,
        state=state,
        ok=state in (State.RUNNING, State.STARTING),
        message=message,
        exit_code=lsb_status_code(state),
        pid=info.main_pid or None,
        details=info.fields(),
    )


def start_report(
    node: str,
    info: UnitInfo,
    job_result: str | None,
    timeout: float,
    *,
    verb: str = "start",
    was_running: bool = False,
) -> NodeReport:
    """Judge a start/restart by the unit afterwards: ok only when active/running.

    With Type=notify the start job completes only after READY=1
    (systemd.service(5) "Type="), so active/running means ready.
    """
    details = {**info.fields(), "job_result": job_result}
    if info.active_state == "active" and info.sub_state == "running":
        return NodeReport(
            node=node,
            state=State.RUNNING,
            ok=True,
            message=f"{'already running' if was_running else verb + 'ed'} ({info.unit}): "
            + _summary(info),
            pid=info.main_pid or None,
            details=details,
        )
    what = f"not ready within {timeout:g} s" if job_result is None else f"failed to {verb}"
    why = _why(info, job_result)
    return NodeReport(
        node=node,
        state=state_of(info) if job_result is not None else State.STARTING,
        ok=False,
        message=f"{what} ({info.unit}): {info.active_state}/{info.sub_state}"
        + (f", {why}" if why else ""),
        exit_code=1,
        pid=info.main_pid or None,
        details=details,
    )


def stop_report(
    node: str,
    info: UnitInfo,
    job_result: str | None,
    timeout: float,
    *,
    killed: bool,
    was_stopped: bool = False,
) -> NodeReport:
    """Judge a stop by the unit afterwards: ok only when it is no longer active."""
    details = {**info.fields(), "job_result": job_result, "killed": killed}
    if info.active_state in ("inactive", "failed"):
        how = "already stopped" if was_stopped else "stopped"
        if killed:
            how = f"killed (SIGKILL to the whole cgroup) after {timeout:g} s"
        why = _why(info, job_result if job_result != "done" else None)
        return NodeReport(
            node=node,
            state=State.STOPPED,
            ok=True,
            message=f"{how} ({info.unit})" + (f": {why}" if why else ""),
            details=details,
        )
    why = _why(info, job_result)
    return NodeReport(
        node=node,
        state=state_of(info),
        ok=False,
        message=f"did not stop within {timeout:g} s ({info.unit}): "
        f"{info.active_state}/{info.sub_state}" + (f", {why}" if why else ""),
        exit_code=1,
        pid=info.main_pid or None,
        details=details,
    )


def info_from_properties(unit: str, props: Mapping[str, object]) -> UnitInfo:
    """Build a UnitInfo from property values already decoded to str/int."""

    def text(key: str, default: str = "") -> str:
        value = props.get(key, default)
        return value if isinstance(value, str) else default

    def number(key: str) -> int:
        value = props.get(key, 0)
        return value if isinstance(value, int) else 0

    return UnitInfo(
        unit=unit,
        load_state=text("LoadState", "loaded"),
        active_state=text("ActiveState", "inactive"),
        sub_state=text("SubState", "dead"),
        main_pid=number("MainPID"),
        status_text=text("StatusText"),
        result=text("Result", "success"),
        exec_main_code=number("ExecMainCode"),
        exec_main_status=number("ExecMainStatus"),
        n_restarts=number("NRestarts"),
        unit_file_state=text("UnitFileState"),
        active_enter_usec=number("ActiveEnterTimestamp"),
    )


def refused_report(node: str, info: UnitInfo, verb: str, why: str) -> NodeReport:
    """A node whose job systemd refused to queue (masked, destructive transaction, ...)."""
    return NodeReport(
        node=node,
        state=state_of(info),
        ok=False,
        message=f"could not {verb} ({info.unit}): {why}",
        exit_code=1,
        details=info.fields(),
    )


def merge_reports(first: list[NodeReport], second: list[NodeReport]) -> list[NodeReport]:
    """Fold the start/stop reports of ``--now`` into the enable/disable ones, by node."""
    by_node = {r.node: r for r in second}
    merged = []
    for report in first:
        follow = by_node.get(report.node)
        if follow is None:
            merged.append(report)
            continue
        follow.message = f"{report.message}; {follow.message}"
        follow.details = {**report.details, **follow.details}
        merged.append(follow)
    return merged


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
