"""The configuration surface: flags > process environment > env file > defaults.

One set of variables (STEM_WORKER_COMMAND, STEM_WORKER_NODES, STEM_PIDFILE,
STEM_LOGFILE, STEM_START_TIMEOUT, STEM_STOP_TIMEOUT, STEM_READY_AFTER,
STEM_BACKEND, STEM_WORKDIR, STEM_SCHEDULER_COMMAND) is read from, in order:
the command-line flags, the process environment, the env file (``--env-file``,
default ``/etc/stem/stem.env`` when readable; parsed with systemd's
EnvironmentFile= rules, see :mod:`stem_systemd.envfile`), then defaults. An
empty value counts as unset at its level.

Default directories work without root (decided here, shown by ``show`` and
``status``): pidfiles in ``/run/stem`` and logs in ``/var/log/stem`` when that
directory is writable or can be created; otherwise per user, following the XDG
base-directory spec: ``$XDG_RUNTIME_DIR/stem`` (else ``/tmp/stem-<uid>``) and
``$XDG_STATE_HOME/stem/log`` (else ``~/.local/state/stem/log``). A relative
pidfile or logfile template is taken relative to that directory, so ``stop``
finds what ``start`` wrote whatever the current directory.

Pure: reads the env file and looks at directories, spawns nothing, creates nothing.
"""

from __future__ import annotations

import math
import os
import shlex
import stat
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stem_systemd import placeholders
from stem_systemd.envfile import EnvFile, read_env_file
from stem_systemd.errors import PrivilegeError, UsageError

DEFAULT_ENV_FILE = Path("/etc/stem/stem.env")
SYSTEM_PIDDIR = Path("/run/stem")
SYSTEM_LOGDIR = Path("/var/log/stem")
DEFAULT_PIDFILE = "%n.pid"
DEFAULT_LOGFILE = "%n%I.log"
DEFAULT_TIMEOUT = 30.0
# poll(2) takes an int of milliseconds (about 24.8 days): longer waits would overflow.
MAX_SECONDS = 1_000_000
BACKENDS = ("auto", "systemd", "pidfile")

# flag key -> variable; the flags dict handed to load_settings uses these keys.
FLAG_VARIABLES = {
    "backend": "STEM_BACKEND",
    "cmd": "STEM_WORKER_COMMAND",
    "pidfile": "STEM_PIDFILE",
    "logfile": "STEM_LOGFILE",
    "start_timeout": "STEM_START_TIMEOUT",
    "stop_timeout": "STEM_STOP_TIMEOUT",
    "ready_after": "STEM_READY_AFTER",
    "workdir": "STEM_WORKDIR",
}
VARIABLES = (*FLAG_VARIABLES.values(), "STEM_WORKER_NODES", "STEM_SCHEDULER_COMMAND")


@dataclass(frozen=True)
class Settings:
    """Everything ``stem worker multi`` needs besides the node arguments.

    ``pidfile`` and ``logfile`` are absolute templates (placeholders unexpanded,
    already checked). ``nodes`` are STEM_WORKER_NODES's words (names or one
    count). ``file_env`` holds the env file's assignments that the process
    environment does not override: the nodes get them, as systemd's
    EnvironmentFile= gives them to units. ``warnings`` are ``file:line: ...``
    lines for the user (stderr).
    """

    command: tuple[str, ...]
    nodes: tuple[str, ...]
    pidfile: str
    logfile: str
    start_timeout: float
    stop_timeout: float
    ready_after: float | None
    backend: str
    workdir: Path | None
    env_file: Path | None
    piddir: Path
    logdir: Path
    warnings: tuple[str, ...] = ()
    scheduler_command: tuple[str, ...] = ()
    file_env: Mapping[str, str] = field(default_factory=dict)
    sources: Mapping[str, str] = field(default_factory=dict)  # variable -> where it came from


