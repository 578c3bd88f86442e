"""The systemd half of the bench, from the host: find the testbed's systemd
container and run systemd_inner.py inside it with ``docker exec``.

``auto`` uses a running container of the systemd testbed image when there is
one, else starts one from that image (the same ``docker run`` flags as the
integration harness: ../shared TESTBED facts) and removes it afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.procs import BenchError
from bench.stats import summarize

INNER = Path(__file__).resolve().parent / "systemd_inner.py"
# The integration harness's systemd image (tests/integration), newest first.
IMAGES = ("stem-test-systemd:latest", "stem-testbed-systemd:latest")
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


def _running_container() -> str | None:
    for image in IMAGES:
        out = _docker("ps", "--filter", f"ancestor={image}", "--format", "{{.Names}}")
        if out.split():
            return out.split()[0]
    return None


def _start_container() -> str:
    for image in IMAGES:
        if _docker("image", "inspect", image, check=False).strip() not in ("", "[]"):
            name = f"stem-bench-systemd-{int(time.time())}"
            _docker("run", "-d", "--name", name, *RUN_FLAGS, image, "/lib/systemd/systemd")
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                state = _docker("exec", name, "systemctl", "is-system-running", check=False).strip()
                if state in ("running", "degraded"):
                    return name
                time.sleep(0.5)
            _docker("rm", "-f", name, check=False)
            raise BenchError(f"systemd in {image} did not come up within 90 s")
    raise BenchError(
        "no systemd testbed image (" + ", ".join(IMAGES) + "); build it with scripts/testbed.sh"
    )


def measure(which: str, ns: Sequence[int], runs: int) -> dict[str, Any]:
    """Run the inner bench in a systemd container; return summarized series and notes."""
    if shutil.which("docker") is None:
        raise BenchError("docker is not installed")
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        raise BenchError("the Docker engine is not running (scripts/testbed.sh starts it)")
    started = False
    container = which if which != "auto" else _running_container()
    if container is None:
        container = _start_container()
        started = True
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
