"""The pidfile backend on real processes: start, status, stop, kill, restart, failures."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from stem_systemd import pidfiles, procs
from stem_systemd.backends.base import State
from stem_systemd.backends.pidfile import PidfileBackend
from stem_systemd.errors import UsageError
from tests.helpers import wait_until
from tests.multi_helpers import events, reap_strays, spec, strays


@pytest.fixture
def where(tmp_path: Path) -> Iterator[Path]:
    """A directory for node files; every process mentioning it is killed afterwards."""
    yield tmp_path
    reap_strays(tmp_path)


@pytest.fixture
def backend() -> PidfileBackend:
    """A pidfile backend with generous timeouts (the machine is shared)."""
    return PidfileBackend(start_timeout=30, stop_timeout=30)


def test_start_status_stop_two_nodes(where: Path, backend: PidfileBackend) -> None:
    """Two nodes start ready, show as running with pidfiles, and stop cleanly."""
    nodes = [spec(where, "alpha"), spec(where, "beta", index=2)]
    started = backend.start(nodes, 30)
    assert [r.ok for r in started] == [True, True], [r.message for r in started]
    assert all("started" in r.message for r in started)
    status = backend.status(nodes)
    assert [r.state for r in status] == [State.RUNNING, State.RUNNING]
    assert [r.exit_code for r in status] == [0, 0]
    pids = [r.pid for r in started]
    assert all(
        pid is not None and (where / "run").joinpath(f"{n.name}.pid").exists()
        for pid, n in zip(pids, nodes, strict=True)
    )
    stopped = backend.stop(nodes, 30)
    assert [r.state for r in stopped] == [State.STOPPED, State.STOPPED]
    assert not (where / "run" / "alpha.pid").exists()
    assert not (where / "run" / "beta.pid").exists()
    assert [r.exit_code for r in backend.status(nodes)] == [3, 3]


def test_node_gets_its_environment_and_log(where: Path, backend: PidfileBackend) -> None:
    """A node's stdout lands in its main logfile and it sees STEM_WORKER_NODE."""
    node = spec(where, "alpha")
    assert backend.start([node], 30)[0].ok
    log = where / "log" / "alpha.log"
    wait_until(lambda: "node alpha mode ready" in log.read_text(), timeout=30)
    backend.stop([node], 30)


def test_already_running_is_success_and_not_started_twice(
    where: Path, backend: PidfileBackend
) -> None:
    """Starting a running node reports it as already running and spawns nothing."""
    node = spec(where, "alpha")
    first = backend.start([node], 30)[0]
    second = backend.start([node], 30)[0]
    assert second.ok and "already running" in second.message
    assert second.pid == first.pid
    assert len(strays(where)) == 1
    backend.stop([node], 30)


def test_failure_before_ready_reports_status_and_log_and_leaves_nothing(
    where: Path, backend: PidfileBackend
) -> None:
    """A node exiting before READY=1 is reported with its exit status and log, no pidfile left."""
    good, bad = spec(where, "alpha"), spec(where, "beta", mode="fail", index=2)
    reports = backend.start([good, bad], 30)
    assert reports[0].ok
    assert not reports[1].ok and reports[1].exit_code == 1
    assert "exit status 3" in reports[1].message
    assert any("boom" in line for line in reports[1].log_tail)
    assert not bad.pidfile.exists()
    backend.stop([good], 30)


def test_never_ready_is_killed_at_the_deadline(where: Path) -> None:
    """A node that never sends READY=1 fails at the start timeout: group killed, pidfile gone."""
    backend = PidfileBackend(start_timeout=1.5, stop_timeout=30)
    node = spec(where, "alpha", mode="never")
    report = backend.start([node], 1.5)[0]
    assert not report.ok and "not ready" in report.message
    assert not node.pidfile.exists()
    wait_until(lambda: not strays(where), timeout=30)


