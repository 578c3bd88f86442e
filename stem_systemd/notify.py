"""The sd_notify protocol, both ends: :class:`Notifier` sends, :class:`NotifyListener` receives.

Protocol facts (sd_notify(3), systemd.service(5)):

- ``NOTIFY_SOCKET`` names an AF_UNIX datagram socket: a filesystem path, or an
  abstract name written with a leading ``@`` (sent as a leading NUL byte).
- A datagram is newline-separated ``KEY=VALUE`` assignments (``READY=1``,
  ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``, ``RELOADING=1`` with
  ``MONOTONIC_USEC=``, ...). systemd reads at most 4096 bytes of one datagram.
- The receiver learns the sender's pid from SCM_CREDENTIALS (unix(7)), which
  the kernel attaches when the receiving socket has SO_PASSCRED set. That pid
  is how systemd (``NotifyAccess=main``) and our own starters tell nodes apart.
- sd_watchdog_enabled(3): pings are expected every ``WATCHDOG_USEC``
  microseconds; when ``WATCHDOG_PID`` is set and is not our pid, the watchdog
  belongs to another process and we must stay silent.

The pidfile backend and the container supervisor bind one listener, hand its
:attr:`NotifyListener.address` to every node as ``NOTIFY_SOCKET``, and wait for
``READY=1`` per pid with ``select``/``poll`` on :meth:`NotifyListener.fileno`.
"""

from __future__ import annotations

import array
import contextlib
import os
import select
import socket
import stat
import struct
import time

import sdnotify

from stem_systemd.errors import PrivilegeError, StemError
from stem_systemd.logsink import DEBUG, WARNING, get_logger

# typing only for the type checker (mypy reads TYPE_CHECKING as true): the
# launcher imports this module, and typing is 0.5 MB and ~2 ms of every node.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from types import TracebackType
    from typing import Any

log = get_logger("stem.notify")

# Environment variables of the protocol; a process that forks helpers must not
# pass them on (sd_notify(3): only the service's main process notifies).
NOTIFY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")

# systemd's NOTIFY_BUFFER_MAX (src/core/manager.c) is PIPE_BUF = 4096 bytes;
# read one byte more so an oversized datagram is detected instead of cut.
MAX_DATAGRAM = 4096
_UCRED = struct.Struct("iII")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}
# Room for the credentials and for up to 32 descriptors (FDSTORE=1 senders
# attach SCM_RIGHTS); received descriptors are closed, never kept.
_ANCILLARY = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(32 * array.array("i").itemsize)
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 for the terminating NUL


def sanitize(value: str) -> str:
    """Make ``value`` one line, so a STATUS text can never add a second assignment."""
    return value.replace("\r\n", " ").replace("\n", " ").replace("\r", " ").replace("\0", " ")


