"""stem-worker with real processes, a real notify socket, real spool and log files."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from stem_systemd.launcher import spool
from stem_systemd.notify import NotifyListener, NotifyMessage
from tests.helpers import wait_until
from tests.notify_harness import Recorder, alive, ignores, launch


def is_ready(message: NotifyMessage) -> bool:
    """READY=1."""
    return message.ready


def done(jobs: Path, name: str) -> bool:
    """The job landed in done/."""
    return (jobs / spool.DONE / name).exists()


def claimed(jobs: Path, name: str) -> list[Path]:
    """The job's active/ entries."""
    return list((jobs / spool.ACTIVE).glob(f"{name}@*"))


def says(path: Path, text: str) -> Callable[[], bool]:
    """A predicate: the log file at ``path`` contains ``text``."""
    return lambda: text in log_text(path)


def reopened(path: Path) -> Callable[[], bool]:
    """A predicate: the log file at ``path`` says it was reopened."""
    return says(path, "reopened log file")


def log_text(path: Path) -> str:
    """A log file's text ('' while it does not exist)."""
    return path.read_text() if path.exists() else ""


def test_ready_after_pool_is_up(tmp_path: Path, notify_listener: NotifyListener) -> None:
    """READY=1 comes from the main pid once every pool process has logged that it started."""
    rec = Recorder(notify_listener)
    logs = f"{tmp_path}/%n%I.log"
    with launch(
        "stem-worker", ["--node", "alpha", "-c", "2", "--logfile", logs], tmp_path, notify_listener
    ) as worker:
        ready = rec.wait_for(is_ready)
        assert ready.pid == worker.pid
        assert ready.status is not None and "2/2 pool processes up" in ready.status
        for k in (1, 2):
            assert f"pool process {k} started" in log_text(tmp_path / f"alpha-{k}.log")
        assert len(worker.pool()) == 2
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    assert {m.pid for m in rec.poll()} == {worker.pid}
    assert any(m.stopping for m in rec.messages)


def test_ready_delay_holds_ready_back(tmp_path: Path, notify_listener: NotifyListener) -> None:
    """--ready-delay S makes the main log's 'ready' line come at least S after the pool started."""
    rec = Recorder(notify_listener)
    logfile = tmp_path / "w.log"
    with launch(
        "stem-worker",
        ["--ready-delay", "0.6", "--logfile", str(logfile)],
        tmp_path,
        notify_listener,
    ):
        rec.wait_for(is_ready)
    stamps = {}
    for line in logfile.read_text().splitlines():
        when = line.split()[0]
        seconds = sum(
            float(x) * m for x, m in zip(when[11:].split(":"), (3600, 60, 1), strict=True)
        )
        if "pool process 1 started" in line:
            stamps["pool"] = seconds
        elif " ready:" in line:
            stamps["ready"] = seconds
    assert stamps["ready"] - stamps["pool"] >= 0.6


def test_status_counts_jobs_and_pool_stays_silent(
    tmp_path: Path, notify_listener: NotifyListener
) -> None:
    """STATUS follows the job counters; every datagram is from the main pid, none from the pool."""
    rec = Recorder(notify_listener)
    jobs = tmp_path / "jobs"
    with launch(
        "stem-worker", ["-c", "2", "--jobs", str(jobs), "--node", "beta"], tmp_path, notify_listener
    ) as worker:
        rec.wait_for(is_ready)
        pool = worker.pool()
        spool.submit(jobs, "a", "0")
        spool.submit(jobs, "b", "0.1")
        spool.submit(jobs, "bad", "soon")
        rec.wait_for(lambda m: "2 done, 1 failed" in (m.status or ""))
        assert done(jobs, "a") and done(jobs, "b")
        assert "error:" in (jobs / spool.FAILED / "bad").read_text()
        assert "result: ok" in (jobs / spool.DONE / "a").read_text()
        statuses = [m.status for m in rec.poll() if m.status]
        assert any("1 working" in s or "2 working" in s for s in statuses)
        assert all(s.startswith("node beta:") for s in statuses)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    senders = {m.pid for m in rec.poll()}
    assert senders == {worker.pid}
    assert not senders & set(pool)


