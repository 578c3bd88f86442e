"""``stem worker multi`` on the pidfile backend: start (returns when every node
is READY), status, stop (until every process is gone), with the bundled
launcher at concurrency 1; and the launcher's memory per node.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from bench.procs import BenchError, Proc, descendants, kill_all, memory_kb, timed, wait_gone


def argv(venv_bin: Path, verb: str, n: int, work: Path) -> list[str]:
    """``stem worker multi VERB N`` with every path inside the run's directory."""
    return [
        str(venv_bin / "stem"),
        "worker",
        "multi",
        verb,
        "--backend",
        "pidfile",
        "--env-file",
        os.devnull,
        "--pidfile",
        f"{work}/run/%n.pid",
        "--logfile",
        f"{work}/log/%n%I.log",
        "--workdir",
        str(work),
        str(n),
        "-c",
        "1",
    ]


def measure(
    venv_bin: Path, n: int, work: Path, env: dict[str, str], memory: list[dict[str, int]]
) -> dict[str, float]:
    """One run: start, status, stop; appends each node's memory (main + pool) to ``memory``."""
    for sub in ("run", "log"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    me = os.getpid()
    before = descendants(me)
    try:
        start = timed(argv(venv_bin, "start", n, work), env=env, timeout=300)
        status = timed(argv(venv_bin, "status", n, work), env=env)
        workers = descendants(me) - before
        if len(workers) < 2 * n:  # main + one pool process each
            raise BenchError(f"stem: {len(workers)} processes for {n} nodes")
        memory.extend(_node_memory(workers, work))
        t0 = time.perf_counter()
        timed(argv(venv_bin, "stop", n, work), env=env, timeout=300)
        wait_gone(workers, timeout=60)
        stop = time.perf_counter() - t0
        return {"start": start.seconds, "status": status.seconds, "stop": stop}
    finally:
        kill_all(descendants(me) - before)


def _node_memory(workers: set[Proc], work: Path) -> list[dict[str, int]]:
    """Per node: VmRSS of the main process and of its pool, and their summed Pss (KiB)."""
    out = []
    pids = {p.pid for p in workers}
    for pidfile in sorted((work / "run").glob("*.pid")):
        main = int(pidfile.read_text().split()[0])
        if main not in pids:
            continue
        pool = [p.pid for p in descendants(main)]
        m = memory_kb(main)
        ps = [memory_kb(p) for p in pool]
        out.append(
            {
                "main_rss": m["rss"],
                "pool_rss": max((p["rss"] for p in ps), default=0),
                "pool_processes": len(ps),
                "node_rss": m["rss"] + sum(p["rss"] for p in ps),
                "node_pss": m["pss"] + sum(p["pss"] for p in ps),
            }
        )
    return out
