"""The reusable node machinery (lifecycle): spawn, readiness from the main PID, stop."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stem_systemd import lifecycle, pidfiles, procs
from stem_systemd.errors import NotInstalledError
from stem_systemd.notify import NotifyListener
from tests.helpers import wait_until
from tests.multi_helpers import reap_strays, spec


@pytest.fixture
def where(tmp_path: Path) -> Iterator[Path]:
    """A directory for node files; every process mentioning it is killed afterwards."""
    (tmp_path / "run").mkdir()
    (tmp_path / "log").mkdir()
    yield tmp_path
    reap_strays(tmp_path)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_spawned_node_has_own_session_devnull_stdin_and_its_variables(where: Path) -> None:
    """A node runs as a session leader, stdin /dev/null, with STEM_WORKER_* and NOTIFY_SOCKET."""
    node = spec(where, "alpha", index=7)
    with NotifyListener() as listener:
        sp = lifecycle.spawn_node(node, listener.address)
        try:
            st = procs.read_stat(sp.pid)
            assert st is not None and st.sid == sp.pid and st.pgid == sp.pid
            assert os.readlink(f"/proc/{sp.pid}/fd/0") == "/dev/null"
            env = _environ(sp.pid)
            assert env["STEM_WORKER_NODE"] == "alpha"
            assert env["STEM_WORKER_INDEX"] == "7"
            assert env["STEM_WORKER_PIDFILE"] == str(node.pidfile)
            assert env["STEM_WORKER_LOGFILE"] == node.logfile
            assert env["NOTIFY_SOCKET"] == listener.address
            result = lifecycle.wait_ready([sp], listener, time.monotonic() + 30)
            assert result[sp.pid].ready
            assert result[sp.pid].status == "serving"
        finally:
            lifecycle.abort_node(sp)
            os.close(sp.pidfd)


def test_ready_from_a_child_process_does_not_count(where: Path) -> None:
    """Only READY=1 from the node's main PID makes it ready (NotifyAccess=main)."""
    with NotifyListener() as listener:
        sp = lifecycle.spawn_node(spec(where, "alpha", mode="child-ready"), listener.address)
        try:
            result = lifecycle.wait_ready([sp], listener, time.monotonic() + 2)
            assert not result[sp.pid].ready
            assert "start timeout" in result[sp.pid].reason
        finally:
            assert lifecycle.abort_node(sp) >= 1
            os.close(sp.pidfd)
    wait_until(lambda: not procs.group_members(sp.pid, sp.starttime), timeout=30)


def test_stop_nodes_terms_all_and_kills_only_the_laggard(where: Path) -> None:
    """stop_nodes: a TERM-obeying node exits without KILL; a TERM-ignoring one is KILLed."""
    with NotifyListener() as listener:
        fine = lifecycle.spawn_node(spec(where, "alpha"), listener.address)
        stubborn = lifecycle.spawn_node(spec(where, "beta", mode="stubborn"), listener.address)
        spawned = [fine, stubborn]
        try:
            ready = lifecycle.wait_ready(spawned, listener, time.monotonic() + 30)
            assert all(r.ready for r in ready.values())
            outcomes = lifecycle.stop_nodes([sp.target() for sp in spawned], time.monotonic() + 1.5)
            assert outcomes["alpha"].exited and not outcomes["alpha"].timed_out
            assert outcomes["alpha"].killed == 0
            assert outcomes["beta"].timed_out and outcomes["beta"].exited
            assert outcomes["beta"].killed == 1
        finally:
            for sp in spawned:
                lifecycle.abort_node(sp)
                os.close(sp.pidfd)


def test_missing_command_raises_not_installed(where: Path) -> None:
    """A command that does not exist is NotInstalledError (exit 5), nothing spawned."""
    missing = dataclasses.replace(spec(where, "alpha"), command=(str(where / "nope"),))
    with pytest.raises(NotInstalledError) as err:
        lifecycle.spawn_node(missing, None)
    assert err.value.exit_code == 5


def test_spawned_node_always_has_an_identity_to_pin(where: Path) -> None:
    """Right after spawn_node returns, the node's identity (start time, command line) is readable.

    execve(2) lets Popen return before /proc/PID/cmdline is filled in (about
    one spawn in three here), and a pidfile written then had no identity.
    """
    spawned = []
    try:
        for i in range(40):
            sp = lifecycle.spawn_node(spec(where, f"n{i}", index=i + 1), None)
            spawned.append(sp)
            assert pidfiles.Identity.of_pid(sp.pid) is not None, f"spawn {i}"
    finally:
        for sp in spawned:
            lifecycle.abort_node(sp)
            os.close(sp.pidfd)
