"""``stem-worker``: the bundled worker launcher, a main process supervising a pool.

The main process forks ``--concurrency`` pool processes, says ``READY=1`` once
every one of them reports that it is up, keeps ``STATUS=`` current with the
job counters, pings ``WATCHDOG=1`` from its supervising loop, and replaces a
pool process that dies. It is the only process that speaks sd_notify.

Signals (the contract of every node, see the README):

- TERM: warm shutdown. ``STOPPING=1``, pool processes stop claiming jobs,
  finish the one in hand, exit 0; the main process exits 0 after the last.
- INT, QUIT: cold shutdown. Pool processes put their job back in the spool
  and exit at once; the main process exits 128+signal after them (pool
  processes still alive after a grace period are killed).
- HUP: every process reopens its log file (``RELOADING=1`` ... ``READY=1``).

Why ``os.fork`` and not ``multiprocessing``: the main process is single
threaded, so a plain fork is safe, and it gives exact control over what a
pool process inherits (signal handlers, the notify socket, ``NOTIFY_SOCKET``
and ``WATCHDOG_*`` in the environment, the main process's log file); the pool
processes are direct children reaped with ``waitpid``, with no resource
tracker or feeder threads besides. The job spool is described in
:mod:`stem_systemd.launcher.spool`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time

from stem_systemd.errors import StemError, UsageError
from stem_systemd.launcher import spool
from stem_systemd.launcher.common import (
    EventLog,
    Signals,
    Watchdog,
    check_logfile,
    expand_logfile,
    fail,
    forget_notify_env,
    hang_forever,
    ignore_term,
    min_timeout,
    test_hooks_enabled,
)
from stem_systemd.logsink import get_logger
from stem_systemd.notify import Notifier
from stem_systemd.proc import describe_status

# What a node imports is paid by every node at every start (bench/RESULTS.md):
# argparse, logging, pathlib and traceback stay out of the path to READY=1
# (argparse is imported only for --help and argv the fast parser declines).
TYPE_CHECKING = False  # mypy reads it as true
if TYPE_CHECKING:
    import argparse

log = get_logger("stem.worker")

COLD_GRACE = 5.0  # seconds a cold-stopped pool process gets before SIGKILL
RESPAWN_BACKOFF = 1.0  # a pool process that died this young is replaced this much later
SPOOL_POLL = 0.25  # seconds between spool scans of an idle pool process
PARENT_CHECK = 1.0  # seconds between "is the main process still there" checks

HELP_EPILOG = """\
signals: TERM warm shutdown (finish jobs in hand, exit 0); INT/QUIT cold
shutdown (requeue jobs, exit 128+signal); HUP reopen every log file.

job spool (--jobs DIR): a job is a file DIR/<name> containing "<seconds>"
(work that long) or "<seconds> ignore-term" (the pool process working it
ignores SIGTERM: test knob for stop-timeout escalation). Claimed jobs sit in
DIR/active/<name>@<pid>, finished ones in DIR/done/, bad ones in DIR/failed/.
Dot files are never claimed: write DIR/.<name>, then rename it to DIR/<name>.

test hooks (only with STEM_WORKER_TEST_HOOKS=1 in the environment): a job
containing "hang-main", or SIGUSR1 to the main process, makes the main
supervising loop hang for good, so WATCHDOG=1 pings really stop.

