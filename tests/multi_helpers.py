"""Helpers for the pidfile-backend and multi tests: tiny node programs and cleanup.

Nodes are real processes. :func:`reap_strays` kills every process whose
environment names a pidfile under a test's directory, so a failing test never
leaves workers behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from pathlib import Path

from stem_systemd import procs
from stem_systemd.nodes import NodeSpec

# A node program driven by its first argument:
# Each node appends "start NODE" and "term NODE" lines to <pid dir>/../events.
#   ready        send READY=1, run until TERM, exit 0
#   fail         print a line, exit 3 before READY=1
#   never        never send READY=1 (and never notify at all)
#   stubborn     send READY=1, ignore TERM
#   leave-child  fork a child that ignores TERM, send READY=1, exit 0 on TERM
#   child-ready  a forked child sends READY=1, the main process never does
NODE_PROGRAM = r"""
import os, signal, socket, sys, time
mode = sys.argv[1]
node = os.environ.get("STEM_WORKER_NODE")
print(f"node {node} mode {mode}", flush=True)
events = os.path.join(os.path.dirname(os.environ["STEM_WORKER_PIDFILE"]), "..", "events")

def event(what):
    with open(events, "a") as fh:
        fh.write(f"{what} {node}\n")

def on_term(*_):
    event("term")
    sys.exit(0)

def notify(text):
    addr = os.environ["NOTIFY_SOCKET"]
    addr = "\0" + addr[1:] if addr.startswith("@") else addr
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.sendto(text.encode(), addr)

if mode == "fail":
    print("boom: cannot reach the broker", flush=True)
    sys.exit(3)
if mode == "leave-child" and os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(60)
if mode == "child-ready":
    if os.fork() == 0:
        notify("READY=1")  # from a child: must not count, only the main PID does
        os._exit(0)
    os.wait()
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, on_term)
event("start")
if mode not in ("never", "child-ready"):
    notify("READY=1\nSTATUS=serving")
while True:
    time.sleep(60)
"""


def node_program(directory: Path) -> Path:
    """Write the node program into directory; return its path."""
    path = directory / "node.py"
    path.write_text(NODE_PROGRAM)
    return path


def spec(directory: Path, name: str, mode: str = "ready", index: int = 1) -> NodeSpec:
    """A node spec running the node program in ``mode``, files under directory."""
    return NodeSpec(
        name=name,
        index=index,
        command=(sys.executable, str(node_program(directory))),
        args=(mode,),
        pidfile=directory / "run" / f"{name}.pid",
        logfile=str(directory / "log" / f"{name}%I.log"),
    )


def _environ_mentions(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return needle in fh.read()
    except OSError:
        return False


def strays(directory: Path) -> list[int]:
    """Live processes whose environment mentions directory (our nodes and their pools)."""
    needle = os.fsencode(directory)
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            st = procs.read_stat(int(entry))
            if st is not None and not st.exited and _environ_mentions(int(entry), needle):
                found.append(int(entry))
    return found


def reap_strays(directory: Path) -> None:
    """SIGKILL whatever :func:`strays` finds."""
    for pid in strays(directory):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def events(directory: Path) -> list[str]:
    """The "start NODE" / "term NODE" lines the node program wrote, in order."""
    path = directory / "events"
    return path.read_text().splitlines() if path.exists() else []
