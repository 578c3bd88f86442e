"""The systemd backend's pure parts: names, the args drop-in, judging units, error mapping.

The D-Bus conversation itself is tested against a real systemd in
tests/integration/test_systemd_backend.py.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from stem_systemd.backends import select
from stem_systemd.backends import systemd_dropins as dropins
from stem_systemd.backends import systemd_units as su
from stem_systemd.backends.base import NodeReport, State
from stem_systemd.backends.systemd import SystemdBackend, _translate
from stem_systemd.cli import stem
from stem_systemd.errors import NotInstalledError, PrivilegeError, StemError, UsageError
from stem_systemd.nodes import NodeSpec


def _spec(name: str, *args: str) -> NodeSpec:
    return NodeSpec(
        name=name,
        index=1,
        command=("stem-worker",),
        args=tuple(args),
        pidfile=Path("/nonexistent") / f"{name}.pid",
        logfile=f"/nonexistent/{name}%I.log",
    )


def _unquote_unit_value(text: str) -> str:
    """Read one double-quoted unit-file word back as systemd would (specifiers, C escapes)."""
    assert text.startswith('"') and text.endswith('"')
    body = text[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "%":
            assert body[i + 1] == "%", "a lone % would be a systemd specifier"
            out.append("%")
            i += 2
        elif ch == "\\":
            nxt = body[i + 1]
            if nxt == "x":
                out.append(chr(int(body[i + 2 : i + 4], 16)))
                i += 4
                continue
            out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
            i += 2
        else:
            assert ch != '"', "an unescaped quote would end the word"
            out.append(ch)
            i += 1
    return "".join(out)


@pytest.mark.parametrize(
    ("node", "unit"),
    [
        ("alpha", "stem-worker@alpha.service"),
        ("eu-west", "stem-worker@eu\\x2dwest.service"),
        ("my worker", "stem-worker@my\\x20worker.service"),
        ("köln", "stem-worker@k\\xc3\\xb6ln.service"),
        ("w1@host", "stem-worker@w1\\x40host.service"),
    ],
)
def test_unit_names_round_trip(node: str, unit: str) -> None:
    """A node name maps to its systemd-escaped instance unit and back to the same name."""
    assert su.unit_for(node) == unit
    assert su.node_for(unit) == node


def test_node_for_ignores_template_and_other_units() -> None:
    """Listing results that are not stem-worker instances give no node name."""
    assert su.node_for("stem-worker@.service") is None
    assert su.node_for("stem-scheduler.service") is None
    assert su.node_for("stem-worker@alpha.socket") is None


@pytest.mark.parametrize("bad", ["a/b", "tab\there", "", "x" * 250])
def test_bad_node_names_refused_before_any_bus_call(bad: str) -> None:
    """A name that cannot make a valid unit raises UsageError (exit 2), with no D-Bus involved."""
    backend = SystemdBackend(runtime_dir=Path("/nonexistent"))
    with pytest.raises(UsageError):
        backend.start([_spec("alpha"), _spec(bad)], timeout=1)
    with pytest.raises(UsageError):
        backend.status([_spec(bad)])


@pytest.mark.parametrize(
    "args",
    [
        ("--ready-delay", "3"),
        ("-Q", "images,video", "--note", "100% sure"),
        ("--msg", 'say "hi"', "--path", "C:\\temp", "--cost", "$HOME"),
        ("--city", "köln", "--multi", "line\nbreak\ttab"),
    ],
)
def test_args_dropin_round_trips_through_unit_file_quoting(args: tuple[str, ...]) -> None:
    """The drop-in's Environment= value unquotes (as systemd reads it) to shlex-joined args."""
    text = dropins.render_args_dropin(args)
    assert "[Service]\n" in text
    [line] = [ln for ln in text.splitlines() if ln.startswith("Environment=")]
    assignment = _unquote_unit_value(line.removeprefix("Environment="))
    name, _, value = assignment.partition("=")
    assert name == su.ARGS_VARIABLE
    assert tuple(shlex.split(value)) == args


def test_dropin_path_is_per_unit() -> None:
    """The drop-in lives in the unit's own .d directory under the runtime unit dir."""
    path = dropins.dropin_path(Path("/run/systemd/system"), "stem-worker@my\\x20worker.service")
    assert path == Path("/run/systemd/system/stem-worker@my\\x20worker.service.d/50-stem-args.conf")