def test_watchdog_pings_at_half_the_period(tmp_path: Path, notify_listener: NotifyListener) -> None:
    """With WATCHDOG_USEC=1 s the main pid pings WATCHDOG=1 every 0.5 s or so, never in a burst."""
    rec = Recorder(notify_listener)
    with launch(
        "stem-worker", [], tmp_path, notify_listener, env={"WATCHDOG_USEC": "1000000"}
    ) as worker:
        wait_until(lambda: rec.count("WATCHDOG") >= 4, timeout=30)
        pings = [m for m in rec.poll() if "WATCHDOG" in m.fields]
        assert {m.pid for m in pings} == {worker.pid}
        # Four pings scheduled 0.5 s apart cannot arrive within 0.75 s of each other.
        assert pings[3].received - pings[0].received >= 0.75


def test_watchdog_silent_when_it_belongs_to_another_pid(
    tmp_path: Path, notify_listener: NotifyListener
) -> None:
    """WATCHDOG_PID naming another process means no WATCHDOG=1 at all, while work goes on."""
    rec = Recorder(notify_listener)
    jobs = tmp_path / "jobs"
    env = {"WATCHDOG_USEC": "100000", "WATCHDOG_PID": "1"}
    with launch("stem-worker", ["--jobs", str(jobs)], tmp_path, notify_listener, env=env):
        rec.wait_for(is_ready)
        spool.submit(jobs, "clock", "1")  # one second of work: ten periods of 0.1 s
        wait_until(lambda: done(jobs, "clock"), timeout=30)
        assert rec.count("WATCHDOG") == 0


def test_hang_hook_stops_watchdog_pings(tmp_path: Path, notify_listener: NotifyListener) -> None:
    """With STEM_WORKER_TEST_HOOKS=1 a hang-main job stops the main loop, so its pings stop."""
    rec = Recorder(notify_listener)
    jobs = tmp_path / "jobs"
    logfile = tmp_path / "w.log"
    env = {"WATCHDOG_USEC": "200000", "STEM_WORKER_TEST_HOOKS": "1"}
    with launch(
        "stem-worker",
        ["--jobs", str(jobs), "--logfile", f"{tmp_path}/w%I.log"],
        tmp_path,
        notify_listener,
        env=env,
    ):
        wait_until(lambda: rec.count("WATCHDOG") >= 2, timeout=30)
        spool.submit(jobs, "hang", spool.HANG_MAIN)
        wait_until(lambda: "the loop hangs now" in log_text(logfile), timeout=30)
        before = rec.count("WATCHDOG")
        spool.submit(jobs, "clock", "1")  # the pool still works: five periods pass
        wait_until(lambda: done(jobs, "clock"), timeout=30)
        assert rec.count("WATCHDOG") == before


def test_hang_hook_is_inert_without_the_variable(tmp_path: Path) -> None:
    """Without STEM_WORKER_TEST_HOOKS=1 a hang-main job fails and the worker carries on."""
    jobs = tmp_path / "jobs"
    with launch("stem-worker", ["--jobs", str(jobs)], tmp_path) as worker:
        spool.submit(jobs, "hang", spool.HANG_MAIN)
        wait_until((jobs / spool.FAILED / "hang").exists, timeout=30)
        assert "test hooks are off" in (jobs / spool.FAILED / "hang").read_text()
        spool.submit(jobs, "after", "0")
        wait_until(lambda: done(jobs, "after"), timeout=30)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0


def test_term_lets_the_job_in_hand_finish(tmp_path: Path, notify_listener: NotifyListener) -> None:
    """TERM during a job: STOPPING=1, the job still lands in done/, exit 0, queued jobs stay."""
    rec = Recorder(notify_listener)
    jobs = tmp_path / "jobs"
    with launch("stem-worker", ["--jobs", str(jobs)], tmp_path, notify_listener) as worker:
        rec.wait_for(is_ready)
        spool.submit(jobs, "inflight", "1.5")
        wait_until(lambda: claimed(jobs, "inflight"), timeout=30)
        spool.submit(jobs, "queued", "0")
        worker.signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    assert done(jobs, "inflight")
    assert (jobs / "queued").exists()
    assert rec.wait_for(lambda m: m.stopping).pid == worker.pid


