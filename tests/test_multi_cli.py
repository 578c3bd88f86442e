"""``stem worker multi`` end to end: the real ``stem`` and ``stem-worker`` in subprocesses."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stem_systemd import pidfiles, procs
from stem_systemd.launcher import spool
from tests.helpers import wait_until
from tests.multi_helpers import reap_strays, strays

BIN = Path(sys.executable).parent
STEM = str(BIN / "stem")


class Multi:
    """Runs ``stem worker multi VERB ...`` with files under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.jobs = root / "jobs"
        env_file = root / "stem.env"
        env_file.write_text("")
        self.env = {
            **os.environ,
            "STEM_BACKEND": "pidfile",
            "STEM_PIDFILE": str(root / "run" / "%n.pid"),
            "STEM_LOGFILE": str(root / "log" / "%n%I.log"),
            "STEM_WORKER_COMMAND": f"{BIN / 'stem-worker'} --jobs {self.jobs}",
            "STEM_START_TIMEOUT": "60",
            "STEM_STOP_TIMEOUT": "60",
        }
        self.env.pop("NOTIFY_SOCKET", None)
        self.base = ["--env-file", str(env_file)]

    def popen(self, verb: str, *args: str) -> subprocess.Popen[str]:
        """Start ``stem worker multi VERB ARGS`` without waiting."""
        return subprocess.Popen(
            [STEM, "worker", "multi", verb, *self.base, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(self, verb: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``stem worker multi VERB ARGS`` to completion."""
        proc = self.popen(verb, *args)
        out, err = proc.communicate(timeout=240)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def main_pids(self) -> list[int]:
        """Main processes of nodes under root: session leaders among the strays."""
        found = []
        for pid in strays(self.root):
            st = procs.read_stat(pid)
            if st is not None and st.sid == pid:
                found.append(pid)
        return found


@pytest.fixture
def multi(tmp_path: Path) -> Iterator[Multi]:
    """A Multi runner over tmp_path; every node process under it is killed afterwards."""
    runner = Multi(tmp_path)
    spool.prepare(runner.jobs)
    yield runner
    reap_strays(tmp_path)


def test_main_job_two_nodes_with_a_job_spool(multi: Multi) -> None:
    """start two nodes, status 0, jobs get done, stop, status 3: the README's main job."""
    started = multi("start", "alpha", "beta", "-c", "2")
    assert started.returncode == 0, started.stderr
    assert "alpha: started" in started.stdout and "beta: started" in started.stdout
    assert "backend: pidfile" in started.stderr
    for n in range(4):
        spool.submit(multi.jobs, f"job{n}", "0.2")
    status = multi("status", "alpha", "beta")
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count("running (pid") == 2
    wait_until(lambda: len(list((multi.jobs / "done").iterdir())) == 4, timeout=60)
    stopped = multi("stop", "alpha", "beta")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.count(": stopped (pid") == 2
    assert multi("status", "alpha", "beta").returncode == 3
    assert not multi.main_pids()


def test_status_json_and_lsb_codes(multi: Multi) -> None:
    """status --json gives one object per node; the exit code is the LSB worst code."""
    assert multi("start", "alpha").returncode == 0
    result = multi("status", "alpha", "beta", "--json")
    assert result.returncode == 3
    doc = json.loads(result.stdout)
    states = {n["node"]: n["state"] for n in doc["nodes"]}
    assert states == {"alpha": "running", "beta": "stopped"}
    assert doc["nodes"][0]["pidfile"].endswith("alpha.pid")
    assert multi("stop", "alpha").returncode == 0


def test_graceful_stop_lets_an_in_flight_job_complete(multi: Multi) -> None:
    """stop sends TERM; the pool finishes the job in hand before the node exits, no KILL."""
    assert multi("start", "alpha").returncode == 0
    spool.submit(multi.jobs, "slow", "2")
    wait_until(lambda: any((multi.jobs / "active").iterdir()), timeout=60)
    stopped = multi("stop", "alpha")
    assert stopped.returncode == 0, stopped.stderr
    assert "SIGKILL" not in stopped.stdout
    assert (multi.jobs / "done" / "slow").exists()


def test_stop_timeout_kills_a_pool_process_ignoring_term(multi: Multi) -> None:
    """A pool process ignoring TERM outlives the stop timeout; its group gets SIGKILL, reported."""
    assert multi("start", "alpha").returncode == 0
    spool.submit(multi.jobs, "stuck", "300 ignore-term")
    wait_until(lambda: any((multi.jobs / "active").iterdir()), timeout=60)
    stopped = multi("stop", "alpha", "--timeout", "1")
    assert stopped.returncode == 0, stopped.stderr
    assert "SIGKILL" in stopped.stdout
    assert not strays(multi.root)
    assert not (multi.root / "run" / "alpha.pid").exists()


def test_job_of_a_killed_node_is_worked_after_the_next_start(multi: Multi) -> None:
    """A job whose pool process was SIGKILLed at the stop timeout is requeued by the next start."""
    assert multi("start", "alpha").returncode == 0
    spool.submit(multi.jobs, "stuck", "0.5 ignore-term")
    wait_until(lambda: any((multi.jobs / "active").iterdir()), timeout=60)
    # TERM is ignored for the job's half second; a 0.1 s timeout kills it first.
    assert "SIGKILL" in multi("stop", "alpha", "--timeout", "0.1").stdout
    assert [p.name[:6] for p in (multi.jobs / "active").iterdir()] == ["stuck@"]
    assert multi("start", "alpha").returncode == 0
    wait_until((multi.jobs / "done" / "stuck").exists, timeout=60)
    assert not list((multi.jobs / "active").iterdir())
    assert "job stuck requeued" in (multi.root / "log" / "alpha.log").read_text()
    assert multi("stop", "alpha").returncode == 0


def test_node_running_without_its_pidfile_is_found_again(multi: Multi) -> None:
    """A node whose stem was SIGKILLed before writing its pidfile: status sees it, start/stop adopt.

    The lost pidfile is made here by deleting it (a real SIGKILL of stem hits
    that window only sometimes); the node is exactly what such a stem leaves.
    """
    assert multi("start", "alpha").returncode == 0
    [pid] = multi.main_pids()
    pidfile = multi.root / "run" / "alpha.pid"
    pidfile.unlink()
    status = multi("status", "alpha")
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"running without a pidfile (pid {pid})" in status.stdout
    started = multi("start", "alpha")
    assert started.returncode == 0 and f"already running (pid {pid})" in started.stdout
    assert multi.main_pids() == [pid]  # no twin
    pidfile.unlink()
    stopped = multi("stop", "alpha")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped" in stopped.stdout
    wait_until(lambda: not strays(multi.root), timeout=30)
    assert not pidfile.exists()


def test_twenty_concurrent_starts_leave_exactly_two_workers(multi: Multi) -> None:
    """Twenty racing `start alpha beta` runs all succeed and start each node exactly once."""
    runs = [multi.popen("start", "alpha", "beta") for _ in range(20)]
    codes = [run.wait(timeout=240) for run in runs]
    for run in runs:
        run.communicate()
    assert codes == [0] * 20
    assert len(multi.main_pids()) == 2
    assert multi("stop", "alpha", "beta").returncode == 0


def test_failing_command_reports_log_tail_and_exit_code(multi: Multi) -> None:
    """A launcher that exits before READY=1: exit 1, its status and log on stderr, no pidfile."""
    multi.env["STEM_WORKER_COMMAND"] = f"{BIN / 'stem-worker'} --no-such-option"
    result = multi("start", "alpha")
    assert result.returncode == 1
    assert "alpha: failed: exit status 2" in result.stderr
    assert "no-such-option" in result.stderr  # from the log tail
    assert not (multi.root / "run" / "alpha.pid").exists()


def test_failed_start_shows_only_its_own_log_lines(multi: Multi) -> None:
    """A failed start's log tail leaves out what earlier runs wrote to the same logfile."""
    first = multi("start", "alpha", "--cmd", "sh -c 'echo first-run; exit 3'")
    assert first.returncode == 1 and "| first-run" in first.stderr
    second = multi("start", "alpha", "--cmd", "sh -c 'echo second-run; exit 3'")
    assert second.returncode == 1
    assert "| second-run" in second.stderr
    assert "first-run" not in second.stderr
    quiet = multi("start", "alpha", "--cmd", "true")
    assert quiet.returncode == 1 and "-run" not in quiet.stderr


def test_huge_timeout_is_a_usage_error_not_a_traceback(multi: Multi) -> None:
    """A timeout too long for poll(2) is one usage error, and the running node is left alone."""
    assert multi("start", "alpha").returncode == 0
    result = multi("stop", "alpha", "--timeout", "1e9")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("Error: STEM_STOP_TIMEOUT is too long")
    assert "Traceback" not in result.stderr
    assert multi("status", "alpha").returncode == 0
    assert multi("stop", "alpha").returncode == 0


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_bad_workdir_is_one_error_naming_it_and_starts_nothing(multi: Multi, kind: str) -> None:
    """A working directory that is missing or a file is one Error naming it, before any spawn."""
    workdir = multi.root / "workdir"
    if kind == "file":
        workdir.write_text("")
    result = multi("start", "alpha", "beta", "--workdir", str(workdir))
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[1].startswith(f"Error: working directory {workdir} ")
    assert "stem-worker" not in result.stderr  # it used to blame the launcher
    assert not list((multi.root / "run").glob("*.pid"))
    assert not strays(multi.root)


@pytest.mark.parametrize("verb", ["start", "status", "stop"])
def test_pidfile_name_too_long_is_a_usage_error(multi: Multi, verb: str) -> None:
    """A pidfile name past NAME_MAX once expanded is one usage error, not an OSError traceback."""
    name = "y" * 200
    result = multi(verb, name, "--pidfile", str(multi.root / "run" / "%n-%n.pid"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"Error: node {name}: a pidfile path component is")
    assert "Traceback" not in result.stderr
    assert not strays(multi.root)


def test_missing_command_exits_5(multi: Multi) -> None:
    """A launcher that is not installed is exit 5 (LSB: not installed)."""
    multi.env["STEM_WORKER_COMMAND"] = str(multi.root / "no-such-launcher")
    result = multi("start", "alpha")
    assert result.returncode == 5
    assert "not found" in result.stderr
    assert not (multi.root / "log" / "alpha.log").exists()  # nothing ran: no empty logfile


def test_directory_as_command_exits_5(multi: Multi) -> None:
    """A directory where the launcher should be is exit 5 naming it, not 'permission denied' (4)."""
    result = multi("start", "alpha", "--cmd", str(multi.root))
    assert result.returncode == 5, result.stderr
    assert f"{multi.root} is a directory, not a program" in result.stderr


def test_command_without_execute_bit_exits_5_like_stem_worker_exec(multi: Multi) -> None:
    """A launcher file with no execute bit is exit 5 (not installed), as `stem worker exec` says."""
    launcher = multi.root / "launcher"
    launcher.write_text("#!/bin/sh\n")
    launcher.chmod(0o644)
    result = multi("start", "alpha", "--cmd", str(launcher))
    assert result.returncode == 5, result.stderr
    assert f"{launcher} is not executable" in result.stderr
    assert not (multi.root / "run" / "alpha.pid").exists()


def test_fifo_at_the_logfile_path_is_named_and_starts_nothing(multi: Multi) -> None:
    """A FIFO where the logfile goes is reported as not a regular file, with the fix."""
    logfile = multi.root / "log" / "alpha.log"
    logfile.parent.mkdir()
    os.mkfifo(logfile)
    result = multi("start", "alpha")
    assert result.returncode == 1, result.stderr
    assert f"logfile {logfile} is not a regular file" in result.stderr
    assert f"rm {logfile}" in result.stderr
    assert not (multi.root / "run" / "alpha.pid").exists()
    assert not strays(multi.root)


def test_pid_directory_under_a_regular_file_is_one_clear_error(multi: Multi) -> None:
    """A pid directory that cannot exist gives one Error line, exit 1, and starts nothing."""
    (multi.root / "plain").write_text("")
    result = multi("start", "alpha", "beta", "--pidfile", str(multi.root / "plain" / "%n.pid"))
    assert result.returncode == 1
    assert result.stderr.count("Error:") == 1
    assert "not a directory" in result.stderr
    assert not strays(multi.root)


PR_CAPBSET_DROP = 24  # <linux/prctl.h>
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_KILL = 1, 2, 5  # <linux/capability.h>


def _dropping(*caps: int) -> Callable[[], None]:
    """A preexec_fn dropping capabilities that let root ignore file modes or signal anyone.

    Dropped from the bounding set, they are missing from the permitted and
    effective sets of the program exec'd next (capabilities(7)), so even root
    is refused like an ordinary user.
    """

    def drop() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in caps:
            if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")

    return drop


def _without_dac(
    multi: Multi, verb: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a verb as if not root for file permissions (root drops CAP_DAC_*; others are already)."""
    return subprocess.run(
        [STEM, "worker", "multi", verb, *multi.base, *args],
        env=multi.env if env is None else env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        preexec_fn=_dropping(CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) if os.geteuid() == 0 else None,
    )


def test_unwritable_pid_directory_is_exit_4_and_starts_nothing(multi: Multi) -> None:
    """Without permission on the pid directory: one Error line, exit 4, no process."""
    piddir = multi.root / "run"
    piddir.mkdir(mode=0o555)
    piddir.chmod(0o555)
    result = _without_dac(multi, "start", "alpha", "beta")
    assert result.returncode == 4, result.stderr
    assert result.stderr.count("Error:") == 1
    assert str(piddir) in result.stderr
    assert not strays(multi.root)
    assert not list(piddir.iterdir())
    # Nothing can run there: stop and status say so instead of failing on the lock.
    stopped = _without_dac(multi, "stop", "alpha", "beta")
    assert stopped.returncode == 0, stopped.stderr
    assert _without_dac(multi, "status", "alpha", "beta").returncode == 3


def test_failing_log_directory_takes_back_the_new_pid_directory(multi: Multi) -> None:
    """When the log directory cannot be made, the pid directory made just before is removed too."""
    locked = multi.root / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    piddir = multi.root / "fresh" / "run"
    env = {
        **multi.env,
        "STEM_PIDFILE": str(piddir / "%n.pid"),
        "STEM_LOGFILE": str(locked / "log" / "%n.log"),
    }
    result = _without_dac(multi, "start", "alpha", env=env)
    assert result.returncode == 4, result.stderr
    assert f"cannot create logfile directory {locked / 'log'}" in result.stderr
    assert not (multi.root / "fresh").exists()
    assert not strays(multi.root)


def test_show_creates_nothing_and_prints_argv_env_and_files(multi: Multi) -> None:
    """show prints argv (with per-node overrides and -- args), env, files; creates no directory."""
    result = multi("show", "alpha", "beta", "-c:alpha", "4", "--", "--extra")
    assert result.returncode == 0, result.stderr
    assert "-c 4 --extra" in result.stdout
    assert "STEM_WORKER_NODE=beta" in result.stdout
    assert "NOTIFY_SOCKET=" in result.stdout
    assert not (multi.root / "run").exists()
    assert not (multi.root / "log").exists()
    doc = json.loads(multi("show", "alpha", "--json", "--", "x").stdout)
    assert doc["nodes"][0]["argv"][-1] == "x"


def test_bad_placeholder_and_bad_signal_are_usage_errors(multi: Multi) -> None:
    """Unknown placeholders and unknown signals exit 2 with an Error line, no traceback."""
    bad = multi("status", "alpha", "--pidfile", str(multi.root / "%z.pid"))
    assert bad.returncode == 2 and "Error:" in bad.stderr and "Traceback" not in bad.stderr
    sig = multi("kill", "alpha", "--signal", "NOPE")
    assert sig.returncode == 2 and "unknown signal" in sig.stderr


def test_another_verbs_option_is_a_usage_error_not_a_worker_option(multi: Multi) -> None:
    """start --rolling names the verb --rolling belongs to (exit 2) and starts nothing."""
    result = multi("start", "alpha", "--rolling")
    assert result.returncode == 2
    assert "--rolling is an option of `stem worker multi restart`, not of start" in result.stderr
    assert not strays(multi.root)
    assert multi("stop", "alpha", "--signal=TERM").returncode == 2
    # After `--` it is the workers' business.
    assert "--rolling" in multi("show", "alpha", "--", "--rolling").stdout


@pytest.mark.parametrize("args", [["--", "--jobs", "/tmp"], ["-c", "4"]])
def test_enable_with_worker_options_is_a_usage_error(multi: Multi, args: list[str]) -> None:
    """enable/disable would drop worker options silently: exit 2, pointing at start."""
    for verb in ("enable", "disable"):
        result = multi(verb, "alpha", *args)
        assert result.returncode == 2, result.stderr
        assert f"{verb} takes node names only" in result.stderr


def test_restart_rolling_and_kill(multi: Multi) -> None:
    """restart --rolling replaces both nodes; kill --whom all ends them and drops pidfiles."""
    assert multi("start", "alpha", "beta").returncode == 0
    before = set(multi.main_pids())
    rolled = multi("restart", "alpha", "beta", "--rolling")
    assert rolled.returncode == 0, rolled.stderr
    after = set(multi.main_pids())
    assert len(after) == 2 and not before & after
    killed = multi("kill", "alpha", "beta", "--whom", "all")
    assert killed.returncode == 0, killed.stderr
    assert killed.stdout.count("SIGKILL") == 2
    wait_until(lambda: not multi.main_pids(), timeout=60)
    assert multi("status", "alpha", "beta").returncode == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_node_of_another_user_is_exit_4_and_not_signalled(multi: Multi) -> None:
    """stop without the right to signal a node's process: exit 4, and the process lives on."""
    other = subprocess.Popen(["sleep", "300"], user=65534)
    try:
        pidfile = multi.root / "run" / "alpha.pid"
        pidfile.parent.mkdir()
        wait_until(lambda: pidfiles.Identity.of_pid(other.pid) is not None, timeout=30)
        wait_until(lambda: "sleep" in Path(f"/proc/{other.pid}/cmdline").read_text(), timeout=30)
        pidfiles.write(pidfile, pidfiles.record_for(other.pid, ready=True))
        result = subprocess.run(
            [STEM, "worker", "multi", "stop", *multi.base, "alpha"],
            env=multi.env,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            preexec_fn=_dropping(CAP_KILL),
        )
        assert result.returncode == 4, result.stdout + result.stderr
        assert "not allowed to signal" in result.stderr
        assert other.poll() is None
        assert pidfile.exists()
    finally:
        other.kill()
        other.wait()


def test_pidfile_planted_by_another_user_does_not_get_our_process_killed(multi: Multi) -> None:
    """stop refuses a pidfile owned by another user that names one of our processes (exit 1)."""
    ours = subprocess.Popen(["sleep", "300"])
    try:
        pidfile = multi.root / "run" / "alpha.pid"
        pidfile.parent.mkdir(mode=0o1777)
        pidfile.parent.chmod(0o1777)  # a shared, sticky directory such as /tmp
        wait_until(lambda: "sleep" in Path(f"/proc/{ours.pid}/cmdline").read_text(), timeout=30)
        pidfiles.write(pidfile, pidfiles.record_for(ours.pid, ready=True))
        os.chown(pidfile, 65534, 65534)
        result = multi("stop", "alpha")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "belongs to uid 65534" in result.stderr
        assert "Traceback" not in result.stderr
        assert ours.poll() is None
        assert multi("status", "alpha").returncode == 4
    finally:
        ours.kill()
        ours.wait()


@contextlib.contextmanager
def interrupted_start(
    multi: Multi, *args: str, code: int | tuple[int, ...] = 130
) -> Iterator[subprocess.Popen[str]]:
    """Run ``start ARGS`` for the block to interrupt; then: exit ``code``, no pidfile, no node."""
    run = multi.popen("start", *args)
    try:
        yield run
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode in (code if isinstance(code, tuple) else (code,)), err
    assert not list((multi.root / "run").glob("*.pid"))
    wait_until(lambda: not strays(multi.root), timeout=30)


def test_interrupted_start_leaves_no_node_and_no_pidfile(multi: Multi) -> None:
    """Ctrl-C while start waits for READY=1 kills the half-started node and drops its pidfile."""
    with interrupted_start(multi, "alpha", "--ready-delay", "300") as run:  # 130: 128 + SIGINT
        wait_until((multi.root / "run" / "alpha.pid").exists, timeout=60)
        run.send_signal(signal.SIGINT)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_terminated_start_leaves_no_node_and_no_pidfile(multi: Multi, signum: int) -> None:
    """TERM or HUP while start waits for READY=1 cleans up like Ctrl-C and exits 128 + signal."""
    with interrupted_start(multi, "alpha", "--ready-delay", "300", code=128 + signum) as run:
        wait_until((multi.root / "run" / "alpha.pid").exists, timeout=60)
        run.send_signal(signum)


def test_signal_while_spawning_leaves_no_node_behind(multi: Multi) -> None:
    """Ctrl-C while start is still spawning (some nodes up, others not yet) kills every spawned one.

    A node spawned but not yet recorded for cleanup when the signal lands
    used to keep running with no pidfile (a run in two left one behind).
    """
    run_dir = multi.root / "run"
    with interrupted_start(multi, "12", "--ready-delay", "300") as run:
        wait_until(lambda: run_dir.is_dir() and any(run_dir.glob("*.pid")), timeout=60)
        run.send_signal(signal.SIGINT)


# What `stem` does, with a signal arriving while it imports the CLI (for a
# container's PID 1 that signal used to be dropped: no default action).
EARLY_SIGNAL = """
import os, signal, sys
from stem_systemd import entry
entry.record_from_now()
os.kill(os.getpid(), int(sys.argv[1]))
sys.argv[1:] = sys.argv[2:]
entry.run_cli()
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_while_the_cli_loads_is_acted_on(multi: Multi, signum: int) -> None:
    """A signal before the CLI is loaded is kept: exit 128 + signal, nothing started, no trace."""
    result = subprocess.run(
        [sys.executable, "-c", EARLY_SIGNAL, str(signum), "worker", "multi", "start",
         *multi.base, "alpha"],
        env=multi.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 128 + signum, result.stderr
    assert "Traceback" not in result.stderr
    assert not (multi.root / "run" / "alpha.pid").exists()
    assert not strays(multi.root)


@pytest.mark.parametrize(
    "pair", [(signal.SIGTERM, signal.SIGHUP), (signal.SIGINT, signal.SIGHUP)], ids=str
)
def test_two_signals_at_once_still_clean_up(multi: Multi, pair: tuple[int, int]) -> None:
    """TERM and HUP together (a closing terminal, SendSIGHUP=) still kill every node.

    Both land in one poll(2): their handlers ran back to back, and the second
    exception left start before its cleanup, with all 12 nodes running.
    """
    run_dir = multi.root / "run"
    codes = tuple(128 + s for s in pair)  # the first handled decides
    with interrupted_start(multi, "12", "--ready-delay", "300", code=codes) as run:
        wait_until(lambda: len(list(run_dir.glob("*.pid"))) == 12, timeout=60)
        for signum in pair:
            os.kill(run.pid, signum)


def test_second_ctrl_c_does_not_cut_the_cleanup_short(multi: Multi) -> None:
    """A second Ctrl-C soon after the first still lets start kill every node, drop every pidfile."""
    run_dir = multi.root / "run"
    with interrupted_start(multi, "12", "--ready-delay", "300") as run:
        wait_until(lambda: len(list(run_dir.glob("*.pid"))) == 12, timeout=60)
        run.send_signal(signal.SIGINT)
        wait_until(lambda: len(list(run_dir.glob("*.pid"))) < 12, timeout=60, pause=0.001)
        run.send_signal(signal.SIGINT)