def test_write_args_sets_clears_and_keeps(tmp_path: Path) -> None:
    """start writes or clears each node's drop-in; restart without args keeps the old one."""
    units = [su.unit_for("alpha")]
    path = dropins.dropin_path(tmp_path, units[0])
    with_args, without = [_spec("alpha", "-c", "2")], [_spec("alpha")]
    assert dropins.write_args(tmp_path, with_args, units, clear=True) == set(units)
    assert "-c 2" in path.read_text()
    assert dropins.write_args(tmp_path, with_args, units, clear=True) == set()
    assert dropins.write_args(tmp_path, without, units, clear=False) == set()
    assert path.exists()
    assert dropins.write_args(tmp_path, without, units, clear=True) == set(units)
    assert not path.exists()
    assert not path.parent.exists()


@pytest.mark.parametrize(
    ("active", "sub", "state"),
    [
        ("active", "running", State.RUNNING),
        ("reloading", "reload", State.RUNNING),
        ("activating", "start", State.STARTING),
        ("activating", "auto-restart", State.DEAD),
        ("deactivating", "stop-sigterm", State.STOPPING),
        ("failed", "failed", State.DEAD),
        ("inactive", "dead", State.STOPPED),
        ("maintenance", "x", State.UNKNOWN),
    ],
)
def test_state_mapping(active: str, sub: str, state: State) -> None:
    """ActiveState/SubState map to our states (failed and auto-restart count as dead: LSB 1)."""
    info = su.UnitInfo(unit="u", active_state=active, sub_state=sub)
    assert su.state_of(info) is state


@pytest.mark.parametrize(
    ("code", "status", "text"),
    [
        (1, 0, "exit status 0"),
        (1, 2, "exit status 2"),
        (2, 15, "killed by SIGTERM"),
        (3, 11, "dumped core on SIGSEGV"),
        (0, 0, "not run"),
    ],
)
def test_describe_exit(code: int, status: int, text: str) -> None:
    """ExecMainCode/ExecMainStatus (CLD_* codes) read as words."""
    assert su.describe_exit(code, status) == text


def test_status_report_fields() -> None:
    """status shows state, pid, STATUS text, uptime, restarts and enablement, with LSB exit code."""
    info = su.UnitInfo(
        unit="stem-worker@alpha.service",
        active_state="active",
        sub_state="running",
        main_pid=42,
        status_text="alpha: 0 jobs",
        n_restarts=2,
        unit_file_state="enabled",
        active_enter_usec=int((time.time() - 190) * 1e6),
    )
    report = su.status_report("alpha", info)
    assert report.ok and report.exit_code == 0 and report.pid == 42
    for part in ("pid 42", '"alpha: 0 jobs"', "up 3m1", "2 restarts", "enabled"):
        assert part in report.message
    assert report.details["status_text"] == "alpha: 0 jobs"
    stopped = su.status_report("alpha", su.UnitInfo(unit="u"))
    assert (stopped.state, stopped.exit_code, stopped.ok) == (State.STOPPED, 3, False)
    failed = su.status_report(
        "alpha",
        su.UnitInfo(
            unit="u", active_state="failed", sub_state="failed", result="exit-code",
            exec_main_code=1, exec_main_status=2,
        ),
    )  # fmt: skip
    assert failed.exit_code == 1
    assert "result exit-code, exit status 2" in failed.message


def test_start_judged_by_unit_not_job() -> None:
    """start is ok only for active/running; a failed or unfinished job says why."""
    running = su.UnitInfo(unit="u", active_state="active", sub_state="running", main_pid=7)
    assert su.start_report("a", running, "done", 30).ok
    exited = su.UnitInfo(unit="u", active_state="active", sub_state="exited")
    assert not su.start_report("a", exited, "done", 30).ok
    failed = su.UnitInfo(
        unit="u", active_state="failed", sub_state="failed", result="exit-code",
        exec_main_code=1, exec_main_status=2,
    )  # fmt: skip
    report = su.start_report("a", failed, "failed", 30)
    assert not report.ok and report.exit_code == 1
    assert "failed to start" in report.message
    assert "job failed, result exit-code, exit status 2" in report.message
    slow = su.UnitInfo(unit="u", active_state="activating", sub_state="start")
    report = su.start_report("a", slow, None, 3)
    assert not report.ok and "not ready within 3 s" in report.message


