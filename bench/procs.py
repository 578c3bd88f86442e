"""Process plumbing for the bench: a subreaper, timed commands, process trees from /proc.

Why a subreaper: every tool under test leaves its worker processes orphaned
(``celery multi start`` and ``stem worker multi start`` return while the nodes
run on). On this machine PID 1 reaps orphans only every 1.4 to 2 s, so an
exited worker stays a zombie and ``kill(pid, 0)`` keeps succeeding; tools that
poll that way (celery's ``stopwait``) would be timed against the machine's
init, not against themselves. With PR_SET_CHILD_SUBREAPER (prctl(2)) the
orphans are re-parented to this process instead, and a thread reaps them at
once, as a real init does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h

_lock = threading.Lock()
_owned: set[int] = set()  # PIDs a Popen object of ours will reap itself


class BenchError(Exception):
    """One measurement failed: a command exited badly or a deadline passed."""


def become_subreaper() -> None:
    """Adopt orphaned descendants and reap them promptly from a daemon thread."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    threading.Thread(target=_reap_forever, name="reaper", daemon=True).start()


def _reap_forever() -> None:
    while True:
        try:
            # WNOWAIT: look without reaping, so a Popen of ours still gets its status.
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            time.sleep(0.01)
            continue
        if info is None:
            continue
        with _lock:
            mine = info.si_pid in _owned
        if mine:
            time.sleep(0.002)  # its Popen.wait() reaps it
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(info.si_pid, 0)


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdout: int | None = subprocess.DEVNULL,
    stderr: int | None = subprocess.PIPE,
) -> subprocess.Popen[bytes]:
    """Start argv (no shell) as a child this process reaps itself."""
    with _lock:
        proc = subprocess.Popen(
            list(argv),
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
        )
        _owned.add(proc.pid)
    return proc


def release(proc: subprocess.Popen[bytes]) -> None:
    """Forget a reaped child (its PID may be reused)."""
    with _lock:
        _owned.discard(proc.pid)


@dataclass(frozen=True)
class Ran:
    """A finished command: wall time, exit code, output."""

    seconds: float
    returncode: int
    stdout: str
    stderr: str


def timed(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180.0,
    ok: Iterable[int] = (0,),
) -> Ran:
    """Run argv to completion and time it; an exit code outside ``ok`` raises BenchError.

    The bench runs tools for their timings, not through stem_systemd.proc.run:
    that helper is stem's own, and its logging would sit inside the measurement.
    """
    t0 = time.perf_counter()
    proc = spawn(argv, env=env, cwd=cwd, stdout=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.communicate()
        raise BenchError(f"{argv[0]} {' '.join(argv[1:4])}...: no exit within {timeout} s") from exc
    finally:
        release(proc)
    seconds = time.perf_counter() - t0
    ran = Ran(seconds, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
    if proc.returncode not in set(ok):
        tail = (ran.stderr.strip() or ran.stdout.strip()).splitlines()[-3:]
        raise BenchError(
            f"{' '.join(argv[:4])}...: exit status {proc.returncode}: " + " | ".join(tail)
        )
    return ran


# -- /proc ------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """A process identity that survives PID reuse: PID plus start time (proc(5))."""

    pid: int
    start: int


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, starttime) from /proc/PID/stat, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> set[Proc]:
    """Every live (non-zombie) process below root, at any depth."""
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = _stat(int(entry))
        if st is None or st[0] == "Z":
            continue
        children.setdefault(st[1], []).append((int(entry), st[2]))
    found: set[Proc] = set()
    todo = [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            found.add(Proc(pid, start))
            todo.append(pid)
    return found


def exited(proc: Proc) -> bool:
    """True once the process is gone or a zombie (it no longer runs)."""
    st = _stat(proc.pid)
    return st is None or st[0] == "Z" or st[2] != proc.start


def wait_gone(procs: Iterable[Proc], timeout: float) -> None:
    """Poll until every process has exited; BenchError after ``timeout`` seconds."""
    left = set(procs)
    deadline = time.monotonic() + timeout
    while True:
        left = {p for p in left if not exited(p)}
        if not left:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{len(left)} process(es) still running after {timeout} s")
        time.sleep(0.01)


def wait_for(what: str, check: Callable[[], object], timeout: float) -> None:
    """Poll ``check()`` until truthy; BenchError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not reached within {timeout} s")
        time.sleep(0.01)


def kill_all(procs: Iterable[Proc]) -> None:
    """SIGKILL whatever of ``procs`` still runs and wait (briefly) until it is gone.

    Cleanup after a failed measurement: nothing may outlive it, nor keep
    writing into the run's directory while that is being removed.
    """
    left = [p for p in procs if not exited(p)]
    for p in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
    with contextlib.suppress(BenchError):
        wait_gone(left, timeout=10)


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS (proc(5) status) and Pss (smaps_rollup) of one process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            out["rss"] = int(line.split()[1])
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            out["pss"] = int(line.split()[1])
    return out