def default_command() -> tuple[str, ...]:
    """The bundled ``stem-worker`` next to the running interpreter (else found on PATH).

    Not resolved through symlinks: a venv's ``bin/python`` links to the system
    interpreter, but its scripts live in the venv's ``bin``.
    """
    beside = Path(sys.executable).parent / "stem-worker"
    return (str(beside),) if beside.exists() else ("stem-worker",)


def load_settings(
    flags: Mapping[str, str | None],
    environ: Mapping[str, str],
    *,
    default_env_file: Path = DEFAULT_ENV_FILE,
) -> Settings:
    """Resolve every setting by precedence; bad values are UsageErrors naming their source."""
    env_file, envf = _load_env_file(flags.get("env_file"), default_env_file)
    resolver = _Resolver(flags, environ, envf)

    cmd_text, cmd_src = resolver.get("cmd")
    command = _split(cmd_text, cmd_src) if cmd_text is not None else default_command()
    if not command:
        raise UsageError(f"empty worker command ({cmd_src})", hint="set STEM_WORKER_COMMAND")
    for token in command:
        placeholders.check(token, "command")

    nodes_text, nodes_src = resolver.get_var("STEM_WORKER_NODES")
    nodes = _split(nodes_text, nodes_src) if nodes_text is not None else ()
    sched_text, sched_src = resolver.get_var("STEM_SCHEDULER_COMMAND")
    scheduler = _split(sched_text, sched_src) if sched_text is not None else ()

    piddir = default_piddir(environ)
    logdir = default_logdir(environ)
    pidfile = _template(resolver, "pidfile", DEFAULT_PIDFILE, piddir)
    logfile = _template(resolver, "logfile", DEFAULT_LOGFILE, logdir)

    backend, backend_src = resolver.get("backend")
    backend = backend or "auto"
    if backend not in BACKENDS:
        raise UsageError(
            f"unknown backend {backend!r} ({backend_src})", hint="use auto, systemd or pidfile"
        )

    workdir_text, _ = resolver.get("workdir")
    workdir = Path(workdir_text).absolute() if workdir_text else None

    file_env = dict(envf.values) if envf else {}
    for name in environ:
        file_env.pop(name, None)

    return Settings(
        command=command,
        nodes=nodes,
        pidfile=pidfile,
        logfile=logfile,
        start_timeout=_timeout(resolver, "start_timeout"),
        stop_timeout=_timeout(resolver, "stop_timeout"),
        ready_after=_seconds(resolver, "ready_after", None, allow_zero=True),
        backend=backend,
        workdir=workdir,
        env_file=env_file,
        piddir=piddir,
        logdir=logdir,
        warnings=_unreadable_default(flags, default_env_file)
        + (tuple(str(w) for w in envf.warnings) if envf else ()),
        scheduler_command=scheduler,
        file_env=file_env,
        sources=resolver.sources,
    )


def default_piddir(environ: Mapping[str, str]) -> Path:
    """``/run/stem`` when usable, else ``$XDG_RUNTIME_DIR/stem``, else ``/tmp/stem-<uid>``."""
    if _usable(SYSTEM_PIDDIR):
        return SYSTEM_PIDDIR
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if runtime.startswith("/"):
        return Path(runtime) / "stem"
    return _own_tmp_dir(Path(f"/tmp/stem-{os.getuid()}"))


