"""``stem worker exec NODE`` with real processes: it execs (same PID), argv and env as promised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = """\
#!{python}
import json, os, sys
json.dump({{"pid": os.getpid(), "argv": sys.argv, "env": dict(os.environ),
           "cwd": os.getcwd()}}, sys.stdout)
"""


@pytest.fixture
def probe(tmp_path: Path) -> Path:
    """An executable that reports its PID, argv, environment and cwd as JSON."""
    path = tmp_path / "probe"
    path.write_text(PROBE.format(python=sys.executable))
    path.chmod(0o755)
    return path


def base_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without any STEM_* or systemd variable, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STEM_") and k not in ("INVOCATION_ID", "NOTIFY_SOCKET")
    }
    env.update(
        STEM_PIDFILE=str(tmp_path / "run" / "%n.pid"),
        STEM_LOGFILE=str(tmp_path / "log" / "%n%I.log"),
    )
    env.update(extra)
    return env


def run_exec(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``stem worker exec ARGS`` and wait; (process, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "stem_systemd", "worker", "exec", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=60)
    return proc, out, err


def report(out: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out)
    return data


def test_exec_keeps_the_pid_and_builds_argv_and_env(probe: Path, tmp_path: Path) -> None:
    """The launcher replaces stem (same PID) with command + STEM_WORKER_ARGS and the node env."""
    env = base_env(
        tmp_path,
        STEM_WORKER_COMMAND=f"{probe} --node %n --host-index %i",
        STEM_WORKER_ARGS="-c 2 'two words' --ready-delay 0",
        NOTIFY_SOCKET="@stem-test-notify",
    )
    proc, out, err = run_exec(env, "my worker")
    assert proc.returncode == 0, err
    got = report(out)
    assert got["pid"] == proc.pid
    assert got["argv"] == [
        str(probe), "--node", "my worker", "--host-index", "1",
        "-c", "2", "two words", "--ready-delay", "0",
    ]  # fmt: skip
    assert got["env"]["STEM_WORKER_NODE"] == "my worker"
    assert got["env"]["STEM_WORKER_INDEX"] == "1"
    assert got["env"]["STEM_WORKER_PIDFILE"] == str(tmp_path / "run" / "my worker.pid")
    assert got["env"]["STEM_WORKER_LOGFILE"] == str(tmp_path / "log" / "my worker%I.log")
    assert got["env"]["NOTIFY_SOCKET"] == "@stem-test-notify"
    assert "STEM_WORKER_ARGS" not in got["env"]


def test_under_systemd_logs_go_to_the_journal_unless_configured(
    probe: Path, tmp_path: Path
) -> None:
    """With $INVOCATION_ID and no STEM_LOGFILE the node gets no logfile (stderr: the journal)."""
    env = base_env(tmp_path, STEM_WORKER_COMMAND=str(probe), INVOCATION_ID="0123abcd")
    del env["STEM_LOGFILE"]
    proc, out, err = run_exec(env, "alpha")
    assert proc.returncode == 0, err
    assert "STEM_WORKER_LOGFILE" not in report(out)["env"]

    env["STEM_LOGFILE"] = str(tmp_path / "%n%I.log")
    proc, out, err = run_exec(env, "alpha")
    assert proc.returncode == 0, err
    assert report(out)["env"]["STEM_WORKER_LOGFILE"] == str(tmp_path / "alpha%I.log")


def test_index_comes_from_the_environment(probe: Path, tmp_path: Path) -> None:
    """STEM_WORKER_INDEX set by a drop-in is the node's %i; the default is 1."""
    env = base_env(tmp_path, STEM_WORKER_COMMAND=f"{probe} %i", STEM_WORKER_INDEX="3")
    proc, out, err = run_exec(env, "beta")
    assert proc.returncode == 0, err
    assert report(out)["argv"][1:] == ["3"]


