"""``stem worker multi start --foreground``: a supervisor fit to be a container's PID 1.

It reuses the pidfile backend for everything a node needs (spawning, READY
over the notify socket, pidfiles, graceful stop with KILL of the process group
after the timeout) and adds what only a long-lived parent can do:

- **reap every child**, adopted orphans included. As PID 1 the kernel hands us
  every orphan of the container; elsewhere we ask for the same with
  ``prctl(PR_SET_CHILD_SUBREAPER)`` (prctl(2)). The SIGCHLD handler runs a
  ``waitpid(-1, WNOHANG)`` loop, so zombies never wait for the main loop,
  not even while the backend blocks in a start or a stop.
- **signals**: TERM and INT stop every node gracefully (the kernel ignores
  signals PID 1 has no handler for, so these handlers are what makes
  ``docker stop`` work); HUP is passed on to the nodes' main processes (the
  launcher reopens its logs).
- **restart** a node whose main process exits without being asked to, after a
  backoff that doubles per restart, at most ``restart_limit`` times within
  ``restart_window`` seconds (the idea of systemd's Restart= with
  StartLimitBurst=/StartLimitIntervalSec=, systemd.unit(5)); past the limit
  the supervisor stops everything and exits non-zero, so the container's
  restart policy takes over.
- **stale pidfiles**: a pidfile left by an earlier run (a pid directory on a
  volume) names a PID of another PID namespace or boot. At start nothing of
  ours is alive yet, so a pidfile the backend does not see as a running node
  (or that names us or an ancestor) is removed before the nodes start.

Exit status: 0 after a clean stop (every node ended within the stop timeout),
1 otherwise (a node had to be KILLed, failed to start, or hit the restart
limit).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from stem_systemd.backends.base import Backend, NodeReport, State
from stem_systemd.nodes import NodeSpec
from stem_systemd.proc import describe_status

log = logging.getLogger("stem.supervisor")

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


def become_subreaper() -> bool:
    """Adopt our descendants' orphans (prctl(2) PR_SET_CHILD_SUBREAPER); PID 1 already does."""
    if os.getpid() == 1:
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        say(f"cannot become a subreaper: {os.strerror(ctypes.get_errno())}")
        return False
    return True


def say(message: str) -> None:
    """Progress for the container log: stderr, one line per event."""
    print(f"stem: {message}", file=sys.stderr, flush=True)


@dataclass
class _Node:
    """The supervisor's view of one node."""

    spec: NodeSpec
    pid: int | None = None  # main PID while running
    restarts: list[float] | None = None  # monotonic times of recent restarts
    restart_at: float | None = None  # when a pending restart is due
    leftover_pgid: int | None = None  # process group of a dead main, to KILL before restart

    def recent_restarts(self, now: float, window: float) -> list[float]:
        self.restarts = [t for t in (self.restarts or []) if now - t < window]
        return self.restarts