def test_ready_after_counts_a_silent_node_as_ready(where: Path) -> None:
    """With ready_after, a node that never notifies is ready once alive that long."""
    backend = PidfileBackend(start_timeout=30, stop_timeout=30, ready_after=0.5)
    node = spec(where, "alpha", mode="never")
    report = backend.start([node], 30)[0]
    assert report.ok, report.message
    assert backend.status([node])[0].state is State.RUNNING
    backend.stop([node], 30)


def test_stale_pidfile_of_an_unrelated_process_survives_stop(
    where: Path, backend: PidfileBackend
) -> None:
    """stop never signals an unrelated process that now holds a stale pidfile's PID."""
    sleeper = subprocess.Popen(["sleep", "300"])
    try:
        node = spec(where, "alpha")
        node.pidfile.parent.mkdir(parents=True)
        real = pidfiles.Identity.of_pid(sleeper.pid)
        assert real is not None
        # The identity of the process we "started" earlier: same PID, older start time.
        old = pidfiles.Identity(sleeper.pid, real.starttime - 100, real.boot_id, "0" * 64)
        pidfiles.write(node.pidfile, pidfiles.Record(sleeper.pid, old, True))
        report = backend.stop([node], 30)[0]
        assert report.ok and "stale" in report.message
        assert sleeper.poll() is None
        assert not node.pidfile.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_status_removes_and_reports_stale_pidfile(where: Path, backend: PidfileBackend) -> None:
    """status reports a dead node with LSB code 1 and removes its pidfile."""
    node = spec(where, "alpha")
    node.pidfile.parent.mkdir(parents=True)
    proc = subprocess.Popen(["true"])
    proc.wait()
    node.pidfile.write_text(f"{proc.pid}\nstarttime=1\nboot_id=x\ncmdline_sha256=y\nready=1\n")
    report = backend.status([node])[0]
    assert report.state is State.DEAD and report.exit_code == 1
    assert "stale pidfile removed" in report.message
    assert not node.pidfile.exists()


def test_stop_escalates_to_kill_for_a_node_ignoring_term(where: Path) -> None:
    """A node ignoring TERM is SIGKILLed at the stop timeout, and the report says so."""
    backend = PidfileBackend(start_timeout=30, stop_timeout=1)
    node = spec(where, "alpha", mode="stubborn")
    assert backend.start([node], 30)[0].ok
    report = backend.stop([node], 1)[0]
    assert report.ok and "SIGKILL" in report.message and "timeout" in report.message
    assert not strays(where)
    assert not node.pidfile.exists()


def test_stop_kills_group_leftovers_after_main_exits(where: Path, backend: PidfileBackend) -> None:
    """Processes left in the node's group after its main process exits get SIGKILL."""
    node = spec(where, "alpha", mode="leave-child")
    assert backend.start([node], 30)[0].ok
    wait_until(lambda: len(strays(where)) == 2, timeout=30)
    report = backend.stop([node], 30)[0]
    assert report.ok and "leftover" in report.message
    assert not strays(where)


def test_stopping_a_stopped_node_is_success(where: Path, backend: PidfileBackend) -> None:
    """stop on a node that is not running succeeds and says so."""
    report = backend.stop([spec(where, "alpha")], 30)[0]
    assert report.ok and report.message == "not running"


@pytest.mark.parametrize("whom", ["main", "all"])
def test_kill_sends_the_signal_and_kill_removes_pidfile(
    where: Path, backend: PidfileBackend, whom: str
) -> None:
    """kill --signal KILL ends the node (main or whole group) and drops its pidfile."""
    node = spec(where, "alpha")
    assert backend.start([node], 30)[0].ok
    report = backend.kill([node], signal.SIGKILL, whom)[0]
    assert report.ok and report.state is State.STOPPED
    assert not node.pidfile.exists()


