"""The systemd backend against a real systemd (PID 1 in the shared container, network none).

Every command goes through the installed ``stem`` CLI inside the container,
so node names, D-Bus calls, drop-ins and exit codes are the real ones, and
every claim is checked against systemd's own tools (``systemctl show``,
``journalctl``). The `systemd_container` fixture (tests/integration/conftest.py)
boots the container once per session; each test here leaves no unit running,
enabled, failed or with a drop-in behind.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import wait_until

pytestmark = pytest.mark.integration

SHOW = ("ActiveState", "SubState", "MainPID", "NRestarts", "UnitFileState", "StatusText")


class Sys:
    """Commands sent into the systemd container."""

    def __init__(self, container: Any) -> None:
        self.container = container

    def sh(self, script: str, *, user: str = "root", timeout: float = 120) -> tuple[int, str, str]:
        """Run ``sh -c script`` inside; (exit code, stdout, stderr)."""
        proc = subprocess.run(
            ["docker", "exec", "-u", user, "-w", "/", self.container.name, "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return proc.returncode, proc.stdout, proc.stderr

    def ok(self, script: str) -> str:
        code, out, err = self.sh(script)
        assert code == 0, f"{script}: exit {code}\n{out}{err}"
        return out

    def stem(self, *args: str, user: str = "root") -> tuple[int, str, str]:
        """``stem worker multi ARGS...`` as ``user``."""
        return self.sh(shlex.join(["stem", "worker", "multi", *args]), user=user)

    def show(self, unit: str) -> dict[str, str]:
        """``systemctl show`` of the properties status reports."""
        out = self.ok(f"systemctl show {shlex.quote(unit)} -p {','.join(SHOW)}")
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def main_argv(self, unit: str) -> list[str]:
        pid = self.show(unit)["MainPID"]
        assert pid != "0", f"{unit} has no main process"
        return self.ok(f"cat /proc/{pid}/cmdline").split("\0")[:-1]


def unit(node: str) -> str:
    """The unit systemd-escape gives for a node (computed by the real tool in the container)."""
    return f"stem-worker@{node}.service"


@pytest.fixture
def box(systemd_container: Any) -> Iterator[Sys]:
    """The shared systemd container, with no stem-worker@ instance around before and after."""
    sysd = Sys(systemd_container)
    sysd.sh(CLEAN)
    yield sysd
    sysd.sh(CLEAN)


CLEAN = (
    "systemctl stop 'stem-worker@*' ; "
    "rm -f /etc/systemd/system/*.wants/stem-worker@?*.service ; "
    "rm -rf /run/systemd/system/stem-worker@?*.service.d ; "
    "systemctl daemon-reload ; systemctl reset-failed 'stem-worker@*' ; true"
)


def escaped(box: Sys, node: str) -> str:
    return box.ok(f"systemd-escape --template=stem-worker@.service {shlex.quote(node)}").strip()


def nodes_json(out: str) -> dict[str, dict[str, Any]]:
    return {n["node"]: n for n in json.loads(out)["nodes"]}


def test_enable_now_then_status_agrees_with_systemctl(box: Sys) -> None:
    """status agrees with `systemctl show`; stem's enable/disable --now equal systemctl's."""
    box.ok("systemctl enable --now stem-worker@alpha")
    code, out, err = box.stem("status", "alpha", "--json")
    assert code == 0, err
    node = nodes_json(out)["alpha"]
    show = box.show("stem-worker@alpha.service")
    assert (node["active_state"], node["sub_state"]) == (show["ActiveState"], show["SubState"])
    assert node["main_pid"] == int(show["MainPID"]) > 0
    assert node["n_restarts"] == int(show["NRestarts"])
    assert node["unit_file_state"] == show["UnitFileState"] == "enabled"
    assert node["status_text"] == show["StatusText"] != ""
    assert "backend: systemd (auto:" in err

    # With no names: every loaded or enabled instance (alpha is both).
    code, out, _ = box.stem("status", "--json")
    assert code == 0 and "alpha" in nodes_json(out)

    code, out, err = box.stem("disable", "--now", "alpha")
    assert code == 0, err
    assert box.sh("systemctl is-enabled stem-worker@alpha")[1].strip() == "disabled"
    assert box.sh("systemctl is-active stem-worker@alpha")[1].strip() == "inactive"

    code, out, err = box.stem("enable", "--now", "beta")
    assert code == 0, err
    assert box.sh("systemctl is-enabled stem-worker@beta")[1].strip() == "enabled"
    assert box.sh("systemctl is-active stem-worker@beta")[1].strip() == "active"
    box.ok("systemctl disable --now stem-worker@beta")
    code, out, _ = box.stem("status", "beta")
    assert code == 3, out


def test_start_waits_for_ready_and_args_survive_restart(box: Sys) -> None:
    """start returns only after READY=1; per-node args survive restart; kill --whom main."""
    code, out, err = box.stem("start", "alpha", "beta", "--", "--ready-delay", "3")
    assert code == 0, out + err
    for node in ("alpha", "beta"):
        # Type=notify: still "activating" until READY=1, so this proves start waited.
        show = box.show(unit(node))
        assert (show["ActiveState"], show["SubState"]) == ("active", "running")
        assert box.main_argv(unit(node))[-2:] == ["--ready-delay", "3"]
    old = box.show(unit("alpha"))["MainPID"]

    code, out, err = box.stem("restart", "alpha")
    assert code == 0, out + err
    assert box.show(unit("alpha"))["MainPID"] != old
    assert box.main_argv(unit("alpha"))[-2:] == ["--ready-delay", "3"]
    box.ok("systemctl restart stem-worker@beta")  # systemd's own restart keeps them too
    assert box.main_argv(unit("beta"))[-2:] == ["--ready-delay", "3"]

    pid = box.show(unit("alpha"))["MainPID"]
    code, out, err = box.stem("kill", "alpha", "--signal", "HUP", "--whom", "main")
    assert code == 0 and f"sent SIGHUP to main process (pid {pid})" in out, out + err
    assert box.show(unit("alpha"))["MainPID"] == pid  # HUP reopens logs, nothing restarts

    code, out, err = box.stem("stop", "alpha", "beta")
    assert code == 0, out + err
    for node in ("alpha", "beta"):
        assert box.show(unit(node))["ActiveState"] == "inactive"


INTERRUPTED_START = """
stem worker multi start s6 s7 -- --ready-delay 60 & pid=$!
i=0
until [ "$(systemctl is-active stem-worker@s6 stem-worker@s7 | grep -c '^activating$')" = 2 ] ||
      [ $i -ge 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM $pid
wait $pid
echo "rc=$?"
"""


def test_interrupted_start_stops_the_units_it_began(box: Sys) -> None:
    """TERM while start waits for READY=1 stops the units it began (143), none left starting."""
    _, out, err = box.sh(INTERRUPTED_START)
    assert "rc=143" in out, out + err
    assert "Aborted: SIGTERM." in err
    for node in ("s6", "s7"):
        assert box.show(unit(node))["ActiveState"] in ("inactive", "failed"), box.show(unit(node))
    assert "stem-worker@" not in box.ok("systemctl list-jobs --no-legend")


def test_start_failure_reports_reason_and_journal(box: Sys) -> None:
    """A worker that exits at start fails the start with its exit status and journal lines."""
    code, out, err = box.stem("start", "gamma", "--", "--no-such-option")
    assert code == 1, out + err
    assert "gamma: failed to start (stem-worker@gamma.service)" in err
    assert "exit status 2" in err
    assert "unrecognized arguments: --no-such-option" in err  # the worker's stderr, from journald


def test_stop_lets_the_in_flight_job_finish(box: Sys) -> None:
    """stop is a warm shutdown: a job in hand completes before the unit is inactive."""
    spool = "/var/lib/stem/test-spool"
    box.ok(f"rm -rf {spool} && install -d -o stem -g stem {spool}")
    code, out, err = box.stem("start", "alpha", "--", "--jobs", spool)
    assert code == 0, out + err
    box.ok(f"echo 3 > {spool}/.job1 && chown stem: {spool}/.job1 && mv {spool}/.job1 {spool}/job1")

    def claimed() -> bool:
        return bool(box.sh(f"ls {spool}/active")[1].strip())

    wait_until(claimed, timeout=30, pause=0.2)

    code, out, err = box.stem("stop", "alpha")
    assert code == 0, out + err
    assert "stopped (stem-worker@alpha.service)" in out
    assert "result: ok" in box.ok(f"cat {spool}/done/job1")


def test_node_names_round_trip(box: Sys) -> None:
    """eu-west, 'my worker', köln, w1@host: escaped unit names, unescaped in status and logs."""
    names = ["eu-west", "my worker", "köln", "w1@host"]
    code, out, err = box.stem("start", *names)
    assert code == 0, out + err
    units = box.ok("systemctl list-units --plain --no-legend 'stem-worker@*'")
    for name in names:
        assert escaped(box, name) in units
    code, out, err = box.stem("status", "--json")
    assert code == 0, err
    assert sorted(nodes_json(out)) == sorted(names)
    for name in names:
        assert nodes_json(out)[name]["unit"] == escaped(box, name)
    journal = box.ok(f"journalctl -u {shlex.quote(escaped(box, 'köln'))} -o cat --no-pager")
    assert "köln" in journal
    code, out, err = box.stem("stop", *names)
    assert code == 0, out + err
    code, out, _ = box.stem("status", *names)
    assert code == 3, out


def test_bad_name_refused_before_any_systemd_call(box: Sys) -> None:
    """A node name with a slash is a usage error (exit 2) and creates no unit."""
    code, out, err = box.stem("start", "a/b", "--backend=systemd")
    assert code == 2, out + err
    assert "stem-worker@a" not in box.ok("systemctl list-units --all --plain --no-legend")


def test_template_missing_exits_5(box: Sys) -> None:
    """Without stem-worker@.service, --backend=systemd exits 5 with the install hint."""
    path = box.ok("systemctl show -p FragmentPath --value stem-worker@x.service").strip()
    assert path
    box.ok(f"mv {path} /root/template.saved && systemctl daemon-reload")
    try:
        code, out, err = box.stem("start", "alpha", "--backend=systemd")
        assert code == 5, out + err
        assert "stem-worker@.service is not installed" in err
        assert "Hint: install units/stem-worker@.service" in err
        code, _, err = box.stem("status", "alpha")  # auto: falls back to pidfile, says why
        assert "backend: pidfile (auto: stem-worker@.service is not installed)" in err
    finally:
        box.ok(f"mv /root/template.saved {path} && systemctl daemon-reload")


def test_non_root_is_refused_with_exit_4(box: Sys) -> None:
    """The stem user may read status but not start: exit 4 naming root and polkit."""
    code, out, err = box.stem("start", "alpha", "--backend=systemd", user="stem")
    assert code == 4, out + err
    assert "access denied by systemd" in err and "root" in err and "polkit" in err
    assert box.show(unit("alpha"))["ActiveState"] == "inactive"
    code, out, err = box.stem("status", "alpha", "--backend=systemd", user="stem")
    assert code == 3, out + err


def test_stop_timeout_kills_the_whole_cgroup(box: Sys) -> None:
    """At stem's own stop timeout a unit still draining gets SIGKILL to its cgroup, reported."""
    spool = "/var/lib/stem/test-spool"
    box.ok(f"rm -rf {spool} && install -d -o stem -g stem {spool}")
    code, out, err = box.stem("start", "alpha", "--", "--jobs", spool)
    assert code == 0, out + err
    box.ok(f"echo '600 ignore-term' > {spool}/.stuck && mv {spool}/.stuck {spool}/stuck")

    def claimed() -> bool:
        return bool(box.sh(f"ls {spool}/active")[1].strip())

    wait_until(claimed, timeout=30, pause=0.2)
    code, out, err = box.stem("stop", "alpha", "--timeout", "3")
    assert code == 0, out + err
    assert "killed (SIGKILL to the whole cgroup) after 3 s" in out
    assert box.show(unit("alpha"))["ActiveState"] in ("inactive", "failed")
    assert box.sh("pgrep -u stem -f '[s]tem-worker'")[0] == 1  # nothing left of the node


USER_UNIT = """\
[Unit]
Description=Stem worker %I (user manager)

[Service]
Type=notify
ExecStart=/usr/local/bin/stem worker exec %I

[Install]
WantedBy=default.target
"""


def test_user_manager(box: Sys) -> None:
    """--user drives the same template on the calling user's own systemd instance."""
    uid = box.ok("id -u stem").strip()
    run = f"/run/user/{uid}"
    # No libpam-systemd in the image, so no user@.service: run the stem user's
    # manager by hand (Delegate=yes gives it a cgroup subtree of its own).
    box.ok(
        f"install -d -o stem -g stem -m 0700 {run} && "
        "install -d -o stem -g stem /var/lib/stem/.config/systemd/user && "
        f"systemd-run -q --unit=stem-test-user-manager -p User=stem -p Delegate=yes "
        f"-p Type=notify -p Environment=XDG_RUNTIME_DIR={run} /lib/systemd/systemd --user"
    )
    as_stem = f"cd / && XDG_RUNTIME_DIR={run} "
    try:
        template = "/var/lib/stem/.config/systemd/user/stem-worker@.service"
        box.ok(f"cat > {template} <<'EOF'\n{USER_UNIT}EOF\nchown stem: {template}")
        code, out, err = box.sh(
            as_stem + "stem worker multi start --user alpha -- --ready-delay 1", user="stem"
        )
        assert code == 0, out + err
        assert "backend: systemd (auto:" in err
        show = box.sh(
            as_stem + "systemctl --user show stem-worker@alpha -p ActiveState,SubState",
            user="stem",
        )[1]
        assert "ActiveState=active" in show and "SubState=running" in show
        box.ok(f"test -s {run}/systemd/user/stem-worker@alpha.service.d/50-stem-args.conf")
        code, out, err = box.sh(as_stem + "stem worker multi stop --user alpha", user="stem")
        assert code == 0 and "stopped" in out, out + err
    finally:
        box.sh(
            "systemctl stop stem-test-user-manager ; "
            "systemctl reset-failed stem-test-user-manager ; "
            f"rm -rf /var/lib/stem/.config {run} ; true"
        )
