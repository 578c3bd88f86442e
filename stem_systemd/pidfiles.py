"""Pidfile I/O and process identity: the only module that touches pidfiles.

File format (first line stays the bare PID, so LSB tools such as
``pidofproc`` and ``start-stop-daemon --pidfile`` read it as usual)::

    4242
    starttime=123456
    boot_id=2b4f...
    cmdline_sha256=9c1e...
    ready=1

``starttime`` (clock ticks after boot, /proc/PID/stat field 22) and the boot
id pin the process: PIDs are reused, start times within one boot are not.
The cmdline digest catches a node that was replaced by an exec.

Safety rules (DESIGN.md "Rules that hold everywhere"):
- written atomically: a temp file in the same directory, fsync, rename(2);
  mode 0644 whatever the umask;
- never through a symlink: every open uses O_NOFOLLOW relative to a directory
  fd, and a symlink at the path is an error, not something to replace;
- never blocking on a FIFO: reads use O_NONBLOCK and fstat must say S_ISREG;
- a per-node lock file ``<pidfile>.lock`` (flock(2)) serialises start and
  stop of one node across concurrent ``stem`` runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from stem_systemd import procs
from stem_systemd.errors import PrivilegeError, StemError

MAX_PIDFILE_BYTES = 4096
LOCK_POLL = 0.02  # seconds between non-blocking flock attempts while waiting


class PidfileError(StemError):
    """A pidfile path stem refuses to use (symlink, FIFO, directory, garbage)."""


@dataclass(frozen=True)
class Identity:
    """What makes a running process the one we started."""

    pid: int
    starttime: int
    boot_id: str
    cmdline_sha256: str

    @classmethod
    def of_pid(cls, pid: int) -> Identity | None:
        """The identity of the live process pid now (None when gone or a zombie)."""
        st = procs.read_stat(pid)
        digest = procs.cmdline_digest(pid)
        if st is None or st.exited or digest is None:
            return None
        return cls(pid, st.starttime, procs.boot_id(), digest)


@dataclass(frozen=True)
class Record:
    """A parsed pidfile: the PID, and the identity when stem wrote the file."""

    pid: int
    identity: Identity | None
    ready: bool
    # The file's owner (uid) when read from disk; not part of the content.
    owner: int | None = dataclasses.field(default=None, compare=False)


class Liveness(enum.Enum):
    """What a pidfile says about its node."""

    ABSENT = "absent"  # no pidfile
    RUNNING = "running"  # the process we started is alive
    STALE = "stale"  # the PID is gone, a zombie, protected, or someone else's now
    UNVERIFIABLE = "unverifiable"  # PID alive but the file carries no identity


@dataclass(frozen=True)
class Check:
    """The result of :func:`check`: liveness, the record and why."""

    liveness: Liveness
    record: Record | None
    reason: str = ""


def _open_dir(directory: Path) -> int:
    """An fd for the pidfile's directory; its last component must not be a symlink."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PidfileError(
                f"{directory}: not a directory (or a symlink)",
                hint="point --pidfile at a real directory",
            ) from exc
        if exc.errno in (errno.EACCES, errno.EPERM):
            raise PrivilegeError(
                f"{directory}: permission denied",
                hint="run as the user that owns it, or choose another --pidfile",
            ) from exc
        raise
    st = os.fstat(fd)
    # A directory anyone may write to, without the sticky bit, lets anyone
    # swap our pidfile for their own: refuse it (/tmp itself is sticky).
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        os.close(fd)
        raise PidfileError(
            f"{directory}: world-writable directory without the sticky bit",
            hint=f"chmod o-w {directory}, or choose another --pidfile directory",
        )
    return fd


def read(path: Path) -> Record | None:
    """Parse the pidfile at path; None when there is none.

    Raises PidfileError for a symlink, a FIFO or anything but a regular file,
    and for content that is not a PID.
    """
    try:
        dirfd = _open_dir(path.parent)
    except FileNotFoundError:
        return None
    try:
        try:
            fd = os.open(
                path.name,
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                dir_fd=dirfd,
            )
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PidfileError(
                    f"{path}: is a symlink; stem never reads or writes pidfiles through one",
                    hint=f"remove it (rm {path}) and check who created it",
                ) from exc
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise PrivilegeError(f"{path}: permission denied") from exc
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(path, st.st_mode, "is not a regular file")
            data = os.read(fd, MAX_PIDFILE_BYTES)
        finally:
            os.close(fd)
    finally:
        os.close(dirfd)
    return dataclasses.replace(parse(path, data.decode("utf-8", "replace")), owner=st.st_uid)


def parse(path: Path, text: str) -> Record:
    """Parse pidfile text (see the module docstring)."""
    lines = text.splitlines()
    first = lines[0].strip() if lines else ""
    if not first.isdigit() or int(first) <= 0:
        raise PidfileError(
            f"{path}: does not start with a PID",
            hint=f"remove it (rm {path}) if no node is running",
        )
    pid = int(first)
    fields = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    identity = None
    try:
        identity = Identity(
            pid, int(fields["starttime"]), fields["boot_id"], fields["cmdline_sha256"]
        )
    except (KeyError, ValueError):
        identity = None
    return Record(pid, identity, fields.get("ready") == "1")


