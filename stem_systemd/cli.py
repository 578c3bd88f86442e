"""The ``stem`` command line: thin click commands over nodes, config and backends.

Core code raises StemError; only :func:`main` prints ``Error:``/``Hint:`` and
exits with the error's code (a click command's return value is discarded in
standalone mode, so exit codes are always raised).
"""

from __future__ import annotations

import signal
import sys

import click

from stem_systemd import __version__
from stem_systemd.commands.multi import multi
from stem_systemd.commands.node_exec import node_exec
from stem_systemd.entry import EARLY, record_early
from stem_systemd.errors import StemError
from stem_systemd.interrupts import HELD, Terminated


@click.group(context_settings={"help_option_names": ["--help"]})
@click.version_option(__version__, "--version", prog_name="stem")
@click.option("--debug", is_flag=True, help="Show subprocess commands and tracebacks.")
@click.pass_context
def stem(ctx: click.Context, debug: bool) -> None:
    """Stem: run background-job workers as real services."""
    import logging  # noqa: PLC0415 (lazy: `stem --version` exits before this; bench: 5 ms)

    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(message)s",
        stream=sys.stderr,
    )


@stem.group()
def worker() -> None:
    """Worker nodes."""


worker.add_command(multi)
worker.add_command(node_exec)


def _interrupt(signum: int, _frame: object) -> None:
    """The first INT, TERM or HUP unwinds the verb (KeyboardInterrupt / Terminated).

    Only the first: later ones are held from here on. Two signals landing in
    one poll(2) run their handlers back to back, and a second exception would
    leave a verb's cleanup (start killing its half-started nodes) before it
    began. The first signal also decides the exit code.
    """
    for other in HELD:
        if signal.getsignal(other) is _interrupt:
            signal.signal(other, _held)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def _held(_signum: int, _frame: object) -> None:
    """After the first interrupt: the verb is already unwinding towards its exit."""


def _take_over_signals() -> None:
    """INT, TERM and HUP unwind the verb (once); a signal the entry point recorded acts now.

    By default TERM and HUP would end us on the spot, skipping the cleanup
    every verb does on KeyboardInterrupt (e.g. start killing half-started
    nodes). A signal ignored by whoever started us (nohup, a background job's
    INT) stays ignored.
    """
    for signum in HELD:
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler, record_early):
            signal.signal(signum, _interrupt)
    if EARLY:
        _interrupt(EARLY[0], None)


def main() -> None:
    """Entry point: run the click app, turning StemError into Error:/Hint: and an exit code."""
    debug = "--debug" in sys.argv[1:]
    try:
        _take_over_signals()
        # Without standalone mode click *returns* the code of a raised
        # click.exceptions.Exit instead of exiting: pass it on.
        code = stem.main(standalone_mode=False, prog_name="stem")
        if isinstance(code, int) and code:
            sys.exit(code)
    except StemError as exc:
        if debug:
            raise
        click.echo(f"Error: {exc.message}", err=True)
        if exc.hint:
            click.echo(f"Hint: {exc.hint}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort as exc:
        click.echo("Aborted.", err=True)
        # click turns Ctrl-C into Abort; 128 + SIGINT is the shell convention.
        sys.exit(128 + signal.SIGINT if isinstance(exc.__cause__, KeyboardInterrupt) else 1)
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGINT)
    except Terminated as exc:
        click.echo(f"Aborted: {signal.Signals(exc.signum).name}.", err=True)
        sys.exit(128 + exc.signum)
