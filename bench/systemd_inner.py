"""The systemd half of the bench, run *inside* the testbed's systemd container.

Standard library only: it runs under the container's own python3, fed on
stdin by ``docker exec -i CONTAINER python3 - ARGS_JSON`` (see
systemd_container.py), and times commands there so that docker's own overhead
stays out of the figures. Prints one JSON object on stdout.

For each N it compares, on the very same units ``stem-worker@w1..wN.service``:
``stem worker multi start|status|stop --backend systemd N -c 1`` against
``systemctl start|status|stop`` of those units. Both start commands return
once every unit is active, which for Type=notify means after READY=1
(systemd.service(5)); both stops return once every unit is inactive, i.e. its
cgroup is empty. One untimed warm-up round per N comes first: stem's first
start writes each node's arguments drop-in and reloads the manager, and that
one-time cost is not what is compared. It also reads the launcher's memory per
node (main + pool) as systemd runs it, with the image's own python3.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time


def run(argv: list[str], ok: tuple[int, ...] = (0,)) -> float:
    """Run argv, return its wall time; exit an unexpected exit code loudly."""
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    seconds = time.perf_counter() - t0
    if proc.returncode not in ok:
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise RuntimeError(f"{' '.join(argv[:5])}...: exit {proc.returncode}: {' | '.join(tail)}")
    return seconds


def states(units: list[str]) -> list[str]:
    """ActiveState of each unit, via systemctl is-active (one line per unit)."""
    out = subprocess.run(
        ["systemctl", "is-active", *units], capture_output=True, text=True, check=False
    ).stdout
    return out.split()


def expect(units: list[str], want: str) -> None:
    got = states(units)
    if got != [want] * len(units):
        bad = sorted({s for s in got if s != want})
        raise RuntimeError(f"expected every unit {want}, saw {bad}")


def kib(pid: int, field: str, name: str) -> int:
    """One ``Name: N kB`` line of /proc/PID/status or smaps_rollup, in KiB."""
    with open(f"/proc/{pid}/{name}") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def memory(units: list[str]) -> list[dict[str, int]]:
    """Per unit: VmRSS of the main process and of its pool, Pss of both (KiB)."""
    out = []
    for unit in units:
        main = int(
            subprocess.run(
                ["systemctl", "show", "-p", "MainPID", "--value", unit],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
            or 0
        )
        if not main:
            continue
        with open(f"/proc/{main}/task/{main}/children") as f:
            pool = [int(p) for p in f.read().split()]
        out.append(
            {
                "main_rss": kib(main, "VmRSS", "status"),
                "pool_rss": max((kib(p, "VmRSS", "status") for p in pool), default=0),
                "node_pss": kib(main, "Pss", "smaps_rollup")
                + sum(kib(p, "Pss", "smaps_rollup") for p in pool),
            }
        )
    return out


def main() -> None:
    """Measure both tools for each N and runs; print {"series": ..., "errors": ...}."""
    cfg = json.loads(sys.argv[1])
    stem = shutil.which("stem") or cfg.get("stem", "stem")
    multi = [stem, "worker", "multi"]
    opts = ["--backend", "systemd"]
    series: dict[str, dict[str, dict[str, list[float]]]] = {"stem-systemd": {}, "systemctl": {}}
    errors: list[str] = []
    mem: list[dict[str, int]] = []
    for n in cfg["ns"]:
        units = [f"stem-worker@w{i}.service" for i in range(1, n + 1)]
        nodes = [str(n), "-c", "1"]
        try:  # warm-up, untimed: writes the drop-ins (and reloads) once
            run([*multi, "start", *opts, *nodes])
            run([*multi, "stop", *opts, *nodes])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            errors.append(f"warm-up N={n}: {exc}")
            continue
        for r in range(cfg["runs"]):
            for tool in ("stem-systemd", "systemctl"):
                try:
                    if tool == "stem-systemd":
                        start = run([*multi, "start", *opts, *nodes])
                        expect(units, "active")
                        if n <= 16:
                            mem += memory(units)
                        status = run([*multi, "status", *opts, *nodes])
                        stop = run([*multi, "stop", *opts, *nodes])
                    else:
                        start = run(["systemctl", "start", *units])
                        expect(units, "active")
                        status = run(["systemctl", "status", "--no-pager", "--lines=0", *units])
                        stop = run(["systemctl", "stop", *units])
                    expect(units, "inactive")
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    errors.append(f"{tool} N={n} run {r + 1}: {exc}")
                    subprocess.run(["systemctl", "stop", *units], capture_output=True, check=False)
                    continue
                phases = series[tool].setdefault(str(n), {})
                for phase, seconds in (("start", start), ("status", status), ("stop", stop)):
                    phases.setdefault(phase, []).append(seconds)
                print(f"systemd: N={n} run {r + 1} {tool}: start={start:.3f}", file=sys.stderr)
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    print(json.dumps({"series": series, "errors": errors, "load": load, "memory_kib": mem}))


if __name__ == "__main__":
    main()