class Supervisor:
    """Runs nodes in the foreground until TERM/INT; see the module docstring."""

    def __init__(
        self,
        backend: Backend,
        nodes: Sequence[NodeSpec],
        *,
        start_timeout: float,
        stop_timeout: float,
        restart_limit: int = 5,
        restart_window: float = 60.0,
        backoff_first: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self.backend = backend
        self.nodes = [_Node(spec) for spec in nodes]
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.restart_limit = restart_limit
        self.restart_window = restart_window
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self._pending: list[int] = []  # signals not handled by the main loop yet
        self._exited: list[tuple[int, int]] = []  # (pid, wait status) reaped by the handler
        self._wake_r, self._wake_w = socket.socketpair()
        self.failed = False

    # -- signals and reaping -------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        else:
            self._pending.append(signum)

    def _reap(self) -> None:
        """waitpid(-1, WNOHANG) until nothing is left to reap; remember the statuses."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            self._exited.append((pid, status))

    def _install_handlers(self) -> dict[int, object]:
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous: dict[int, object] = {}
        for signum in HANDLED:
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _restore_handlers(self, previous: dict[int, object]) -> None:
        signal.set_wakeup_fd(-1)
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        self._wake_r.close()
        self._wake_w.close()

    def _sleep(self, timeout: float | None) -> None:
        """Wait for a signal (the wakeup fd) or the timeout, then drain the fd."""
        if self._pending or self._exited:
            return
        with contextlib.suppress(InterruptedError):
            select.select([self._wake_r], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(512):
                pass

    # -- node bookkeeping ----------------------------------------------------

    def _by_pid(self, pid: int) -> _Node | None:
        return next((n for n in self.nodes if n.pid == pid), None)

    def _record_started(self, reports: Sequence[NodeReport]) -> list[NodeReport]:
        failed = []
        for report in reports:
            node = next(n for n in self.nodes if n.spec.name == report.node)
            if report.ok and report.pid:
                node.pid = report.pid
                say(f"{report.node}: {report.message}")
            else:
                node.pid = None
                failed.append(report)
                say(f"{report.node}: failed to start: {report.message}")
                for line in report.log_tail:
                    say(f"{report.node}:   {line}")
        return failed

    def clear_stale_pidfiles(self) -> None:
        """Remove pidfiles of an earlier run: nothing of ours is alive yet."""
        reports = self.backend.status([n.spec for n in self.nodes])
        for node, report in zip(self.nodes, reports, strict=True):
            alive = report.state in (State.RUNNING, State.STARTING, State.STOPPING)
            if alive and report.pid is not None and report.pid != os.getpid():
                # A live node of another `stem` (same pidfile): never start a twin.
                say(f"{node.spec.name}: already running (pid {report.pid}) outside this supervisor")
                self.failed = True
                continue
            if node.spec.pidfile.exists():
                say(f"{node.spec.name}: removing stale pidfile {node.spec.pidfile}")
                with contextlib.suppress(FileNotFoundError):
                    node.spec.pidfile.unlink()

    # -- the loop ------------------------------------------------------------

    def run(self) -> int:
        """Start the nodes, supervise them until TERM/INT, stop them; return the exit status."""
        become_subreaper()
        previous = self._install_handlers()
        try:
            return self._run()
        finally:
            self._restore_handlers(previous)

    def _run(self) -> int:
        self.clear_stale_pidfiles()
        if self.failed:
            return 1
        failed = self._record_started(
            self.backend.start([n.spec for n in self.nodes], self.start_timeout)
        )
        if failed:
            say("not every node started; stopping the others")
            self._stop_all()
            return 1
        say(f"supervising {len(self.nodes)} node(s); TERM or INT stops them")
        while not self.failed:
            self._sleep(self._next_timeout())
            if self._handle_signals():
                break
            self._handle_exits()
            self._restart_due()
        clean = self._stop_all()
        return 0 if clean and not self.failed else 1

    def _next_timeout(self) -> float | None:
        due = [n.restart_at for n in self.nodes if n.restart_at is not None]
        if not due:
            return None
        return max(0.0, min(due) - time.monotonic())

    def _handle_signals(self) -> bool:
        """Act on pending signals; True when it is time to stop."""
        stop = False
        while self._pending:
            signum = self._pending.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT):
                say(f"{signal.Signals(signum).name}: stopping every node")
                stop = True
            elif signum == signal.SIGHUP:
                running = [n.spec for n in self.nodes if n.pid is not None]
                if running:
                    self.backend.kill(running, signal.SIGHUP, "main")
        return stop

    def _handle_exits(self) -> None:
        while self._exited:
            pid, status = self._exited.pop(0)
            node = self._by_pid(pid)
            if node is None:
                log.debug("stem: reaped pid %d (%s)", pid, _how(status))
                continue
            now = time.monotonic()
            node.pid = None
            node.leftover_pgid = pid  # the node ran in its own session: pgid == pid
            recent = node.recent_restarts(now, self.restart_window)
            if len(recent) >= self.restart_limit:
                say(
                    f"{node.spec.name}: exited ({_how(status)}); "
                    f"{len(recent)} restarts within {self.restart_window:g} s, giving up"
                )
                self.failed = True
                continue
            delay = min(self.backoff_max, self.backoff_first * 2 ** len(recent))
            node.restart_at = now + delay
            say(
                f"{node.spec.name}: exited unexpectedly ({_how(status)}); "
                f"restarting in {delay:g} s (restart {len(recent) + 1} of at most "
                f"{self.restart_limit} within {self.restart_window:g} s)"
            )
            # systemd.kill(5): what is left of the group gets TERM now ...
            _signal_group(pid, signal.SIGTERM)
        self._pidfiles_of_dead()

    def _pidfiles_of_dead(self) -> None:
        """A dead node's pidfile would make `stem worker multi status` say 'dead': drop it."""
        for node in self.nodes:
            if node.pid is None:
                with contextlib.suppress(FileNotFoundError):
                    node.spec.pidfile.unlink()

    def _restart_due(self) -> None:
        now = time.monotonic()
        due = [n for n in self.nodes if n.restart_at is not None and n.restart_at <= now]
        if not due:
            return
        for node in due:
            node.restart_at = None
            node.recent_restarts(now, self.restart_window).append(now)
            if node.leftover_pgid is not None:
                # ... and KILL once the backoff is over (systemd.kill(5)).
                _signal_group(node.leftover_pgid, signal.SIGKILL)
                node.leftover_pgid = None
        failed = self._record_started(self.backend.start([n.spec for n in due], self.start_timeout))
        for report in failed:
            node = next(n for n in self.nodes if n.spec.name == report.node)
            # A failed start counts as one more exit: back off and try again.
            self._schedule_retry(node)

    def _schedule_retry(self, node: _Node) -> None:
        now = time.monotonic()
        recent = node.recent_restarts(now, self.restart_window)
        if len(recent) >= self.restart_limit:
            say(f"{node.spec.name}: failed {len(recent)} restarts, giving up")
            self.failed = True
            return
        node.restart_at = now + min(self.backoff_max, self.backoff_first * 2 ** len(recent))

    def _stop_all(self) -> bool:
        """Stop every node (TERM, then KILL after the stop timeout); True when all went cleanly."""
        for node in self.nodes:
            node.restart_at = None
        reports = self.backend.stop([n.spec for n in self.nodes], self.stop_timeout)
        clean = True
        for report in reports:
            if not report.ok or report.details.get("killed"):
                clean = False
            say(f"{report.node}: {report.message}")
        for node in self.nodes:
            node.pid = None
            if node.leftover_pgid is not None:
                _signal_group(node.leftover_pgid, signal.SIGKILL)
        self._reap()
        return clean


def _how(status: int) -> str:
    """A wait status in words: 'exit status 3', 'killed by SIGKILL'."""
    return describe_status(os.waitstatus_to_exitcode(status))


def _signal_group(pgid: int, signum: int) -> None:
    """Signal what is left of a dead node's process group; an empty group is fine.

    Safe against PID reuse: the kernel does not hand out a number that is still
    in use as a process group id, so this group is the node's or empty.
    """
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        if exc.errno != errno.EPERM:
            raise
