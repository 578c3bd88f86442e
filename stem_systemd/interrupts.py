"""Hold interrupting signals for the few steps that must not be cut in half.

``stem worker multi start`` cleans up on Ctrl-C, TERM and HUP (the CLI turns
them into exceptions), but an exception can land between any two bytecodes:
between a node's spawn and the moment it is recorded for cleanup (a node left
running with no pidfile), or in the middle of the cleanup itself (a second
Ctrl-C leaving most nodes behind). Inside :func:`deferred` such a signal is
only recorded; when the block ends the original handlers are back and the
first recorded signal is raised again, so it takes effect right there, at a
point where the caller's bookkeeping is whole.

The signal mask is not touched: a child spawned inside the block must not
inherit blocked signals (exec keeps the mask, see signal(7)).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None

HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so a verb cleans up half-done work.

    Raised by the CLI's handler (see :mod:`stem_systemd.cli`); backends catch
    it beside KeyboardInterrupt to take back what an interrupted verb began.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def deferred(*, reraise: bool = True) -> Iterator[None]:
    """Record SIGINT/SIGTERM/SIGHUP inside the block; re-raise the first one after it.

    ``reraise=False`` drops them instead: for cleanup that runs because of an
    earlier signal and re-raises that one when done (a second Ctrl-C must not
    cut it short, and must not replace the first one's exit code either).
    Outside the main thread (no Python signal handlers there) it does nothing.
    """
    pending: list[int] = []

    def hold(signum: int, _frame: FrameType | None) -> None:
        pending.append(signum)

    saved: dict[int, Handler] = {}
    try:
        for signum in HELD:
            current = signal.getsignal(signum)
            if current is signal.SIG_IGN or current is None:
                # Ignored (nohup, a background job's SIGINT) stays ignored; None
                # is a handler installed outside Python, which we leave alone.
                continue
            try:
                signal.signal(signum, hold)
            except ValueError:  # not the main thread: signals never run here
                break
            saved[signum] = current
        yield
    finally:
        for held, handler in saved.items():
            signal.signal(held, handler)
        if pending and reraise:
            # Runs the restored handler now (Python handlers run before
            # raise_signal returns): KeyboardInterrupt, the CLI's Terminated,
            # or the default action.
            signal.raise_signal(pending[0])
