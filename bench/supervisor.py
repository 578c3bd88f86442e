"""supervisord with ``numprocs=N``: ``supervisorctl start all``, ``status``, ``stop all``.

supervisord itself is the long-running manager (like systemd), so it is started
before the clock and shut down after; timed are the three supervisorctl
commands a user types. The programs are the same bundled launcher the stem
nodes run (concurrency 1). supervisord knows nothing of sd_notify: a process is
RUNNING once it has lived ``startsecs`` seconds (0: as soon as it is spawned),
and ``start all`` returns when every process is RUNNING. The control channel is
a unix socket in the run's directory, never TCP.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

from bench.procs import (
    BenchError,
    Proc,
    descendants,
    kill_all,
    release,
    spawn,
    timed,
    wait_for,
    wait_gone,
)

CONF = """\
[unix_http_server]
file = {work}/supervisor.sock

[supervisord]
logfile = {work}/supervisord.log
pidfile = {work}/supervisord.pid
childlogdir = {work}/log
nodaemon = true

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = unix://{work}/supervisor.sock

[program:worker]
command = {launcher} --node w%(process_num)d -c 1 --logfile {work}/log/w%(process_num)d%%I.log
process_name = w%(process_num)d
numprocs = {n}
numprocs_start = 1
directory = {work}
autostart = false
autorestart = false
startsecs = {startsecs}
stopsignal = TERM
stopwaitsecs = 30
stdout_logfile = {work}/log/w%(process_num)d.out
redirect_stderr = true
"""


def measure(
    venv_bin: Path, n: int, startsecs: int, work: Path, env: dict[str, str]
) -> dict[str, float]:
    """One run: supervisorctl start all (until RUNNING), status, stop all (until gone)."""
    (work / "log").mkdir(parents=True, exist_ok=True)
    conf = work / "supervisord.conf"
    conf.write_text(
        CONF.format(work=work, n=n, startsecs=startsecs, launcher=venv_bin / "stem-worker")
    )
    ctl = [str(venv_bin / "supervisorctl"), "-c", str(conf)]
    daemon = spawn(
        [str(venv_bin / "supervisord"), "-c", str(conf)],
        env=env,
        cwd=work,
        stderr=subprocess.DEVNULL,  # it logs to its logfile; a full pipe would stall it
    )
    workers: set[Proc] = set()
    try:
        sock = work / "supervisor.sock"
        wait_for("supervisord socket", sock.exists, timeout=60)
        # "status" exits 3 while every program is STOPPED: the daemon answers.
        timed([*ctl, "status"], env=env, ok=(3,))
        start = timed([*ctl, "start", "all"], env=env, timeout=300)
        if "ERROR" in start.stdout:
            raise BenchError("supervisorctl start all: " + start.stdout.strip().splitlines()[-1])
        status = timed([*ctl, "status"], env=env)
        running = sum(" RUNNING " in line for line in status.stdout.splitlines())
        if running != n:
            raise BenchError(f"supervisor: {running} of {n} RUNNING")
        workers = descendants(daemon.pid)
        t0 = time.perf_counter()
        timed([*ctl, "stop", "all"], env=env, timeout=300)
        wait_gone(workers, timeout=60)
        stop = time.perf_counter() - t0
        return {"start": start.seconds, "status": status.seconds, "stop": stop}
    finally:
        kill_all(workers | descendants(daemon.pid))
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        release(daemon)
