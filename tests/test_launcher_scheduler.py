"""stem-scheduler with a real process and a real notify socket."""

from __future__ import annotations

import signal
from pathlib import Path

from stem_systemd.launcher import spool
from stem_systemd.notify import NotifyListener
from tests.helpers import wait_until
from tests.notify_harness import Recorder, launch


def test_ticks_report_status_and_term_exits_0(
    tmp_path: Path, notify_listener: NotifyListener
) -> None:
    """READY, then STATUS per tick, then STOPPING=1 and exit 0 on TERM, all from one pid."""
    rec = Recorder(notify_listener)
    with launch("stem-scheduler", ["--interval", "0.1"], tmp_path, notify_listener) as sched:
        assert rec.wait_for(lambda m: m.ready).pid == sched.pid
        rec.wait_for(lambda m: (m.status or "").endswith(": 3 ticks"))
        sched.signal(signal.SIGTERM)
        assert sched.wait() == 0
    assert rec.wait_for(lambda m: m.stopping).pid == sched.pid
    assert {m.pid for m in rec.poll()} == {sched.pid}


def test_ticks_feed_a_job_spool(tmp_path: Path) -> None:
    """With --jobs every tick submits a job a worker can claim."""
    jobs = tmp_path / "jobs"
    args = ["--interval", "0.1", "--jobs", str(jobs), "--job-seconds", "0"]
    with launch("stem-scheduler", args, tmp_path) as sched:
        wait_until(lambda: len(list(jobs.glob("scheduler-*"))) >= 2, timeout=30)
        sched.signal(signal.SIGTERM)
        assert sched.wait() == 0
    job = spool.claim(jobs, 1)
    assert job is not None and job.seconds == 0 and job.error is None


def test_int_exits_130(tmp_path: Path) -> None:
    """INT stops the scheduler at once with exit status 130."""
    with launch("stem-scheduler", ["--interval", "600"], tmp_path) as sched:
        wait_until(lambda: "ready" in sched.stderr_text(), timeout=30)
        sched.signal(signal.SIGINT)
        assert sched.wait() == 130


def test_hup_reopens_the_log(tmp_path: Path, notify_listener: NotifyListener) -> None:
    """HUP after a rename: RELOADING=1 with MONOTONIC_USEC, READY=1, and new lines in a new file."""
    rec = Recorder(notify_listener)
    log = tmp_path / "sched.log"
    args = ["--interval", "600", "--logfile", f"{tmp_path}/sched%I.log"]
    with launch("stem-scheduler", args, tmp_path, notify_listener) as sched:
        rec.wait_for(lambda m: m.ready)
        log.rename(tmp_path / "sched.log.1")
        sched.signal(signal.SIGHUP)
        reloading = rec.wait_for(lambda m: m.fields.get("RELOADING") == "1")
        assert "MONOTONIC_USEC" in reloading.fields
        wait_until(lambda: log.exists() and "reopened log file" in log.read_text(), timeout=30)
        assert "started" in (tmp_path / "sched.log.1").read_text()
        assert sum(m.ready for m in rec.poll()) == 2


def test_watchdog_and_hang_hook(tmp_path: Path, notify_listener: NotifyListener) -> None:
    """The tick loop pings WATCHDOG=1; with test hooks on, SIGUSR1 hangs it and pings stop."""
    rec = Recorder(notify_listener)
    env = {"WATCHDOG_USEC": "200000", "STEM_WORKER_TEST_HOOKS": "1"}
    args = ["--interval", "600", "--logfile", f"{tmp_path}/s.log"]
    with launch("stem-scheduler", args, tmp_path, notify_listener, env=env) as sched:
        wait_until(lambda: rec.count("WATCHDOG") >= 2, timeout=30)
        sched.signal(signal.SIGUSR1)
        wait_until(lambda: "the loop hangs now" in (tmp_path / "s.log").read_text(), timeout=30)
        before = rec.count("WATCHDOG")
        # Whatever arrives within five watchdog periods (a hung loop sends nothing).
        later = notify_listener.receive(timeout=1.0)
        assert not [m for m in later if "WATCHDOG" in m.fields]
        assert before >= 2
