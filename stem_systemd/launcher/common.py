"""What both launchers share: signals, reopenable event logs, notify and watchdog pacing.

Signals are turned into flags by tiny handlers, and a wakeup pipe
(``signal.set_wakeup_fd``) makes every wait in a loop return as soon as one
arrives, so a loop never sleeps through TERM and never needs to poll fast.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import time

from stem_systemd.errors import PrivilegeError, StemError, UsageError
from stem_systemd.logsink import INFO, get_logger, set_sink
from stem_systemd.notify import NOTIFY_ENV, watchdog_interval

# typing only for the type checker (mypy reads TYPE_CHECKING as true): at run
# time it is 0.5 MB and ~2 ms of every node's start-up (bench/RESULTS.md).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import FrameType
    from typing import TextIO

log = get_logger("stem.launcher")

# Opt-in test hooks (see the README, "The worker launcher"). Off unless this is "1".
TEST_HOOKS_ENV = "STEM_WORKER_TEST_HOOKS"


def test_hooks_enabled() -> bool:
    """Whether the hang hooks used by watchdog tests are switched on."""
    return os.environ.get(TEST_HOOKS_ENV) == "1"


def hang_forever(why: str) -> None:
    """Stop this loop for good (test hook): no more pings, no more work, signals only flagged."""
    log.warning("test hook: %s; the loop hangs now", why)
    while True:
        time.sleep(3600)


# --- log file templates -------------------------------------------------------


def expand_logfile(template: str, *, node: str, suffix: str) -> str:
    """Expand ``%n`` node, ``%h`` host, ``%I`` per-process suffix, ``%i`` index, ``%%``.

    ``%i`` (the 1-based node index) is taken from STEM_WORKER_INDEX, which
    ``stem worker multi`` sets; anything else after ``%`` is a usage error.
    """
    out: list[str] = []
    chars = iter(template)
    for char in chars:
        if char != "%":
            out.append(char)
            continue
        code = next(chars, "")
        if code == "n":
            out.append(node)
        elif code == "h":
            out.append(socket.gethostname())
        elif code == "I":
            out.append(suffix)
        elif code == "i" and os.environ.get("STEM_WORKER_INDEX"):
            out.append(os.environ["STEM_WORKER_INDEX"])
        elif code == "%":
            out.append("%")
        else:
            shown = f"%{code}" if code else "a trailing %"
            raise UsageError(
                f"log file template {template!r}: unknown placeholder {shown}",
                hint="use %n (node), %h (host), %I (process suffix) or %% (a literal %)",
            )
    return "".join(out)


# --- event log ----------------------------------------------------------------


def _open_0640(path: str, flags: int) -> int:
    return os.open(path, flags, 0o640)


def open_log(path: str) -> TextIO:
    """Open ``path`` for appending, line-buffered; StemError naming the path on failure."""
    try:
        # Line-buffered append: each event is one write of whole lines. Mode
        # 0640 like the main logfile the pidfile backend creates (lifecycle.py).
        return open(path, "a", buffering=1, encoding="utf-8", opener=_open_0640)
    except PermissionError as exc:
        raise PrivilegeError(
            f"cannot open log file {path}: permission denied",
            hint=f"make {os.path.dirname(path) or '.'} writable for this user",
        ) from exc
    except OSError as exc:
        raise StemError(
            f"cannot open log file {path}: {exc.strerror}",
            hint=f"create {os.path.dirname(path) or '.'} or fix the log file template",
        ) from exc


class EventLog:
    """One line per event, ``<time> <node>[<pid>] <message>``, to a file or stderr.

    Installed as the :mod:`stem_systemd.logsink` sink, so every logger of the
    process (``stem.notify`` warnings included) writes through it; records
    below INFO are dropped. :meth:`reopen` closes and reopens the file by
    name, which is what logrotate's default (rename, then signal) needs.
    Written without the logging package: see :mod:`stem_systemd.logsink`.
    """

    def __init__(self, node: str, path: str | None) -> None:
        self.node = node
        self.path = path
        self._stream: TextIO = open_log(path) if path else sys.stderr
        set_sink(self.write)

    def write(self, level: int, name: str, message: str) -> None:
        """Write one event line (the sink; ``name`` is the logger's, not shown)."""
        if level < INFO:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
        line = f"{stamp}.{int((now % 1) * 1000):03d} {self.node}[{os.getpid()}] {message}\n"
        # A full disk or a closed stderr must not kill the worker: the line is lost.
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(line)
            self._stream.flush()

    def flush(self) -> None:
        """Flush the stream (before a fork, so the child does not repeat buffered text)."""
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def reopen(self) -> bool:
        """Reopen the file by name (after logrotate renamed it); stderr stays as it is.

        A file that cannot be opened now is logged to the old one, which stays
        in use: losing the log is better than losing the worker. False then.
        """
        if not self.path:
            return True
        try:
            new = open_log(self.path)
        except StemError as exc:
            log.warning("cannot reopen the log file, still writing to the old one: %s", exc)
            return False
        old, self._stream = self._stream, new
        if old is not sys.stderr:
            with contextlib.suppress(OSError):
                old.close()
        return True

    def close(self) -> None:
        """Close the file (stderr is left open) and stop being the sink."""
        self.flush()
        set_sink(None)
        if self._stream is not sys.stderr:
            with contextlib.suppress(OSError):
                self._stream.close()


def check_logfile(path: str) -> None:
    """Fail early (StemError) when ``path`` cannot be opened for appending."""
    open_log(path).close()


# --- signals ------------------------------------------------------------------


class Signals:
    """Signal handlers that only record, plus a wakeup pipe to wait on.

    ``pending()`` returns and clears the signals received since the last
    call, in arrival order. ``wait(timeout, fds)`` returns early when a signal
    arrives or one of ``fds`` becomes readable. A new instance in a forked
    child replaces the parent's handlers and pipe.
    """

    def __init__(self, signums: Iterable[int]) -> None:
        self._pending: list[int] = []
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in signums:
            self.watch(signum)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)

    def watch(self, signum: int) -> None:
        """(Re)install the recording handler for ``signum`` (after ignoring it for a while)."""
        signal.signal(signum, self._record)

    def pending(self) -> list[int]:
        """The signals received since the last call (and the wakeup pipe drained)."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read_fd, 512):
                pass
        got, self._pending = self._pending, []
        return got

    def wait(self, timeout: float | None, fds: Iterable[int] = ()) -> list[int]:
        """Block until a signal, a readable fd in ``fds``, or ``timeout``; return readable fds."""
        if self._pending:
            return []
        if timeout is not None and timeout <= 0:
            timeout = 0
        readable, _, _ = select.select([self._read_fd, *fds], [], [], timeout)
        return [fd for fd in readable if fd != self._read_fd]

    def close(self) -> None:
        """Close the wakeup pipe (in a forked child, before installing its own)."""
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def ignore_term() -> None:
    """Ignore SIGTERM (test knob: a pool process that will need SIGKILL)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def forget_notify_env() -> None:
    """Drop NOTIFY_SOCKET and WATCHDOG_* from our environment (pool processes, sd_notify(3))."""
    for name in NOTIFY_ENV:
        os.environ.pop(name, None)


