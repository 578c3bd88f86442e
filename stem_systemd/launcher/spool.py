"""The demo workload: a job spool directory that pool processes drain.

Layout of ``--jobs DIR``::

    DIR/<name>              a job waiting; its content says what to do (below)
    DIR/.<name>             ignored: write a job under a dot name, then rename
                            it into place, so no half-written job is claimed
    DIR/active/<name>@<pid> claimed by pool process <pid>
    DIR/done/<name>         finished: the job's content plus a "result:" line
    DIR/failed/<name>       content not understood: plus an "error:" line

Job content, one line:

    <seconds>               work (sleep) that long, then land in done/
    <seconds> ignore-term   the same, ignoring SIGTERM meanwhile (test knob:
                            a pool process that must be killed)
    hang-main               with STEM_WORKER_TEST_HOOKS=1, the main process's
                            supervising loop stops for good (watchdog tests);
                            without it the job fails

The claim is one ``rename(2)`` into ``active/``, atomic within a filesystem,
so two pool processes (or two workers sharing a spool) never take the same
job. A job whose pool process dies, or is stopped cold, goes back to
``DIR/<name>`` to be claimed again; so does, when a node starts, a job left
in active/ by a process that is gone (a node killed outright).
"""

from __future__ import annotations

import contextlib
import math
import os

# Paths are strings (os.path), not pathlib: every node imports this module,
# and pathlib (with re and urllib) is ~3 ms of its start-up (bench).
TYPE_CHECKING = False  # mypy reads it as true
if TYPE_CHECKING:
    from typing import TypeAlias

    StrPath: TypeAlias = "str | os.PathLike[str]"

ACTIVE, DONE, FAILED = "active", "done", "failed"
IGNORE_TERM = "ignore-term"
HANG_MAIN = "hang-main"


class Job:
    """A claimed job: its name, where it sits in active/, and what it asks for.

    A plain class (not a dataclass: see the launcher's Config for why).
    """

    __slots__ = ("error", "hang_main", "ignore_term", "name", "path", "seconds", "spool")

    def __init__(  # noqa: PLR0917 - the positional signature the dataclass had
        self,
        spool: str,
        name: str,
        path: str,
        seconds: float = 0.0,
        ignore_term: bool = False,
        hang_main: bool = False,
        error: str | None = None,
    ) -> None:
        self.spool = spool
        self.name = name
        self.path = path
        self.seconds = seconds
        self.ignore_term = ignore_term
        self.hang_main = hang_main
        self.error = error

    def __repr__(self) -> str:
        return f"Job(name={self.name!r}, path={self.path!r}, error={self.error!r})"


def prepare(spool: StrPath) -> None:
    """Create the spool and its active/, done/ and failed/ folders."""
    for sub in (ACTIVE, DONE, FAILED):
        os.makedirs(os.path.join(spool, sub), exist_ok=True)


def submit(spool: StrPath, name: str, content: str) -> str:
    """Add a job atomically (dot name, then rename), creating the spool; returns its path."""
    prepare(spool)
    tmp = os.path.join(spool, f".{name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as stream:
        stream.write(content + "\n")
    final = os.path.join(spool, name)
    os.rename(tmp, final)
    return final


def parse(text: str) -> tuple[float, bool, bool, str | None]:
    """Content -> (seconds, ignore_term, hang_main, error)."""
    words = text.split()
    if words == [HANG_MAIN]:
        return 0.0, False, True, None
    try:
        seconds = float(words[0]) if words else math.nan
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        return 0.0, False, False, f"expected '<seconds> [{IGNORE_TERM}]' or '{HANG_MAIN}'"
    flags = set(words[1:])
    if flags - {IGNORE_TERM}:
        return 0.0, False, False, f"unknown flag(s): {' '.join(sorted(flags - {IGNORE_TERM}))}"
    return seconds, IGNORE_TERM in flags, False, None


def claim(spool: StrPath, pid: int) -> Job | None:
    """Take the first waiting job (by name) for ``pid``; None when the spool is empty."""
    spool = os.fspath(spool)
    try:
        entries = sorted(
            e.name for e in os.scandir(spool) if not e.name.startswith(".") and e.is_file()
        )
    except FileNotFoundError:
        return None
    for name in entries:
        target = os.path.join(spool, ACTIVE, f"{name}@{pid}")
        try:
            os.rename(os.path.join(spool, name), target)
        except FileNotFoundError:
            continue  # another pool process was faster
        error: str | None = None
        try:
            with open(target, encoding="utf-8", errors="replace") as stream:
                text = stream.read()
        except OSError as exc:
            text, error = "", f"unreadable: {exc.strerror}"
        seconds, ignore, hang, parse_error = parse(text)
        return Job(spool, name, target, seconds, ignore, hang, error or parse_error)
    return None


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(line + "\n")


def finish(job: Job, result: str) -> str:
    """Move a worked job to done/ with its result line."""
    _append(job.path, f"result: {result}")
    final = os.path.join(job.spool, DONE, job.name)
    os.rename(job.path, final)
    return final


def reject(job: Job, reason: str) -> str:
    """Move a job to failed/ with the reason."""
    _append(job.path, f"error: {reason}")
    final = os.path.join(job.spool, FAILED, job.name)
    os.rename(job.path, final)
    return final


def requeue(job: Job) -> None:
    """Put a claimed job back, unworked (cold shutdown)."""
    os.rename(job.path, os.path.join(job.spool, job.name))


def requeue_orphans(spool: StrPath, pid: int) -> list[str]:
    """Put back every job still claimed by ``pid`` (a pool process that died); their names."""
    names = []
    suffix = f"@{pid}"
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(os.path.join(spool, ACTIVE)):
            if entry.name.endswith(suffix):
                name = entry.name[: -len(suffix)]
                with contextlib.suppress(FileNotFoundError):
                    os.rename(entry.path, os.path.join(spool, name))
                    names.append(name)
    return names


def requeue_abandoned(spool: StrPath) -> list[str]:
    """Put back every claimed job whose pool process is gone; their names.

    A node killed outright (the stop timeout's SIGKILL, an OOM kill, a
    crash of the whole machine) leaves its jobs in active/ with nobody to
    finish them; the next node to start on this spool hands them out again.
    A claim by a live PID (another node's pool, or a stranger that reused the
    PID) stays where it is: the spool is shared by the nodes of one host.
    """
    names = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(os.path.join(spool, ACTIVE)):
            name, at, pid_text = entry.name.rpartition("@")
            if not (at and name and pid_text.isdigit()) or _alive(int(pid_text)):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.rename(entry.path, os.path.join(spool, name))
                names.append(name)
    return names


def _alive(pid: int) -> bool:
    """Does PID name a process that has not exited? A zombie has: after a node's
    group was killed, its pool process waits as one until init reaps it
    (seconds on some hosts), and its job must not wait with it. proc(5).

    The twin of ``procs.read_stat(pid).exited``, kept here because every node
    imports this module and procs brings hashlib, select and dataclasses."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stream:
            raw = stream.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        return True  # cannot tell: leave the claim alone
    state = raw[raw.rfind(b")") + 2 :][:1]  # the command name may contain ')'
    return state not in (b"Z", b"X", b"x", b"")