environment: STEM_WORKER_NODE (default --node), STEM_WORKER_LOGFILE (default
--logfile), NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID (sd_notify(3)).
"""


def build_parser() -> argparse.ArgumentParser:
    """The stem-worker command line."""
    import argparse  # noqa: PLC0415 - see the imports above

    parser = argparse.ArgumentParser(
        prog="stem-worker",
        description="Run a worker node: a main process supervising a pool of job processes, "
        "speaking sd_notify, until signalled.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--node", help="node name (default: $STEM_WORKER_NODE or the host name)")
    parser.add_argument(
        "-c", "--concurrency", type=int, default=1, metavar="K", help="pool processes (default 1)"
    )
    parser.add_argument(
        "--logfile",
        metavar="TEMPLATE",
        help="log file template: %%n node, %%h host, %%I per-process suffix ('' for the main "
        "process, -k for pool process k), %%i $STEM_WORKER_INDEX, %%%% a literal %%; "
        "default $STEM_WORKER_LOGFILE, else stderr",
    )
    parser.add_argument("--jobs", metavar="DIR", help="job spool directory (see below)")
    parser.add_argument(
        "-Q", "--queues", default="", help="queue names (recorded in the log; the demo has one)"
    )
    parser.add_argument(
        "--ready-delay",
        type=float,
        default=0.0,
        metavar="S",
        help="send READY=1 S seconds after the pool is up (test knob: a worker slow to be ready)",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=60.0,
        metavar="S",
        help="idle pool processes log a heartbeat every S seconds (0: never; default 60)",
    )
    return parser


# Plain classes, not dataclasses, in every module the launcher imports:
# dataclasses pulls in inspect (and ast, dis, tokenize), 0.9 MB of RSS and
# ~5 ms of start-up in every node (bench/RESULTS.md, launcher memory).


class Config:
    """The parsed options, with defaults from the environment filled in."""

    __slots__ = ("concurrency", "heartbeat", "jobs", "logfile", "node", "queues", "ready_delay")

    def __init__(
        self,
        *,
        node: str,
        concurrency: int,
        logfile: str | None,
        jobs: str | None,
        queues: str,
        ready_delay: float,
        heartbeat: float,
    ) -> None:
        self.node = node
        self.concurrency = concurrency
        self.logfile = logfile
        self.jobs = jobs
        self.queues = queues
        self.ready_delay = ready_delay
        self.heartbeat = heartbeat

    def logfile_for(self, suffix: str) -> str | None:
        """The log file of the process with ``suffix`` ('' main, '-k' pool process k)."""
        if not self.logfile:
            return None
        return expand_logfile(self.logfile, node=self.node, suffix=suffix)


# The fast parser's table: option string -> (destination, type). Every option
# of build_parser() takes one value; the defaults are build_parser()'s.
_OPTIONS: dict[str, tuple[str, type]] = {
    "--node": ("node", str),
    "-c": ("concurrency", int),
    "--concurrency": ("concurrency", int),
    "--logfile": ("logfile", str),
    "--jobs": ("jobs", str),
    "-Q": ("queues", str),
    "--queues": ("queues", str),
    "--ready-delay": ("ready_delay", float),
    "--heartbeat": ("heartbeat", float),
}
_DEFAULTS: dict[str, object] = {
    "node": None,
    "concurrency": 1,
    "logfile": None,
    "jobs": None,
    "queues": "",
    "ready_delay": 0.0,
    "heartbeat": 60.0,
}


def fast_parse(argv: list[str]) -> dict[str, object] | None:
    """Parse the argv `stem worker multi` and the units give; None to let argparse decide.

    Only the plain forms (``--opt value``, ``--opt=value``, ``-c value``) of
    the options above with a value argparse would take as it is; anything
    else (``--help``, abbreviations, ``-c4``, a value starting with ``-``, a
    bad number, a stray word) returns None, so argparse parses (and rejects)
    it exactly as before. ``tests/test_launcher_args.py`` holds the two equal.
    """
    values = dict(_DEFAULTS)
    args = iter(argv)
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
        else:
            following = next(args, None)
            if following is None or following.startswith("-"):
                return None
            name, value = arg, following
        spec = _OPTIONS.get(name)
        if spec is None:
            return None
        dest, kind = spec
        try:
            values[dest] = kind(value)
        except ValueError:
            return None
    return values


def parse_config(argv: list[str] | None) -> Config:
    """Parse argv (argparse exits 2 on bad syntax); UsageError for bad values."""
    argv = sys.argv[1:] if argv is None else argv
    fast = fast_parse(argv)
    args = vars(build_parser().parse_args(argv)) if fast is None else fast
    node = str(args["node"] or os.environ.get("STEM_WORKER_NODE") or socket.gethostname())
    concurrency, delay, heartbeat = args["concurrency"], args["ready_delay"], args["heartbeat"]
    assert isinstance(concurrency, int)
    assert isinstance(delay, float)
    assert isinstance(heartbeat, float)
    if not node or any(c in node for c in "/\n\0"):
        raise UsageError(f"invalid node name {node!r}", hint="use letters, digits, '-', '_', '.'")
    if concurrency < 1:
        raise UsageError(f"--concurrency must be at least 1, not {concurrency}")
    if not (delay >= 0 and heartbeat >= 0):  # nan too
        raise UsageError("--ready-delay and --heartbeat take seconds >= 0")
    logfile, jobs = args["logfile"], args["jobs"]
    return Config(
        node=node,
        concurrency=concurrency,
        logfile=str(logfile) if logfile else os.environ.get("STEM_WORKER_LOGFILE") or None,
        jobs=str(jobs) if jobs is not None else None,
        queues=str(args["queues"]),
        ready_delay=delay,
        heartbeat=heartbeat,
    )


# --- pool process ---------------------------------------------------------------


class PoolProcess:
    """One pool process (runs in the forked child): claims and works jobs until told to stop."""

    def __init__(self, cfg: Config, index: int, report_fd: int, parent: int) -> None:
        self.cfg = cfg
        self.index = index
        self.report_fd = report_fd
        self.parent = parent
        self.warm = False
        self.job: spool.Job | None = None
        self.deadline = 0.0
        self.signals = Signals([signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP])
        self.events = EventLog(cfg.node, cfg.logfile_for(f"-{index}"))

    def report(self, event: str) -> None:
        """Tell the main process about an event (one short write: atomic on a pipe)."""
        with contextlib.suppress(OSError):
            os.write(self.report_fd, f"{os.getpid()} {event}\n".encode())

    def run(self) -> int:
        """The pool process's loop; returns its exit code."""
        log.info("pool process %d started", self.index)
        self.report("up")
        next_beat = time.monotonic() + self.cfg.heartbeat
        next_parent_check = time.monotonic() + PARENT_CHECK
        while True:
            code = self.handle_signals()
            if code is not None:
                return code
            now = time.monotonic()
            if now >= next_parent_check:
                next_parent_check = now + PARENT_CHECK
                if os.getppid() != self.parent:
                    log.info("pool process %d: main process gone, exiting", self.index)
                    self.give_back()
                    return 1
            if self.job is not None:
                if now >= self.deadline:
                    self.complete()
                    continue
                self.signals.wait(min(self.deadline - now, PARENT_CHECK))
                continue
            if self.warm:
                log.info("pool process %d: warm shutdown, exiting", self.index)
                return 0
            if self.cfg.jobs is not None and self.take():
                continue
            if self.cfg.heartbeat and now >= next_beat:
                log.info("pool process %d: idle heartbeat", self.index)
                next_beat = now + self.cfg.heartbeat
            idle = SPOOL_POLL if self.cfg.jobs is not None else PARENT_CHECK
            self.signals.wait(idle)

    def handle_signals(self) -> int | None:
        """Act on signals received; an exit code when the process must stop now."""
        for signum in self.signals.pending():
            if signum == signal.SIGHUP:
                if self.events.reopen():
                    log.info("pool process %d: reopened log file", self.index)
                self.report("reopened")
            elif signum == signal.SIGTERM:
                if not self.warm:
                    log.info("pool process %d: warm shutdown requested", self.index)
                self.warm = True
            else:
                log.info(
                    "pool process %d: cold shutdown (%s)", self.index, signal.Signals(signum).name
                )
                self.give_back()
                return 128 + signum
        return None

    def take(self) -> bool:
        """Claim one job; False when the spool is empty."""
        assert self.cfg.jobs is not None
        job = spool.claim(self.cfg.jobs, os.getpid())
        if job is None:
            return False
        self.report("claimed")
        if job.hang_main and not test_hooks_enabled():
            job = spool.Job(job.spool, job.name, job.path, error="test hooks are off")
        if job.error is not None:
            spool.reject(job, job.error)
            log.info("job %s failed: %s", job.name, job.error)
            self.report("failed")
            return True
        if job.hang_main:
            spool.finish(job, f"main process of node {self.cfg.node} told to hang")
            log.info("job %s done: main process told to hang", job.name)
            self.report("done")
            self.report("hang")
            return True
        if job.ignore_term:
            ignore_term()
        self.job = job
        self.deadline = time.monotonic() + job.seconds
        extra = ", ignoring TERM" if job.ignore_term else ""
        log.info("job %s claimed (%g s%s)", job.name, job.seconds, extra)
        return True

    def complete(self) -> None:
        """The job in hand is worked: move it to done/."""
        job = self.job
        assert job is not None
        spool.finish(job, f"ok, worked {job.seconds:g} s by pid {os.getpid()} on {self.cfg.node}")
        if job.ignore_term:
            self.signals.watch(signal.SIGTERM)
        self.job = None
        log.info("job %s done", job.name)
        self.report("done")

    def give_back(self) -> None:
        """Put the job in hand back in the spool, unworked."""
        if self.job is not None:
            with contextlib.suppress(FileNotFoundError):
                spool.requeue(self.job)
            log.info("job %s requeued", self.job.name)
            self.report("requeued")
            self.job = None


