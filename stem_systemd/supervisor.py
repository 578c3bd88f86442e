"""``stem worker multi start --foreground``: a supervisor fit to be a container's PID 1.

It reuses the pidfile backend's machinery for everything a node needs
(:mod:`stem_systemd.lifecycle`: spawn, READY=1 over one notify socket, stop
with KILL of the process group after the timeout; :mod:`stem_systemd.pidfiles`
for pidfiles and per-node locks) and adds what only a long-lived parent does:

- **Reap every child**, adopted orphans included. As PID 1 the kernel hands us
  every orphan of the container; elsewhere ``prctl(PR_SET_CHILD_SUBREAPER)``
  (prctl(2)) gets us the orphans of our own descendants. The SIGCHLD handler
  runs a ``waitpid(-1, WNOHANG)`` loop, so a zombie never waits for the main
  loop, not even while a start or a stop blocks.
- **Signals**: TERM and INT stop every node gracefully. The kernel drops
  signals that PID 1 has no handler for, so these handlers are what makes
  ``docker stop`` work at all. HUP goes on to the nodes' main processes (the
  launcher reopens its logs).
- **Restarts**: a node whose main process exits without being asked to is
  started again after a backoff that doubles per restart, at most
  ``restart_limit`` times within ``restart_window`` seconds (systemd's
  Restart= with StartLimitBurst=/StartLimitIntervalSec=, systemd.unit(5)).
  Past the limit the supervisor stops everything and exits non-zero, so the
  container's restart policy takes over.
- **Stale pidfiles**: a pid directory on a volume keeps the pidfiles of an
  earlier run, naming PIDs of another PID namespace. The supervisor holds
  every node's lock for its whole run (a second supervisor or a
  ``stem worker multi start`` on the same pidfiles cannot start twins); before
  starting, nothing of its own is alive, so a pidfile whose identity check
  fails (the PID is gone, is us or an ancestor, or is another process now) is
  removed. A node that is really running under another manager is refused.

The notify socket stays open for the whole run and is drained by the loop, so
the nodes' STATUS=/WATCHDOG=1 datagrams never block or fail.

Exit status: 0 after a clean stop (every node ended on TERM within the stop
timeout), 1 otherwise (a node had to be KILLed, failed to start, or hit the
restart limit).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from stem_systemd import lifecycle, pidfiles, procs
from stem_systemd.backends.pidfile import PidfileBackend
from stem_systemd.errors import StemError
from stem_systemd.nodes import NodeSpec
from stem_systemd.notify import Notifier, NotifyListener, NotifyMessage
from stem_systemd.pidfiles import Liveness
from stem_systemd.proc import describe_status

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


def say(message: str) -> None:
    """Progress for the container log: stderr, one line per event."""
    print(f"stem: {message}", file=sys.stderr, flush=True)


def become_subreaper() -> bool:
    """Adopt the orphans of our descendants (prctl(2)); PID 1 gets them anyway."""
    if os.getpid() == 1:
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        say(f"cannot become a subreaper: {os.strerror(ctypes.get_errno())}")
        return False
    return True


@dataclass
class _Node:
    """The supervisor's view of one node."""

    spec: NodeSpec
    running: lifecycle.Spawned | None = None
    restarts: list[float] = field(default_factory=list)  # monotonic times, recent ones
    restart_at: float | None = None  # when a pending restart is due
    leftover: tuple[int, int] | None = None  # (pgid, starttime) of a dead main's group

    def recent(self, now: float, window: float) -> list[float]:
        self.restarts = [t for t in self.restarts if now - t < window]
        return self.restarts


