"""Backend choice (auto|systemd|pidfile) and multi's argument splitting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stem_systemd.backends.pidfile import PidfileBackend
from stem_systemd.backends.select import PidfileOptions, choose, systemd_unavailable
from stem_systemd.errors import UsageError

STEM = str(Path(sys.executable).parent / "stem")


def test_pidfile_requested_gets_the_options() -> None:
    """--backend=pidfile builds the pidfile backend with the given timeouts, and says so."""
    backend, why = choose("pidfile", PidfileOptions(start_timeout=5, stop_timeout=7))
    assert isinstance(backend, PidfileBackend)
    assert (backend.start_timeout, backend.stop_timeout) == (5, 7)
    assert why == "pidfile (requested)"


def test_unknown_backend_is_a_usage_error() -> None:
    """A backend name outside auto|systemd|pidfile is a usage error."""
    with pytest.raises(UsageError, match="unknown backend"):
        choose("upstart", PidfileOptions())


@pytest.mark.skipif(Path("/run/systemd/system").exists(), reason="systemd is PID 1 here")
def test_auto_without_systemd_picks_pidfile_and_says_why() -> None:
    """auto on a host where systemd is not PID 1 picks pidfile and names the reason."""
    backend, why = choose("auto", PidfileOptions())
    assert backend.name == "pidfile"
    assert "systemd is not PID 1" in why
    assert systemd_unavailable(user=False) is not None


def test_worker_options_and_double_dash_pass_through_with_our_options_anywhere(
    tmp_path: Path,
) -> None:
    """Celery-style worker options reach the nodes; --pidfile after them is still multi's own."""
    env_file = tmp_path / "stem.env"
    env_file.write_text("")
    result = subprocess.run(
        [STEM, "worker", "multi", "show", "--env-file", str(env_file), "3",
         "-c:1-2", "4", "-Q:w2", "images", "--loglevel", "INFO",
         "--pidfile", f"{tmp_path}/run/%n.pid", "--json", "--", "--jobs", "/j", "--pidfile"],
        env={**os.environ, "STEM_BACKEND": "pidfile"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "backend: pidfile (requested)" in result.stderr
    nodes = json.loads(result.stdout)["nodes"]
    argvs = [n["argv"][1:] for n in nodes]
    assert argvs == [
        ["-c", "4", "--loglevel", "INFO", "--jobs", "/j", "--pidfile"],
        ["-c", "4", "-Q", "images", "--loglevel", "INFO", "--jobs", "/j", "--pidfile"],
        ["--loglevel", "INFO", "--jobs", "/j", "--pidfile"],
    ]
    assert nodes[1]["pidfile"] == f"{tmp_path}/run/w2.pid"
    assert not (tmp_path / "run").exists()
