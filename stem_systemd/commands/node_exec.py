"""``stem worker exec NODE``: the ExecStart of stem-worker@.service (builds argv, then execs)."""

from __future__ import annotations

import os

import click


@click.command("exec", context_settings={"help_option_names": ["--help"]})
@click.option(
    "--scheduler",
    is_flag=True,
    help="Run STEM_SCHEDULER_COMMAND (default stem-scheduler) instead (stem-scheduler.service).",
)
@click.argument("node")
def node_exec(node: str, scheduler: bool) -> None:
    """Replace this process with NODE's launcher (ExecStart of stem-worker@.service).

    The argv is STEM_WORKER_COMMAND plus the shlex-quoted STEM_WORKER_ARGS; the
    process keeps its PID, so systemd sees the launcher as the unit's main PID.
    """
    from stem_systemd import node_exec as logic  # noqa: PLC0415 (lazy: `stem --version` stays fast)

    logic.execute(logic.plan(node, os.environ, scheduler=scheduler))
