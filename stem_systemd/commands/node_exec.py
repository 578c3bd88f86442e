"""``stem worker exec NODE``: the ExecStart of stem-worker@.service (builds argv, then execs)."""

from __future__ import annotations

import click


@click.command("exec", context_settings={"help_option_names": ["--help"]})
@click.argument("node")
def node_exec(node: str) -> None:
    """Replace this process with NODE's launcher (used by stem-worker@.service)."""
    raise click.UsageError("not implemented yet")
