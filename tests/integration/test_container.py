"""The example image (container/Dockerfile): the foreground supervisor as PID 1, no systemd.

Containers run with network none and are removed after each test. Exit codes
are read from ``docker inspect``; nothing here asserts a duration.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BASE = "stem-testbed-base:bookworm"
IMAGE = "stem-example:test"

# A node that leaves an orphaned grandchild behind (the subshell exits at
# once, so its background child is reparented to PID 1), then becomes the
# launcher. The grandchild exits when /tmp/release appears.
ORPHAN_MAKER = """\
#!/bin/sh
( sh -c 'echo $$ > /tmp/grandchild.pid; until [ -e /tmp/release ]; do sleep 0.1; done' & )
exec stem-worker "$@"
"""


def docker(
    *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI; fail with its stderr when ``check`` and it exits non-zero."""
    proc = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: exit {proc.returncode}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def image(testbed_ready: None) -> str:
    """The example image, built offline from this work tree's wheel, as the README says."""
    docker(
        "build", "--network", "none", "-q", "-t", IMAGE,
        "--build-arg", f"BASE={BASE}",
        "-f", str(ROOT / "container" / "Dockerfile"), str(ROOT),
    )  # fmt: skip
    return IMAGE


class Container:
    """One container of the example image."""

    def __init__(self, name: str) -> None:
        self.name = name

    def exec(self, *argv: str, user: str = "stem") -> subprocess.CompletedProcess[str]:
        return docker("exec", "-u", user, self.name, *argv, check=False, timeout=120)

    def sh(self, script: str, user: str = "stem") -> str:
        proc = self.exec("sh", "-c", script, user=user)
        assert proc.returncode == 0, f"{script}: exit {proc.returncode}\n{proc.stderr}"
        return proc.stdout

    def pid(self, node: str) -> int:
        """The node's main PID once its pidfile says it is ready; 0 before."""
        proc = self.exec("cat", f"/run/stem/{node}.pid")
        lines = proc.stdout.splitlines()
        if proc.returncode or not lines or "ready=1" not in lines:
            return 0
        return int(lines[0])

    def wait_ready(self, node: str, other_than: int = 0) -> int:
        return wait_until(lambda: (p := self.pid(node)) != other_than and p, timeout=60)

    def state(self, field: str) -> str:
        return docker("inspect", "-f", "{{.State." + field + "}}", self.name).stdout.strip()

    def logs(self) -> str:
        proc = docker("logs", self.name)
        return proc.stdout + proc.stderr

    def running(self) -> bool:
        return self.state("Running") == "true"


Start = Callable[..., Container]


@pytest.fixture
def run_container(image: str) -> Iterator[Start]:
    """Start containers of the example image (network none); remove them and their volumes."""
    names: list[str] = []
    volumes: list[str] = []

    def start(*args: str, volume: str | None = None) -> Container:
        name = f"stem-example-{uuid.uuid4().hex[:8]}"
        names.append(name)
        extra = []
        if volume is not None:
            volumes.append(volume)
            extra = ["-v", f"{volume}:/run/stem"]
        docker("run", "-d", "--network", "none", "--name", name, *extra, *args, image)
        return Container(name)

    yield start
    for name in names:
        docker("rm", "-f", "-v", name, check=False)
    for volume in volumes:
        docker("volume", "rm", "-f", volume, check=False)


def test_docker_stop_lets_the_in_flight_job_finish_and_exits_zero(run_container: Start) -> None:
    """`docker stop -t 30` mid-job: the job completes and the supervisor exits 0, not 137."""
    box = run_container("-e", "STEM_WORKER_NODES=alpha beta")
    box.wait_ready("alpha")
    box.wait_ready("beta")
    box.sh("cd /var/spool/stem/alpha && echo 3 > .job1 && mv .job1 job1")
    wait_until(lambda: box.exec("sh", "-c", "ls /var/spool/stem/alpha/active").stdout, timeout=60)
    docker("stop", "-t", "30", box.name, timeout=120)
    code = box.state("ExitCode")
    logs = box.logs()
    # 0, not 137: the supervisor stopped the nodes itself; the engine's KILL never came.
    assert code == "0", logs
    assert "alpha: stopped" in logs and "beta: stopped" in logs, logs
    done = docker("cp", f"{box.name}:/var/spool/stem/alpha/done/job1", "-", check=False)
    assert done.returncode == 0, "the in-flight job did not reach done/"