# --- main process ---------------------------------------------------------------


class Slot:
    """A place in the pool: the pid filling it now and when it was started."""

    __slots__ = ("index", "pid", "respawn_at", "started")

    def __init__(self, index: int) -> None:
        self.index = index
        self.pid = 0
        self.started = 0.0
        self.respawn_at: float | None = None


class Counters:
    """Job counters for STATUS=."""

    __slots__ = ("done", "failed", "up", "working")

    def __init__(self) -> None:
        self.up: set[int] = set()
        self.working: set[int] = set()
        self.done = 0
        self.failed = 0


class Supervisor:
    """The main process: forks the pool, supervises it, speaks sd_notify."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self.slots = [Slot(k) for k in range(1, cfg.concurrency + 1)]
        self.counters = Counters()
        self.stopping: str | None = None  # "warm" or "cold"
        self.exit_code = 0
        self.cold_kill_at: float | None = None
        self.ready_sent = False
        self.ready_at: float | None = None
        self.reload_waiting: set[int] | None = None
        self.last_status = ""
        self.hang = False
        self.pid = os.getpid()

    # setup
    def start(self) -> None:
        """Open logs (failing early on any unwritable one), the spool, the signals."""
        self.events = EventLog(self.cfg.node, self.cfg.logfile_for(""))
        for slot in self.slots:
            path = self.cfg.logfile_for(f"-{slot.index}")
            if path:
                check_logfile(path)
        if self.cfg.jobs is not None:
            try:
                spool.prepare(self.cfg.jobs)
                abandoned = spool.requeue_abandoned(self.cfg.jobs)
            except OSError as exc:
                raise StemError(
                    f"cannot use job spool {self.cfg.jobs}: {exc.strerror}",
                    hint="create it, or make it writable for this user",
                ) from exc
            for name in abandoned:
                log.info("job %s requeued (the process that claimed it is gone)", name)
        self.notifier = Notifier()
        self.watchdog = Watchdog()
        signums = [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD]
        if test_hooks_enabled():
            signums.append(signal.SIGUSR1)
        self.signals = Signals(signums)
        self.report_r, self.report_w = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(self.report_r, False)
        queues = f", queues {self.cfg.queues}" if self.cfg.queues else ""
        jobs = f", jobs {self.cfg.jobs}" if self.cfg.jobs else ""
        log.info("started: %d pool processes%s%s", self.cfg.concurrency, jobs, queues)
        self.publish()

    def spawn(self, slot: Slot) -> None:
        """Fork a pool process into ``slot``."""
        # Block our signals across the fork: the child must not run the
        # parent's handlers (and lose a TERM) before it has installed its own.
        blocked = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGCHLD}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        self.events.flush()
        pid = os.fork()
        if pid == 0:
            code = 70  # EX_SOFTWARE, if anything below raises
            try:
                self.signals.close()
                os.close(self.report_r)
                forget_notify_env()
                self.notifier.forget()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                signal.signal(signal.SIGUSR1, signal.SIG_DFL)
                self.events.close()
                child = PoolProcess(self.cfg, slot.index, self.report_w, self.pid)
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
                code = child.run()
            except BaseException:
                import traceback  # noqa: PLC0415 - only on a crash

                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(OSError, ValueError):
                        stream.flush()
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
        slot.pid, slot.started, slot.respawn_at = pid, time.monotonic(), None
        log.info("pool process %d started (pid %d)", slot.index, pid)

    # the loop
    def run(self) -> int:
        """Supervise until the pool is gone after a shutdown; the exit code."""
        self.start()
        for slot in self.slots:
            self.spawn(slot)
        while True:
            now = time.monotonic()
            respawn = min_timeout(*(s.respawn_at for s in self.slots))
            timeout = min_timeout(
                self.watchdog.due_in(),
                None if self.ready_at is None or self.ready_sent else self.ready_at - now,
                None if respawn is None else respawn - now,
                None if self.cold_kill_at is None else self.cold_kill_at - now,
            )
            self.signals.wait(timeout, [self.report_r])
            for signum in self.signals.pending():
                self.on_signal(signum)
            self.read_reports()
            self.reap()
            if self.hang:
                hang_forever("hang requested")
            if self.stopping and not any(s.pid for s in self.slots):
                break
            self.tick(time.monotonic())
        log.info("stopped (%s shutdown), exit status %d", self.stopping, self.exit_code)
        self.notifier.close()
        self.events.close()
        return self.exit_code

    def tick(self, now: float) -> None:
        """Time-driven duties: respawns, READY, cold-stop deadline, watchdog."""
        for slot in self.slots:
            if slot.respawn_at is not None and now >= slot.respawn_at and not self.stopping:
                self.spawn(slot)
        if self.ready_at is None and len(self.counters.up) == len(self.slots):
            self.ready_at = now + self.cfg.ready_delay
        due = self.ready_at is not None and now >= self.ready_at
        if due and not self.ready_sent and not self.stopping:
            self.ready_sent = True
            log.info("ready: %d pool processes up", len(self.slots))
            self.notifier.ready(self.fresh_status())
        if self.cold_kill_at is not None and now >= self.cold_kill_at:
            self.cold_kill_at = None
            for slot in self.slots:
                if slot.pid:
                    log.info("pool process %d (pid %d) still there: SIGKILL", slot.index, slot.pid)
                    self.send(slot, signal.SIGKILL)
        self.watchdog.ping_if_due(self.notifier.watchdog)

    def on_signal(self, signum: int) -> None:
        """React to one signal received by the main process."""
        if signum == signal.SIGCHLD:
            return  # reaped in the loop
        if signum == signal.SIGUSR1:
            self.hang = True
        elif signum == signal.SIGHUP:
            self.reload()
        elif signum == signal.SIGTERM:
            if self.stopping is None:
                self.stopping = "warm"
                busy = len(self.counters.working)
                log.info("stopping: warm shutdown, waiting for %d job(s) in hand", busy)
                self.notifier.stopping(self.fresh_status())
                self.broadcast(signal.SIGTERM)
        elif self.stopping != "cold":  # INT, QUIT
            self.stopping = "cold"
            self.exit_code = 128 + signum
            log.info("stopping: cold shutdown (%s)", signal.Signals(signum).name)
            self.notifier.stopping(self.fresh_status())
            self.broadcast(signum)
            self.cold_kill_at = time.monotonic() + COLD_GRACE

    def reload(self) -> None:
        """HUP: reopen our log, pass HUP on, READY=1 once every pool process reopened."""
        if self.events.reopen():
            log.info("reopened log file")
        if self.stopping or not self.ready_sent:
            # Not ready yet (or going away): nothing to announce, just reopen everywhere.
            self.broadcast(signal.SIGHUP)
            return
        self.notifier.reloading(self.fresh_status())
        self.reload_waiting = {s.pid for s in self.slots if s.pid}
        self.broadcast(signal.SIGHUP)
        self.reload_done_check()

    def reload_done_check(self) -> None:
        """Send READY=1 after a reload when no pool process is still reopening."""
        if self.reload_waiting is not None and not self.reload_waiting:
            self.reload_waiting = None
            if not self.stopping:
                self.notifier.ready(self.fresh_status())

    def send(self, slot: Slot, signum: int) -> None:
        """Signal one pool process (it is our child, so its pid cannot be reused unreaped)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(slot.pid, signum)

    def broadcast(self, signum: int) -> None:
        """Signal every live pool process."""
        for slot in self.slots:
            if slot.pid:
                self.send(slot, signum)

    def read_reports(self) -> None:
        """Read the pool's event reports and publish the new counters."""
        data = b""
        with contextlib.suppress(BlockingIOError):
            while chunk := os.read(self.report_r, 65536):
                data += chunk
        for line in data.decode(errors="replace").splitlines():
            pid_text, _, event = line.partition(" ")
            try:
                pid = int(pid_text)
            except ValueError:
                continue
            c = self.counters
            if event == "up":
                c.up.add(pid)
            elif event == "claimed":
                c.working.add(pid)
            elif event in ("done", "failed", "requeued"):
                c.working.discard(pid)
                c.done += event == "done"
                c.failed += event == "failed"
            elif event == "reopened" and self.reload_waiting is not None:
                self.reload_waiting.discard(pid)
                self.reload_done_check()
            elif event == "hang" and test_hooks_enabled():
                self.hang = True
        self.publish()

    def reap(self) -> None:
        """Collect dead pool processes; schedule replacements unless stopping."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is None:
                continue
            how = describe_status(os.waitstatus_to_exitcode(status))
            slot.pid = 0
            self.counters.up.discard(pid)
            self.counters.working.discard(pid)
            if self.reload_waiting is not None:
                self.reload_waiting.discard(pid)
                self.reload_done_check()
            if self.cfg.jobs is not None:
                for name in spool.requeue_orphans(self.cfg.jobs, pid):
                    log.info("job %s requeued (its pool process died)", name)
            if self.stopping:
                log.info("pool process %d (pid %d) exited: %s", slot.index, pid, how)
            else:
                young = time.monotonic() - slot.started < RESPAWN_BACKOFF
                slot.respawn_at = slot.started + RESPAWN_BACKOFF if young else time.monotonic()
                log.info("pool process %d (pid %d) died: %s; replacing it", slot.index, pid, how)
            self.publish()

    def status_text(self) -> str:
        """The STATUS= line: node, pool, job counters."""
        c = self.counters
        state = f"stopping ({self.stopping}), " if self.stopping else ""
        return (
            f"node {self.cfg.node}: {state}{len(c.up)}/{len(self.slots)} pool processes up, "
            f"{len(c.working)} working, {c.done} done, {c.failed} failed"
        )

    def fresh_status(self) -> str:
        """The STATUS text, remembered as sent (it rides along with READY/STOPPING/RELOADING)."""
        self.last_status = self.status_text()
        return self.last_status

    def publish(self) -> None:
        """Send STATUS= when the text changed."""
        text = self.status_text()
        if text != self.last_status:
            self.last_status = text
            self.notifier.status(text)


def run(argv: list[str] | None = None) -> int:
    """Parse, supervise, return the exit code (errors printed as Error:/Hint:)."""
    try:
        cfg = parse_config(argv)
        return Supervisor(cfg).run()
    except StemError as exc:
        return fail(exc)


def main() -> None:
    """Console-script entry point."""
    code = run()
    # Leave without interpreter finalization (module teardown, final GC): once
    # the logs are flushed nothing here needs it, and it costs each node ~20 ms
    # of CPU that every node pays at once on `stem worker multi stop` (bench:
    # 16 nodes TERM-to-all-exited 330 ms -> 44 ms on 2 cores). Event lines
    # are written and flushed one by one (launcher.common.EventLog).
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
