"""The sd_notify layer: sending through sdnotify, receiving with sender pids."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from stem_systemd.errors import StemError
from stem_systemd.notify import (
    Notifier,
    NotifyListener,
    format_message,
    parse_message,
    strip_notify_env,
    watchdog_interval,
)


def test_ready_and_status_arrive_with_our_pid(notify_listener: NotifyListener) -> None:
    """A Notifier given the listener's address delivers READY and STATUS tagged with our pid."""
    notifier = Notifier({"NOTIFY_SOCKET": notify_listener.address})
    assert notifier.ready("up and running")
    [message] = notify_listener.receive(timeout=10)
    assert message.pid == os.getpid()
    assert message.ready
    assert message.status == "up and running"
    assert notify_listener.is_ready(os.getpid())
    notifier.close()


def test_status_newlines_cannot_add_an_assignment(notify_listener: NotifyListener) -> None:
    """A STATUS value containing newlines arrives as one line, with no smuggled READY=1."""
    notifier = Notifier({"NOTIFY_SOCKET": notify_listener.address})
    notifier.status("busy\nREADY=1\r\nMAINPID=1")
    [message] = notify_listener.receive(timeout=10)
    assert set(message.fields) == {"STATUS"}
    assert "\n" not in message.fields["STATUS"]
    notifier.close()


def test_utf8_status_round_trips(notify_listener: NotifyListener) -> None:
    """Non-latin-1 text survives the sdnotify package's latin-1 encoding."""
    notifier = Notifier({"NOTIFY_SOCKET": notify_listener.address})
    notifier.status("node 4€: 1 done ✓")
    [message] = notify_listener.receive(timeout=10)
    assert message.status == "node 4€: 1 done ✓"
    notifier.close()


def test_reloading_carries_monotonic_usec(notify_listener: NotifyListener) -> None:
    """RELOADING=1 is sent together with MONOTONIC_USEC, as sd_notify(3) requires."""
    notifier = Notifier({"NOTIFY_SOCKET": notify_listener.address})
    notifier.reloading()
    [message] = notify_listener.receive(timeout=10)
    assert message.fields["RELOADING"] == "1"
    assert int(message.fields["MONOTONIC_USEC"]) > 0
    notifier.close()


def test_no_notify_socket_is_a_silent_no_op() -> None:
    """Without NOTIFY_SOCKET nothing is sent and nothing fails."""
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready("x")
    assert not notifier.watchdog()


def test_missing_socket_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A NOTIFY_SOCKET nobody listens on makes send() return False and log a warning."""
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not notifier.ready()
    assert not notifier.status("still fine")
    assert "sd_notify" in caplog.text


def test_sender_pid_is_the_child_process(notify_listener: NotifyListener) -> None:
    """Datagrams from a separate process carry that process's pid, not ours."""
    code = "from stem_systemd.notify import Notifier; Notifier().ready('child')"
    env = {**os.environ, "NOTIFY_SOCKET": notify_listener.address}
    proc = subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert proc.returncode == 0
    [message] = notify_listener.receive(timeout=10)
    assert message.pid != os.getpid()
    assert message.ready


def test_many_senders_are_told_apart(notify_listener: NotifyListener) -> None:
    """Several children readying at once are each recorded under their own pid."""
    code = "import os; from stem_systemd.notify import Notifier; Notifier().ready(str(os.getpid()))"
    env = {**os.environ, "NOTIFY_SOCKET": notify_listener.address}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env) for _ in range(3)]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    messages = notify_listener.drain()
    assert {m.pid for m in messages} == {p.pid for p in procs}
    assert all(m.status == str(m.pid) for m in messages)
    assert all(notify_listener.is_ready(p.pid) for p in procs)


def test_drain_never_blocks(notify_listener: NotifyListener) -> None:
    """drain() on an empty socket returns an empty list at once; receive() times out empty."""
    assert notify_listener.drain() == []
    assert notify_listener.receive(timeout=0.05) == []


def test_filesystem_socket_is_unlinked_on_close(tmp_path: Path) -> None:
    """Closing a filesystem listener removes its socket file; a stale one is replaced."""
    path = tmp_path / "n.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(path))
    stale.close()
    with NotifyListener(path) as listener:
        assert listener.address == str(path)
        assert path.exists()
    assert not path.exists()


def test_refuses_to_replace_a_regular_file(tmp_path: Path) -> None:
    """A non-socket file at the path is an error that leaves the file alone."""
    path = tmp_path / "n.sock"
    path.write_text("keep me")
    with pytest.raises(StemError, match="not a socket"):
        NotifyListener(path)
    assert path.read_text() == "keep me"


def test_named_abstract_socket(tmp_path: Path) -> None:
    """An explicit abstract name is reported as @name and receives datagrams."""
    name = f"stem-test-{os.getpid()}-{tmp_path.name}"
    with NotifyListener(abstract=name) as listener:
        assert listener.address == "@" + name
        Notifier({"NOTIFY_SOCKET": listener.address}).stopping()
        [message] = listener.receive(timeout=10)
        assert message.stopping


def test_watchdog_interval_rules() -> None:
    """Half of WATCHDOG_USEC, and None when unset, invalid, or owned by another pid."""
    me = str(os.getpid())
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "junk"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "2000000"}) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": me}) == 1.0
    assert watchdog_interval({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}) is None


def test_message_format_and_parse() -> None:
    """Assignments join with newlines and parse back; keys with '=' or newlines are refused."""
    text = format_message({"READY": "1", "STATUS": "a\nb"})
    assert parse_message(text.encode()) == {"READY": "1", "STATUS": "a b"}
    assert parse_message(b"junk\nX=1=2\n") == {"X": "1=2"}
    with pytest.raises(ValueError):
        format_message({"A=B": "1"})
    env = strip_notify_env({"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1", "PATH": "/bin"})
    assert env == {"PATH": "/bin"}


def test_listener_going_away_stops_sending(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A listener vanishing after a delivery is noted once at info level, and sending stops."""
    caplog.set_level(logging.INFO, logger="stem.notify")
    listener = NotifyListener(tmp_path / "n.sock")
    notifier = Notifier({"NOTIFY_SOCKET": listener.address})
    assert notifier.ready()
    listener.close()
    assert not notifier.watchdog()
    assert not notifier.enabled
    assert not notifier.watchdog()
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "is gone" in caplog.text