def test_workdir_is_entered(probe: Path, tmp_path: Path) -> None:
    """STEM_WORKDIR becomes the launcher's working directory."""
    work = tmp_path / "work"
    work.mkdir()
    env = base_env(tmp_path, STEM_WORKER_COMMAND=str(probe), STEM_WORKDIR=str(work))
    proc, out, err = run_exec(env, "alpha", cwd=tmp_path)
    assert proc.returncode == 0, err
    assert report(out)["cwd"] == str(work)


def test_missing_workdir_is_one_clear_error(probe: Path, tmp_path: Path) -> None:
    """A STEM_WORKDIR that does not exist: exit 1, one line naming it, nothing run."""
    env = base_env(tmp_path, STEM_WORKER_COMMAND=str(probe), STEM_WORKDIR=str(tmp_path / "nowhere"))
    proc, out, err = run_exec(env, "alpha")
    assert proc.returncode == 1
    assert out == ""
    assert f"Error: cannot enter the working directory {tmp_path / 'nowhere'}" in err


def test_scheduler_runs_stem_scheduler_command(probe: Path, tmp_path: Path) -> None:
    """--scheduler execs STEM_SCHEDULER_COMMAND, not the worker command."""
    env = base_env(
        tmp_path,
        STEM_WORKER_COMMAND="/nonexistent/worker",
        STEM_SCHEDULER_COMMAND=f"{probe} --name %n",
    )
    proc, out, err = run_exec(env, "--scheduler", "scheduler")
    assert proc.returncode == 0, err
    got = report(out)
    assert got["pid"] == proc.pid
    assert got["argv"][1:] == ["--name", "scheduler"]

    env["STEM_SCHEDULER_COMMAND"] = "/nonexistent/scheduler"
    proc, _, err = run_exec(env, "--scheduler", "scheduler")
    assert proc.returncode == 5
    assert "Error: scheduler command not found: /nonexistent/scheduler" in err
    assert "STEM_SCHEDULER_COMMAND in the environment" in err


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("/nonexistent/stem-worker --jobs x", "worker command not found: /nonexistent/stem-worker"),
        ("no-such-launcher-xyz", "worker command not found on PATH: no-such-launcher-xyz"),
    ],
)
def test_missing_command_exits_5_naming_it(tmp_path: Path, command: str, expected: str) -> None:
    """A command that is not there: exit 5 (not installed) and one Error line naming it."""
    env = base_env(tmp_path, STEM_WORKER_COMMAND=command)
    proc, _, err = run_exec(env, "alpha")
    assert proc.returncode == 5
    lines = err.splitlines()
    assert lines[0].startswith(f"Error: {expected}")
    assert lines[1].startswith("Hint: ") and "STEM_WORKER_COMMAND in the environment" in lines[1]
    assert len(lines) == 2


def test_unexecutable_command_exits_5(tmp_path: Path) -> None:
    """A command file without the execute bit: exit 5, saying so."""
    script = tmp_path / "worker"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    env = base_env(tmp_path, STEM_WORKER_COMMAND=str(script))
    proc, _, err = run_exec(env, "alpha")
    assert proc.returncode == 5
    assert f"Error: worker command is not executable: {script}" in err


def test_bad_args_quoting_is_a_usage_error(probe: Path, tmp_path: Path) -> None:
    """An unbalanced quote in STEM_WORKER_ARGS: exit 2, naming the variable."""
    env = base_env(tmp_path, STEM_WORKER_COMMAND=str(probe), STEM_WORKER_ARGS="--x 'open")
    proc, out, err = run_exec(env, "alpha")
    assert proc.returncode == 2
    assert out == ""
    assert "Error: cannot split STEM_WORKER_ARGS=" in err


@pytest.mark.parametrize("name", ["a/b", "-x", "7"])
def test_bad_node_name_is_a_usage_error(probe: Path, tmp_path: Path, name: str) -> None:
    """A name no node may have (slash, leading dash, bare number): exit 2, nothing run."""
    env = base_env(tmp_path, STEM_WORKER_COMMAND=str(probe))
    args = ["--", name] if name.startswith("-") else [name]
    proc, out, _ = run_exec(env, *args)
    assert proc.returncode == 2
    assert out == ""
