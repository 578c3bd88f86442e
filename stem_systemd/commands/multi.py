"""``stem worker multi``: start|stop|restart|kill|status|show|enable|disable NODES...

Thin click verbs: parse -> settings (config) -> node specs (nodes.expand) ->
backend (backends.select) -> reports (render) -> exit code, raised.

multi's own options are long only, so celery-style worker options such as
``-c:1-3 4`` or ``-Q:alpha images`` pass through untouched as part of the
unprocessed NODES argument list, which :func:`nodes.expand` interprets.
Everything after the first ``--`` is split off before click parses (click
would swallow the ``--``) and given to every node.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from stem_systemd.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
PASSTHROUGH = "stem.passthrough"


class MultiVerb(click.Command):
    """A verb whose arguments after the first ``--`` go to every node verbatim."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            cut = args.index("--")
            ctx.meta[PASSTHROUGH] = list(args[cut + 1 :])
            args = args[:cut]
        else:
            ctx.meta[PASSTHROUGH] = []
        return super().parse_args(ctx, args)


VERB_SETTINGS = {
    "help_option_names": ["--help"],
    "ignore_unknown_options": True,  # worker options belong to node expansion
}


def common_options(func: F) -> F:
    """The options every verb shares (long only; see the module docstring)."""
    options = [
        click.argument(
            "nodes",
            nargs=-1,
            type=click.UNPROCESSED,
            metavar="[NAMES...|N] [WORKER-OPTIONS...] [-- ARGS...]",
        ),
        click.option(
            "--backend",
            metavar="auto|systemd|pidfile",
            help="How nodes are managed (STEM_BACKEND; default auto).",
        ),
        click.option(
            "--env-file",
            metavar="PATH",
            help="Env file (default /etc/stem/stem.env when readable).",
        ),
        click.option(
            "--cmd", metavar="COMMAND", help="Launcher command line (STEM_WORKER_COMMAND)."
        ),
        click.option(
            "--pidfile",
            metavar="TEMPLATE",
            help="Pidfile template, e.g. /run/stem/%n.pid (STEM_PIDFILE).",
        ),
        click.option(
            "--logfile", metavar="TEMPLATE", help="Logfile template, e.g. /var/log/stem/%n%I.log."
        ),
        click.option("--start-timeout", metavar="S", help="Seconds to wait for READY=1."),
        click.option("--stop-timeout", metavar="S", help="Seconds before KILL on stop."),
        click.option("--timeout", metavar="S", help="This verb's own wait (start/stop timeout)."),
        click.option("--ready-after", metavar="S", help="Ready when still alive after S seconds."),
        click.option(
            "--workdir", metavar="DIR", help="The nodes' working directory (STEM_WORKDIR)."
        ),
        click.option("--user", is_flag=True, help="systemd backend: the user manager."),
        click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class Run:
    """One invocation: settings, node specs and (lazily) the backend."""

    def __init__(
        self, ctx: click.Context, params: dict[str, Any], *, allow_empty: bool = False
    ) -> None:
        import socket  # noqa: PLC0415 (lazy: keeps `stem --version` fast)

        from stem_systemd import config, nodes  # noqa: PLC0415 (lazy: keeps `stem --version` fast)

        self.params = params
        flags = {
            key: params.get(key)
            for key in (
                "backend",
                "env_file",
                "cmd",
                "pidfile",
                "logfile",
                "start_timeout",
                "stop_timeout",
                "ready_after",
                "workdir",
            )
        }
        self.settings = config.load_settings(flags, os.environ)
        for warning in self.settings.warnings:
            click.echo(f"Warning: {warning}", err=True)
        _refuse_other_verbs_options(ctx, list(params["nodes"]))
        self.specs = nodes.expand(
            list(params["nodes"]),
            list(ctx.meta.get(PASSTHROUGH, [])),
            self.settings,
            socket.gethostname(),
            allow_empty=allow_empty,
        )
        self.start_timeout = float(self.settings.start_timeout)
        self.stop_timeout = float(self.settings.stop_timeout)
        self.as_json = bool(params.get("as_json"))

    def backend(self) -> Any:
        """Choose the backend and say which and why on stderr."""
        from pathlib import Path  # noqa: PLC0415 (lazy: keeps `stem --version` fast)

        from stem_systemd.backends.select import PidfileOptions, choose  # noqa: PLC0415 (lazy: keeps `stem --version` fast)

        workdir = self.settings.workdir
        options = PidfileOptions(
            start_timeout=self.start_timeout,
            stop_timeout=self.stop_timeout,
            ready_after=self.settings.ready_after,
            workdir=Path(workdir) if workdir else None,
        )
        backend, why = choose(self.settings.backend, options, user=bool(self.params.get("user")))
        click.echo(f"backend: {why}", err=True)
        return backend

    def finish(self, verb: str, backend_name: str, reports: Sequence[Any]) -> None:
        """Render the reports and exit with the worst code."""
        from stem_systemd import render  # noqa: PLC0415 (lazy: keeps `stem --version` fast)

        render.reports(verb, backend_name, reports, as_json=self.as_json)
        code = render.worst_code(reports)
        if code:
            raise click.exceptions.Exit(code)


def _refuse_other_verbs_options(ctx: click.Context, args: Sequence[str]) -> None:
    """``start --rolling`` is a slip, not a worker option: name the verb it belongs to.

    Unknown options go to the nodes (celery multi's rule), so without this a
    restart option given to start would reach every worker, which would exit
    with a usage error in its log.
    """
    here = ctx.command
    parent = ctx.parent.command if ctx.parent is not None else None
    if not isinstance(parent, click.Group):
        return
    mine = {name for p in here.params for name in p.opts}
    owners: dict[str, list[str]] = {}
    for verb_name, verb in parent.commands.items():
        for param in verb.params:
            for name in param.opts:
                if name.startswith("--") and name not in mine:
                    owners.setdefault(name, []).append(verb_name)
    for name, verbs in owners.items():
        if any(arg == name or arg.startswith(name + "=") for arg in args):
            to_workers = ctx.info_name in ("start", "restart", "show")
            raise UsageError(
                f"{name} is an option of `stem worker multi {'/'.join(verbs)}`,"
                f" not of {ctx.info_name}",
                hint=f"drop it, or give it to the workers after `--` ({ctx.info_name}"
                f" NODES -- {name})"
                if to_workers
                else "drop it",
            )


@click.group(context_settings={"help_option_names": ["--help"]})
def multi() -> None:
    """Manage named worker nodes (systemd units or pidfile-tracked processes)."""


@multi.command(cls=MultiVerb, context_settings=VERB_SETTINGS)
@common_options
@click.option("--foreground", is_flag=True, help="Stay in the foreground as a supervisor (PID 1).")
@click.pass_context
def start(ctx: click.Context, /, **params: Any) -> None:
    """Start nodes; returns when each is ready (READY=1) or has failed."""
    if params.get("timeout") is not None:
        params["start_timeout"] = params["timeout"]
    run = Run(ctx, params)
    backend = run.backend()
    if params.get("foreground"):
        if backend.name != "pidfile":
            raise UsageError(
                "--foreground runs nodes itself: it needs the pidfile backend",
                hint="add --backend=pidfile",
            )
        from stem_systemd.supervisor import Supervisor  # noqa: PLC0415 (lazy: keeps `stem --version` fast)

        code = Supervisor(
            run.specs,
            start_timeout=run.start_timeout,
            stop_timeout=run.stop_timeout,
            ready_after=run.settings.ready_after,
            workdir=run.settings.workdir,
        ).run()
        raise click.exceptions.Exit(code)
    run.finish("start", backend.name, backend.start(run.specs, run.start_timeout))


@multi.command(cls=MultiVerb, context_settings=VERB_SETTINGS)
@common_options
@click.pass_context
def stop(ctx: click.Context, /, **params: Any) -> None:
    """Stop nodes: TERM, wait up to the stop timeout, then KILL their process groups."""
    if params.get("timeout") is not None:
        params["stop_timeout"] = params["timeout"]
    run = Run(ctx, params)
    backend = run.backend()
    run.finish("stop", backend.name, backend.stop(run.specs, run.stop_timeout))


@multi.command(cls=MultiVerb, context_settings=VERB_SETTINGS)
@common_options
@click.option("--rolling", is_flag=True, help="One node at a time, each ready before the next.")
@click.pass_context
def restart(ctx: click.Context, /, **params: Any) -> None:
    """Restart nodes (stop + start); --rolling keeps all but one node up."""
    if params.get("timeout") is not None:
        params["start_timeout"] = params["stop_timeout"] = params["timeout"]
    run = Run(ctx, params)
    backend = run.backend()
    reports = backend.restart(run.specs, run.stop_timeout, bool(params.get("rolling")))
    run.finish("restart", backend.name, reports)


def _signal_number(name: str) -> int:
    """SIGTERM, TERM, term or 15 -> 15; anything else is a usage error."""
    text = name.strip().upper()
    if text.isdigit():
        try:
            return int(signal.Signals(int(text)))
        except ValueError:
            pass
    else:
        try:
            return int(signal.Signals[text if text.startswith("SIG") else "SIG" + text])
        except KeyError:
            pass
    raise UsageError(f"unknown signal {name!r}", hint="use a name like TERM, HUP, KILL")


@multi.command(cls=MultiVerb, context_settings=VERB_SETTINGS)
@common_options
@click.option(
    "--signal", "signame", metavar="SIG", default="KILL", show_default=True, help="Signal to send."
)
@click.option(
    "--whom",
    type=click.Choice(["main", "all"]),
    default="all",
    show_default=True,
    help="The main process only, or the node's whole process group.",
)
@click.pass_context
def kill(ctx: click.Context, /, **params: Any) -> None:
    """Send a signal (default SIGKILL) to nodes."""
    signum = _signal_number(params["signame"])
    if params.get("timeout") is not None:
        params["stop_timeout"] = params["timeout"]
    run = Run(ctx, params)
    backend = run.backend()
    run.finish("kill", backend.name, backend.kill(run.specs, signum, params["whom"]))


@multi.command(cls=MultiVerb, context_settings=VERB_SETTINGS)
@common_options
@click.pass_context
def status(ctx: click.Context, /, **params: Any) -> None:
    """One line per node; exit 0 all running, 1 dead with pidfile, 3 not running, 4 unknown."""
    # With no names the systemd backend lists every loaded or enabled instance.
    run = Run(ctx, params, allow_empty=True)
    backend = run.backend()
    if not run.specs and backend.name != "systemd":
        raise UsageError(
            "no nodes given",
            hint="name them (stem worker multi status alpha beta) or set STEM_WORKER_NODES",
        )
    reports = backend.status(run.specs)
    if not reports:
        # systemd without names found no instance at all: LSB "not running".
        message = "no stem-worker@ instance is loaded or enabled"
        if run.as_json:
            import json  # noqa: PLC0415 (lazy: keeps `stem --version` fast)

            document = {"verb": "status", "backend": backend.name, "exit_code": 3, "nodes": []}
            click.echo(json.dumps({**document, "message": message}, indent=2))
        else:
            click.echo(message)
        raise click.exceptions.Exit(3)
    run.finish("status", backend.name, reports)


@multi.command(cls=MultiVerb, context_settings=VERB_SETTINGS)
@common_options
@click.pass_context
def show(ctx: click.Context, /, **params: Any) -> None:
    """Dry run: per node, the exact argv, environment additions, pidfile and logfile."""
    from stem_systemd import render  # noqa: PLC0415 (lazy: keeps `stem --version` fast)
    from stem_systemd.lifecycle import node_environment  # noqa: PLC0415 (lazy: keeps `stem --version` fast)

    run = Run(ctx, params)
    if run.backend().name == "pidfile":
        from stem_systemd.backends.pidfile import check_distinct  # noqa: PLC0415 (lazy)

        check_distinct(run.specs)
    placeholder = "<notify socket of the starting stem>"
    envs = {spec.name: node_environment(spec, placeholder) for spec in run.specs}
    render.show(run.specs, envs, as_json=run.as_json)


def _unit_files_verb(verb: str) -> Callable[..., None]:
    also = "starts" if verb == "enable" else "stops"
    helptext = f"{verb.capitalize()} nodes' units at boot (systemd only); --now also {also} them."

    @multi.command(verb, cls=MultiVerb, context_settings=VERB_SETTINGS, help=helptext)
    @common_options
    @click.option("--now", is_flag=True, help=f"Also {'start' if verb == 'enable' else 'stop'}.")
    @click.pass_context
    def command(ctx: click.Context, /, **params: Any) -> None:
        if params.get("timeout") is not None:
            params["start_timeout"] = params["stop_timeout"] = params["timeout"]
        if ctx.meta.get(PASSTHROUGH) or any(a.startswith("-") for a in params["nodes"]):
            # They would be dropped without a word: a unit gets its arguments
            # from `start` (a runtime drop-in) or from STEM_WORKER_ARGS.
            raise UsageError(
                f"{verb} takes node names only, no worker options",
                hint="give worker options to `stem worker multi start` (they reach the"
                " node's unit), or put them in STEM_WORKER_COMMAND (/etc/stem/stem.env)",
            )
        run = Run(ctx, params)
        backend = run.backend()
        method = getattr(backend, verb, None)
        if method is None:
            raise UsageError(
                f"{verb} needs the systemd backend (this is {backend.name})",
                hint="on SysV hosts use update-rc.d / chkconfig for the init script",
            )
        timeout = run.start_timeout if verb == "enable" else run.stop_timeout
        run.finish(verb, backend.name, method(run.specs, bool(params.get("now")), timeout))

    return command


enable = _unit_files_verb("enable")
disable = _unit_files_verb("disable")
