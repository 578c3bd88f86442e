"""``stem worker multi``: start|stop|restart|kill|status|show|enable|disable NODES..."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["--help"]})
def multi() -> None:
    """Manage named worker nodes (systemd units or pidfile-tracked processes)."""
