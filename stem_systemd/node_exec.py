"""``stem worker exec NODE``: become one node's launcher (ExecStart of stem-worker@.service).

systemd's ``Type=notify`` wants the process that sends ``READY=1`` to be the
unit's main PID (systemd.service(5) "Type=", "NotifyAccess=main"), and our
rule is "no shell between us and the worker". So this command builds the
node's argv from the configuration surface and replaces itself with it
(execve(2)): no ``sh -c``, no wrapper left as parent, the PID stays the same.

The argv is STEM_WORKER_COMMAND (placeholders expanded for this node) plus the
node's own arguments from STEM_WORKER_ARGS, a shlex-quoted string that the
systemd backend writes into a runtime drop-in
(``stem_systemd.backends.systemd_units.ARGS_VARIABLE``). The environment gets
STEM_WORKER_NODE, STEM_WORKER_INDEX, STEM_WORKER_PIDFILE and
STEM_WORKER_LOGFILE as on every backend; NOTIFY_SOCKET, WATCHDOG_USEC and
friends come from systemd untouched.

Logs: started by systemd (``$INVOCATION_ID`` is set, systemd.exec(5)
"Environment Variables in Spawned Processes"), a node logs to stderr, that is
the journal, unless STEM_LOGFILE is configured explicitly: ``journalctl -u``
is where operators look on a systemd host.

Every refusal is one ``Error:`` line (plus a hint) on stderr, which systemd
puts in the journal next to the unit's failure, and an exit code that the
unit's ``RestartPreventExitStatus=`` keeps from being retried in a loop.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from stem_systemd import config, nodes
from stem_systemd.errors import NotInstalledError, StemError, UsageError

ARGS_VARIABLE = "STEM_WORKER_ARGS"  # same name as backends.systemd_units.ARGS_VARIABLE
SCHEDULER_NODE = "scheduler"


@dataclass(frozen=True)
class Plan:
    """What to exec: the resolved executable, argv (argv[0] as configured), env, cwd."""

    executable: str
    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: Path | None


def plan(node: str, environ: Mapping[str, str], *, scheduler: bool = False) -> Plan:
    """Build NODE's argv and environment from the configuration; raise StemError if unusable."""
    settings = config.load_settings({}, environ)
    args = _node_args(environ)
    index = _index(environ)
    host = socket.gethostname()
    if scheduler:
        command = settings.scheduler_command or _default_scheduler()
        source = settings.sources.get("STEM_SCHEDULER_COMMAND", "default STEM_SCHEDULER_COMMAND")
        settings = _with_command(settings, command)
    else:
        source = settings.sources.get("STEM_WORKER_COMMAND", "default STEM_WORKER_COMMAND")
    spec = nodes.node_spec(node, settings, host, index=index, args=args)

    env = dict(environ)
    env.update(spec.env)
    env.pop(ARGS_VARIABLE, None)  # consumed here; the launcher sees them as argv
    if "INVOCATION_ID" in environ and "STEM_LOGFILE" not in settings.sources:
        env.pop("STEM_WORKER_LOGFILE", None)  # under systemd: stderr, the journal

    what = "scheduler command" if scheduler else "worker command"
    executable = _resolve(spec.argv[0], env.get("PATH", os.defpath), source, what)
    return Plan(executable, spec.argv, env, settings.workdir)


def execute(p: Plan) -> None:
    """Replace this process with the plan (never returns on success)."""
    if p.cwd is not None:
        try:
            os.chdir(p.cwd)
        except OSError as exc:
            raise StemError(
                f"cannot enter the working directory {p.cwd}: {exc.strerror}",
                hint="fix STEM_WORKDIR or create the directory for the stem user",
            ) from None
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(p.executable, list(p.argv), p.env)  # noqa: S606 (exec, never a shell)
    except OSError as exc:  # raced with a removal or a noexec mount
        raise NotInstalledError(
            f"cannot run {p.executable}: {exc.strerror}", hint="check STEM_WORKER_COMMAND"
        ) from None


def _node_args(environ: Mapping[str, str]) -> tuple[str, ...]:
    text = environ.get(ARGS_VARIABLE, "")
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise UsageError(
            f"cannot split {ARGS_VARIABLE}={text!r}: {exc}",
            hint="it is written by `stem worker multi start NODE ARGS`; start the node again",
        ) from None


def _index(environ: Mapping[str, str]) -> int:
    """STEM_WORKER_INDEX when a drop-in sets it, else 1: a unit is one node on its own."""
    text = environ.get("STEM_WORKER_INDEX", "")
    return int(text) if text.isdigit() and int(text) > 0 else 1


def _default_scheduler() -> tuple[str, ...]:
    beside = Path(sys.executable).parent / "stem-scheduler"
    return (str(beside),) if beside.exists() else ("stem-scheduler",)


def _with_command(settings: config.Settings, command: Sequence[str]) -> config.Settings:
    return replace(settings, command=tuple(command))


def _resolve(program: str, path: str, source: str, what: str) -> str:
    """The file execve(2) will run; NotInstalledError (exit 5) naming the setting if none."""
    hint = f"install it or fix the command ({source}); see /etc/stem/stem.env"
    if "/" in program:
        candidate = Path(program)
        if not candidate.is_file():
            raise NotInstalledError(f"{what} not found: {program}", hint=hint)
        if not os.access(candidate, os.X_OK):
            raise NotInstalledError(f"{what} is not executable: {program}", hint=hint)
        return program
    found = shutil.which(program, path=path)
    if found is None:
        raise NotInstalledError(f"{what} not found on PATH: {program} (PATH={path})", hint=hint)
    return found
