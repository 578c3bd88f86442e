"""The floor: one Python process spawns N Python processes that each signal
readiness on a pipe, then TERMs and reaps them.

Nothing a process manager does can beat this on the same interpreter, so the
tools are judged against it. Run as its own process (``python -m bench.floor
N``) so that the bench's reaper thread stays out of its way; it times itself,
excluding its own interpreter start-up, and prints ``{"start": s, "stop": s}``.

``python -m bench.floor N LAUNCHER...`` is a diagnostic second floor: the same
loop around real launchers (``stem-worker -c 1``), ready when each has sent
``READY=1`` to a notify socket (sd_notify(3)). What stem adds on top of that is
the cost of ``stem worker multi`` itself; what that adds on top of the plain
floor is the cost of the launcher.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

# The child: become ready (one byte on the inherited pipe), then wait for TERM.
CHILD = "import os, signal, sys; os.write(int(sys.argv[1]), b'.'); signal.pause()"


def measure(n: int) -> dict[str, float]:
    """Start n children until all have written their byte; then TERM them and reap every one."""
    r, w = os.pipe()
    t0 = time.perf_counter()
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(w)], pass_fds=(w,)) for _ in range(n)
    ]
    os.close(w)
    got = 0
    while got < n:
        chunk = os.read(r, n - got)
        if not chunk:
            raise RuntimeError(f"pipe closed after {got} of {n} ready bytes")
        got += len(chunk)
    t1 = time.perf_counter()
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        child.wait()
    t2 = time.perf_counter()
    os.close(r)
    return {"start": t1 - t0, "stop": t2 - t1}


def measure_launcher(n: int, launcher: list[str]) -> dict[str, float]:
    """Start n launchers until each sent READY=1; then TERM them and reap every one."""
    with tempfile.TemporaryDirectory(prefix="stem-floor-") as tmp:
        path = os.path.join(tmp, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        t0 = time.perf_counter()
        children = [
            subprocess.Popen(
                [*launcher, "--node", f"w{i}", "--logfile", os.path.join(tmp, f"w{i}%I.log")],
                env={**os.environ, "NOTIFY_SOCKET": path},
                stdin=subprocess.DEVNULL,
            )
            for i in range(1, n + 1)
        ]
        ready = 0
        while ready < n:
            ready += b"READY=1" in sock.recv(4096).split(b"\n")
        t1 = time.perf_counter()
        # Like stem after `start` returns: nobody listens any more, so the
        # launchers' STOPPING=1 is refused at once instead of queueing up.
        sock.close()
        os.unlink(path)
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            child.wait()
        t2 = time.perf_counter()
    return {"start": t1 - t0, "stop": t2 - t1}


if __name__ == "__main__":
    count = int(sys.argv[1])
    result = measure_launcher(count, sys.argv[2:]) if sys.argv[2:] else measure(count)
    print(json.dumps(result))
