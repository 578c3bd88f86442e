"""The foreground supervisor on the host, with real processes: it runs as a subreaper.

Each test runs the supervisor in its own process (it installs signal handlers
and becomes a subreaper, which the pytest process must not) over a small
notify-speaking fake launcher, and leaves no process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from stem_systemd import pidfiles, procs
from stem_systemd.notify import NotifyListener
from tests.helpers import wait_until

DRIVER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from stem_systemd.nodes import NodeSpec
    from stem_systemd.supervisor import Supervisor

    cfg = json.loads(sys.argv[1])
    nodes = [
        NodeSpec(
            name=name,
            index=i + 1,
            command=tuple(cfg["command"]),
            args=(),
            pidfile=Path(cfg["run"]) / f"{name}.pid",
            logfile=str(Path(cfg["log"]) / f"{name}%I.log"),
        )
        for i, name in enumerate(cfg["nodes"])
    ]
    sup = Supervisor(
        nodes,
        start_timeout=20,
        stop_timeout=cfg["stop_timeout"],
        restart_limit=cfg["restart_limit"],
        backoff_first=0.05,
        backoff_max=0.2,
    )
    sys.exit(sup.run())
    """
)

# A launcher that speaks sd_notify: READY=1, then works until TERM; modes
# add the behaviours under test.
FAKE = textwrap.dedent(
    """
    import os, signal, socket, sys, time
    from pathlib import Path

    out = Path(os.environ["STEM_TEST_DIR"])
    node = os.environ["STEM_WORKER_NODE"]
    mode = sys.argv[1]

    def notify(text):
        addr = os.environ["NOTIFY_SOCKET"]
        if addr.startswith("@"):
            addr = "\\0" + addr[1:]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(text.encode(), addr)

    stopping = False
    def on_term(signum, frame):
        global stopping
        stopping = True
    signal.signal(signal.SIGTERM, signal.SIG_IGN if mode == "stubborn" else on_term)

    if mode == "orphan":
        if os.fork() == 0:
            if os.fork() == 0:
                (out / f"{node}.grandchild").write_text(str(os.getpid()))
                while not (out / "release").exists():
                    time.sleep(0.05)
                os._exit(0)
            os._exit(0)
        os.wait()

    while mode == "never":  # never ready
        time.sleep(0.05)
    if mode == "fail":  # exits before READY=1
        print("cannot reach the broker", flush=True)
        sys.exit(2)
    notify("READY=1\\nSTATUS=fake worker up")
    if mode == "crash":
        sys.exit(3)
    while not stopping:
        time.sleep(0.05)
        notify("WATCHDOG=1")
    # Warm shutdown: the in-flight job completes before the exit.
    time.sleep(0.3)
    (out / f"{node}.job-done").touch()
    sys.exit(0)
    """
)


@dataclass
class Run:
    """A supervisor under test and its directories."""

    proc: subprocess.Popen[bytes]
    tmp: Path
    run: Path
    stderr: Path

    def pidfile(self, node: str) -> Path:
        return self.run / f"{node}.pid"

    def ready_pid(self, node: str) -> int | None:
        """The node's main PID once its pidfile says ready=1."""
        try:
            record = pidfiles.read(self.pidfile(node))
        except pidfiles.PidfileError:
            return None
        return record.pid if record is not None and record.ready else None

    def wait_ready(self, node: str, other_than: int | None = None) -> int:
        """Poll until the node is ready under a PID other than ``other_than``; that PID."""

        def fresh() -> int:
            pid = self.ready_pid(node)
            return pid if pid is not None and pid != other_than else 0

        return wait_until(fresh, timeout=30)

    def log(self) -> str:
        return self.stderr.read_text()

    def wait(self) -> int:
        return self.proc.wait(timeout=60)


def _kill_marked(marker: str) -> None:
    """SIGKILL every process whose environment carries this test's marker."""
    needle = f"STEM_TEST_DIR={marker}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                env = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry), signal.SIGKILL)


