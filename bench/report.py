"""Render results.json: Markdown tables (RESULTS.md), a plot (plot.svg), the targets.

``python -m bench.report [results.json]`` re-renders without measuring again.
The targets are ratios between figures of the same run: the machine is noisy
and shared, so absolute times do not transfer, ratios mostly do.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any, TypedDict

LABELS = {
    "floor": "floor: Python spawns N, ready on a pipe",
    "floor-launcher": "floor with the launcher: Python spawns N stem-worker, READY=1",
    "stem": "stem worker multi (pidfile backend)",
    "celery": "celery multi",
    "supervisord-startsecs0": "supervisord, startsecs=0",
    "supervisord-startsecs1": "supervisord, startsecs=1",
    "stem-systemd": "stem worker multi (systemd backend)",
    "systemctl": "systemctl (same units)",
}
COLORS = {
    "floor": "#7f7f7f",
    "floor-launcher": "#bcbd22",
    "stem": "#d62728",
    "celery": "#2ca02c",
    "supervisord-startsecs0": "#1f77b4",
    "supervisord-startsecs1": "#17becf",
    "stem-systemd": "#ff7f0e",
    "systemctl": "#9467bd",
}
PHASES = {
    "start": "Start until every node is ready",
    "status": "Status of every node",
    "stop": "Stop until every process is gone",
}
MB = 1_000_000
NOTES = [
    "How each figure is taken (bench/*.py says more):",
    "",
    "- stem: `stem worker multi start|status|stop N -c 1`, pidfile backend, bundled launcher;"
    " start returns when every node sent READY=1; stop is timed until every process of every"
    " node (main and pool) has exited.",
    "- celery multi: filesystem transport, `-c 1`, mingle/gossip/heartbeat off; start until"
    " every worker logged `ready.`, `stopwait` until every process is gone. celery multi has"
    " no status verb.",
    "- supervisord: `numprocs=N` of the same launcher, unix socket; `supervisorctl start all`"
    " (returns when all are RUNNING, i.e. alive `startsecs` seconds), `status`, `stop all`.",
    "- floor: one Python process spawns N `python -c` children that write a byte to a pipe"
    " when up, then TERMs and reaps them. The floor with the launcher does the same with"
    " `stem-worker -c 1` and READY=1 on a notify socket.",
    "- The bench is a child subreaper and reaps orphans at once (PID 1 on this machine reaps"
    " every 1.4-2 s); the package is installed non-editable in the bench venv.",
]


class Target(TypedDict):
    """One speed target: what was compared, the verdict (None: not measured)."""

    name: str
    passed: bool | None
    detail: str


def _med(stat: Any) -> float:
    return float(stat["median"])


def _cell(stat: Any) -> str:
    if not stat:
        return "-"
    return f"{stat['median']:.3f} ({stat['min']:.3f}-{stat['max']:.3f})"


def _all_series(results: Any) -> dict[str, Any]:
    series: dict[str, Any] = dict(results["series"])
    series.update((results.get("systemd") or {}).get("series") or {})
    return series


def _phase_table(results: Any, series: dict[str, Any], phase: str) -> list[str]:
    ns = sorted({int(n) for by_n in series.values() for n in by_n}, key=int)
    rows = []
    for tool, by_n in series.items():
        cells = [_cell(by_n.get(str(n), {}).get(phase)) for n in ns]
        if any(c != "-" for c in cells):
            rows.append(f"| {LABELS.get(tool, tool)} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    head = "| tool | " + " | ".join(f"N={n}" for n in ns) + " |"
    sep = "|---|" + "---:|" * len(ns)
    return [f"### {PHASES[phase]} (seconds)", "", head, sep, *rows, ""]


def targets(results: Any) -> list[Target]:
    """Each target of issue 6, judged on medians from this one run."""
    s = results["series"]
    boot = results.get("startup", {})
    out: list[Target] = []

    def fig(tool: str, n: int, phase: str) -> float | None:
        try:
            return _med(s[tool][str(n)][phase])
        except KeyError:
            return None

    def add(name: str, ok: bool | None, detail: str) -> None:
        out.append(Target(name=name, passed=ok, detail=detail))

    stem64, floor64 = fig("stem", 64, "start"), fig("floor", 64, "start")
    cli = boot.get("stem --version")
    if stem64 is not None and floor64 is not None and cli:
        limit = 1.5 * (floor64 + _med(cli))
        add(
            "start N=64 within 1.5x of floor + one CLI start-up",
            stem64 <= limit,
            f"stem {stem64:.3f} s vs 1.5 x ({floor64:.3f} + {_med(cli):.3f}) = {limit:.3f} s "
            f"(ratio {stem64 / (floor64 + _med(cli)):.2f})"
            + (
                f"; vs the floor with the launcher: {stem64 / launch64:.2f}x of {launch64:.3f} s"
                if (launch64 := fig("floor-launcher", 64, "start"))
                else ""
            ),
        )
    else:
        add("start N=64 within 1.5x of floor + one CLI start-up", None, "not measured")

    stem16, celery16 = fig("stem", 16, "start"), fig("celery", 16, "start")
    if stem16 and celery16:
        add(
            "start N=16 at least 8x faster than celery multi",
            celery16 / stem16 >= 8,
            f"celery {celery16:.3f} s / stem {stem16:.3f} s = {celery16 / stem16:.1f}x",
        )
    else:
        add("start N=16 at least 8x faster than celery multi", None, "not measured")

    pairs = []
    for n in sorted(int(k) for k in s.get("stem", {})):
        a, b = fig("stem", n, "start"), fig("supervisord-startsecs1", n, "start")
        if a is not None and b is not None:
            pairs.append((n, a, b))
    add(
        "start faster than supervisord startsecs=1 at every N",
        all(a < b for _, a, b in pairs) if pairs else None,
        ", ".join(f"N={n}: {a:.3f} vs {b:.3f} s" for n, a, b in pairs) or "not measured",
    )

    stop64 = fig("stem", 64, "stop")
    add(
        "stop until gone at N=64 within 0.4 s",
        None if stop64 is None else stop64 <= 0.4,
        "not measured" if stop64 is None else f"{stop64:.3f} s",
    )

    ver, click = boot.get("stem --version"), boot.get("python -c 'import click'")
    if ver and click:
        add(
            "stem --version within 1.3x of python -c 'import click'",
            _med(ver) <= 1.3 * _med(click),
            f"{_med(ver):.3f} s vs {_med(click):.3f} s (ratio {_med(ver) / _med(click):.2f})",
        )
    else:
        add("stem --version within 1.3x of python -c 'import click'", None, "not measured")

    mem = results.get("memory_kib", {})
    if mem.get("main_rss"):
        worst = max(mem["main_rss"]["max"], mem["pool_rss"]["max"]) * 1024 / MB
        add(
            "launcher RSS at most 15 MB (VmRSS of each process; MB = 10^6 bytes)",
            worst <= 15,
            f"main {_mb(mem['main_rss']['median'])} MB, pool process "
            f"{_mb(mem['pool_rss']['median'])} MB (medians), largest {worst:.1f} MB; "
            f"node Pss (main + pool, shared pages split) {_mb(mem['node_pss']['median'])} MB"
            + (
                f"; under systemd in the container (Debian python3): main "
                f"{_mb(inside['main_rss']['median'])} MB"
                if (inside := (results.get("systemd") or {}).get("memory_kib"))
                else ""
            ),
        )
    else:
        add("launcher RSS at most 15 MB (VmRSS of each process)", None, "not measured")

    sysd = (results.get("systemd") or {}).get("series") or {}
    try:
        a, b = _med(sysd["stem-systemd"]["64"]["start"]), _med(sysd["systemctl"]["64"]["start"])
        add(
            "systemd backend start N=64 within 1.2x of systemctl start",
            a <= 1.2 * b,
            f"stem {a:.3f} s vs systemctl {b:.3f} s (ratio {a / b:.2f})",
        )
    except KeyError:
        why = (results.get("systemd") or {}).get("error", "not measured")
        add("systemd backend start N=64 within 1.2x of systemctl start", None, str(why))
    return out


def targets_text(ts: list[Target]) -> str:
    """One line per target: PASS, MISS or n/a, then the figures behind it."""
    word = {True: "PASS", False: "MISS", None: "n/a "}
    return "\n".join(f"{word[t['passed']]}  {t['name']}: {t['detail']}" for t in ts)


def markdown(results: Any) -> str:
    """RESULTS.md: conditions, the three phase tables, start-up, memory, targets."""
    meta = results["meta"]
    series = _all_series(results)
    lines = [
        "# Benchmark results",
        "",
        "Generated by `bench/run.sh` (see the README's Benchmarks section); do not edit.",
        "Each cell: median (min-max) of "
        f"{meta['runs']} runs, in seconds."
        + (
            f" celery multi at N=64: {meta['celery_runs_at_64']} runs."
            if meta.get("celery_runs_at_64", meta["runs"]) != meta["runs"]
            else ""
        ),
        "",
        f"- date: {meta['date']}; machine: {meta['machine']}; wall time {meta['wall_seconds']} s",
        f"- load: {meta['load_before']} before, {meta['load_after']} after "
        "(the machine is shared with other work; compare ratios, not absolute times)",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()),
    ]
    sysd = results.get("systemd") or {}
    if sysd.get("note"):
        lines.append(f"- systemd part: {sysd['note']}")
    elif sysd.get("error"):
        lines.append(f"- systemd part: not run ({sysd['error']})")
    lines += ["", "![time vs N per tool](plot.svg)", "", *NOTES, ""]
    for phase in PHASES:
        lines += _phase_table(results, series, phase)
    if results.get("startup"):
        lines += ["### CLI start-up (seconds)", "", "| command | median (min-max) |", "|---|---:|"]
        lines += [f"| `{k}` | {_cell(v)} |" for k, v in results["startup"].items()]
        lines.append("")
    lines += _memory_table(results)
    word = {True: "PASS", False: "MISS", None: "n/a"}
    lines += ["### Targets", "", "| target | verdict | figures |", "|---|---|---|"]
    lines += [f"| {t['name']} | {word[t['passed']]} | {t['detail']} |" for t in targets(results)]
    if results.get("errors"):
        lines += ["", "### Failed measurements", ""] + [f"- {e}" for e in results["errors"]]
    return "\n".join(lines) + "\n"


def _mb(kib: float) -> str:
    return f"{kib * 1024 / MB:.1f}"


def _memory_table(results: Any) -> list[str]:
    """Launcher memory per node: on the host (bench venv) and under systemd (image python3)."""
    cols = [("host, bench venv", results.get("memory_kib") or {})]
    inside = (results.get("systemd") or {}).get("memory_kib") or {}
    if inside:
        cols.append(("systemd container, Debian python3", inside))
    if not cols[0][1] and not inside:
        return []
    names = {
        "main_rss": "main process VmRSS",
        "pool_rss": "pool process VmRSS",
        "node_rss": "node VmRSS, main + pool",
        "node_pss": "node Pss, main + pool (shared pages split)",
    }
    lines = ["### Launcher memory per node, concurrency 1 (MB = 10^6 bytes)", ""]
    lines.append("| figure | " + " | ".join(f"{c}: median (min-max)" for c, _ in cols) + " |")
    lines.append("|---|" + "---:|" * len(cols))
    for key, name in names.items():
        cells = [
            f"{_mb(m[key]['median'])} ({_mb(m[key]['min'])}-{_mb(m[key]['max'])})"
            if key in m
            else "-"
            for _, m in cols
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def svg(results: Any) -> str:
    """Two log-log panels (start, stop): median seconds vs N, one line per tool."""
    series = _all_series(results)
    panels = [
        p for p in ("start", "stop") if any(p in v for b in series.values() for v in b.values())
    ]
    w, h, pad_l, pad_r, pad_t, pad_b = 360, 300, 52, 12, 28, 40
    legend_h = 18 * len(series) + 10
    values = [_med(st[p]) for b in series.values() for st in b.values() for p in panels if p in st]
    if not values:
        return '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    ns = sorted({int(n) for b in series.values() for n in b})
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * len(panels)}" '
        f'height="{h + legend_h}" font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
    ]

    def x(n: int, i: int) -> float:
        span = (w - pad_l - pad_r) * (math.log(n) / math.log(ns[-1]) if ns[-1] > 1 else 0.5)
        return i * w + pad_l + span

    def y(v: float) -> float:
        frac = (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return pad_t + (h - pad_t - pad_b) * (1 - frac)

    for i, phase in enumerate(panels):
        x0, x1 = i * w + pad_l, (i + 1) * w - pad_r
        out.append(
            f'<text x="{i * w + w / 2}" y="16" text-anchor="middle" font-weight="bold">'
            f"{PHASES[phase]}</text>"
        )
        decade = lo
        while decade <= hi * 1.001:
            yy = y(decade)
            out.append(f'<line x1="{x0}" x2="{x1}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{x0 - 4}" y="{yy + 4:.1f}" text-anchor="end">{decade:g} s</text>')
            decade *= 10
        for n in ns:
            out.append(
                f'<text x="{x(n, i):.1f}" y="{h - pad_b + 16}" text-anchor="middle">{n}</text>'
            )
        out.append(f'<text x="{i * w + w / 2}" y="{h - 8}" text-anchor="middle">nodes (N)</text>')
        for tool, by_n in series.items():
            pts = [
                (x(int(n), i), y(_med(st[phase])))
                for n, st in sorted(by_n.items(), key=lambda kv: int(kv[0]))
                if phase in st
            ]
            if not pts:
                continue
            color = COLORS.get(tool, "black")
            path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            out += [f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{color}"/>' for a, b in pts]
    for j, tool in enumerate(series):
        yy = h + 10 + 18 * j
        color = COLORS.get(tool, "black")
        out.append(
            f'<line x1="{pad_l}" x2="{pad_l + 24}" y1="{yy}" y2="{yy}" '
            f'stroke="{color}" stroke-width="3"/>'
        )
        out.append(f'<text x="{pad_l + 30}" y="{yy + 4}">{LABELS.get(tool, tool)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render(path: Path) -> None:
    """Write RESULTS.md and plot.svg beside results.json."""
    results = json.loads(path.read_text())
    (path.parent / "RESULTS.md").write_text(markdown(results))
    (path.parent / "plot.svg").write_text(svg(results))


def summary(results: Any) -> str:
    """The README's excerpt: N=16 and N=64 medians per tool, then the targets."""
    series = _all_series(results)
    meta = results["meta"]
    lines = [
        f"Run of {meta['date']}, {meta['runs']} runs per figure, {meta['load_before']} before"
        f" and {meta['load_after'].removeprefix('load average ')} after (medians; the full"
        " tables are in RESULTS.md):",
        "",
        "| tool | start N=16 | start N=64 | stop N=16 | stop N=64 |",
        "|---|---:|---:|---:|---:|",
    ]
    for tool, by_n in series.items():
        cells = []
        for phase in ("start", "stop"):
            for n in ("16", "64"):
                st = by_n.get(n, {}).get(phase)
                cells.append(f"{_med(st):.2f} s" if st else "-")
        lines.append(f"| {LABELS.get(tool, tool)} | " + " | ".join(cells) + " |")
    word = {True: "PASS", False: "MISS", None: "n/a"}
    lines += ["", "| target | verdict | figures |", "|---|---|---|"]
    lines += [f"| {t['name']} | {word[t['passed']]} | {t['detail']} |" for t in targets(results)]
    return "\n".join(lines) + "\n"


README = Path(__file__).parent.parent / "README.md"
BEGIN, END = "<!-- bench-summary:begin -->\n", "<!-- bench-summary:end -->"


def update_readme(results: Any, readme: Path = README) -> None:
    """Replace the README's text between the bench-summary markers with summary()."""
    text = readme.read_text()
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not (sep and sep2):
        raise SystemExit(f"{readme}: no {BEGIN.strip()} ... {END} block to update")
    readme.write_text(head + BEGIN + summary(results) + END + tail)


if __name__ == "__main__":
    flags = {"--summary", "--readme"}
    args = [a for a in sys.argv[1:] if a not in flags]
    target = Path(args[0]) if args else Path(__file__).parent / "results/results.json"
    if "--summary" in sys.argv[1:]:
        print(summary(json.loads(target.read_text())), end="")
    elif "--readme" in sys.argv[1:]:
        update_readme(json.loads(target.read_text()))
    else:
        render(target)
        print(targets_text(targets(json.loads(target.read_text()))))
