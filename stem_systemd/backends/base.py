"""The contract every backend keeps, and the report each node gets.

Backends act on every node they are given (never stopping at the first
failure) and return one :class:`NodeReport` per node; the CLI renders them and
exits with the worst ``exit_code``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from stem_systemd.nodes import NodeSpec


class State(enum.StrEnum):
    """Node states, shared by both backends (LSB status codes in ``lsb_code``)."""

    RUNNING = "running"
    STARTING = "starting"
    STOPPING = "stopping"
    DEAD = "dead"  # not running, but a pidfile (or failed unit) is left behind
    STOPPED = "stopped"
    FAILED = "failed"
    UNKNOWN = "unknown"


def lsb_status_code(state: State) -> int:
    """LSB status exit code for one node: 0 running, 1 dead+pidfile, 3 stopped, 4 unknown."""
    return {
        State.RUNNING: 0,
        State.STARTING: 0,
        State.STOPPING: 0,
        State.DEAD: 1,
        State.FAILED: 1,
        State.STOPPED: 3,
    }.get(state, 4)


@dataclass
class NodeReport:
    """What happened to one node. ``message`` is the human line after the node name."""

    node: str
    state: State
    ok: bool
    message: str
    exit_code: int = 0
    pid: int | None = None
    details: dict[str, object] = field(default_factory=dict)  # extra fields for --json
    log_tail: list[str] = field(default_factory=list)  # last log/journal lines on failure


class Backend(Protocol):
    """What ``stem worker multi`` needs from a backend."""

    name: str

    def start(self, nodes: Sequence[NodeSpec], timeout: float) -> list[NodeReport]: ...

    def stop(self, nodes: Sequence[NodeSpec], timeout: float) -> list[NodeReport]: ...

    def restart(
        self, nodes: Sequence[NodeSpec], timeout: float, rolling: bool
    ) -> list[NodeReport]: ...

    def kill(self, nodes: Sequence[NodeSpec], signum: int, whom: str) -> list[NodeReport]: ...

    def status(self, nodes: Sequence[NodeSpec]) -> list[NodeReport]: ...