def test_kill_with_term_signals_only(where: Path, backend: PidfileBackend) -> None:
    """kill with a catchable signal reports the delivery; the node handles it itself."""
    node = spec(where, "alpha")
    pid = backend.start([node], 30)[0].pid
    assert pid is not None
    report = backend.kill([node], signal.SIGTERM, "main")[0]
    assert report.ok and "SIGTERM" in report.message
    fd = procs.pidfd_open(pid)
    if fd is not None:
        wait_until(lambda: procs.has_exited(fd), timeout=30)
        os.close(fd)


def test_restart_gives_new_pids(where: Path, backend: PidfileBackend) -> None:
    """restart stops and starts every node: new main PIDs, all running."""
    nodes = [spec(where, "alpha"), spec(where, "beta", index=2)]
    before = [r.pid for r in backend.start(nodes, 30)]
    after = backend.restart(nodes, 30, rolling=False)
    assert all(r.ok for r in after)
    assert set(before).isdisjoint(r.pid for r in after)
    backend.stop(nodes, 30)


def test_rolling_restart_keeps_the_other_node_running(where: Path, backend: PidfileBackend) -> None:
    """Rolling restart replaces nodes one at a time, each ready before the next stops."""
    nodes = [spec(where, "alpha"), spec(where, "beta", index=2)]
    assert all(r.ok for r in backend.start(nodes, 30))
    after = backend.restart(nodes, 30, rolling=True)
    assert all(r.ok for r in after)
    log = events(where)
    assert sorted(log[:2]) == ["start alpha", "start beta"]  # the first start: both at once
    assert log[2:] == ["term alpha", "start alpha", "term beta", "start beta"]
    backend.stop(nodes, 30)


def test_rolling_restart_halts_at_a_node_that_fails(where: Path, backend: PidfileBackend) -> None:
    """Rolling restart halts at the first node that fails to come back; the rest keep running."""
    alpha, beta = spec(where, "alpha"), spec(where, "beta", index=2)
    assert all(r.ok for r in backend.start([alpha, beta], 30))
    broken = spec(where, "alpha", mode="fail")
    reports = backend.restart([broken, beta], 30, rolling=True)
    assert not reports[0].ok and not reports[1].ok
    assert "halted" in reports[1].message
    assert backend.status([beta])[0].state is State.RUNNING
    backend.stop([beta], 30)


def test_symlink_at_pidfile_path_fails_that_node_only(where: Path, backend: PidfileBackend) -> None:
    """A symlink at one node's pidfile path fails that node; the other starts; target untouched."""
    alpha, beta = spec(where, "alpha"), spec(where, "beta", index=2)
    alpha.pidfile.parent.mkdir(parents=True)
    victim = where / "victim"
    victim.write_text("precious\n")
    alpha.pidfile.symlink_to(victim)
    reports = backend.start([alpha, beta], 30)
    assert not reports[0].ok and "symlink" in reports[0].message
    assert reports[1].ok
    assert victim.read_text() == "precious\n"
    backend.stop([beta], 30)
    assert not strays(where)


def test_fifo_at_pidfile_path_is_unknown_not_a_hang(where: Path, backend: PidfileBackend) -> None:
    """A FIFO at the pidfile path gives status 4 (unknown) and a failed start, never a hang."""
    node = spec(where, "alpha")
    node.pidfile.parent.mkdir(parents=True)
    os.mkfifo(node.pidfile)
    assert backend.status([node])[0].exit_code == 4
    report = backend.start([node], 30)[0]
    assert not report.ok and "not a regular file" in report.message
    assert not strays(where)


def test_nodes_sharing_a_pidfile_are_a_usage_error(where: Path, backend: PidfileBackend) -> None:
    """A pidfile template without %n/%i would make nodes share one file: exit 2, nothing runs."""
    alpha = spec(where, "alpha")
    beta = dataclasses.replace(spec(where, "beta", index=2), pidfile=alpha.pidfile)
    with pytest.raises(UsageError, match="share the pidfile"):
        backend.start([alpha, beta], 30)
    assert not strays(where)
