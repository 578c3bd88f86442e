"""The one helper through which stem runs short-lived subprocesses.

Long-running worker nodes are spawned by the pidfile backend itself; every
other external command (systemctl, systemd-escape, journalctl, ...) goes
through :func:`run` so that logging and failure messages stay uniform.
"""

from __future__ import annotations

import os
import signal

from stem_systemd.errors import NotInstalledError, StemError
from stem_systemd.logsink import get_logger

TYPE_CHECKING = False  # mypy reads it as true; typing stays out of the launcher
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence

log = get_logger("stem")


def describe_status(returncode: int) -> str:
    """Say how a process ended: 'exit status 3', 'killed by SIGKILL', ..."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    if returncode == 127:
        return "exit status 127 (command not found)"
    if returncode == 126:
        return "exit status 126 (command not executable)"
    return f"exit status {returncode}"


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 60.0,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv (never through a shell), capture its output as text.

    With ``check`` a non-zero exit raises StemError naming the command, how it
    ended and the last line of its stderr.
    """
    # Imported here: the launcher imports this module for describe_status
    # alone, and subprocess and shlex (with re) are ~4 ms of every node's
    # start-up (bench).
    import shlex  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    log.debug("+ %s", shlex.join(argv))
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            input=input_text,
            check=False,
        )
    except FileNotFoundError as exc:
        raise NotInstalledError(
            f"{argv[0]}: command not found", hint=f"install {argv[0]} or fix PATH"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise StemError(f"{shlex.join(argv)}: no answer within {timeout} s") from exc
    if check and proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        how = describe_status(proc.returncode)
        raise StemError(f"{shlex.join(argv)}: {how}" + (f": {last}" if last else ""))
    return proc