class Supervisor:
    """Runs nodes in the foreground until TERM/INT; see the module docstring."""

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        *,
        start_timeout: float = 30.0,
        stop_timeout: float = 30.0,
        ready_after: float | None = None,
        workdir: Path | None = None,
        restart_limit: int = 5,
        restart_window: float = 60.0,
        backoff_first: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self.nodes = [_Node(spec) for spec in nodes]
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.ready_after = ready_after
        self.workdir = workdir
        self.restart_limit = restart_limit
        self.restart_window = restart_window
        self.backoff_first = backoff_first
        self.backoff_max = backoff_max
        self.failed = False
        self._pending: list[int] = []  # signals for the main loop
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # node main PIDs we spawned
        self._wake_r, self._wake_w = socket.socketpair()
        self._listener: NotifyListener | None = None

    # -- signals and reaping -------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        else:
            self._pending.append(signum)

    def _reap(self) -> None:
        """waitpid(-1, WNOHANG) until nothing is left; hand node statuses to their Popen."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self._children.get(pid)
            if proc is not None and proc.returncode is None:
                # Popen.wait()/poll() return this instead of waiting for a PID
                # that is gone (and possibly reused) now.
                proc.returncode = os.waitstatus_to_exitcode(status)

    def _install_handlers(self) -> dict[int, Any]:
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        return {signum: signal.signal(signum, self._on_signal) for signum in HANDLED}

    def _restore_handlers(self, previous: dict[int, Any]) -> None:
        signal.set_wakeup_fd(-1)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        self._wake_r.close()
        self._wake_w.close()

    def _sleep(self, timeout: float | None) -> None:
        """Wait for a signal, a notify datagram, a node's exit or the timeout."""
        if self._pending:
            return
        fds: list[int] = [self._wake_r.fileno()]
        if self._listener is not None:
            fds.append(self._listener.fileno())
        fds += [n.running.pidfd for n in self.nodes if n.running is not None]
        select.select(fds, [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(512):
                pass
        if self._listener is not None:
            self._listener.drain()  # STATUS=/WATCHDOG=1: keep the socket from filling up

    # -- the run -------------------------------------------------------------

    def run(self) -> int:
        """Start the nodes, supervise them until TERM/INT, stop them; the exit status."""
        become_subreaper()
        previous = self._install_handlers()
        try:
            # The pid and log directories, with the pidfile backend's checks and errors.
            PidfileBackend(workdir=self.workdir).prepare([n.spec for n in self.nodes])
            with contextlib.ExitStack() as stack:
                for spec in sorted((n.spec for n in self.nodes), key=lambda s: str(s.pidfile)):
                    if not stack.enter_context(pidfiles.locked(spec.pidfile, None)):
                        raise StemError(
                            f"node {spec.name}: another stem run holds {spec.pidfile}.lock",
                            hint="stop the other supervisor or `stem worker multi` first",
                        )
                self._listener = stack.enter_context(NotifyListener())
                return self._run()
        finally:
            self._listener = None
            self._restore_handlers(previous)

    def _run(self) -> int:
        self._clear_stale()
        if self.failed:
            return 1
        # Our own manager, if any (a systemd unit of Type=notify), hears the
        # same protocol we ask of the nodes (sd_notify(3)); a no-op otherwise.
        manager = Notifier()
        try:
            if not self._start(self.nodes):
                if not (self._stop_requested() and self._handle_signals()):
                    say("not every node started; stopping the others")
                self._stop_all()
                return 1
            manager.ready(f"supervising {len(self.nodes)} node(s)")
            say(f"supervising {len(self.nodes)} node(s); TERM or INT stops them")
            while not self.failed:
                self._sleep(self._next_timeout())
                if self._handle_signals():
                    break
                self._handle_exits()
                self._restart_due()
            manager.stopping("stopping every node")
        except BaseException:
            # Never leave nodes behind without their supervisor.
            self._stop_all()
            raise
        clean = self._stop_all()
        return 0 if clean and not self.failed else 1

    def _clear_stale(self) -> None:
        """Remove pidfiles of an earlier run; refuse nodes someone else runs."""
        for node in self.nodes:
            check = pidfiles.check(node.spec.pidfile)
            if check.liveness is Liveness.STALE:
                say(f"{node.spec.name}: stale pidfile removed ({check.reason})")
                pidfiles.remove(node.spec.pidfile)
            elif check.liveness is not Liveness.ABSENT:
                assert check.record is not None
                say(
                    f"{node.spec.name}: pid {check.record.pid} in {node.spec.pidfile} "
                    f"is not ours and is alive ({check.liveness.value}); not starting a twin"
                )
                self.failed = True

    def _start(self, nodes: Sequence[_Node], *, retry: bool = False) -> bool:
        """Spawn nodes and wait for READY=1 (like `start`); False when any failed.

        ``retry``: a failed node is scheduled for another try (a restart of a
        node that died). At the first start a failure ends the run instead,
        so nothing may say "restarting".
        """
        assert self._listener is not None
        deadline = time.monotonic() + self.start_timeout
        spawned: list[lifecycle.Spawned] = []
        backlog: list[NotifyMessage] = []
        ok = True
        for node in nodes:
            # Keep the notify queue short while spawning (see the pidfile
            # backend's start: net.unix.max_dgram_qlen is 10 without systemd).
            backlog += self._listener.drain()
            try:
                sp = lifecycle.spawn_node(node.spec, self._listener.address, workdir=self.workdir)
            except StemError as exc:
                say(f"{node.spec.name}: failed: {exc.message}")
                ok = False
                if retry:
                    self._schedule_retry(node)
                continue
            self._children[sp.pid] = sp.proc
            try:
                pidfiles.write(node.spec.pidfile, pidfiles.record_for(sp.pid, ready=False))
            except (StemError, OSError) as exc:
                lifecycle.abort_node(sp)
                self._forget(sp)
                say(f"{node.spec.name}: failed: {getattr(exc, 'message', exc)}")
                ok = False
                if retry:
                    self._schedule_retry(node)
                continue
            spawned.append(sp)
        results = lifecycle.wait_ready(
            spawned,
            self._listener,
            deadline,
            self.ready_after,
            backlog=backlog,
            wake_fd=self._wake_r.fileno(),
            interrupted=self._stop_requested,
        )
        for sp in spawned:
            node = next(n for n in self.nodes if n.spec is sp.spec)
            readiness = results[sp.pid]
            self._listener.states.pop(sp.pid, None)
            if readiness.ready:
                pidfiles.write(sp.spec.pidfile, pidfiles.record_for(sp.pid, ready=True))
                node.running = sp
                say(f"{sp.spec.name}: started (pid {sp.pid}, ready in {readiness.seconds:.1f} s)")
                continue
            ok = False
            lifecycle.abort_node(sp)
            self._forget(sp)
            pidfiles.remove(sp.spec.pidfile)
            say(f"{sp.spec.name}: failed: {readiness.reason}")
            if self._stop_requested():
                continue  # TERM/INT while starting: no log tail, no retry
            for line in lifecycle.log_tail(sp.spec.main_logfile, since=sp.log_offset):
                say(f"{sp.spec.name}:   {line}")
            if retry:
                self._schedule_retry(node)
        return ok

    def _stop_requested(self) -> bool:
        """TERM or INT arrived (the wakeup socket is drained, so polling it is level again)."""
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(512):
                pass
        return any(s in (signal.SIGTERM, signal.SIGINT) for s in self._pending)

    def _exit_code(self, sp: lifecycle.Spawned) -> int | None:
        """The exit code of a node whose pidfd is readable (reaped here if need be).

        Reaping goes through :meth:`_reap` only: Popen.wait() racing the SIGCHLD
        handler would read ECHILD as "exit status 0".
        """
        self._reap()
        return sp.proc.returncode

    def _forget(self, sp: lifecycle.Spawned) -> None:
        self._children.pop(sp.pid, None)
        if self._listener is not None:
            self._listener.states.pop(sp.pid, None)
        with contextlib.suppress(OSError):
            os.close(sp.pidfd)

    def _next_timeout(self) -> float | None:
        due = [n.restart_at for n in self.nodes if n.restart_at is not None]
        return None if not due else max(0.0, min(due) - time.monotonic())

    def _handle_signals(self) -> bool:
        """Act on pending signals; True when it is time to stop."""
        stop = False
        while self._pending:
            signum = self._pending.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT):
                say(f"{signal.Signals(signum).name}: stopping every node")
                stop = True
            elif signum == signal.SIGHUP:
                for node in self.nodes:
                    if node.running is not None:
                        procs.pidfd_signal(node.running.pidfd, signal.SIGHUP)
        return stop

    def _handle_exits(self) -> None:
        """Nodes whose main process exited unexpectedly: schedule their restart."""
        for node in self.nodes:
            sp = node.running
            if sp is None or not procs.has_exited(sp.pidfd):
                continue
            code = self._exit_code(sp)
            node.running = None
            self._forget(sp)
            pidfiles.remove(node.spec.pidfile)
            # What is left of its group gets TERM now, KILL when the backoff is
            # over (systemd.kill(5): the rest of the unit after the main exits).
            procs.close_all(
                m.pidfd for m in procs.signal_group(sp.pid, sp.starttime, signal.SIGTERM)
            )
            node.leftover = (sp.pid, sp.starttime)
            how = "exit status unknown" if code is None else describe_status(code)
            say(f"{node.spec.name}: exited unexpectedly ({how})")
            self._schedule_retry(node)

    def _schedule_retry(self, node: _Node) -> None:
        now = time.monotonic()
        recent = node.recent(now, self.restart_window)
        if len(recent) >= self.restart_limit:
            say(
                f"{node.spec.name}: {len(recent)} restarts within "
                f"{self.restart_window:g} s; giving up"
            )
            self.failed = True
            return
        delay = min(self.backoff_max, self.backoff_first * 2 ** len(recent))
        node.restart_at = now + delay
        say(
            f"{node.spec.name}: restarting in {delay:g} s "
            f"(restart {len(recent) + 1} of at most {self.restart_limit} "
            f"within {self.restart_window:g} s)"
        )

    def _kill_leftover(self, node: _Node) -> None:
        if node.leftover is not None:
            pgid, starttime = node.leftover
            members = procs.signal_group(pgid, starttime, signal.SIGKILL)
            if members:
                say(f"{node.spec.name}: sent SIGKILL to {len(members)} leftover process(es)")
            procs.close_all(m.pidfd for m in members)
            node.leftover = None

    def _restart_due(self) -> None:
        now = time.monotonic()
        due = [n for n in self.nodes if n.restart_at is not None and n.restart_at <= now]
        for node in due:
            node.restart_at = None
            node.recent(now, self.restart_window).append(now)
            self._kill_leftover(node)
        if due and not self.failed:
            self._start(due, retry=True)

    def _stop_all(self) -> bool:
        """TERM every node, KILL what outlives the stop timeout; True when all went cleanly."""
        live = [n for n in self.nodes if n.running is not None]
        for node in self.nodes:
            node.restart_at = None
            self._kill_leftover(node)
        targets = [n.running.target() for n in live if n.running is not None]
        outcomes = lifecycle.stop_nodes(targets, time.monotonic() + self.stop_timeout)
        clean = True
        for node in live:
            sp = node.running
            assert sp is not None
            outcome = outcomes[node.spec.name]
            code = self._exit_code(sp) if outcome.exited else None
            how = "did not exit" if code is None else describe_status(code)
            if outcome.survivors:
                clean = False
                say(f"{node.spec.name}: processes {outcome.survivors} survived SIGKILL")
            elif outcome.timed_out:
                clean = False
                say(
                    f"{node.spec.name}: killed: still running after the "
                    f"{self.stop_timeout:g} s stop timeout, sent SIGKILL to "
                    f"{outcome.killed} process(es) of its group"
                )
            elif outcome.killed:
                clean = False
                say(
                    f"{node.spec.name}: stopped ({how}); "
                    f"sent SIGKILL to {outcome.killed} leftover process(es)"
                )
            elif code not in (0, -signal.SIGTERM):
                clean = False
                say(f"{node.spec.name}: stopped with {how}")
            else:
                say(f"{node.spec.name}: stopped (pid {sp.pid}, {outcome.seconds:.1f} s)")
            if not outcome.survivors:
                pidfiles.remove(node.spec.pidfile)
            node.running = None
            self._forget(sp)
        self._reap()
        return clean
