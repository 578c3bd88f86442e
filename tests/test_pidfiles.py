"""Pidfile I/O and identity checks on real files and real processes."""

from __future__ import annotations

import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stem_systemd import pidfiles, procs
from stem_systemd.pidfiles import Liveness, PidfileError


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated live process (sleep), killed and reaped afterwards."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def test_write_then_read_round_trips_and_first_line_is_the_bare_pid(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """A written pidfile reads back equal and starts with the bare PID line for LSB tools."""
    path = tmp_path / "alpha.pid"
    record = pidfiles.record_for(sleeper.pid, ready=True)
    pidfiles.write(path, record)
    assert pidfiles.read(path) == record
    assert path.read_text().splitlines()[0] == str(sleeper.pid)
    assert record.identity is not None


def test_pidfile_mode_is_0644_whatever_the_umask(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """Pidfiles are never group- or world-writable, even under umask 000."""
    old = os.umask(0)
    try:
        pidfiles.write(tmp_path / "a.pid", pidfiles.record_for(sleeper.pid, ready=False))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.pid").stat().st_mode) == 0o644


def test_write_leaves_no_temp_file(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """The atomic write (temp file + rename) leaves only the pidfile behind."""
    pidfiles.write(tmp_path / "a.pid", pidfiles.record_for(sleeper.pid, ready=False))
    pidfiles.write(tmp_path / "a.pid", pidfiles.record_for(sleeper.pid, ready=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pid"]


def test_symlink_at_pidfile_path_is_refused_and_target_untouched(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """Neither read nor write goes through a symlink; the file it points to stays as it was."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "a.pid"
    link.symlink_to(victim)
    with pytest.raises(PidfileError, match="symlink"):
        pidfiles.read(link)
    with pytest.raises(PidfileError, match="not a regular file"):
        pidfiles.write(link, pidfiles.record_for(sleeper.pid, ready=False))
    assert victim.read_text() == "precious\n"
    assert link.is_symlink()


def test_fifo_at_pidfile_path_does_not_block(tmp_path: Path) -> None:
    """A FIFO at the pidfile path is reported as not a regular file instead of hanging the read."""
    fifo = tmp_path / "a.pid"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            pidfiles.read(fifo)
        except PidfileError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=attempt, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert not reader.is_alive(), "reading a FIFO pidfile blocked"
    assert outcome and "not a regular file" in str(outcome[0])


def test_garbage_content_is_a_pidfile_error(tmp_path: Path) -> None:
    """A file that does not start with a PID is reported, never guessed at."""
    path = tmp_path / "a.pid"
    path.write_text("hello\n")
    with pytest.raises(PidfileError, match="does not start with a PID"):
        pidfiles.read(path)


def test_dead_pid_is_stale(tmp_path: Path) -> None:
    """A pidfile whose process has exited is stale."""
    proc = subprocess.Popen(["true"])
    record = pidfiles.Record(proc.pid, pidfiles.Identity(proc.pid, 1, procs.boot_id(), "x"), True)
    proc.wait()
    pidfiles.write(tmp_path / "a.pid", record)
    assert pidfiles.check(tmp_path / "a.pid").liveness is Liveness.STALE


def test_reused_pid_is_stale(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """A live PID whose start time differs from the recorded one belongs to someone else."""
    real = pidfiles.Identity.of_pid(sleeper.pid)
    assert real is not None
    forged = pidfiles.Identity(sleeper.pid, real.starttime - 1, real.boot_id, real.cmdline_sha256)
    pidfiles.write(tmp_path / "a.pid", pidfiles.Record(sleeper.pid, forged, True))
    check = pidfiles.check(tmp_path / "a.pid")
    assert check.liveness is Liveness.STALE
    assert "another process" in check.reason


def test_pidfile_of_another_user_naming_our_process_is_not_trusted(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """A pidfile owned by uid 65534 that names our process is unverifiable; ours is trusted."""
    path = tmp_path / "a.pid"
    pidfiles.write(path, pidfiles.record_for(sleeper.pid, ready=True))
    os.chown(path, 65534, 65534)
    check = pidfiles.check(path)
    assert check.liveness is Liveness.UNVERIFIABLE
    assert "belongs to uid 65534" in check.reason
    os.chown(path, os.getuid(), os.getgid())
    assert pidfiles.check(path).liveness is Liveness.RUNNING


def test_other_boot_is_stale(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """Identity from another boot never matches, even with the same start time."""
    real = pidfiles.Identity.of_pid(sleeper.pid)
    assert real is not None
    other = pidfiles.Identity(sleeper.pid, real.starttime, "another-boot", real.cmdline_sha256)
    pidfiles.write(tmp_path / "a.pid", pidfiles.Record(sleeper.pid, other, True))
    assert pidfiles.check(tmp_path / "a.pid").liveness is Liveness.STALE


@pytest.mark.parametrize("who", ["self", "parent", "init"])
def test_our_own_pid_an_ancestor_or_init_is_never_a_live_node(tmp_path: Path, who: str) -> None:
    """A pidfile naming stem itself, an ancestor or PID 1 is stale, whatever it records."""
    pid = {"self": os.getpid(), "parent": os.getppid(), "init": 1}[who]
    path = tmp_path / "a.pid"
    path.write_text(f"{pid}\n")
    assert pidfiles.check(path).liveness is Liveness.STALE


def test_bare_pid_of_a_live_process_is_unverifiable(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    """A pidfile with only a PID (not written by stem) cannot prove identity: unverifiable."""
    path = tmp_path / "a.pid"
    path.write_text(f"{sleeper.pid}\n")
    assert pidfiles.check(path).liveness is Liveness.UNVERIFIABLE


def test_lock_is_exclusive_and_times_out(tmp_path: Path) -> None:
    """A second holder of a node's lock gets False once its deadline passes."""
    path = tmp_path / "a.pid"
    with pidfiles.locked(path, None) as first:
        assert first
        with pidfiles.locked(path, time.monotonic() + 0.1) as second:
            assert not second
    with pidfiles.locked(path, None) as again:
        assert again


def test_world_writable_directory_without_sticky_bit_is_refused(tmp_path: Path) -> None:
    """A pid directory anyone may write to (no sticky bit) is refused: pidfiles could be swapped."""
    loose = tmp_path / "loose"
    loose.mkdir()
    loose.chmod(0o777)
    with pytest.raises(PidfileError, match="world-writable"):
        pidfiles.read(loose / "a.pid")
