"""The unit files themselves, driven by plain systemctl in the shared systemd container.

No `stem worker multi` here: these are the promises of units/ to an operator
who only knows systemctl and journalctl. Test-only settings (a node's worker
arguments, a short TimeoutStopSec or WatchdogSec, the launcher's test hooks)
go into runtime drop-ins under /run/systemd/system, which the fixture removes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import pytest

from tests.helpers import wait_until
from tests.integration.conftest import Container

DROPIN = "60-test.conf"
SPOOL = "/var/lib/stem/units-test"
NAMES = ["eu-west", "my worker", "köln", "w1@host"]

CLEAN = (
    "systemctl stop 'stem-worker@*' stem-scheduler.service; "
    "systemctl disable -q 'stem-worker@alpha.service' stem-scheduler.service; "
    f"rm -f /run/systemd/system/stem-worker@*.service.d/{DROPIN} "
    f"/run/systemd/system/stem-scheduler.service.d/{DROPIN}; "
    "rmdir /run/systemd/system/*.service.d 2>/dev/null; "
    f"rm -rf {SPOOL}; "
    "systemctl daemon-reload; systemctl reset-failed; true"
)


class Units:
    """systemctl, journalctl and drop-ins inside the container."""

    def __init__(self, box: Container) -> None:
        self.box = box

    def unit(self, node: str) -> str:
        """The instance unit of a node, escaped by the real systemd-escape."""
        out = self.box.exec(["systemd-escape", "--template=stem-worker@.service", node]).stdout
        return out.strip()

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.box.systemctl("show", unit, "-p", ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def prop(self, unit: str, name: str) -> str:
        return self.show(unit, name)[name]

    def dropin(self, unit: str, text: str) -> None:
        """A runtime drop-in for ``unit``, then daemon-reload."""
        self.box.write(f"/run/systemd/system/{unit}.d/{DROPIN}", text)
        self.box.systemctl("daemon-reload")

    def journal(self, unit: str) -> str:
        argv = ["journalctl", "-u", unit, "-o", "cat", "--no-pager"]
        return self.box.exec(argv).stdout

    def main_pid(self, unit: str) -> int:
        return int(self.prop(unit, "MainPID"))

    def argv_of(self, pid: int) -> list[str]:
        return self.box.exec(["cat", f"/proc/{pid}/cmdline"]).stdout.split("\0")[:-1]

    def env_of(self, pid: int) -> dict[str, str]:
        raw = self.box.exec(["cat", f"/proc/{pid}/environ"]).stdout.split("\0")[:-1]
        return dict(item.split("=", 1) for item in raw)

    def alive(self, pid: int) -> bool:
        return self.box.exec(["test", "-d", f"/proc/{pid}"], check=False).returncode == 0

    def spool(self) -> None:
        """An empty job spool owned by stem (under StateDirectory=, writable despite
        ProtectSystem=strict)."""
        self.box.exec(["install", "-d", "-o", "stem", "-g", "stem", SPOOL])

    def submit(self, name: str, content: str) -> None:
        """A job, written as a dot file then renamed (the spool's rule)."""
        dot = f"{SPOOL}/.{name}"
        self.box.write(dot, content + "\n")
        self.box.exec(["chown", "stem:stem", dot])
        self.box.exec(["mv", dot, f"{SPOOL}/{name}"])

    def claimed_by(self, name: str) -> int | None:
        """The pool process PID working on job ``name`` (from active/<name>@<pid>)."""
        out = self.box.exec(["ls", f"{SPOOL}/active"], check=False).stdout
        for entry in out.split():
            if entry.startswith(f"{name}@"):
                return int(entry.rsplit("@", 1)[1])
        return None


def args_dropin(*args: str, extra: str = "") -> str:
    """A drop-in giving the node worker arguments, as the systemd backend's does."""
    value = f"STEM_WORKER_ARGS={shlex.join(args)}".replace("%", "%%")
    return f'[Service]\nEnvironment="{value}"\n{extra}'


@pytest.fixture
def units(systemd_container: Container) -> Iterator[Units]:
    """The shared container with no stem unit running and no test drop-in, before and after."""
    systemd_container.exec(["sh", "-c", CLEAN])
    yield Units(systemd_container)
    systemd_container.exec(["sh", "-c", CLEAN])


def test_enable_now_is_active_after_ready_with_status_text(units: Units) -> None:
    """Type=notify: activating until READY=1, then active; STATUS= shows in systemctl status."""
    slow = "stem-worker@slow.service"
    units.dropin(slow, args_dropin("--ready-delay", "4"))
    units.box.systemctl("start", "--no-block", slow)
    # The launcher waits 4 s before READY=1: systemd must not call it started yet.
    wait_until(lambda: units.main_pid(slow) > 0, timeout=30, pause=0.1)
    assert units.show(slow, "ActiveState", "SubState") == {
        "ActiveState": "activating",
        "SubState": "start",
    }
    wait_until(lambda: units.prop(slow, "ActiveState") == "active", timeout=60, pause=0.2)

    units.box.systemctl("enable", "--now", "stem-worker@alpha")
    show = units.show("stem-worker@alpha.service", "ActiveState", "SubState", "UnitFileState")
    assert show == {"ActiveState": "active", "SubState": "running", "UnitFileState": "enabled"}
    status = units.box.systemctl("status", "stem-worker@alpha", check=False).stdout
    assert re.search(r'Status: "node alpha: 1/1 pool processes up', status), status
    assert "Stem worker alpha" in status

    # The launcher is the main PID, running as stem, with no shell or wrapper above it.
    pid = units.main_pid("stem-worker@alpha.service")
    assert units.argv_of(pid)[1].endswith("/stem-worker")
    assert units.box.exec(["ps", "-o", "user=,ppid=", "-p", str(pid)]).stdout.split() == [
        "stem",
        "1",
    ]
    env = units.env_of(pid)
    assert env["STEM_WORKER_NODE"] == "alpha"
    assert "STEM_WORKER_LOGFILE" not in env  # logs go to the journal by default
    assert "alpha[" in units.journal("stem-worker@alpha.service")


def test_stop_lets_the_in_flight_job_complete(units: Units) -> None:
    """systemctl stop is a warm shutdown: a job in hand finishes, the unit ends cleanly."""
    unit = "stem-worker@alpha.service"
    units.spool()
    units.dropin(unit, args_dropin("--jobs", SPOOL))
    units.box.systemctl("start", unit)
    units.submit("job1", "3")
    wait_until(lambda: units.claimed_by("job1"), timeout=30, pause=0.1)

    units.box.systemctl("stop", unit)
    assert units.show(unit, "ActiveState", "Result") == {
        "ActiveState": "inactive",
        "Result": "success",
    }
    done = units.box.exec(["cat", f"{SPOOL}/done/job1"]).stdout
    assert "result: ok" in done


def test_term_ignoring_worker_is_killed_with_its_cgroup(units: Units) -> None:
    """A pool process ignoring TERM is SIGKILLed with its cgroup at TimeoutStopSec (timeout)."""
    unit = "stem-worker@stubborn.service"
    units.spool()
    units.dropin(unit, args_dropin("--jobs", SPOOL, extra="TimeoutStopSec=3\n"))
    units.box.systemctl("start", unit)
    main = units.main_pid(unit)
    units.submit("long", "600 ignore-term")
    pool = wait_until(lambda: units.claimed_by("long"), timeout=30, pause=0.1)
    assert pool is not None

    units.box.systemctl("stop", unit, check=False)  # exits non-zero: the stop timed out
    assert units.show(unit, "ActiveState", "Result") == {
        "ActiveState": "failed",
        "Result": "timeout",
    }
    assert not units.alive(main) and not units.alive(pool)
    journal = units.journal(unit)
    assert "State 'stop-sigterm' timed out. Killing." in journal
    assert f"Killing process {pool} " in journal  # the pool process too: the whole cgroup


def test_hung_loop_is_restarted_by_the_watchdog(units: Units) -> None:
    """A main loop that stops pinging WATCHDOG=1 is killed at WatchdogSec and restarted."""
    unit = "stem-worker@hang.service"
    units.dropin(
        unit, "[Service]\nWatchdogSec=3\nEnvironment=STEM_WORKER_TEST_HOOKS=1\nRestartSec=1\n"
    )
    units.box.systemctl("start", unit)
    old = units.main_pid(unit)
    units.box.exec(["kill", "-USR1", str(old)])  # test hook: the supervising loop hangs

    def restarted() -> bool:
        show = units.show(unit, "NRestarts", "ActiveState", "MainPID")
        return (
            int(show["NRestarts"]) >= 1
            and show["ActiveState"] == "active"
            and int(show["MainPID"]) not in (0, old)
        )

    wait_until(restarted, timeout=60, pause=0.3)
    assert "Watchdog timeout" in units.journal(unit)


def test_node_names_round_trip_through_systemctl_and_journal(units: Units) -> None:
    """eu-west, 'my worker', köln, w1@host: escaped instances, unescaped node, status and logs."""
    escaped = {name: units.unit(name) for name in NAMES}
    assert escaped["my worker"] == r"stem-worker@my\x20worker.service"
    units.box.systemctl("start", *escaped.values())
    listed = units.box.systemctl("list-units", "--plain", "--no-legend", "stem-worker@*").stdout
    for name, unit in escaped.items():
        assert unit in listed
        show = units.show(unit, "ActiveState", "StatusText", "Description")
        assert show["ActiveState"] == "active"
        assert show["StatusText"].startswith(f"node {name}: ")
        assert show["Description"] == f"Stem worker {name}"
        pid = units.main_pid(unit)
        assert units.env_of(pid)["STEM_WORKER_NODE"] == name
        assert f"{name}[{pid}] ready" in units.journal(unit)
    units.box.systemctl("stop", *escaped.values())


def test_scheduler_unit_runs_the_configured_command(units: Units) -> None:
    """stem-scheduler.service runs STEM_SCHEDULER_COMMAND as its main PID, ready via sd_notify."""
    unit = "stem-scheduler.service"
    units.box.systemctl("enable", "--now", unit)
    show = units.show(unit, "ActiveState", "SubState", "StatusText", "UnitFileState")
    assert (show["ActiveState"], show["SubState"]) == ("active", "running")
    assert show["StatusText"].startswith("scheduler scheduler: ")
    assert show["UnitFileState"] == "enabled"
    assert units.argv_of(units.main_pid(unit))[1].endswith("/stem-scheduler")

    units.dropin(
        unit,
        '[Service]\nEnvironment="STEM_SCHEDULER_COMMAND=stem-scheduler --name nightly'
        ' --interval 0.5"\n',
    )
    units.box.systemctl("restart", unit)
    assert units.prop(unit, "StatusText").startswith("scheduler nightly: ")
    units.box.systemctl("stop", unit)
    assert units.show(unit, "ActiveState", "Result") == {
        "ActiveState": "inactive",
        "Result": "success",
    }


@pytest.mark.parametrize("unit", ["stem-worker@alpha.service", "stem-scheduler.service"])
def test_security_exposure_at_most_1_5(units: Units, unit: str) -> None:
    """systemd-analyze security rates the hardened units at an exposure of 1.5 or less."""
    out = units.box.exec(["systemd-analyze", "security", "--no-pager", unit]).stdout
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out)
    assert match, out[-2000:]
    assert float(match.group(1)) <= 1.5, out


