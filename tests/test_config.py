"""The configuration surface: precedence, validation, env file, default directories."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from stem_systemd import config
from stem_systemd.config import FLAG_VARIABLES, Settings, load_settings
from stem_systemd.errors import PrivilegeError, UsageError


def load(
    tmp_path: Path,
    flags: dict[str, str | None] | None = None,
    environ: dict[str, str] | None = None,
    file_text: str | None = None,
) -> Settings:
    """load_settings with an env file in tmp_path (if text is given) and no /etc default."""
    flags = dict(flags or {})
    if file_text is not None:
        env_file = tmp_path / "stem.env"
        env_file.write_text(file_text, encoding="utf-8")
        flags.setdefault("env_file", str(env_file))
    return load_settings(flags, environ or {}, default_env_file=tmp_path / "absent.env")


def test_defaults(tmp_path: Path) -> None:
    """With nothing configured: bundled launcher, 30 s timeouts, auto backend, default dirs."""
    s = load(tmp_path)
    assert s.command == config.default_command()
    assert s.nodes == ()
    assert (s.start_timeout, s.stop_timeout, s.ready_after) == (30.0, 30.0, None)
    assert s.backend == "auto"
    assert s.workdir is None
    assert s.env_file is None
    assert s.pidfile == f"{s.piddir}/%n.pid"
    assert s.logfile == f"{s.logdir}/%n%I.log"
    assert s.warnings == ()


def test_default_command_is_beside_the_interpreter() -> None:
    """The default launcher is the stem-worker script next to the running Python."""
    (command,) = config.default_command()
    assert command == "stem-worker" or command.endswith("/stem-worker")


SAMPLES = {
    "backend": ("systemd", "pidfile", "auto", "backend"),
    "cmd": ("/f/w --x", "/e/w", "/file/w", "command"),
    "pidfile": ("/f/%n.pid", "/e/%n.pid", "/file/%n.pid", "pidfile"),
    "logfile": ("/f/%n%I.log", "/e/%n.log", "/file/%n.log", "logfile"),
    "start_timeout": ("5", "6", "7", "start_timeout"),
    "stop_timeout": ("8", "9", "10", "stop_timeout"),
    "ready_after": ("1.5", "2", "0", "ready_after"),
    "workdir": ("/f", "/e", "/file", "workdir"),
}


def _attr(s: Settings, key: str) -> object:
    value = getattr(s, SAMPLES[key][3])
    if key == "cmd":
        return value[0]
    if key in ("start_timeout", "stop_timeout", "ready_after"):
        return str(value).removesuffix(".0")
    return str(value)


@pytest.mark.parametrize("key", sorted(SAMPLES))
def test_precedence_flag_env_file_default(key: str, tmp_path: Path) -> None:
    """Each setting comes from the flag, else the environment, else the env file."""
    flag, env, file, _ = SAMPLES[key]
    var = FLAG_VARIABLES[key]
    text = f"{var}={file}\n"
    first = flag.split()[0]
    assert _attr(load(tmp_path, {key: flag}, {var: env}, text), key) == first
    assert _attr(load(tmp_path, {key: None}, {var: env}, text), key) == env
    assert _attr(load(tmp_path, {}, {}, text), key) == file
    assert _attr(load(tmp_path, {key: ""}, {var: ""}, text), key) == file  # empty is unset


def test_sources_name_where_values_came_from(tmp_path: Path) -> None:
    """Settings.sources says which flag, variable or file line supplied each value."""
    s = load(
        tmp_path,
        {"stop_timeout": "3"},
        {"STEM_BACKEND": "pidfile"},
        "# x\nSTEM_PIDFILE=/p/%n.pid\n",
    )
    assert s.sources["STEM_STOP_TIMEOUT"] == "--stop-timeout"
    assert s.sources["STEM_BACKEND"] == "STEM_BACKEND in the environment"
    assert s.sources["STEM_PIDFILE"] == f"STEM_PIDFILE at {tmp_path}/stem.env:2"


def test_default_env_file_is_read_when_present(tmp_path: Path) -> None:
    """Without --env-file the default file is read when it exists and is readable."""
    default = tmp_path / "stem.env"
    default.write_text("STEM_WORKER_NODES=alpha beta\n", encoding="utf-8")
    s = load_settings({}, {}, default_env_file=default)
    assert s.env_file == default
    assert s.nodes == ("alpha", "beta")


def test_unreadable_default_env_file_is_a_warning() -> None:
    """A default env file this user cannot read is skipped with a warning naming it."""
    with tempfile.TemporaryDirectory() as tmp:  # /tmp itself: traversable by nobody
        os.chmod(tmp, 0o755)  # noqa: S103 (nobody must reach the file to find it unreadable)
        default = Path(tmp) / "stem.env"
        default.write_text("STEM_WORKER_NODES=alpha\n", encoding="utf-8")
        default.chmod(0o600)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: drop to nobody so root's DAC override does not apply
            try:
                os.close(read_end)
                if os.getuid() == 0:
                    os.setgid(65534)
                    os.setuid(65534)
                s = load_settings({}, {"HOME": tmp}, default_env_file=default)
                os.write(write_end, "\n".join((str(s.env_file), *s.warnings)).encode())
            except BaseException as exc:
                os.write(write_end, repr(exc).encode())
            finally:
                os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            out = pipe.read()
        os.waitpid(pid, 0)
    env_file, *warnings = out.split("\n")
    assert env_file == "None", out
    assert any(str(default) in w and "not readable" in w for w in warnings)


def test_explicit_env_file_must_exist(tmp_path: Path) -> None:
    """--env-file naming a missing file is a usage error naming it."""
    with pytest.raises(UsageError, match=r"missing\.env"):
        load(tmp_path, {"env_file": str(tmp_path / "missing.env")})


def test_nodes_and_commands_are_shell_split(tmp_path: Path) -> None:
    """STEM_WORKER_NODES and the commands are split like sh words (quotes kept together)."""
    s = load(
        tmp_path,
        environ={
            "STEM_WORKER_NODES": "alpha 'my worker'",
            "STEM_WORKER_COMMAND": "/usr/bin/stem-worker --jobs '/srv/my jobs'",
            "STEM_SCHEDULER_COMMAND": "/usr/bin/stem-scheduler -v",
        },
    )
    assert s.nodes == ("alpha", "my worker")
    assert s.command == ("/usr/bin/stem-worker", "--jobs", "/srv/my jobs")
    assert s.scheduler_command == ("/usr/bin/stem-scheduler", "-v")


def test_unbalanced_quotes_are_a_usage_error(tmp_path: Path) -> None:
    """A command with an unbalanced quote is a usage error naming its source."""
    with pytest.raises(UsageError, match="STEM_WORKER_COMMAND in the environment"):
        load(tmp_path, environ={"STEM_WORKER_COMMAND": "/bin/w 'open"})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("stop_timeout", "abc"),
        ("stop_timeout", "0"),
        ("start_timeout", "-1"),
        ("start_timeout", "inf"),
        ("ready_after", "nan"),
        ("ready_after", "-2"),
        ("stop_timeout", "1e9"),  # poll(2) would overflow: it was a traceback
        ("start_timeout", "2000000"),
    ],
)
def test_bad_seconds_are_usage_errors(key: str, value: str, tmp_path: Path) -> None:
    """Timeouts must be positive finite numbers; the error names the variable and flag."""
    with pytest.raises(UsageError) as exc:
        load(tmp_path, {key: value})
    assert FLAG_VARIABLES[key] in exc.value.message
    assert "--" + key.replace("_", "-") in exc.value.message


def test_ready_after_zero_is_allowed(tmp_path: Path) -> None:
    """--ready-after 0 means "ready as soon as spawned" and is accepted."""
    assert load(tmp_path, {"ready_after": "0"}).ready_after == 0.0


def test_bad_value_in_file_names_file_and_line(tmp_path: Path) -> None:
    """A bad value from the env file names the file and line it came from."""
    with pytest.raises(UsageError, match=r"stem\.env:2"):
        load(tmp_path, file_text="A=1\nSTEM_STOP_TIMEOUT=soon\n")


def test_unknown_backend(tmp_path: Path) -> None:
    """An unknown backend is a usage error listing the choices."""
    with pytest.raises(UsageError) as exc:
        load(tmp_path, environ={"STEM_BACKEND": "upstart"})
    assert "upstart" in exc.value.message
    assert exc.value.hint == "use auto, systemd or pidfile"


@pytest.mark.parametrize("key", ["pidfile", "logfile", "cmd"])
def test_unknown_placeholder_fails_early(key: str, tmp_path: Path) -> None:
    """Templates are checked when settings load, before any node is expanded."""
    with pytest.raises(UsageError, match="unknown placeholder %q"):
        load(tmp_path, {key: "/x/%q"})


def test_relative_templates_live_in_the_default_dirs(tmp_path: Path) -> None:
    """Relative pidfile/logfile templates are taken relative to the pid and log dirs."""
    s = load(tmp_path, {"pidfile": "pids/%n.pid", "logfile": "%n%I.log"})
    assert s.pidfile == f"{s.piddir}/pids/%n.pid"
    assert s.logfile == f"{s.logdir}/%n%I.log"


def test_workdir_is_made_absolute(tmp_path: Path) -> None:
    """A relative workdir is resolved against the current directory once, at load time."""
    assert load(tmp_path, {"workdir": "jobs"}).workdir == Path.cwd() / "jobs"


def test_file_env_excludes_what_the_environment_overrides(tmp_path: Path) -> None:
    """Nodes get the env file's variables, minus those the process environment sets."""
    s = load(tmp_path, environ={"B": "env"}, file_text="A=1\nB=file\n")
    assert dict(s.file_env) == {"A": "1"}


