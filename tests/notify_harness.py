"""Test harness: run a real launcher against a real notify socket and watch what it says.

:class:`Recorder` keeps every datagram a :class:`NotifyListener` received;
:class:`Launched` is a launcher process in its own session (so teardown can
kill its whole process group) with helpers to read its pool and its logs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from stem_systemd.notify import NOTIFY_ENV, NotifyListener, NotifyMessage
from tests.helpers import wait_until

BIN = Path(sys.executable).parent


class Recorder:
    """Every message received on a listener, in order."""

    def __init__(self, listener: NotifyListener) -> None:
        self.listener = listener
        self.messages: list[NotifyMessage] = []

    def poll(self) -> list[NotifyMessage]:
        """Drain the socket; all messages so far."""
        self.messages += self.listener.drain()
        return self.messages

    def wait_for(
        self, predicate: Callable[[NotifyMessage], bool], timeout: float = 30.0
    ) -> NotifyMessage:
        """The first message (old or new) matching ``predicate``, waiting up to ``timeout``."""

        def found() -> NotifyMessage | None:
            return next((m for m in self.poll() if predicate(m)), None)

        message = wait_until(found, timeout)
        assert message is not None
        return message

    def count(self, key: str) -> int:
        """How many messages so far carry ``key``."""
        return sum(key in m.fields for m in self.poll())


class Launched:
    """A launcher process started by a test."""

    def __init__(self, proc: subprocess.Popen[bytes], stderr: Path) -> None:
        self.proc = proc
        self.stderr = stderr

    @property
    def pid(self) -> int:
        """The main process's pid."""
        return self.proc.pid

    def pool(self) -> list[int]:
        """Pids of the main process's live children (its pool), from /proc."""
        try:
            text = Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text()
        except OSError:
            return []
        return sorted(int(p) for p in text.split() if _alive(int(p)))

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the main process."""
        self.proc.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the main process to exit; its exit code (negative: killed by a signal)."""
        return self.proc.wait(timeout=timeout)

    def stderr_text(self) -> str:
        """What the launcher wrote to stderr so far."""
        return self.stderr.read_text(errors="replace")


def _alive(pid: int) -> bool:
    """Running and not a zombie (kill(pid, 0) succeeds on zombies)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) process."""
    return _alive(pid)


def ignores(pid: int, signum: int) -> bool:
    """Whether ``pid`` has ``signum`` set to SIG_IGN (from /proc/PID/status SigIgn)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


def launcher_env(listener: NotifyListener | None, extra: Mapping[str, str]) -> dict[str, str]:
    """Our environment without any inherited notify variables, plus the listener and extra."""
    env = {k: v for k, v in os.environ.items() if k not in NOTIFY_ENV}
    env.pop("STEM_WORKER_TEST_HOOKS", None)
    if listener is not None:
        env.update(listener.env())
    env.update(extra)
    return env


@contextmanager
def launch(
    program: str,
    args: Sequence[str],
    workdir: Path,
    listener: NotifyListener | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Launched]:
    """Start ``program`` (a console script next to our interpreter); kill its group afterwards."""
    stderr = workdir / f"{program}.stderr"
    with open(stderr, "ab") as err:
        proc = subprocess.Popen(
            [str(BIN / program), *args],
            env=launcher_env(listener, env or {}),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    launched = Launched(proc, stderr)
    try:
        yield launched
    finally:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # Pool processes orphaned by a test that killed only the main process.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
