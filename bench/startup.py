"""CLI start-up: ``stem --version`` and one-node ``stem worker multi status``
beside ``python -c 'import click'`` (the least any click CLI can cost).
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.procs import timed


def measure(venv_bin: Path, work: Path, env: dict[str, str]) -> dict[str, float]:
    """One run of each start-up command (all from the bench venv)."""
    (work / "run").mkdir(parents=True, exist_ok=True)
    status = [
        str(venv_bin / "stem"),
        "worker",
        "multi",
        "status",
        "--backend",
        "pidfile",
        "--env-file",
        os.devnull,
        "--pidfile",
        f"{work}/run/%n.pid",
        "--logfile",
        f"{work}/log/%n%I.log",
        "alpha",
    ]
    return {
        "python -c 'import click'": timed(
            [str(venv_bin / "python"), "-c", "import click"], env=env
        ).seconds,
        "stem --version": timed([str(venv_bin / "stem"), "--version"], env=env).seconds,
        # LSB: 3 = not running, the answer for a node that was never started.
        "stem worker multi status (1 node)": timed(status, env=env, ok=(3,)).seconds,
    }