def test_int_does_not_wait_and_requeues(tmp_path: Path) -> None:
    """INT during a long job: exit 130 at once, the job goes back to the spool, the pool is gone."""
    jobs = tmp_path / "jobs"
    with launch("stem-worker", ["--jobs", str(jobs)], tmp_path) as worker:
        spool.submit(jobs, "long", "600")
        wait_until(lambda: claimed(jobs, "long"), timeout=30)
        pool = worker.pool()
        worker.signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 130
        assert not any(alive(pid) for pid in pool)
    assert (jobs / "long").read_text().strip() == "600"
    assert not done(jobs, "long")


def test_quit_is_cold_too(tmp_path: Path) -> None:
    """QUIT stops cold like INT, exiting 131."""
    with launch("stem-worker", ["-c", "2"], tmp_path) as worker:
        wait_until(lambda: len(worker.pool()) == 2, timeout=30)
        worker.signal(signal.SIGQUIT)
        assert worker.wait(timeout=30) == 131


def test_hup_reopens_every_log_file(tmp_path: Path, notify_listener: NotifyListener) -> None:
    """After logrotate-style renames, HUP moves logging to new files: RELOADING/READY, same pids."""
    rec = Recorder(notify_listener)
    names = ["n.log", "n-1.log", "n-2.log"]
    args = ["--node", "n", "-c", "2", "--logfile", f"{tmp_path}/%n%I.log"]
    with launch("stem-worker", args, tmp_path, notify_listener) as worker:
        rec.wait_for(is_ready)
        pool = worker.pool()
        for name in names:
            (tmp_path / name).rename(tmp_path / f"{name}.1")
        worker.signal(signal.SIGHUP)
        for name in names:
            wait_until(reopened(tmp_path / name), timeout=30)
            assert "started" in (tmp_path / f"{name}.1").read_text()
            assert "started" not in (tmp_path / name).read_text()
        reloading = rec.wait_for(lambda m: m.fields.get("RELOADING") == "1")
        assert int(reloading.fields["MONOTONIC_USEC"]) > 0
        after = next(i for i, m in enumerate(rec.messages) if m is reloading) + 1
        wait_until(lambda: any(m.ready for m in rec.poll()[after:]), timeout=30)
        assert worker.pool() == pool
        assert worker.proc.poll() is None
        own_pid = re.compile(rf"\[{worker.pid}\]")
        assert own_pid.search((tmp_path / "n.log").read_text())


def test_killed_pool_process_is_replaced_and_its_job_requeued(tmp_path: Path) -> None:
    """SIGKILL to the pool process working a job: a new one takes its place and the job again."""
    jobs = tmp_path / "jobs"
    logfile = tmp_path / "w.log"
    with launch(
        "stem-worker", ["--jobs", str(jobs), "--logfile", f"{tmp_path}/w%I.log"], tmp_path
    ) as worker:
        spool.submit(jobs, "long", "600")
        [first] = wait_until(lambda: claimed(jobs, "long"), timeout=30)
        [victim] = worker.pool()
        assert first.name == f"long@{victim}"
        os.kill(victim, signal.SIGKILL)
        again = wait_until(
            lambda: [p for p in claimed(jobs, "long") if p.name != f"long@{victim}"], timeout=30
        )
        [replacement] = worker.pool()
        assert replacement != victim
        assert again[0].name == f"long@{replacement}"
        assert "died: killed by SIGKILL; replacing it" in logfile.read_text()


