"""Output of ``stem worker multi``: one human line per node, or one JSON document.

Data goes to stdout: status lines, ``show`` blocks, the JSON document, and
the line of every node an action succeeded on. A node an action failed on is
reported on stderr with the last lines of its log, so ``>/dev/null`` hides
successes, never failures.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

import click

from stem_systemd.backends.base import NodeReport
from stem_systemd.nodes import NodeSpec


def worst_code(reports: Sequence[NodeReport]) -> int:
    """The exit code of a multi-node command: the worst (highest) node code, 0 when none."""
    return max((r.exit_code for r in reports), default=0)


def report_dict(report: NodeReport) -> dict[str, Any]:
    """One node report as a JSON object."""
    data: dict[str, Any] = {
        "node": report.node,
        "state": report.state.value,
        "ok": report.ok,
        "exit_code": report.exit_code,
        "pid": report.pid,
        "message": report.message,
    }
    data.update({k: v for k, v in report.details.items() if v is not None})
    if report.log_tail:
        data["log_tail"] = report.log_tail
    return data


def reports(verb: str, backend: str, node_reports: Sequence[NodeReport], *, as_json: bool) -> None:
    """Print the reports of a verb (see the module docstring)."""
    if as_json:
        document = {
            "verb": verb,
            "backend": backend,
            "exit_code": worst_code(node_reports),
            "nodes": [report_dict(r) for r in node_reports],
        }
        click.echo(json.dumps(document, indent=2))
        return
    for r in node_reports:
        if verb == "status":
            extras = [f"{k}={r.details[k]}" for k in ("pidfile", "logfile") if k in r.details]
            click.echo("  ".join([f"{r.node}: {r.message}", *extras]))
            continue
        click.echo(f"{r.node}: {r.message}", err=not r.ok)
        hint = r.details.get("hint")
        if not r.ok and hint:
            click.echo(f"  hint: {hint}", err=True)
        if r.log_tail:
            click.echo(f"  last lines of {r.details.get('logfile', 'its log')}:", err=True)
            for line in r.log_tail:
                click.echo(f"  | {line}", err=True)


def show(
    specs: Sequence[NodeSpec], environments: Mapping[str, Mapping[str, str]], *, as_json: bool
) -> None:
    """Print what ``start`` would run, per node: argv, environment additions, files."""
    if as_json:
        document = {
            "verb": "show",
            "nodes": [
                {
                    "node": s.name,
                    "index": s.index,
                    "argv": list(s.argv),
                    "env": dict(environments[s.name]),
                    "pidfile": str(s.pidfile),
                    "logfile": s.logfile,
                    "main_logfile": str(s.main_logfile),
                }
                for s in specs
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return
    for s in specs:
        click.echo(f"{s.name}:")
        click.echo(f"  argv:    {shlex.join(s.argv)}")
        click.echo(f"  pidfile: {s.pidfile}")
        click.echo(f"  logfile: {s.main_logfile}  (launcher template {s.logfile})")
        for key, value in environments[s.name].items():
            click.echo(f"  env:     {key}={shlex.quote(value)}")