# --- watchdog -----------------------------------------------------------------


class Watchdog:
    """Paces WATCHDOG=1 at half of WATCHDOG_USEC; inert when the watchdog is not ours.

    The next ping is scheduled from the time of the last one (no catch-up
    bursts), so a loop that stalls really goes quiet and the manager notices.
    """

    def __init__(self) -> None:
        self.interval = watchdog_interval()
        self._next = time.monotonic()

    def due_in(self) -> float | None:
        """Seconds until the next ping is due (None: never)."""
        if self.interval is None:
            return None
        return max(0.0, self._next - time.monotonic())

    def ping_if_due(self, send: Callable[[], object]) -> None:
        """Call ``send()`` when a ping is due."""
        if self.interval is None:
            return
        now = time.monotonic()
        if now >= self._next:
            send()
            self._next = now + self.interval


def min_timeout(*values: float | None) -> float | None:
    """The smallest of the given timeouts, ignoring None (None when all are None)."""
    present = [v for v in values if v is not None]
    return min(present) if present else None


def fail(exc: StemError) -> int:
    """Print a launcher error the way the stem CLI does and return its exit code."""
    print(f"Error: {exc.message}", file=sys.stderr)
    if exc.hint:
        print(f"Hint: {exc.hint}", file=sys.stderr)
    return exc.exit_code