def test_ignore_term_job_makes_its_pool_process_ignore_term(tmp_path: Path) -> None:
    """A '<seconds> ignore-term' job makes its pool process ignore SIGTERM until the job is done."""
    jobs = tmp_path / "jobs"
    with launch("stem-worker", ["--jobs", str(jobs)], tmp_path) as worker:
        [pool] = wait_until(worker.pool, timeout=30)
        assert not ignores(pool, signal.SIGTERM)
        spool.submit(jobs, "stubborn", "0.5 ignore-term")
        wait_until(lambda: ignores(pool, signal.SIGTERM), timeout=30)
        wait_until(lambda: done(jobs, "stubborn"), timeout=30)
        wait_until(lambda: not ignores(pool, signal.SIGTERM), timeout=30)


def test_works_without_notify_socket(tmp_path: Path) -> None:
    """Without NOTIFY_SOCKET the worker runs jobs, logs to stderr and stops cleanly on TERM."""
    jobs = tmp_path / "jobs"
    with launch("stem-worker", ["--jobs", str(jobs), "--node", "solo"], tmp_path) as worker:
        spool.submit(jobs, "j", "0")
        wait_until(lambda: done(jobs, "j"), timeout=30)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
        err = worker.stderr_text()
    assert f"solo[{worker.pid}] started" in err
    assert "job j done" in err
    assert "sd_notify" not in err


def test_dead_notify_socket_is_logged_not_fatal(tmp_path: Path) -> None:
    """A NOTIFY_SOCKET nobody listens on is logged once and the worker keeps working."""
    jobs = tmp_path / "jobs"
    env = {"NOTIFY_SOCKET": str(tmp_path / "nobody.sock")}
    with launch("stem-worker", ["--jobs", str(jobs)], tmp_path, env=env) as worker:
        spool.submit(jobs, "j", "0")
        wait_until(lambda: done(jobs, "j"), timeout=30)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    assert "sd_notify to" in worker.stderr_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--logfile", "/x/%q.log"], "log file template '/x/%q.log': unknown placeholder %q"),
        (["-c", "0"], "--concurrency must be at least 1"),
        (["--node", "a/b"], "invalid node name"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    """Bad options give one Error: line naming the problem and exit status 2."""
    with launch("stem-worker", args, tmp_path) as worker:
        assert worker.wait() == 2
    assert f"Error: {message}" in worker.stderr_text()


def test_unwritable_log_directory_fails_early(tmp_path: Path) -> None:
    """A log file in a missing directory is reported before any pool process starts."""
    with launch("stem-worker", ["--logfile", f"{tmp_path}/missing/%n%I.log"], tmp_path) as worker:
        assert worker.wait() == 1
    assert "Error: cannot open log file" in worker.stderr_text()


def test_pool_exits_when_main_process_is_killed(tmp_path: Path) -> None:
    """A pool process whose main process was SIGKILLed puts its job back and exits on its own."""
    jobs = tmp_path / "jobs"
    with launch("stem-worker", ["--jobs", str(jobs)], tmp_path) as worker:
        spool.submit(jobs, "long", "600")
        wait_until(lambda: claimed(jobs, "long"), timeout=30)
        [pool] = worker.pool()
        worker.signal(signal.SIGKILL)
        assert worker.wait() == -signal.SIGKILL
        wait_until(lambda: not alive(pool), timeout=30)
    assert (jobs / "long").exists()


def test_unreopenable_log_keeps_the_old_one(tmp_path: Path) -> None:
    """HUP when the log directory is gone: a warning in the old file, and the worker carries on."""
    logs = tmp_path / "logs"
    logs.mkdir()
    with launch("stem-worker", ["--logfile", f"{logs}/w%I.log"], tmp_path) as worker:
        wait_until(lambda: " ready:" in log_text(logs / "w.log"), timeout=30)
        moved = logs.rename(tmp_path / "logs.old")
        worker.signal(signal.SIGHUP)
        for path in (moved / "w.log", moved / "w-1.log"):
            wait_until(says(path, "cannot reopen"), timeout=30)
        worker.signal(signal.SIGTERM)
        assert worker.wait() == 0
    assert "stopped (warm shutdown)" in (moved / "w.log").read_text()