def format_message(fields: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """Join assignments into one datagram text; values are sanitized, keys checked."""
    # A Mapping has .items(); collections.abc stays out of the launcher's imports.
    items = fields.items() if hasattr(fields, "items") else fields
    lines = []
    for key, value in items:
        if not key or "=" in key or sanitize(key) != key:
            raise ValueError(f"invalid sd_notify key: {key!r}")
        lines.append(f"{key}={sanitize(value)}")
    return "\n".join(lines)


def parse_message(data: bytes) -> dict[str, str]:
    """Split a datagram into its assignments; lines without ``=`` are ignored, last wins."""
    fields: dict[str, str] = {}
    for line in data.decode("utf-8", errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


def socket_address(address: str) -> str | bytes:
    """Turn a NOTIFY_SOCKET value into a socket address (``@name`` is abstract)."""
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    return address


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half of WATCHDOG_USEC), or None when not ours.

    sd_watchdog_enabled(3): disabled when WATCHDOG_USEC is unset or invalid, or
    when WATCHDOG_PID is set to a pid other than ours. Half the period is the
    man page's recommendation, so one late ping never trips the watchdog.
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = env.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2_000_000


def strip_notify_env(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``environ`` without NOTIFY_SOCKET and WATCHDOG_* (for child processes)."""
    return {k: v for k, v in environ.items() if k not in NOTIFY_ENV}


class Notifier:
    """Sends sd_notify messages through the ``sdnotify`` package.

    Without ``NOTIFY_SOCKET`` every call is a no-op. Socket errors are logged
    (the first one as a warning, repeats at debug level) and never raised: a
    worker must keep working when its supervisor's socket goes away. When the
    first connect fails, each later send tries to connect again. When a socket
    that did take messages disappears (the pidfile backend's ``start`` closes
    its listener once every node is ready), that is said once at info level
    and sending stops. A send blocks at most :attr:`SEND_TIMEOUT` seconds on a
    receiver whose queue is full, so a stuck supervisor cannot stall us.
    """

    SEND_TIMEOUT = 1.0

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address: str | None = env.get("NOTIFY_SOCKET") or None
        self._pid = os.getpid()
        self._sender: Any = None
        self._warned = False
        self._delivered = False

    @property
    def enabled(self) -> bool:
        """True when a NOTIFY_SOCKET was given (sending may still fail)."""
        return self.address is not None

    def _connect(self) -> Any:
        assert self.address is not None
        # sdnotify reads NOTIFY_SOCKET from the environment at construction and
        # connects; with debug=False it would hide every error. Build it
        # unconnected and attach our own connected socket so that an address
        # handed to us (not only os.environ's) is honoured and errors surface.
        sender = sdnotify.SystemdNotifier.__new__(sdnotify.SystemdNotifier)
        sender.debug = True
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.settimeout(self.SEND_TIMEOUT)
        try:
            sock.connect(socket_address(self.address))
        except OSError:
            sock.close()
            raise
        sender.socket = sock
        return sender

    def send(self, fields: Mapping[str, str] | Iterable[tuple[str, str]]) -> bool:
        """Send one datagram with ``fields``; True when it was handed to the socket."""
        if self.address is None:
            return False
        if os.getpid() != self._pid:
            # A forked child must not speak for its parent (sd_notify(3)).
            return False
        text = format_message(fields)
        try:
            if self._sender is None:
                self._sender = self._connect()
            # sdnotify encodes with latin-1; pass UTF-8 bytes through it unchanged.
            self._sender.notify(text.encode("utf-8").decode("latin-1"))
        except (ConnectionRefusedError, FileNotFoundError) as exc:
            self._close_sender()
            if self._delivered:
                log.info("notify socket %s is gone (%s); not notifying any more", self.address, exc)
                self.address = None
            else:
                self._report(exc)
            return False
        except (OSError, ValueError) as exc:
            self._report(exc)
            self._close_sender()
            return False
        self._warned = False
        self._delivered = True
        return True

    def _report(self, exc: Exception) -> None:
        level = DEBUG if self._warned else WARNING
        log.log(level, "sd_notify to %s failed: %s", self.address, exc)
        self._warned = True

    def _close_sender(self) -> None:
        if self._sender is not None and self._sender.socket is not None:
            self._sender.socket.close()
        self._sender = None

    def close(self) -> None:
        """Close the connection (a later send reconnects)."""
        self._close_sender()

    def forget(self) -> None:
        """In a forked child: drop the parent's socket and never send (pool processes)."""
        self._close_sender()
        self.address = None

    # Convenience wrappers for the assignments the launchers use.
    def ready(self, status: str | None = None) -> bool:
        """READY=1 (with an optional STATUS)."""
        fields = [("READY", "1")] + ([("STATUS", status)] if status is not None else [])
        return self.send(fields)

    def status(self, text: str) -> bool:
        """STATUS=<one line of text>."""
        return self.send([("STATUS", text)])

    def watchdog(self) -> bool:
        """WATCHDOG=1: the supervising loop is alive."""
        return self.send([("WATCHDOG", "1")])

    def stopping(self, status: str | None = None) -> bool:
        """STOPPING=1 (with an optional STATUS)."""
        fields = [("STOPPING", "1")] + ([("STATUS", status)] if status is not None else [])
        return self.send(fields)

    def reloading(self, status: str | None = None) -> bool:
        """RELOADING=1 with MONOTONIC_USEC (sd_notify(3), required by Type=notify-reload)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        fields = [("RELOADING", "1"), ("MONOTONIC_USEC", str(usec))]
        if status is not None:
            fields.append(("STATUS", status))
        return self.send(fields)


class NotifyMessage:
    """One datagram: the sender's pid (from SCM_CREDENTIALS) and its assignments.

    A plain class, not a dataclass: the launcher imports this module, and
    dataclasses would cost every node 0.9 MB and ~5 ms (bench/RESULTS.md).
    """

    __slots__ = ("fields", "pid", "received", "uid")

    def __init__(
        self, pid: int, fields: dict[str, str], uid: int = -1, received: float = 0.0
    ) -> None:
        self.pid = pid
        self.fields = fields
        self.uid = uid
        self.received = received  # time.monotonic(); not part of equality

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NotifyMessage):
            return NotImplemented
        return (self.pid, self.fields, self.uid) == (other.pid, other.fields, other.uid)

    __hash__ = None  # type: ignore[assignment]  # mutable fields dict, like the dataclass

    def __repr__(self) -> str:
        return f"NotifyMessage(pid={self.pid}, fields={self.fields!r}, uid={self.uid})"

    @property
    def ready(self) -> bool:
        """READY=1 is in this message."""
        return self.fields.get("READY") == "1"

    @property
    def stopping(self) -> bool:
        """STOPPING=1 is in this message."""
        return self.fields.get("STOPPING") == "1"

    @property
    def status(self) -> str | None:
        """The STATUS text, if any."""
        return self.fields.get("STATUS")


class NotifyListener:
    """A bound notify socket that records datagrams with their sender pids.

    ``NotifyListener(path)`` binds a filesystem socket (a stale socket file at
    ``path`` is replaced; anything else there is an error).
    ``NotifyListener(abstract="name")`` binds the abstract name ``@name``;
    ``NotifyListener()`` lets the kernel pick a unique abstract name
    (autobind, unix(7)). The socket is non-blocking and close-on-exec.

    :attr:`address` is the NOTIFY_SOCKET value to give children. Every
    received message also updates :attr:`states` (per pid, the latest value of
    each field), so a starter can ask "has pid P said READY=1?" without keeping
    its own table. Use as a context manager; :meth:`close` unlinks a
    filesystem socket (only in the process that bound it).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        abstract: str | None = None,
        mode: int | None = None,
    ) -> None:
        if path is not None and abstract is not None:
            raise ValueError("give either a path or an abstract name, not both")
        self._path: str | None = os.fspath(path) if path is not None else None
        self._owner = os.getpid()
        self.states: dict[int, dict[str, str]] = {}
        self._sock = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        )
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            # A burst of READY/STATUS from many nodes must not be dropped.
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            if self._path is not None:
                self._bind_path(self._path, mode)
            elif abstract is not None:
                self._sock.bind(b"\0" + abstract.encode())
            else:
                self._sock.bind(b"")  # autobind: the kernel picks a free abstract name
        except BaseException:
            self._sock.close()
            raise
        self.address = self._address()

    def _bind_path(self, path: str, mode: int | None) -> None:
        if len(os.fsencode(path)) > _SUN_PATH_MAX:
            raise StemError(
                f"notify socket path too long ({len(os.fsencode(path))} bytes): {path}",
                hint=f"use a path of at most {_SUN_PATH_MAX} bytes, or an abstract socket",
            )
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(st.st_mode):
                raise StemError(
                    f"cannot bind notify socket: {path} exists and is not a socket",
                    hint="remove it or choose another path",
                )
            os.unlink(path)  # a stale socket of an earlier run
        try:
            self._sock.bind(path)
        except PermissionError as exc:
            raise PrivilegeError(
                f"cannot bind notify socket {path}: permission denied",
                hint=f"make {os.path.dirname(path) or '.'} writable for this user",
            ) from exc
        if mode is not None:
            # Nodes running as another user need write access to send (unix(7)).
            os.chmod(path, mode)

    def _address(self) -> str:
        name = self._sock.getsockname()
        if isinstance(name, bytes):
            if name.startswith(b"\0"):
                return "@" + name[1:].decode("utf-8", errors="surrogateescape")
            return os.fsdecode(name)
        return name if isinstance(name, str) else str(name)

    def env(self) -> dict[str, str]:
        """The environment addition for a child: ``{"NOTIFY_SOCKET": address}``."""
        return {"NOTIFY_SOCKET": self.address}

    def fileno(self) -> int:
        """The socket's descriptor, readable when a datagram is waiting."""
        return self._sock.fileno()

    def _recv_one(self) -> NotifyMessage | None:
        try:
            data, ancdata, flags, _ = self._sock.recvmsg(MAX_DATAGRAM + 1, _ANCILLARY)
        except (BlockingIOError, InterruptedError):
            return None
        pid, uid = 0, -1
        for level, kind, payload in ancdata:
            if level != socket.SOL_SOCKET:
                continue
            if kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
                pid, uid, _gid = _UCRED.unpack_from(payload)
            elif kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        if len(data) > MAX_DATAGRAM or flags & socket.MSG_TRUNC:
            log.warning(
                "notify datagram from pid %d larger than %d bytes: ignored", pid, MAX_DATAGRAM
            )
            return NotifyMessage(pid=pid, fields={}, uid=uid, received=time.monotonic())
        message = NotifyMessage(
            pid=pid, fields=parse_message(data), uid=uid, received=time.monotonic()
        )
        if pid:
            self.states.setdefault(pid, {}).update(message.fields)
        return message

    def drain(self) -> list[NotifyMessage]:
        """Every datagram waiting now, in arrival order; never blocks."""
        messages = []
        while (message := self._recv_one()) is not None:
            if message.fields:
                messages.append(message)
        return messages

    def receive(self, timeout: float | None = None) -> list[NotifyMessage]:
        """Wait up to ``timeout`` seconds (None: forever) for datagrams; [] on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self._sock], [], [], remaining)
            if readable:
                messages = self.drain()
                if messages:
                    return messages
            if deadline is not None and time.monotonic() >= deadline:
                return []

    def is_ready(self, pid: int) -> bool:
        """Whether ``pid`` has sent READY=1 (and not STOPPING=1 since) so far."""
        state = self.states.get(pid, {})
        return state.get("READY") == "1" and state.get("STOPPING") != "1"

    def close(self) -> None:
        """Close the socket; unlink a filesystem socket when this process bound it."""
        if self._sock.fileno() >= 0:
            self._sock.close()
            if self._path is not None and os.getpid() == self._owner:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._path)

    def __enter__(self) -> NotifyListener:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