def test_env_file_warnings_reach_settings(tmp_path: Path) -> None:
    """Env-file warnings are passed on as 'file:line: ...' lines."""
    s = load(tmp_path, file_text="A=1\nB=$HOME\n")
    [warning] = s.warnings
    assert warning.startswith(f"{tmp_path}/stem.env:2: B:")


# ---- default directories ----------------------------------------------------


@pytest.fixture
def no_system_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make /run/stem and /var/log/stem unusable (their parent is a regular file)."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setattr(config, "SYSTEM_PIDDIR", blocker / "run" / "stem")
    monkeypatch.setattr(config, "SYSTEM_LOGDIR", blocker / "log" / "stem")


def test_system_dirs_when_usable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The system directories are used when they exist writable or can be created."""
    monkeypatch.setattr(config, "SYSTEM_PIDDIR", tmp_path / "run" / "stem")
    monkeypatch.setattr(config, "SYSTEM_LOGDIR", tmp_path / "log")
    (tmp_path / "log").mkdir()
    assert config.default_piddir({}) == tmp_path / "run" / "stem"
    assert config.default_logdir({}) == tmp_path / "log"


@pytest.mark.usefixtures("no_system_dirs")
def test_xdg_dirs_otherwise() -> None:
    """Without usable system dirs, XDG_RUNTIME_DIR and XDG_STATE_HOME are used."""
    environ = {"XDG_RUNTIME_DIR": "/run/user/1000", "XDG_STATE_HOME": "/home/u/.state"}
    assert config.default_piddir(environ) == Path("/run/user/1000/stem")
    assert config.default_logdir(environ) == Path("/home/u/.state/stem/log")


@pytest.mark.usefixtures("no_system_dirs")
def test_fallback_dirs_without_xdg() -> None:
    """Without XDG variables: /tmp/stem-<uid> and ~/.local/state/stem/log."""
    assert config.default_piddir({}) == Path(f"/tmp/stem-{os.getuid()}")
    assert config.default_logdir({"HOME": "/home/u"}) == Path("/home/u/.local/state/stem/log")


def test_squatted_tmp_pid_directory_is_refused(tmp_path: Path) -> None:
    """A /tmp/stem-<uid> that others may write, or a symlink there, is refused with one error."""
    ours = tmp_path / "stem-ours"
    assert config._own_tmp_dir(ours) == ours  # missing: created later, by us
    ours.mkdir(mode=0o755)
    assert config._own_tmp_dir(ours) == ours
    ours.chmod(0o1777)
    with pytest.raises(PrivilegeError, match="writable by others; not using it"):
        config._own_tmp_dir(ours)
    link = tmp_path / "stem-link"
    link.symlink_to(ours)
    with pytest.raises(PrivilegeError, match="is not a directory owned by uid"):
        config._own_tmp_dir(link)


def test_template_ending_in_slash_is_a_usage_error(tmp_path: Path) -> None:
    """--pidfile /run/x/ names a directory: a usage error with a file template as the hint."""
    with pytest.raises(UsageError, match="ends in '/'") as info:
        load(tmp_path, flags={"pidfile": "/run/x/"})
    assert info.value.hint == "add a file name with the node in it, such as '/run/x/%n.pid'"


@pytest.mark.usefixtures("no_system_dirs")
def test_percent_in_directory_is_not_a_placeholder(tmp_path: Path) -> None:
    """A '%' in the default directory is escaped, so it never becomes a placeholder."""
    s = load(tmp_path, environ={"XDG_RUNTIME_DIR": "/run/100%n"})
    assert s.pidfile == "/run/100%%n/stem/%n.pid"
