"""Loggers for code that the launcher shares with the CLI, without the logging package.

``import logging`` (with the ``re``, ``traceback``, ``string`` and
``threading`` it brings) is a third of a node's start-up imports and about
1 MB of its memory (bench/RESULTS.md), and a node needs none of it: it writes
one formatted line per event. So modules a node imports take their logger from
here. Until a sink is installed every call goes to the standard ``logging``
logger of the same name (imported on first use), so the CLI and the tests see
ordinary log records; a launcher installs its event log as the sink with
:func:`set_sink`, and from then on lines go straight to it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy reads it as true; typing stays out of the launcher
if TYPE_CHECKING:
    from collections.abc import Callable

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40

# (level, logger name, message already formatted) -> None
_sink: Callable[[int, str, str], None] | None = None


def set_sink(sink: Callable[[int, str, str], None] | None) -> None:
    """Send every logger's records to ``sink`` (None: back to the logging package)."""
    global _sink  # noqa: PLW0603 - one process-wide destination, like logging's root
    _sink = sink


class Logger:
    """The subset of ``logging.Logger`` stem's shared modules use, with %-style args."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def log(self, level: int, msg: str, *args: object) -> None:
        """Log ``msg % args`` at ``level``."""
        sink = _sink
        if sink is None:
            import logging  # noqa: PLC0415 - only where no sink is installed (the CLI)

            logging.getLogger(self.name).log(level, msg, *args)
            return
        sink(level, self.name, msg % args if args else msg)

    def debug(self, msg: str, *args: object) -> None:
        """Log at DEBUG."""
        self.log(DEBUG, msg, *args)

    def info(self, msg: str, *args: object) -> None:
        """Log at INFO."""
        self.log(INFO, msg, *args)

    def warning(self, msg: str, *args: object) -> None:
        """Log at WARNING."""
        self.log(WARNING, msg, *args)

    def error(self, msg: str, *args: object) -> None:
        """Log at ERROR."""
        self.log(ERROR, msg, *args)


def get_logger(name: str) -> Logger:
    """A logger named ``name`` (the same name as its logging package counterpart)."""
    return Logger(name)