def render(record: Record) -> str:
    """The pidfile text for a record."""
    lines = [str(record.pid)]
    if record.identity is not None:
        lines += [
            f"starttime={record.identity.starttime}",
            f"boot_id={record.identity.boot_id}",
            f"cmdline_sha256={record.identity.cmdline_sha256}",
        ]
    lines.append(f"ready={1 if record.ready else 0}")
    return "\n".join(lines) + "\n"


def _not_regular(path: Path, mode: int, what: str) -> PidfileError:
    if stat.S_ISDIR(mode):
        return PidfileError(
            f"{path}: is a directory, not a pidfile",
            hint=f"give a file template in that directory, such as --pidfile '{path}/%n.pid'",
        )
    return PidfileError(f"{path}: {what}", hint=f"remove it (rm {path}) and check who created it")


def write(path: Path, record: Record) -> None:
    """Atomically (re)place the pidfile: temp file, fsync, rename; never via a symlink."""
    dirfd = _open_dir(path.parent)
    try:
        # Refuse (rather than silently replace) a symlink or FIFO at the path:
        # someone put it there, and the operator should know.
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(path.name, dir_fd=dirfd, follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(path, st.st_mode, "exists and is not a regular file")
        tmp = f".{path.name}.{os.getpid()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(tmp, flags, 0o644, dir_fd=dirfd)
        try:
            os.fchmod(fd, 0o644)  # whatever the umask: readable, writable by us only
            os.write(fd, render(record).encode())
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp, dir_fd=dirfd)
            raise
        os.close(fd)
        os.rename(tmp, path.name, src_dir_fd=dirfd, dst_dir_fd=dirfd)
    finally:
        os.close(dirfd)


def remove(path: Path) -> None:
    """Remove the pidfile (regular files only); absent is fine."""
    try:
        dirfd = _open_dir(path.parent)
    except FileNotFoundError:
        return
    try:
        st = os.stat(path.name, dir_fd=dirfd, follow_symlinks=False)
        if stat.S_ISREG(st.st_mode):
            os.unlink(path.name, dir_fd=dirfd)
    except FileNotFoundError:
        pass
    except PermissionError as exc:
        raise PrivilegeError(
            f"cannot remove {path}: permission denied",
            hint="run as the user that owns it (or root), or remove it by hand",
        ) from exc
    finally:
        os.close(dirfd)


def record_for(pid: int, *, ready: bool) -> Record:
    """A record for the live process pid (identity read from /proc now)."""
    return Record(pid, Identity.of_pid(pid), ready)


def check(path: Path, protected: frozenset[int] | None = None) -> Check:
    """Is the node behind this pidfile running? Raises PidfileError for unusable paths."""
    record = read(path)
    if record is None:
        return Check(Liveness.ABSENT, None)
    if protected is None:
        protected = procs.protected_pids()
    if record.pid in protected:
        return Check(
            Liveness.STALE, record, f"PID {record.pid} is stem itself, an ancestor or init"
        )
    now = Identity.of_pid(record.pid)
    if now is None:
        return Check(Liveness.STALE, record, f"PID {record.pid} is not running")
    owner = procs.real_uid(record.pid)
    unverifiable = None
    if record.owner not in (None, 0, owner):
        # A pidfile speaks only for its owner's processes (or root's file for
        # anyone's): in a shared directory (/tmp/stem-<uid> squatted, a sticky
        # --pidfile dir) another user could otherwise name one of ours.
        unverifiable = (
            f"the pidfile belongs to uid {record.owner} but PID {record.pid} runs as uid {owner}"
        )
    elif record.identity is None:
        unverifiable = f"PID {record.pid} is running but the pidfile has no identity to check"
    if unverifiable is not None:
        return Check(Liveness.UNVERIFIABLE, record, unverifiable)
    if now != record.identity:
        return Check(Liveness.STALE, record, f"PID {record.pid} now belongs to another process")
    return Check(Liveness.RUNNING, record)


def lock_path(path: Path) -> Path:
    """The node's lock file, next to its pidfile."""
    return path.with_name(path.name + ".lock")


@contextlib.contextmanager
def locked(path: Path, deadline: float | None) -> Iterator[bool]:
    """Hold the node's flock while inside; yields False when the deadline passed first.

    ``deadline`` is a time.monotonic() value; None means try once without waiting.
    """
    dirfd = _open_dir(path.parent)
    try:
        name = lock_path(path).name
        try:
            fd = os.open(
                name,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                0o644,
                dir_fd=dirfd,
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PidfileError(f"{lock_path(path)}: is a symlink") from exc
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise PrivilegeError(
                    f"cannot open the node's lock file {lock_path(path)}: {exc.strerror}",
                    hint="run as the user that started the node (or root)",
                ) from exc
            raise
    finally:
        os.close(dirfd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PidfileError(f"{lock_path(path)}: not a regular file")
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
                break
            except BlockingIOError:
                if deadline is None or time.monotonic() >= deadline:
                    got = False
                    break
                time.sleep(LOCK_POLL)
        yield got
    finally:
        os.close(fd)
