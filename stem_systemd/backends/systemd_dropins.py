"""The runtime drop-in that carries a node's own worker arguments to its unit.

``stem worker multi start NODE ARGS...`` writes
``<runtime unit dir>/stem-worker@<node>.service.d/50-stem-args.conf`` setting
STEM_WORKER_ARGS, which ``stem worker exec`` (the template's ExecStart)
appends to the launcher's argv. A runtime drop-in (under /run) survives every
restart, by stem or by ``systemctl restart``, and is gone at reboot
(systemd.unit(5) "Unit File Load Path"). Any change needs a daemon reload.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from stem_systemd.backends.systemd_units import ARGS_VARIABLE
from stem_systemd.errors import PrivilegeError, StemError
from stem_systemd.nodes import NodeSpec

DROPIN_NAME = "50-stem-args.conf"


def dropin_path(unit_dir: Path, unit: str) -> Path:
    """Where a node's args drop-in lives: ``<unit_dir>/<unit>.d/50-stem-args.conf``."""
    return unit_dir / f"{unit}.d" / DROPIN_NAME


def _quote_unit_value(value: str) -> str:
    """Quote ``value`` for a double-quoted word in a unit file.

    systemd first expands specifiers in the whole line (``%`` must be ``%%``,
    systemd.unit(5) "Specifiers"), then splits words with C-style unescaping
    inside double quotes (systemd.exec(5) "Environment="). So backslash, double
    quote and control characters are escaped, everything else stays literal.
    """
    out: list[str] = []
    for ch in value:
        if ch == "%":
            out.append("%%")
        elif ch in '\\"':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def render_args_dropin(args: tuple[str, ...]) -> str:
    """The drop-in that hands ``args`` to ``stem worker exec`` through ARGS_VARIABLE."""
    value = f"{ARGS_VARIABLE}={shlex.join(args)}"
    return (
        "# Written by `stem worker multi start/restart`: this node's own worker arguments.\n"
        "# Runtime only (gone at reboot); a later start without arguments removes it.\n"
        "[Service]\n"
        f"Environment={_quote_unit_value(value)}\n"
    )


def write_args(
    runtime_dir: Path, nodes: Sequence[NodeSpec], units: Sequence[str], *, clear: bool
) -> set[str]:
    """Make each node's drop-in say its args; the units whose drop-in changed.

    With ``clear`` a node without args loses an old drop-in (``start``);
    without it the old one stays, so args survive a plain ``restart``.
    """
    changed = set()
    for node, unit in zip(nodes, units, strict=True):
        path = dropin_path(runtime_dir, unit)
        if node.args:
            if _replace_file(path, render_args_dropin(node.args)):
                changed.add(unit)
        elif clear and _remove_file(path):
            changed.add(unit)
    return changed


def _replace_file(path: Path, text: str) -> bool:
    """Write ``text`` atomically unless the file already says it; True when it changed."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise _file_error(path, exc) from exc
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        tmp.chmod(0o644)
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _file_error(path, exc) from exc
    return True


def _remove_file(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise _file_error(path, exc) from exc
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # only when empty: other drop-ins stay
    return True


def _file_error(path: Path, exc: OSError) -> StemError:
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PrivilegeError(
            f"cannot write the node's drop-in {path}: {exc.strerror}",
            hint="per-node worker arguments need root (sudo) on the system manager",
        )
    return StemError(f"cannot write the node's drop-in {path}: {exc.strerror}")


def default_runtime_dir(user: bool) -> Path:
    """Runtime unit directory (systemd.unit(5) "Unit File Load Path"): gone at reboot."""
    if not user:
        return Path("/run/systemd/system")
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    return Path(runtime) / "systemd" / "user"
