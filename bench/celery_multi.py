"""``celery multi``: start N workers until each logs "ready.", then ``stopwait``.

The app uses kombu's filesystem transport, so no broker server runs. Mingle,
gossip and heartbeat are switched off: they need a broadcast round-trip (mingle
waits a full second for replies) that a one-host comparison should not charge
celery for. Every worker runs with ``-c 1`` (prefork, one pool process), like
the stem nodes. celery multi's placeholders: ``%n`` node name, ``%I`` pool
process suffix, so ``%n.pid`` and ``%n%I.log`` mean what ours do.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.procs import BenchError, descendants, kill_all, timed, wait_for, wait_gone

APP = """\
import os
from celery import Celery

here = os.path.dirname(os.path.abspath(__file__))
app = Celery("benchapp", broker="filesystem://")
app.conf.broker_transport_options = {
    "data_folder_in": os.path.join(here, "queue"),
    "data_folder_out": os.path.join(here, "queue"),
    "processed_folder": os.path.join(here, "processed"),
    "control_folder": os.path.join(here, "control"),
}
"""


def _argv(venv_bin: Path, verb: str, n: int, work: Path) -> list[str]:
    return [
        str(venv_bin / "celery"),
        "multi",
        verb,
        str(n),
        "-A",
        "benchapp",
        "-c",
        "1",
        "-l",
        "INFO",
        "--without-mingle",
        "--without-gossip",
        "--without-heartbeat",
        f"--pidfile={work}/run/%n.pid",
        f"--logfile={work}/log/%n%I.log",
    ]


class _Ready:
    """Which workers have logged "ready." so far (each log is re-read only until it has)."""

    def __init__(self, work: Path, n: int) -> None:
        self.left = {work / "log" / f"celery{i}.log" for i in range(1, n + 1)}

    def __call__(self) -> bool:
        for log in list(self.left):
            try:
                if " ready." in log.read_text():
                    self.left.discard(log)
            except FileNotFoundError:
                pass
        return not self.left


def measure(venv_bin: Path, n: int, work: Path, env: dict[str, str]) -> dict[str, float]:
    """One run: start until every worker logs ready, then stopwait until every process is gone."""
    for sub in ("run", "log", "queue", "processed", "control"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "benchapp.py").write_text(APP)
    me = os.getpid()
    before = descendants(me)
    try:
        t0 = time.perf_counter()
        timed(_argv(venv_bin, "start", n, work), env=env, cwd=work)
        wait_for("celery workers ready", _Ready(work, n), timeout=300)
        start = time.perf_counter() - t0
        workers = descendants(me) - before
        if len(workers) < 2 * n:  # main + one pool process each
            raise BenchError(f"celery: {len(workers)} processes for {n} workers")
        t0 = time.perf_counter()
        timed(_argv(venv_bin, "stopwait", n, work), env=env, cwd=work, timeout=300)
        wait_gone(workers, timeout=60)
        return {"start": start, "stop": time.perf_counter() - t0}
    finally:
        kill_all(descendants(me) - before)