def test_stop_judged_by_unit() -> None:
    """stop is ok once the unit is inactive or failed; still active at the deadline fails."""
    gone = su.UnitInfo(unit="u")
    assert su.stop_report("a", gone, "done", 30, killed=False).message == "stopped (u)"
    killed = su.stop_report("a", gone, None, 5, killed=True)
    assert killed.ok and "killed (SIGKILL to the whole cgroup) after 5 s" in killed.message
    stuck = su.UnitInfo(unit="u", active_state="deactivating", sub_state="stop-sigterm")
    report = su.stop_report("a", stuck, None, 5, killed=True)
    assert not report.ok and "did not stop within 5 s" in report.message


def test_dbus_errors_translated_to_exit_codes() -> None:
    """Access denied -> 4 naming root/polkit, no such unit -> 5, unreachable -> pidfile hint."""
    dbusexc = pytest.importorskip("pystemd.dbusexc")
    denied = _translate(dbusexc.DBusAccessDeniedError(-13, None, b"Access denied"), "x", False)
    assert isinstance(denied, PrivilegeError) and denied.exit_code == 4
    assert "root" in (denied.hint or "") and "polkit" in (denied.hint or "")
    missing = _translate(dbusexc.DBusNoSuchUnitError(-2, None, b"Unit x not found."), "x", False)
    assert isinstance(missing, NotInstalledError) and missing.exit_code == 5
    gone = _translate(dbusexc.DBusServiceUnknownError(-2, None, b"no systemd"), "x", False)
    assert type(gone) is StemError and "--backend=pidfile" in (gone.hint or "")


def test_no_bus_is_a_clear_error_with_the_pidfile_hint(tmp_path: Path) -> None:
    """Without a reachable system bus a command fails (exit 1) with the --backend=pidfile hint."""
    pytest.importorskip("pystemd")
    if Path("/run/dbus/system_bus_socket").exists():
        pytest.skip("this machine has a system bus")
    with pytest.raises(StemError) as info:
        SystemdBackend(runtime_dir=tmp_path).status([_spec("alpha")])
    assert info.value.exit_code == 1 and "--backend=pidfile" in (info.value.hint or "")


def test_enable_now_folds_start_into_the_enable_line() -> None:
    """enable --now gives one report per node: the enable message, then how the start went."""
    enabled = [
        NodeReport("a", State.UNKNOWN, True, "enabled (u)", details={"changes": ["symlink"]}),
        NodeReport("b", State.UNKNOWN, False, "could not be enabled (v)", exit_code=1),
    ]
    started = [NodeReport("a", State.RUNNING, True, "started (u): active/running", pid=9)]
    merged = su.merge_reports(enabled, started)
    assert [r.node for r in merged] == ["a", "b"]
    assert merged[0].message == "enabled (u); started (u): active/running"
    assert merged[0].pid == 9 and merged[0].details["changes"] == ["symlink"]
    assert merged[1].exit_code == 1


@pytest.mark.parametrize("as_json", [False, True])
def test_status_without_any_instance_says_so_and_exits_3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, as_json: bool
) -> None:
    """`status` with no names on a host without stem-worker@ instances says so and exits 3."""

    class NoInstances:
        name = "systemd"

        def status(self, nodes: list[NodeSpec]) -> list[NodeReport]:
            assert nodes == []
            return []

    monkeypatch.setattr(select, "choose", lambda *a, **k: (NoInstances(), "systemd (requested)"))
    monkeypatch.delenv("STEM_WORKER_NODES", raising=False)
    (tmp_path / "stem.env").write_text("")
    argv = [
        "worker",
        "multi",
        "status",
        "--backend=systemd",
        "--env-file",
        str(tmp_path / "stem.env"),
    ]
    result = CliRunner().invoke(stem, argv + (["--json"] if as_json else []))
    assert result.exit_code == 3, result.output
    if as_json:
        document = json.loads(result.stdout)
        assert document["exit_code"] == 3 and document["nodes"] == []
    else:
        assert "no stem-worker@ instance is loaded or enabled" in result.stdout