Start = Callable[..., "Run"]


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Start]:
    """Start a supervisor over the fake launcher; kill everything left at the end."""
    runs: list[Run] = []
    fake = tmp_path / "fake_worker.py"
    fake.write_text(FAKE)

    def start(
        nodes: list[str],
        *,
        mode: str = "normal",
        stop_timeout: float = 20,
        restart_limit: int = 5,
        env: dict[str, str] | None = None,
        cli: bool = False,
    ) -> Run:
        command = [sys.executable, str(fake), mode]
        cfg = {
            "nodes": nodes,
            "command": command,
            "run": str(tmp_path / "run"),
            "log": str(tmp_path / "log"),
            "stop_timeout": stop_timeout,
            "restart_limit": restart_limit,
        }
        argv = [sys.executable, "-c", DRIVER, json.dumps(cfg)]
        if cli:  # the same through `stem worker multi start --foreground`
            argv = [
                *(sys.executable, "-m", "stem_systemd", "worker", "multi", "start"),
                *("--foreground", "--backend=pidfile", f"--stop-timeout={stop_timeout}"),
                f"--cmd={shlex.join(command)}",
                f"--pidfile={tmp_path}/run/%n.pid",
                f"--logfile={tmp_path}/log/%n%I.log",
                *nodes,
            ]
        stderr = tmp_path / f"supervisor{len(runs)}.err"
        with stderr.open("wb") as err:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, "STEM_TEST_DIR": str(tmp_path), **(env or {})},
            )
        run = Run(proc, tmp_path, tmp_path / "run", stderr)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    _kill_marked(str(tmp_path))


def _stopped_cleanly(run: Run) -> int:
    run.proc.send_signal(signal.SIGTERM)
    return run.wait()


def test_clean_stop_lets_in_flight_jobs_finish_and_exits_zero(supervise: Start) -> None:
    """TERM stops every node warmly (their in-flight jobs complete), removes pidfiles, exits 0."""
    run = supervise(["alpha", "beta"])
    run.wait_ready("alpha")
    run.wait_ready("beta")
    assert _stopped_cleanly(run) == 0, run.log()
    assert (run.tmp / "alpha.job-done").exists() and (run.tmp / "beta.job-done").exists()
    assert not run.pidfile("alpha").exists() and not run.pidfile("beta").exists()
    assert "alpha: stopped" in run.log()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_while_starting_ends_the_start_at_once(supervise: Start, signum: int) -> None:
    """TERM/INT while nodes are not ready yet aborts them now, not at the start timeout."""
    run = supervise(["alpha", "beta"], mode="never")
    wait_until(lambda: run.pidfile("alpha").exists() and run.pidfile("beta").exists(), timeout=30)
    run.proc.send_signal(signum)
    assert run.wait() == 1
    log = run.log()
    assert "alpha: failed: start interrupted" in log, log
    assert "not ready before the start timeout" not in log and "restarting" not in log
    assert not run.pidfile("alpha").exists() and not run.pidfile("beta").exists()


def test_node_failing_at_the_first_start_ends_the_run_without_restart_talk(
    supervise: Start,
) -> None:
    """A node failing before READY=1 at the first start: exit 1, its reason, no "restarting"."""
    run = supervise(["alpha", "beta"], mode="fail")
    assert run.wait() == 1
    log = run.log()
    assert "alpha: failed: exit status 2 before it was ready" in log, log
    assert "cannot reach the broker" in log
    assert "restarting" not in log, log
    assert "not every node started; stopping the others" in log


def test_node_killed_by_sigkill_is_restarted(supervise: Start) -> None:
    """A node whose main process dies unexpectedly is started again under a new PID."""
    run = supervise(["alpha"])
    first = run.wait_ready("alpha")
    os.kill(first, signal.SIGKILL)
    second = run.wait_ready("alpha", other_than=first)
    assert procs.read_stat(second) is not None
    assert "alpha: exited unexpectedly (killed by SIGKILL)" in run.log()
    assert _stopped_cleanly(run) == 0, run.log()


def test_orphaned_grandchild_is_adopted_and_reaped(supervise: Start) -> None:
    """A node's orphaned grandchild is adopted by the subreaper and reaped when it exits."""
    run = supervise(["alpha"], mode="orphan")
    run.wait_ready("alpha")
    grandchild = int(wait_until(lambda: _read(run.tmp / "alpha.grandchild") or "", timeout=30))
    stat = procs.read_stat(grandchild)
    assert stat is not None and stat.ppid == run.proc.pid
    (run.tmp / "release").touch()
    # Reaped: the PID is gone, not lingering as a zombie (state Z).
    wait_until(lambda: procs.read_stat(grandchild) is None, timeout=30)
    assert _stopped_cleanly(run) == 0, run.log()