def _own_tmp_dir(path: Path) -> Path:
    """``path`` under the shared /tmp, refused when it exists and is not this user's directory.

    Anyone can create /tmp/stem-<uid> first (or a symlink there): its owner
    could then delete our pidfiles and locks and have two nodes started.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return path
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        what = "a directory" if stat.S_ISDIR(st.st_mode) else "not a directory"
        raise PrivilegeError(
            f"default pid directory {path} is {what} owned by uid {st.st_uid}"
            f"{', writable by others' if st.st_mode & 0o022 else ''}; not using it",
            hint="set XDG_RUNTIME_DIR, or STEM_PIDFILE / --pidfile to a directory of yours"
            f" (or remove {path} if it is stale)",
        )
    return path


def default_logdir(environ: Mapping[str, str]) -> Path:
    """``/var/log/stem`` when usable, else ``$XDG_STATE_HOME/stem/log`` or ``~/.local/state``."""
    if _usable(SYSTEM_LOGDIR):
        return SYSTEM_LOGDIR
    state = environ.get("XDG_STATE_HOME", "")
    if state.startswith("/"):
        return Path(state) / "stem" / "log"
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".local" / "state" / "stem" / "log"


def _usable(directory: Path) -> bool:
    """Writable if it exists, else creatable: its nearest existing ancestor is writable."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _load_env_file(flag: str | None, default: Path) -> tuple[Path | None, EnvFile | None]:
    if flag:
        path = Path(flag)
        return path, read_env_file(path)  # an explicit file must be readable
    if default.is_file() and os.access(default, os.R_OK):
        return default, read_env_file(default)
    return None, None


def _unreadable_default(flags: Mapping[str, str | None], default: Path) -> tuple[str, ...]:
    """A warning when the default env file exists but this user cannot read it.

    It is documented as used "when readable", but a silent skip would leave a
    non-root operator with other settings than the units get.
    """
    if flags.get("env_file") or not default.is_file() or os.access(default, os.R_OK):
        return ()
    return (
        f"{default}: not readable by this user, its settings are not used "
        "(run as root or a member of its group, or pass --env-file)",
    )


class _Resolver:
    """Looks one setting up by precedence and remembers where each value came from."""

    def __init__(
        self, flags: Mapping[str, str | None], environ: Mapping[str, str], envf: EnvFile | None
    ) -> None:
        self.flags = flags
        self.environ = environ
        self.envf = envf
        self.sources: dict[str, str] = {}

    def get(self, key: str) -> tuple[str | None, str]:
        variable = FLAG_VARIABLES[key]
        value = self.flags.get(key)
        if value:
            source = "--" + key.replace("_", "-")
            self.sources[variable] = source
            return value, source
        return self.get_var(variable)

    def get_var(self, variable: str) -> tuple[str | None, str]:
        value = self.environ.get(variable)
        if value:
            source = f"{variable} in the environment"
            self.sources[variable] = source
            return value, source
        if self.envf is not None:
            value = self.envf.values.get(variable)
            if value:
                source = f"{variable} at {self.envf.path}:{self.envf.lines[variable]}"
                self.sources[variable] = source
                return value, source
        return None, f"default {variable}"


def _split(text: str, source: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        raise UsageError(
            f"cannot split {text!r} ({source}): {exc}", hint="check its quotes"
        ) from None


def _template(resolver: _Resolver, key: str, default: str, directory: Path) -> str:
    text, _ = resolver.get(key)
    template = text or default
    placeholders.check(template, key)
    if template.endswith("/"):
        suffix = "pid" if key == "pidfile" else "log"
        raise UsageError(
            f"{key} template {template!r} ends in '/': it names a directory, not a file",
            hint=f"add a file name with the node in it, such as '{template}%n.{suffix}'",
        )
    if not template.startswith("/"):
        template = placeholders.escape(str(directory)) + "/" + template
    return template


def _timeout(resolver: _Resolver, key: str) -> float:
    value = _seconds(resolver, key, DEFAULT_TIMEOUT)
    return DEFAULT_TIMEOUT if value is None else value


def _seconds(
    resolver: _Resolver, key: str, default: float | None, *, allow_zero: bool = False
) -> float | None:
    text, source = resolver.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise UsageError(
            f"{FLAG_VARIABLES[key]} must be a positive number of seconds, got {text!r} ({source})",
            hint="e.g. 30 or 2.5",
        )
    if value > MAX_SECONDS:
        raise UsageError(
            f"{FLAG_VARIABLES[key]} is too long: {text!r} ({source})",
            hint=f"at most {MAX_SECONDS} seconds (about 11 days)",
        )
    return value
