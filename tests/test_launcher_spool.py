"""The demo job spool and the log file templates, as plain functions on real files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from stem_systemd.errors import UsageError
from stem_systemd.launcher import spool
from stem_systemd.launcher.common import expand_logfile


def test_parse_job_contents() -> None:
    """Seconds, the ignore-term flag and hang-main parse; anything else is an error."""
    assert spool.parse("2.5\n") == (2.5, False, False, None)
    assert spool.parse("1 ignore-term") == (1.0, True, False, None)
    assert spool.parse("hang-main") == (0.0, False, True, None)
    for bad in ("", "soon", "-1", "nan", "1 loudly"):
        assert spool.parse(bad)[3] is not None


def test_claim_is_exclusive_and_ordered(tmp_path: Path) -> None:
    """Jobs are claimed by name order, once each; dotfiles are never claimed."""
    spool.submit(tmp_path, "b", "1")
    spool.submit(tmp_path, "a", "2")
    (tmp_path / ".half-written").write_text("3")
    first = spool.claim(tmp_path, 100)
    second = spool.claim(tmp_path, 200)
    assert first is not None and second is not None
    assert (first.name, first.seconds, Path(first.path).name) == ("a", 2.0, "a@100")
    assert (second.name, Path(second.path).name) == ("b", "b@200")
    assert spool.claim(tmp_path, 300) is None


def test_finish_reject_requeue(tmp_path: Path) -> None:
    """A job ends in done/ with a result, in failed/ with a reason, or back in the spool."""
    for name in ("ok", "bad", "back"):
        spool.submit(tmp_path, name, "0")
    jobs = {j.name: j for j in (spool.claim(tmp_path, os.getpid()) for _ in range(3)) if j}
    assert "result: fine" in Path(spool.finish(jobs["ok"], "fine")).read_text()
    assert "error: nope" in Path(spool.reject(jobs["bad"], "nope")).read_text()
    spool.requeue(jobs["back"])
    assert (tmp_path / "back").read_text() == "0\n"
    assert not list((tmp_path / spool.ACTIVE).iterdir())


def test_requeue_orphans_of_a_dead_pid(tmp_path: Path) -> None:
    """Jobs held by a dead pool process go back; other processes' jobs stay claimed."""
    spool.submit(tmp_path, "x", "1")
    spool.submit(tmp_path, "y", "1")
    spool.claim(tmp_path, 11)
    spool.claim(tmp_path, 22)
    assert spool.requeue_orphans(tmp_path, 11) == ["x"]
    assert (tmp_path / "x").exists()
    assert (tmp_path / spool.ACTIVE / "y@22").exists()


def test_requeue_abandoned_claims_of_gone_processes(tmp_path: Path) -> None:
    """At start, jobs claimed by a PID that no longer exists go back; a live PID's claim stays."""
    gone = subprocess.Popen(["true"])
    gone.wait()  # reaped: the PID is free (reuse within this test is out of reach)
    spool.submit(tmp_path, "lost", "1")
    spool.submit(tmp_path, "more", "1")
    spool.claim(tmp_path, gone.pid)  # claims are by name order: "lost", then "more"
    spool.claim(tmp_path, os.getpid())
    (tmp_path / spool.ACTIVE / "odd-name").write_text("1")  # not ours: left alone
    assert spool.requeue_abandoned(tmp_path) == ["lost"]
    assert (tmp_path / "lost").read_text() == "1\n"
    assert (tmp_path / spool.ACTIVE / f"more@{os.getpid()}").exists()
    assert (tmp_path / spool.ACTIVE / "odd-name").exists()


def test_logfile_template_expansion(monkeypatch: pytest.MonkeyPatch) -> None:
    """%n, %I, %% and %i (from STEM_WORKER_INDEX) expand; unknown placeholders are usage errors."""
    monkeypatch.setenv("STEM_WORKER_INDEX", "3")
    assert expand_logfile("/l/%n%I-%i.log", node="alpha", suffix="-2") == "/l/alpha-2-3.log"
    assert expand_logfile("/l/100%%-%n.log", node="b", suffix="") == "/l/100%-b.log"
    monkeypatch.delenv("STEM_WORKER_INDEX")
    for bad in ("/l/%x.log", "/l/%i.log", "/l/trailing%"):
        with pytest.raises(UsageError):
            expand_logfile(bad, node="a", suffix="")
