"""The systemd half of the bench, from the host: a container with systemd as
PID 1 and stem installed as an operator would, and systemd_inner.py run inside
it with ``docker exec``.

``auto`` builds the integration suite's systemd image from this work tree
(scripts/testbed.sh for the engine, base image and wheelhouse, then
tests/integration/images/systemd/Dockerfile) under a tag of its own, starts a
container from it with the harness's ``docker run`` flags (../shared TESTBED
facts: no --privileged, network none) and removes it afterwards. It never
borrows a container of a running test session: the bench starts and stops
``stem-worker@w1..wN``, which would trample that session's units.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.procs import BenchError
from bench.stats import summarize

ROOT = Path(__file__).resolve().parent.parent
INNER = ROOT / "bench" / "systemd_inner.py"
DOCKERFILE = "tests/integration/images/systemd/Dockerfile"
IMAGE = "stem-bench-systemd:latest"
RUN_FLAGS = (
    "--network=none",
    "--cap-add=SYS_ADMIN",
    "--security-opt=seccomp=unconfined",
    "--tmpfs=/run",
    "--tmpfs=/run/lock",
    "--tmpfs=/tmp",
    "--volume=/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--env=container=docker",
)


def _docker(*args: str, timeout: float = 120, check: bool = True) -> str:
    try:
        proc = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise BenchError("docker is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"docker {args[0]}: no answer within {timeout} s") from exc
    if check and proc.returncode != 0:
        raise BenchError(f"docker {' '.join(args[:2])}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def _build_image() -> None:
    """Engine, base image and wheelhouse (scripts/testbed.sh), then the systemd image."""
    testbed = subprocess.run(
        [str(ROOT / "scripts" / "testbed.sh")],
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if testbed.returncode != 0:
        raise BenchError(f"scripts/testbed.sh failed: {testbed.stderr.strip()[-300:]}")
    _docker(
        "build",
        "--network",
        "none",
        "-q",
        "-f",
        str(ROOT / DOCKERFILE),
        "-t",
        IMAGE,
        str(ROOT),
        timeout=900,
    )


def _start_container() -> str:
    name = f"stem-bench-systemd-{os.getpid()}"
    _docker("run", "-d", "--name", name, *RUN_FLAGS, IMAGE)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = _docker("exec", name, "systemctl", "is-system-running", check=False).strip()
        if state in ("running", "degraded"):
            return name
        time.sleep(0.5)
    _docker("rm", "-f", name, check=False)
    raise BenchError("systemd in the bench container did not come up within 90 s")


def measure(which: str, ns: Sequence[int], runs: int) -> dict[str, Any]:
    """Run the inner bench in a systemd container; return summarized series and notes."""
    if shutil.which("docker") is None:
        raise BenchError("docker is not installed")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        raise BenchError("the Docker engine is not running (scripts/testbed.sh starts it)")
    started = which == "auto"
    if started:
        _build_image()
        container = _start_container()
    else:
        container = which
    try:
        cfg = json.dumps({"ns": list(ns), "runs": runs})
        proc = subprocess.run(
            ["docker", "exec", "-i", container, "python3", "-", cfg],
            input=INNER.read_text(),
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if proc.returncode != 0:
            raise BenchError(f"inner bench failed: {proc.stderr.strip()[-400:]}")
        raw = json.loads(proc.stdout)
    finally:
        if started:
            _docker("rm", "-f", container, check=False)
    series = {
        tool: {n: {ph: summarize(v) for ph, v in phases.items()} for n, phases in by_n.items()}
        for tool, by_n in raw["series"].items()
    }
    mem = raw.get("memory_kib") or []
    return {
        "series": series,
        "memory_kib": {k: summarize([m[k] for m in mem]) for k in (mem[0] if mem else {})},
        "errors": raw["errors"],
        "note": f"measured inside container {container} with docker exec "
        f"(systemd as PID 1; its load after: {raw['load']})",
    }
