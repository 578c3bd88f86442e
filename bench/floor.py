"""The floor: one Python process spawns N Python processes that each signal
readiness on a pipe, then TERMs and reaps them.

Nothing a process manager does can beat this on the same interpreter, so the
tools are judged against it. Run as its own process (``python -m bench.floor
N``) so that the bench's reaper thread stays out of its way; it times itself,
excluding its own interpreter start-up, and prints ``{"start": s, "stop": s}``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
