"""`intake serve`: gunicorn and the scheduler as two processes of one service, on one machine.

The same two programs a deployment on several hosts runs, `gunicorn 'intake:create_app()'`
and `intake worker`, started and stopped together by this small process, which itself
touches no database:

- the web: gunicorn (`python -m gunicorn`), a production server with its own master,
  workers that are restarted when they die, and a graceful stop (on SIGTERM each worker
  answers the requests it has, for up to the graceful timeout);
- the scheduler: `intake worker`, in exactly one process. Not in the gunicorn master before
  it forks (threads and database connections do not survive a fork), and not in a gunicorn
  worker (there are several, and gunicorn restarts them). On SIGTERM it lets the running
  job finish; the poller commits a fetch batch at a time (a savepoint per message), so a
  batch cut short by the final SIGKILL is rolled back and read again by the next poll.

Both children get a session of their own, so a Ctrl-C in the terminal reaches only this
process, which stops them as SIGTERM would; and each is sent SIGTERM should this process
die. The gunicorn master reaps every child it has (`waitpid(-1)`), which is why the
scheduler is not started from inside it. A scheduler that exits is started again after a
pause; a web server that exits stops the service (exit 1, for systemd to restart).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)

APP = "intake:create_app()"
TICK = 0.2  # seconds between looks at the children
RESTART_PAUSE = 5.0  # before a scheduler that exited is started again
STOP_MARGIN = 10.0  # seconds past the graceful timeout before a child is killed
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int
    threads: int
    graceful_seconds: int
    metrics_bind: str = ""


def _address(host: str, port: int | str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def gunicorn_command(options: ServeOptions) -> list[str]:
    """gunicorn as a deployment runs it; more settings through GUNICORN_CMD_ARGS."""
    command = [sys.executable, "-m", "gunicorn", "--bind", _address(options.host, options.port)]
    if options.metrics_bind:
        command += ["--bind", options.metrics_bind]
    return [
        *command,
        "--workers", str(options.workers),
        "--threads", str(options.threads),  # more than 1: gunicorn's gthread workers
        "--graceful-timeout", str(options.graceful_seconds),
        # No control socket in the home directory: nothing here uses gunicornc, and a
        # hardened unit's read-only home would make it an error line at every start.
        "--no-control-socket",
        "--log-level", "info",
        APP,
    ]  # fmt: skip


def scheduler_command() -> list[str]:
    return [sys.executable, "-m", "intake.shell.cli", "worker"]


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when this process ends (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Service:
    """The two children and their life."""

    def __init__(self, options: ServeOptions, env: Mapping[str, str]) -> None:
        self.options = options
        self.env = dict(env)
        self.stopping = False

    def _start(self, command: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
            command,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def _stop_requested(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("%s: stopping the web server and the scheduler", signal.Signals(signum).name)
        self.stopping = True

    def run(self) -> int:
        """Until SIGTERM or SIGINT (0 when both children stopped well), or the web dies (1)."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._stop_requested)
        with metrics_directory(self.env) as metrics_dir:
            web_env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
            web = self._start(gunicorn_command(self.options), web_env)
            scheduler: subprocess.Popen[bytes] | None = self._start(scheduler_command(), self.env)
            restart_at: float | None = None
            web_died = False
            while not self.stopping:
                if web.poll() is not None:
                    log.error("the web server exited (%s); stopping", web.returncode)
                    web_died = True
                    break
                if scheduler is not None and scheduler.poll() is not None:
                    log.error(
                        "the scheduler exited (%s); starting it again in %d s",
                        scheduler.returncode,
                        RESTART_PAUSE,
                    )
                    scheduler, restart_at = None, time.monotonic() + RESTART_PAUSE
                if scheduler is None and restart_at is not None and time.monotonic() >= restart_at:
                    scheduler, restart_at = self._start(scheduler_command(), self.env), None
                time.sleep(TICK)
            codes = self._stop([p for p in (web, scheduler) if p is not None])
        return 1 if web_died or any(code != 0 for code in codes) else 0

    def _stop(self, children: list[subprocess.Popen[bytes]]) -> list[int]:
        """SIGTERM to each, then wait: gunicorn answers what it has, the scheduler ends its
        job. Whatever still runs past the graceful timeout (and a margin) is killed.

        A child that the SIGTERM ended outright was still starting (a scheduler started
        again moments before, still importing): neither takes the signal over before it
        has anything to finish, so that is a clean stop, 0."""
        signalled = [child for child in children if child.poll() is None]
        for child in signalled:
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.options.graceful_seconds + STOP_MARGIN
        codes: list[int] = []
        for child in children:
            try:
                code = child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                log.error("pid %d did not stop in time; killing it", child.pid)
                child.kill()
                code = child.wait()
            codes.append(0 if child in signalled and code == -signal.SIGTERM else code)
        return codes


@contextlib.contextmanager
def metrics_directory(env: Mapping[str, str]) -> Iterator[str]:
    """Where the gunicorn workers keep their metrics (prometheus_client's multiprocess
    mode): PROMETHEUS_MULTIPROC_DIR when given, emptied of an earlier run's files, or a
    directory of our own, removed afterwards."""
    given = env.get("PROMETHEUS_MULTIPROC_DIR", "")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        yield str(path)
        return
    made = tempfile.mkdtemp(prefix="intake-metrics-")
    try:
        yield made
    finally:
        shutil.rmtree(made, ignore_errors=True)


def serve_forever(options: ServeOptions) -> int:
    return Service(options, os.environ).run()