NETPROBE = """\
import os, socket
from sdnotify import SystemdNotifier
done = []
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    with socket.socket(family) as server:
        try:
            server.bind((host, 0))
        except OSError:
            continue  # no ::1 in this container
        server.listen()
        with socket.create_connection(server.getsockname()[:2]) as client:
            peer, _ = server.accept()
            client.sendall(b"ping")
            done.append(peer.recv(4).decode())
            peer.close()
SystemdNotifier().notify("READY=1\\nSTATUS=net " + " ".join(done))
os.pause()
"""


def test_hardened_worker_still_has_network_and_python(units: Units) -> None:
    """Under the full hardening a Python launcher can open TCP sockets (loopback here)."""
    units.box.write("/usr/local/lib/stem-test/netprobe.py", NETPROBE)
    unit = "stem-worker@netprobe.service"
    units.dropin(
        unit,
        '[Service]\nEnvironment="STEM_WORKER_COMMAND=/opt/stem/bin/python3'
        ' /usr/local/lib/stem-test/netprobe.py"\n',
    )
    try:
        units.box.systemctl("start", unit)
        assert units.prop(unit, "StatusText").startswith("net ping")
    finally:
        units.box.exec(["rm", "-rf", "/usr/local/lib/stem-test"])


def test_missing_command_fails_once_with_its_reason_in_the_journal(units: Units) -> None:
    """A missing STEM_WORKER_COMMAND: exit 5, the Error line in the journal, no restart loop."""
    unit = "stem-worker@broken.service"
    units.dropin(unit, '[Service]\nEnvironment="STEM_WORKER_COMMAND=/nonexistent/stem-worker"\n')
    assert units.box.systemctl("start", unit, check=False).returncode != 0
    show = units.show(unit, "ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert show == {
        "ActiveState": "failed",
        "Result": "exit-code",
        "ExecMainStatus": "5",
        "NRestarts": "0",  # RestartPreventExitStatus=2 5: retrying cannot help
    }
    assert "Error: worker command not found: /nonexistent/stem-worker" in units.journal(unit)
