"""The integration harness: one real systemd (PID 1 in a container) per test session.

pytest-docker brings up tests/integration/docker-compose.yml with the v1 tool
(``docker-compose``, ``up --build -d``) under a project name unique to this
run, and takes it down (``down -v``) at the end of the session. Prerequisites
come from ``scripts/testbed.sh`` (Docker engine, base image, wheelhouse): the
session runs it once before anything else, so the images always hold this
work tree's code.

Every test in this directory is marked ``integration``. Without a Docker
engine or the testbed they are skipped, except when STEM_REQUIRE_INTEGRATION=1
(scripts/test.sh and so CI set it): then they fail, so a broken testbed can
never pass as "skipped".

Fixtures for test modules:

``systemd_container`` (session) -> :class:`Container`
    The running systemd container, booted (``systemctl is-system-running``
    says running or degraded). ``.name`` is its container name for ``docker``
    commands; ``.exec(argv, check=True, input=None, user="root", timeout=120)``
    runs an argv list inside (``docker exec``, never a shell on our side) and
    returns the CompletedProcess with text stdout/stderr; with ``check`` a
    non-zero exit fails the test showing both streams. ``.systemctl(*args)``
    and ``.write(path, text)`` are shorthands. Tests share the container:
    each one removes the units, drop-ins and files it created.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REQUIRE = os.environ.get("STEM_REQUIRE_INTEGRATION") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration as ``integration``."""
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


def unavailable(reason: str) -> None:
    """Skip for want of Docker, or fail when the run requires the integration suite."""
    if REQUIRE:
        pytest.fail(f"{reason} (STEM_REQUIRE_INTEGRATION=1: run scripts/testbed.sh)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Container:
    """A running container, addressed by name; commands go in as argv lists."""

    name: str

    def exec(
        self,
        argv: Sequence[str],
        check: bool = True,
        *,
        input: str | None = None,
        user: str = "root",
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """``docker exec`` argv inside; with ``check`` a non-zero exit fails the test."""
        cmd = ["docker", "exec", "-i", "-u", user, "-w", "/", self.name, *argv]
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            pytest.fail(
                f"in {self.name}: {shlex.join(argv)}: exit {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}",
                pytrace=False,
            )
        return proc

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``systemctl ARGS`` inside."""
        return self.exec(["systemctl", *args], check=check)

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        """Create ``path`` (and its directory) inside with ``text`` as content."""
        self.exec(["install", "-D", "-m", mode, "/dev/stdin", path], input=text)


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    """Debian's docker-compose is the v1 tool; there is no `docker compose` plugin."""
    return "docker-compose"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    """Our compose file, beside this conftest."""
    return str(HERE / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    """Unique per run: several runs may share one Docker engine."""
    return f"stemit{os.getpid()}"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    """v1 has no `up --wait`: start detached, the systemd fixture waits for boot."""
    return ["up --build -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    """Remove containers, anonymous volumes and tmpfs at the end of the session."""
    return ["down -v -t 20"]


@pytest.fixture(scope="session")
def testbed_ready() -> None:
    """scripts/testbed.sh succeeded: engine up, base image there, wheelhouse fresh.

    Idempotent and quick once the base image exists (about 3 s: it rebuilds
    this project's wheel, so the images test the code of this work tree).
    """
    script = HERE.parents[1] / "scripts" / "testbed.sh"
    try:
        proc = subprocess.run(
            [str(script)], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        unavailable(f"scripts/testbed.sh: {exc}")
        return
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-3:]
        unavailable(f"scripts/testbed.sh exited {proc.returncode}: {' / '.join(last)}")


@pytest.fixture(scope="session")
def systemd_container(
    testbed_ready: None,
    docker_services: object,
    docker_compose_project_name: str,
) -> Iterator[Container]:
    """The session's systemd container, booted to running (or degraded)."""
    ids = subprocess.run(
        [
            "docker",
            "ps",
            "-q",
            "--filter",
            f"label=com.docker.compose.project={docker_compose_project_name}",
            "--filter",
            "label=com.docker.compose.service=systemd",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(ids) == 1, f"expected one systemd container, found {ids}"
    name = subprocess.run(
        ["docker", "inspect", "-f", "{{.Name}}", ids[0]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    box = Container(name.lstrip("/"))

    def booted() -> bool:
        state = box.exec(["systemctl", "is-system-running"], check=False).stdout.strip()
        return state in ("running", "degraded")

    services = docker_services
    services.wait_until_responsive(check=booted, timeout=90, pause=0.5)  # type: ignore[attr-defined]
    state = box.exec(["systemctl", "is-system-running"], check=False).stdout.strip()
    if state == "degraded":  # say which unit, once: a test may trip over it
        failed = box.exec(["systemctl", "--failed", "--plain", "--no-legend"], check=False)
        print(f"systemd container {box.name} is degraded:\n{failed.stdout}")
    yield box
