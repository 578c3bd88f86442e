"""Run the benchmark: ``bench/run.sh`` (or ``python -m bench`` with the bench venv's python).

Every tool is measured in the same rounds, interleaved (round 1 of each tool at
each N, then round 2, ...), so that the machine's drifting load falls on all
of them alike. Results go to bench/results/results.json; RESULTS.md and
plot.svg are rendered from that file (``python -m bench.report`` redoes just that).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import celery_multi, report, startup, stem_pidfile, supervisor, systemd_container
from bench.procs import BenchError, become_subreaper
from bench.stats import summarize

RESULTS = Path(__file__).resolve().parent / "results"
TOOLS = (
    "floor",
    "floor-launcher",
    "stem",
    "celery",
    "supervisord-startsecs0",
    "supervisord-startsecs1",
)

Measure = Callable[[int, Path], dict[str, float]]


def _clean_env(venv_bin: Path) -> dict[str, str]:
    """The caller's environment without anything that would steer stem or a launcher."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STEM_", "STEMD_", "CELERY_")) and k != "NOTIFY_SOCKET"
    }
    env["PATH"] = f"{venv_bin}{os.pathsep}{env.get('PATH', '')}"
    return env


def _floor(n: int, work: Path, launcher: list[str] | None = None) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.floor", str(n), *(launcher or [])],
        capture_output=True,
        check=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        timeout=300,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def _uptime() -> str:
    with open("/proc/loadavg") as f:
        return "load average " + " ".join(f.read().split()[:3])


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("celery", "kombu", "supervisor", "click", "stem-systemd"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "missing"
    return out


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (default 5)")
    ap.add_argument("--ns", default="1,4,16,64", help="node counts (default 1,4,16,64)")
    ap.add_argument("--tools", default=",".join(TOOLS), help="subset of " + ",".join(TOOLS))
    ap.add_argument(
        "--celery-runs-at-64",
        type=int,
        default=None,
        help="fewer celery runs at N=64 to fit the time budget (stated in the table)",
    )
    ap.add_argument("--startup-runs", type=int, default=15, help="runs per start-up figure")
    ap.add_argument(
        "--systemd",
        default="auto",
        help="container for the systemd part: auto (a running testbed container, else one "
        "started from the testbed image), a running container's name, or 'skip'",
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    return ap.parse_args()


Raw = dict[str, dict[int, dict[str, list[float]]]]


def _rounds(args: argparse.Namespace, measures: dict[str, Measure], errors: list[str]) -> Raw:
    """Round r of every tool at every N, then round r+1: load drift hits all tools alike."""
    ns = [int(x) for x in args.ns.split(",")]
    tools = [t for t in args.tools.split(",") if t]
    raw: Raw = {t: {} for t in tools}
    for run in range(args.runs):
        for n in ns:
            for tool in tools:
                cap = args.celery_runs_at_64
                if tool == "celery" and n == 64 and cap is not None and run >= cap:
                    continue
                t0 = time.monotonic()
                with tempfile.TemporaryDirectory(
                    prefix="stem-bench-", ignore_cleanup_errors=True
                ) as tmp:
                    try:
                        phases = measures[tool](n, Path(tmp))
                    except Exception as exc:  # one failed run must not end the bench
                        errors.append(f"{tool} N={n} run {run + 1}: {type(exc).__name__}: {exc}")
                        print(f"bench: {errors[-1]}", file=sys.stderr)
                        continue
                for phase, seconds in phases.items():
                    raw[tool].setdefault(n, {}).setdefault(phase, []).append(seconds)
                shown = " ".join(f"{k}={v:.3f}" for k, v in phases.items())
                print(
                    f"bench: run {run + 1}/{args.runs} N={n:<2} {tool:<23} {shown}"
                    f"  ({time.monotonic() - t0:.1f} s)",
                    file=sys.stderr,
                )
    return raw


def _startup(runs: int, venv_bin: Path, env: dict[str, str], errors: list[str]) -> dict[str, Any]:
    boot: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="stem-bench-") as tmp:
        for _ in range(runs):
            try:
                for name, seconds in startup.measure(venv_bin, Path(tmp), env).items():
                    boot.setdefault(name, []).append(seconds)
            except BenchError as exc:
                errors.append(f"start-up: {exc}")
                break
    return {name: summarize(v) for name, v in boot.items()}


def _systemd(which: str, ns: list[int], runs: int) -> dict[str, Any]:
    if which == "skip":
        return {"error": "skipped (--systemd skip)"}
    try:
        return systemd_container.measure(which, ns, runs)
    except BenchError as exc:
        print(f"bench: systemd part not run: {exc}", file=sys.stderr)
        return {"error": str(exc)}


def main() -> int:
    """Measure every tool, write results.json, render the table and plot, print targets."""
    args = _args()
    venv_bin = Path(sys.executable).parent
    env = _clean_env(venv_bin)
    become_subreaper()
    began = time.time()
    meta: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "load_before": _uptime(),
        "runs": args.runs,
        "celery_runs_at_64": args.celery_runs_at_64 or args.runs,
        "versions": _versions(),
    }
    memory: list[dict[str, int]] = []
    measures: dict[str, Measure] = {
        "floor": _floor,
        "floor-launcher": lambda n, w: _floor(n, w, [str(venv_bin / "stem-worker"), "-c", "1"]),
        "stem": lambda n, w: stem_pidfile.measure(venv_bin, n, w, env, memory),
        "celery": lambda n, w: celery_multi.measure(venv_bin, n, w, env),
        "supervisord-startsecs0": lambda n, w: supervisor.measure(venv_bin, n, 0, w, env),
        "supervisord-startsecs1": lambda n, w: supervisor.measure(venv_bin, n, 1, w, env),
    }
    errors: list[str] = []
    raw = _rounds(args, measures, errors)
    boot = _startup(args.startup_runs, venv_bin, env, errors)
    systemd = _systemd(args.systemd, [int(x) for x in args.ns.split(",")], args.runs)
    meta["load_after"] = _uptime()
    meta["wall_seconds"] = round(time.time() - began)
    results = {
        "meta": meta,
        "series": {
            tool: {
                str(n): {phase: summarize(v) for phase, v in phases.items()}
                for n, phases in sorted(by_n.items())
            }
            for tool, by_n in raw.items()
        },
        "startup": boot,
        "memory_kib": {
            key: summarize([m[key] for m in memory]) for key in (memory[0] if memory else {})
        },
        "systemd": systemd,
        "errors": errors + [f"systemd: {e}" for e in systemd.get("errors", [])],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.json"
    tmp_path = path.with_suffix(".json.tmp")
    tmp_path.write_text(json.dumps(results, indent=1) + "\n")
    tmp_path.replace(path)
    report.render(path)
    print(report.targets_text(report.targets(results)))
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
