"""The SysV init scripts in a real Debian container without systemd (network none).

The image (tests/integration/images/sysv) has the package from the wheelhouse,
/etc/init.d/stem-worker and stem-scheduler, /etc/default/stem and a `stem`
user; PID 1 only reaps, like init on a SysV host. Every action goes through
Debian's ``service`` wrapper unless the test is about running the script
directly from another directory.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BASE = "stem-testbed-base:bookworm"
IMAGE = "stem-test-sysv:latest"

DEFAULTS = """\
STEMD_NODES="alpha beta"
STEMD_COMMAND="stem-worker --jobs /var/lib/stem/jobs/%n"
STEMD_PIDFILE="/run/stem/%n.pid"
STEMD_LOGFILE="/var/log/stem/%n%I.log"
STEMD_USER="stem"
STEMD_GROUP="stem"
STEMD_WORKDIR="/var/lib/stem"
STEMD_STOP_TIMEOUT="20"
"""


def docker(*args: str, check: bool = True, timeout: float = 300, stdin: str | None = None) -> str:
    """Run the docker CLI; its stdout (stderr too on failure, in the assertion)."""
    proc = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return proc.stdout


def build_image(tag: str, dockerfile: str) -> None:
    """Build offline from the repository root (.dockerignore keeps the context small)."""
    docker(
        "build", "--network", "none", "-q", "-t", tag,
        "--build-arg", f"BASE={BASE}", "-f", str(ROOT / dockerfile), str(ROOT),
    )  # fmt: skip


class Box:
    """One running container and the commands the tests send into it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def sh(
        self, script: str, *, workdir: str = "/", stdin: str | None = None, user: str = "root"
    ) -> tuple[int, str]:
        """Run a shell command line inside (as root by default); (exit code, stdout + stderr)."""
        proc = subprocess.run(
            ["docker", "exec", "-i", "-u", user, "-w", workdir, self.name, "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            input=stdin,
            check=False,
        )
        return proc.returncode, proc.stdout + proc.stderr

    def main_pids(self) -> set[int]:
        """PIDs of running node main processes (session leaders running stem-worker)."""
        out = self.ok("ps -eo pid=,sid=,args=")
        return {
            int(pid)
            for pid, sid, args in (line.split(None, 2) for line in out.splitlines())
            if pid == sid and "stem-worker" in args
        }

    def ok(self, script: str, **kw: str) -> str:
        code, out = self.sh(script, **kw)
        assert code == 0, f"{script}: exit {code}\n{out}"
        return out

    def service(self, name: str, action: str) -> tuple[int, str]:
        return self.sh(f"service {name} {action}")

    def pid(self, pidfile: str) -> int | None:
        code, out = self.sh(f"head -n 1 {pidfile}")
        return int(out.strip()) if code == 0 and out.strip().isdigit() else None

    def argv(self, pid: int) -> list[str]:
        return self.ok(f"cat /proc/{pid}/cmdline").split("\0")[:-1]


@pytest.fixture(scope="module")
def image(testbed_ready: None) -> str:
    """The SysV test image, built offline from this work tree's wheel."""
    build_image(IMAGE, "tests/integration/images/sysv/Dockerfile")
    return IMAGE


@pytest.fixture
def box(image: str) -> Iterator[Box]:
    """A fresh container (network none) with the test defaults installed; removed after."""
    name = f"stem-sysv-{uuid.uuid4().hex[:8]}"
    docker("run", "-d", "--network", "none", "--name", name, image)
    try:
        b = Box(name)
        b.ok("cat > /etc/default/stem", stdin=DEFAULTS)
        yield b
    finally:
        docker("rm", "-f", name, check=False)


def test_service_start_status_stop_restart_two_nodes(box: Box) -> None:
    """`service stem-worker start|status|stop|restart` runs alpha and beta as the stem user."""
    code, out = box.service("stem-worker", "start")
    assert code == 0, out
    code, out = box.service("stem-worker", "status")
    assert code == 0, out
    assert "alpha" in out and "beta" in out
    pids = {node: box.pid(f"/run/stem/{node}.pid") for node in ("alpha", "beta")}
    for node, pid in pids.items():
        assert pid is not None
        assert box.ok(f"ps -o user=,group= -p {pid}").split() == ["stem", "stem"]
        assert box.ok(f"stat -c %U:%G /run/stem/{node}.pid").strip() == "stem:stem"
        box.ok(f"test -s /var/log/stem/{node}.log")
    # A second start starts no twin.
    code, out = box.service("stem-worker", "start")
    assert code == 0, out
    assert {node: box.pid(f"/run/stem/{node}.pid") for node in pids} == pids
    assert box.main_pids() == set(pids.values())

    code, out = box.service("stem-worker", "restart")
    assert code == 0, out
    restarted = {node: box.pid(f"/run/stem/{node}.pid") for node in pids}
    assert all(restarted[n] not in (None, pids[n]) for n in pids)

    code, out = box.service("stem-worker", "stop")
    assert code == 0, out
    box.ok("test ! -e /run/stem/alpha.pid && test ! -e /run/stem/beta.pid")
    assert (
        box.sh("pgrep -f '[s]tem-worker --jobs'")[0] == 1
    )  # no process left (the brackets: not pgrep's own shell)
    code, out = box.service("stem-worker", "status")
    assert code == 3, out
    code, out = box.service("stem-worker", "stop")  # stopping a stopped service succeeds
    assert code == 0, out


def test_status_dead_with_pidfile_then_kill_action(box: Box) -> None:
    """A node killed behind the script's back is 'dead' (1) once, then 'not running'; kill works."""
    assert box.service("stem-worker", "start")[0] == 0
    alpha = box.pid("/run/stem/alpha.pid")
    box.ok(f"kill -KILL {alpha}")
    wait_until(lambda: box.sh(f"test -e /proc/{alpha}")[0] != 0, timeout=30)
    code, out = box.service("stem-worker", "status")
    assert code == 1, out
    code, out = box.service("stem-worker", "kill")
    assert code == 0, out
    code, out = box.service("stem-worker", "status")
    assert code == 3, out


def test_workdir_and_values_with_spaces_from_another_directory(box: Box) -> None:
    """Spaces in the defaults stay one argument; status and stop work from any directory."""
    box.ok("mkdir -p '/srv/stem data' && chown stem:stem '/srv/stem data'")
    box.ok(
        "cat >> /etc/default/stem",
        stdin=(
            'STEMD_WORKDIR="/srv/stem data"\n'
            "STEMD_COMMAND=\"stem-worker --jobs '/srv/stem data/jobs %n'\"\n"
            "STEMD_OPTS=\"-Q 'images, thumbs'\"\n"
        ),
    )
    code, out = box.sh("/etc/init.d/stem-worker start", workdir="/srv/stem data")
    assert code == 0, out
    alpha = box.pid("/run/stem/alpha.pid")
    assert alpha is not None
    assert box.ok(f"readlink /proc/{alpha}/cwd", user="stem").strip() == "/srv/stem data"
    argv = box.argv(alpha)
    assert "/srv/stem data/jobs alpha" in argv and "images, thumbs" in argv, argv
    for workdir in ("/tmp", "/var/log"):
        code, out = box.sh("/etc/init.d/stem-worker status", workdir=workdir)
        assert code == 0, out
    code, out = box.sh("/etc/init.d/stem-worker stop", workdir="/tmp")
    assert code == 0, out
    assert box.sh("/etc/init.d/stem-worker status", workdir="/etc")[0] == 3


def test_scheduler_script(box: Box) -> None:
    """`service stem-scheduler` runs stem-scheduler as one pidfile-tracked node."""
    code, out = box.service("stem-scheduler", "start")
    assert code == 0, out
    pid = box.pid("/run/stem/scheduler.pid")
    assert pid is not None
    assert "stem-scheduler" in " ".join(box.argv(pid))
    assert box.ok(f"ps -o user= -p {pid}").strip() == "stem"
    assert box.service("stem-scheduler", "status")[0] == 0
    assert box.service("stem-worker", "status")[0] == 3  # the two services are separate
    code, out = box.service("stem-scheduler", "stop")
    assert code == 0, out
    assert box.service("stem-scheduler", "status")[0] == 3


def test_usage_and_configuration_errors(box: Box) -> None:
    """Unknown actions: usage, exit 2; reload: 3; a missing user: status 4, start 6 (LSB)."""
    code, out = box.service("stem-worker", "frobnicate")
    assert code == 2 and "Usage:" in out
    assert box.service("stem-worker", "reload")[0] == 3  # LSB: unimplemented feature
    box.ok("cat >> /etc/default/stem", stdin='STEMD_USER="nosuchuser"\n')
    code, out = box.service("stem-worker", "status")
    assert code == 4, out
    code, out = box.service("stem-worker", "start")
    assert code == 6 and "nosuchuser" in out, out


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('STEMD_NODES="alpha\n', "is not valid sh"),  # a syntax error in the file itself
        ('STEMD_GROUP="nosuchgroup"\n', "group nosuchgroup does not exist"),
        ('STEMD_OPTS="--jobs \'x"\n', "STEMD_OPTS is not valid sh words"),
        ('STEMD_START_TIMEOUT="soon"\n', "STEM_START_TIMEOUT"),  # found by stem itself
    ],
)
def test_broken_defaults_are_not_configured_and_status_unknown(
    box: Box, line: str, says: str
) -> None:
    """A broken /etc/default/stem: start and stop exit 6, status 4 (LSB), one line naming it."""
    box.ok("cat >> /etc/default/stem", stdin=line)
    for action, want in (("start", 6), ("stop", 6), ("status", 4)):
        code, out = box.service("stem-worker", action)
        assert code == want, f"{action}: {out}"
        assert says in out, out
    assert not box.main_pids()


def test_quoted_node_name_in_the_defaults(box: Box) -> None:
    """STEMD_NODES="alpha 'my worker'" is two nodes, read with shell quotes as everywhere."""
    box.ok("cat >> /etc/default/stem", stdin="STEMD_NODES=\"alpha 'my worker'\"\n")
    code, out = box.service("stem-worker", "start")
    assert code == 0, out
    assert box.pid("'/run/stem/my worker.pid'") is not None
    assert len(box.main_pids()) == 2
    code, out = box.service("stem-worker", "stop")
    assert code == 0, out
    assert box.service("stem-worker", "status")[0] == 3
