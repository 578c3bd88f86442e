"""Which backend manages the nodes, and why (always told to the user).

``auto`` (DESIGN.md "Concepts"): systemd when systemd is PID 1
(``/run/systemd/system`` exists, sd_booted(3)), its manager answers on the
bus, and the ``stem-worker@.service`` template is installed; otherwise the
pidfile backend. The systemd backend (and with it pystemd) is imported only
when chosen, so ``stem --version`` and pidfile hosts never load it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stem_systemd import proc
from stem_systemd.backends.base import Backend
from stem_systemd.errors import StemError, UsageError

CHOICES = ("auto", "systemd", "pidfile")
TEMPLATE = "stem-worker@.service"

# Unit search paths (systemd.unit(5), "Unit File Load Path"), most specific first.
SYSTEM_UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)


def user_unit_dirs() -> tuple[str, ...]:
    """Unit directories of the user manager (systemd.unit(5))."""
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local/share")
    return (
        f"{config}/systemd/user",
        "/etc/systemd/user",
        f"{data}/systemd/user",
        "/usr/local/lib/systemd/user",
        "/usr/lib/systemd/user",
        "/lib/systemd/user",
    )


@dataclass(frozen=True)
class PidfileOptions:
    """What the pidfile backend is built from."""

    start_timeout: float = 30.0
    stop_timeout: float = 30.0
    ready_after: float | None = None
    workdir: Path | None = None


def systemd_unavailable(user: bool) -> str | None:
    """Why the systemd backend cannot be used here, or None when it can."""
    if not Path("/run/systemd/system").is_dir():
        return "systemd is not PID 1 (no /run/systemd/system)"
    dirs = user_unit_dirs() if user else SYSTEM_UNIT_DIRS
    if not any(Path(d, TEMPLATE).exists() for d in dirs):
        return f"{TEMPLATE} is not installed"
    argv = ["systemctl", *(["--user"] if user else []), "show", "--property=Version"]
    try:
        answer = proc.run(argv, check=False, timeout=10)
    except StemError as exc:
        return f"systemctl: {exc.message}"
    if answer.returncode != 0:
        return "the systemd manager does not answer on the bus"
    return None


def choose(requested: str, options: PidfileOptions, *, user: bool = False) -> tuple[Backend, str]:
    """The backend for ``requested`` (auto|systemd|pidfile) and one line saying why."""
    if requested not in CHOICES:
        raise UsageError(f"unknown backend {requested!r}", hint=f"use one of: {', '.join(CHOICES)}")
    if requested == "pidfile":
        return _pidfile(options), "pidfile (requested)"
    if requested == "systemd":
        return _systemd(user, options), "systemd (requested)"
    why_not = systemd_unavailable(user)
    if why_not is None:
        manager = "user manager" if user else "PID 1"
        why = f"systemd (auto: systemd is {manager} and {TEMPLATE} is installed)"
        return _systemd(user, options), why
    return _pidfile(options), f"pidfile (auto: {why_not})"


def _pidfile(options: PidfileOptions) -> Backend:
    from stem_systemd.backends.pidfile import PidfileBackend  # noqa: PLC0415 (lazy by design)

    return PidfileBackend(
        start_timeout=options.start_timeout,
        stop_timeout=options.stop_timeout,
        ready_after=options.ready_after,
        workdir=options.workdir,
    )


def _systemd(user: bool, options: PidfileOptions) -> Backend:
    from stem_systemd.backends.systemd import SystemdBackend  # noqa: PLC0415 (pystemd only when chosen)

    # restart gets the stop timeout; the start half of it needs its own.
    backend: Backend = SystemdBackend(user=user, start_timeout=options.start_timeout)
    return backend