def test_node_killed_inside_is_restarted(run_container: Start) -> None:
    """A node SIGKILLed inside the container is started again by the supervisor."""
    box = run_container()
    first = box.wait_ready("alpha")
    box.sh(f"kill -KILL {first}")
    second = box.wait_ready("alpha", other_than=first)
    assert second != first
    assert "alpha: exited unexpectedly (killed by SIGKILL)" in box.logs()
    assert box.exec("stem", "worker", "multi", "status", "alpha").returncode == 0
    assert box.running()


def test_no_zombie_after_a_nodes_orphaned_grandchild_exits(
    run_container: Start, tmp_path: Path
) -> None:
    """PID 1 adopts a node's orphaned grandchild and reaps it when it exits: no zombie."""
    script = tmp_path / "orphan-maker"
    script.write_text(ORPHAN_MAKER)
    script.chmod(0o755)
    box = run_container(
        "-v",
        f"{script}:/opt/test/orphan-maker:ro",
        "-e",
        "STEM_WORKER_COMMAND=/opt/test/orphan-maker --jobs /var/spool/stem/%n",
    )
    box.wait_ready("alpha")

    def grandchild_pid() -> str:
        return box.exec("cat", "/tmp/grandchild.pid").stdout.strip()

    grandchild = int(wait_until(grandchild_pid, timeout=60))
    assert box.sh(f"ps -o ppid= -p {grandchild}").strip() == "1"  # adopted by the supervisor
    box.sh("touch /tmp/release")
    # Gone for good: not even a zombie (state Z) left in the process table.
    wait_until(lambda: box.exec("test", "-e", f"/proc/{grandchild}").returncode != 0, timeout=60)
    assert " Z" not in box.sh("ps -eo pid,stat,comm")
    assert box.running()


def test_restart_with_pid_directory_on_a_volume_starts_nodes_again(run_container: Start) -> None:
    """Pidfiles left on a volume by a killed container are stale for the restarted one."""
    volume = f"stem-run-{uuid.uuid4().hex[:8]}"
    box = run_container("-e", "STEM_WORKER_NODES=alpha beta", volume=volume)
    box.wait_ready("alpha")
    box.wait_ready("beta")
    docker("kill", box.name)  # SIGKILL to everything: the pidfiles stay on the volume
    wait_until(lambda: not box.running(), timeout=60)
    docker("start", box.name)
    # PIDs of the new run may equal the old ones: wait for the second run's banner.
    wait_until(lambda: box.logs().count("supervising 2 node(s)") == 2, timeout=60)
    assert "alpha: stale pidfile removed" in box.logs()
    assert box.exec("stem", "worker", "multi", "status", "alpha", "beta").returncode == 0
    docker("stop", "-t", "30", box.name, timeout=120)
    assert box.state("ExitCode") == "0", box.logs()


def test_node_outliving_the_stop_timeout_is_killed_and_named(run_container: Start) -> None:
    """A job ignoring TERM past STEM_STOP_TIMEOUT: the node is KILLed, named, exit code 1."""
    box = run_container("-e", "STEM_STOP_TIMEOUT=2")
    box.wait_ready("alpha")
    box.sh("cd /var/spool/stem/alpha && echo '600 ignore-term' > .stuck && mv .stuck stuck")
    wait_until(lambda: box.exec("sh", "-c", "ls /var/spool/stem/alpha/active").stdout, timeout=60)
    docker("stop", "-t", "30", box.name, timeout=120)
    logs = box.logs()
    # 1, not 137: the supervisor's own KILL after 2 s, reported, not the engine's.
    assert box.state("ExitCode") == "1", logs
    assert "alpha: killed: still running after the 2 s stop timeout" in logs, logs


def test_quoted_node_names_in_the_environment(run_container: Start) -> None:
    """STEM_WORKER_NODES="alpha 'my worker'" runs two nodes, as `show` reads it, not three."""
    box = run_container("-e", "STEM_WORKER_NODES=alpha 'my worker'")
    box.wait_ready("alpha")
    box.wait_ready("my worker")
    assert sorted(box.sh("ls /run/stem").split("\n")[:-1]) == [
        "alpha.pid", "alpha.pid.lock", "my worker.pid", "my worker.pid.lock",
    ]  # fmt: skip
    docker("stop", "-t", "30", box.name, timeout=120)
    assert box.state("ExitCode") == "0", box.logs()