def test_node_ignoring_term_is_killed_and_named(supervise: Start) -> None:
    """A node that outlives the stop timeout gets KILL, is named, and the exit is non-zero."""
    run = supervise(["alpha"], mode="stubborn", stop_timeout=1)
    pid = run.wait_ready("alpha")
    assert _stopped_cleanly(run) == 1
    assert "alpha: killed: still running after the 1 s stop timeout" in run.log()
    assert procs.read_stat(pid) is None
    assert not run.pidfile("alpha").exists()


def test_restart_limit_stops_everything_and_fails(supervise: Start) -> None:
    """A node that keeps dying is restarted up to the limit, then the supervisor exits 1."""
    run = supervise(["alpha"], mode="crash", restart_limit=2)
    assert run.wait() == 1
    log = run.log()
    assert log.count("alpha: exited unexpectedly (exit status 3)") == 3, log
    assert "giving up" in log


def test_stale_pidfile_of_an_earlier_run_is_replaced(supervise: Start, tmp_path: Path) -> None:
    """A pidfile naming a PID that is not the node's (here: an ancestor) is stale at start."""
    (tmp_path / "run").mkdir()
    stale = pidfiles.record_for(os.getpid(), ready=True)  # a live process, but not a node
    pidfiles.write(tmp_path / "run" / "alpha.pid", stale)
    run = supervise(["alpha"])
    pid = run.wait_ready("alpha", other_than=os.getpid())
    assert procs.read_stat(pid) is not None
    assert "alpha: stale pidfile removed" in run.log()
    assert _stopped_cleanly(run) == 0, run.log()


def test_live_node_of_another_manager_is_not_started_twice(
    supervise: Start, tmp_path: Path
) -> None:
    """A pidfile whose process is alive and verified makes the supervisor refuse, exit 1."""
    (tmp_path / "run").mkdir()
    other = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"],
        env={**os.environ, "STEM_TEST_DIR": str(tmp_path)},
    )
    try:
        wait_until(lambda: pidfiles.Identity.of_pid(other.pid), timeout=30)
        pidfiles.write(tmp_path / "run" / "alpha.pid", pidfiles.record_for(other.pid, ready=True))
        run = supervise(["alpha"])
        assert run.wait() == 1
        assert "not starting a twin" in run.log()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def _read(path: Path) -> str | None:
    try:
        return path.read_text() or None
    except FileNotFoundError:
        return None


def test_supervisor_notifies_its_own_manager(supervise: Start) -> None:
    """Under a manager with NOTIFY_SOCKET, the supervisor says READY=1, then STOPPING=1."""
    with NotifyListener() as manager:
        run = supervise(["alpha"], env={"NOTIFY_SOCKET": manager.address})

        def supervisor_ready() -> bool:
            manager.drain()
            return manager.is_ready(run.proc.pid)

        wait_until(supervisor_ready, timeout=30)
        assert run.ready_pid("alpha") is not None
        assert _stopped_cleanly(run) == 0, run.log()
        manager.drain()  # it has exited: everything it sent is queued
        assert manager.states[run.proc.pid].get("STOPPING") == "1"


def test_stem_worker_multi_start_foreground(supervise: Start) -> None:
    """`stem worker multi start --foreground` runs the supervisor: nodes ready, TERM exits 0."""
    run = supervise(["alpha", "beta"], cli=True)
    run.wait_ready("alpha")
    run.wait_ready("beta")
    assert _stopped_cleanly(run) == 0, run.log()
    assert (run.tmp / "alpha.job-done").exists() and (run.tmp / "beta.job-done").exists()


def test_stop_beside_a_running_supervisor_names_it(supervise: Start) -> None:
    """`stop` of a node a --foreground supervisor holds: exit 1, and the hint says to stop that."""
    run = supervise(["alpha"], cli=True)
    run.wait_ready("alpha")
    other = subprocess.run(
        [
            *(sys.executable, "-m", "stem_systemd", "worker", "multi", "stop"),
            *("--backend=pidfile", "--timeout=1", "--env-file=/dev/null"),
            f"--pidfile={run.tmp}/run/%n.pid",
            f"--logfile={run.tmp}/log/%n%I.log",
            "alpha",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert other.returncode == 1, other.stdout + other.stderr
    report = other.stdout + other.stderr
    assert "another stem run holds the node's lock" in report
    assert "supervisor" in report and "docker stop" in report
    assert _stopped_cleanly(run) == 0, run.log()
