"""``stem-scheduler``: the bundled scheduler launcher, one process with a tick loop.

The same skeleton as ``stem-worker`` without a pool: ``READY=1`` once the loop
runs, ``STATUS=`` with the tick count, ``WATCHDOG=1`` from the tick loop,
``STOPPING=1`` on shutdown, ``RELOADING=1`` ... ``READY=1`` around a log
reopen. Signals: TERM exits 0 after the current tick, INT/QUIT exit
128+signal at once, HUP reopens the log file. With ``--jobs DIR`` every tick
submits one job to a worker spool (see :mod:`stem_systemd.launcher.spool`),
which makes a scheduler feeding workers a runnable demo.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

from stem_systemd.errors import StemError, UsageError
from stem_systemd.launcher import spool
from stem_systemd.launcher.common import (
    EventLog,
    Signals,
    Watchdog,
    expand_logfile,
    fail,
    hang_forever,
    min_timeout,
    test_hooks_enabled,
)
from stem_systemd.logsink import get_logger
from stem_systemd.notify import Notifier

log = get_logger("stem.scheduler")

HELP_EPILOG = """\
signals: TERM stop after the current tick (exit 0); INT/QUIT stop at once
(exit 128+signal); HUP reopen the log file.

test hooks (only with STEM_WORKER_TEST_HOOKS=1 in the environment): SIGUSR1
makes the tick loop hang for good, so WATCHDOG=1 pings really stop.
"""


def build_parser() -> argparse.ArgumentParser:
    """The stem-scheduler command line."""
    parser = argparse.ArgumentParser(
        prog="stem-scheduler",
        description="Run the scheduler: a tick loop speaking sd_notify, until signalled.",
        epilog=HELP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--name", default="scheduler", help="name in logs and STATUS (%%n)")
    parser.add_argument(
        "--logfile",
        metavar="TEMPLATE",
        help="log file template (%%n name, %%h host, %%I empty, %%%%); default stderr",
    )
    parser.add_argument(
        "--interval", type=float, default=5.0, metavar="S", help="seconds between ticks"
    )
    parser.add_argument("--jobs", type=Path, metavar="DIR", help="submit one job per tick here")
    parser.add_argument(
        "--job-seconds", type=float, default=1.0, metavar="S", help="work per submitted job"
    )
    parser.add_argument(
        "--ready-delay", type=float, default=0.0, metavar="S", help="send READY=1 S seconds late"
    )
    return parser


class Scheduler:
    """The tick loop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.name: str = args.name
        self.interval: float = args.interval
        self.jobs: Path | None = args.jobs
        self.job_seconds: float = args.job_seconds
        self.ready_delay: float = args.ready_delay
        path = expand_logfile(args.logfile, node=self.name, suffix="") if args.logfile else None
        self.events = EventLog(self.name, path)
        self.notifier = Notifier()
        self.watchdog = Watchdog()
        signums = [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP]
        if test_hooks_enabled():
            signums.append(signal.SIGUSR1)
        self.signals = Signals(signums)
        self.ticks = 0

    def status(self) -> str:
        """The STATUS= line."""
        return f"scheduler {self.name}: {self.ticks} ticks"

    def tick(self) -> None:
        """One unit of the scheduler's work."""
        self.ticks += 1
        if self.jobs is not None:
            name = f"{self.name}-{time.time_ns()}-{self.ticks}"
            try:
                spool.submit(self.jobs, name, f"{self.job_seconds:g}")
            except OSError as exc:  # the spool went away or read-only: log, keep ticking
                log.warning("tick %d: cannot submit job %s: %s", self.ticks, name, exc)
            else:
                log.info("tick %d: submitted job %s", self.ticks, name)
        else:
            log.info("tick %d", self.ticks)
        self.notifier.status(self.status())

    def run(self) -> int:
        """Tick until signalled; the exit code."""
        if self.jobs is not None:
            try:
                spool.prepare(self.jobs)
            except OSError as exc:
                raise StemError(f"cannot use job spool {self.jobs}: {exc.strerror}") from exc
        log.info("started: tick every %g s", self.interval)
        ready_at: float | None = time.monotonic() + self.ready_delay
        next_tick = time.monotonic() + self.interval
        while True:
            now = time.monotonic()
            self.signals.wait(
                min_timeout(
                    next_tick - now,
                    self.watchdog.due_in(),
                    None if ready_at is None else ready_at - now,
                )
            )
            for signum in self.signals.pending():
                if signum == signal.SIGUSR1:
                    hang_forever("SIGUSR1")
                elif signum == signal.SIGHUP:
                    if ready_at is not None:  # not ready yet: nothing to announce
                        self.events.reopen()
                        continue
                    self.notifier.reloading(self.status())
                    if self.events.reopen():
                        log.info("reopened log file")
                    self.notifier.ready(self.status())
                elif signum == signal.SIGTERM:
                    log.info("stopping: warm shutdown after %d ticks", self.ticks)
                    self.notifier.stopping(self.status())
                    return 0
                else:
                    log.info("stopping: cold shutdown (%s)", signal.Signals(signum).name)
                    self.notifier.stopping(self.status())
                    return 128 + signum
            now = time.monotonic()
            if ready_at is not None and now >= ready_at:
                ready_at = None
                log.info("ready")
                self.notifier.ready(self.status())
            if now >= next_tick:
                next_tick = now + self.interval
                self.tick()
            self.watchdog.ping_if_due(self.notifier.watchdog)


def run(argv: list[str] | None = None) -> int:
    """Parse, tick, return the exit code (errors printed as Error:/Hint:)."""
    args = build_parser().parse_args(argv)
    try:
        if args.interval <= 0 or args.ready_delay < 0 or args.job_seconds < 0:
            raise UsageError("--interval must be > 0; --ready-delay and --job-seconds >= 0")
        if not args.name or "/" in args.name:
            raise UsageError(f"invalid scheduler name {args.name!r}")
        scheduler = Scheduler(args)
        try:
            return scheduler.run()
        finally:
            scheduler.notifier.close()
            scheduler.events.close()
    except StemError as exc:
        return fail(exc)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
