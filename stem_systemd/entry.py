"""The ``stem`` console script: catch signals first, then load the CLI.

TERM, HUP and INT that come while Python imports click and the commands are
recorded here and acted on by :func:`stem_systemd.cli.main` once it is up. A
container's PID 1 has no default signal action at all (the kernel drops a
signal PID 1 has no handler for), so a ``docker stop`` in those milliseconds
used to be lost, and the engine's SIGKILL came at the end of the grace
period. This lives in the entry point, not at the CLI module's import, so
importing the CLI (tests, other programs) never touches signal handlers.
"""

from __future__ import annotations

import signal
from types import FrameType

EARLY: list[int] = []  # signals recorded before the CLI took over, in order


def record_early(signum: int, _frame: FrameType | None) -> None:
    """The interim handler: remember the signal for the CLI."""
    EARLY.append(signum)


def record_from_now() -> None:
    """Install the interim handlers (an ignored signal stays ignored)."""
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, record_early)


def run_cli() -> None:
    """Import the CLI (the slow part) and run it; it acts on what was recorded."""
    from stem_systemd import cli  # noqa: PLC0415 (the point: after the handlers)

    cli.main()


def main() -> None:
    """The console script: the interim handlers first, then the CLI."""
    record_from_now()
    run_cli()
