"""`intake serve` as a real process: gunicorn in front, the scheduler beside it, once.

- signed webhooks are answered by gunicorn (no development server), unsigned ones refused;
- SIGTERM during a slow request: the request is answered, the process exits 0, and what
  the request wrote is there whole;
- with three web workers the scheduler runs in exactly one process;
- a scheduler that dies is started again; SIGTERM while it starts is still a clean stop;
- /metrics adds up what two gunicorn workers observed (prometheus_client multiprocess).

The process reads the real clock, so the desk loaded here is open around the clock.
Requests go through `tests.webservers.WebServer`, signed for `tests.conftest.PUBLIC_URL`.
Every process started is stopped by its pid (the supervisor's children follow it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, select, text

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.errors import ConfigurationError
from intake.core.models import Contact, JobHeartbeat
from intake.core.schema import upgrade
from intake.shell.cli.supervise import ServeOptions, gunicorn_command
from intake.shell.settings import from_environment
from voice.simulator import new_sid

from .conftest import AUTH_TOKEN, PUBLIC_URL, load_desk
from .factories import always_open_desk
from .intake_process import start_intake, wait_until
from .serverkit import free_ports
from .twiml import dialled
from .webservers import Answer, WebServer, call_params, web_env

START_TIMEOUT = 90.0  # seconds until gunicorn answers and the scheduler runs (a busy CI)
STOP_TIMEOUT = 45.0  # the graceful timeout (30 s by default) and a margin
ALWAYS_OPEN_STAFF = ["+31612345670", "+31612345671", "+31612345672"]


@dataclass
class Served:
    """One `intake serve` process, what it printed, and its web server for requests."""

    process: subprocess.Popen[bytes]
    web: WebServer  # signed requests to its port, for tests.conftest.PUBLIC_URL
    out: Path
    err: Path
    child_pids: list[int] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def terminate(self) -> int:
        """SIGTERM, as systemd sends it; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=STOP_TIMEOUT)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()]


@pytest.fixture
def serve_app(app: Flask, clock: SimClock) -> Flask:
    clock.moment = datetime.now(UTC)
    load_desk(app, always_open_desk())
    return app


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """`start(database_url, *args, **env)`: an `intake serve` answering and its scheduler
    running. Whatever still runs at the end is stopped, by pid."""
    started: list[Served] = []

    def start(database_url: str, *args: str, **env_extra: str) -> Served:
        [port] = free_ports(1)
        env = web_env(
            database_url,
            tmp_path / "instance",
            PUBLIC_URL,
            AUTH_TOKEN,
            INTAKE_POLL_SECONDS="1",
            **env_extra,
        )
        if "PROMETHEUS_MULTIPROC_DIR" not in env_extra:
            env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # intake serve makes its own
        process, out, err = start_intake(
            ["serve", "--port", str(port), *args], env, tmp_path, f"serve{len(started)}"
        )
        web = WebServer("serve", port, process, err, PUBLIC_URL, AUTH_TOKEN)
        served = Served(process, web, out, err)
        started.append(served)
        wait_until(lambda: ready(served), START_TIMEOUT, "gunicorn answering, scheduler running")
        return served

    def ready(served: Served) -> bool:
        if served.process.poll() is not None:
            raise AssertionError(f"intake serve exited at start:\n{served.output}")
        try:
            answered = served.web.get("/healthz").status == 200
        except OSError:
            return False
        if not answered or "worker running" not in served.out.read_text():
            return False
        served.child_pids = served.children()
        return True

    try:
        yield start
    finally:
        for served in started:
            if served.process.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    served.terminate()
            if served.process.poll() is None:
                served.process.kill()
                served.process.wait()
            for pid in served.child_pids:  # gunicorn's master and the scheduler
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def _hold_contact_writes(database_url: str) -> tuple[Callable[[], None], Callable[[], bool]]:
    """Lock the contact table against writes (reads go on); (release, a write is waiting)."""
    engine = create_engine(database_url)
    connection = engine.connect()
    if engine.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # the one writer until released

        def waiting() -> bool:
            return True  # SQLite does not say; the test sees the request still open
    else:
        connection.execute(text("LOCK TABLE contact IN SHARE ROW EXCLUSIVE MODE"))

        def waiting() -> bool:
            with engine.connect() as other:
                query = "SELECT count(*) FROM pg_locks WHERE relation = 'contact'::regclass"
                return bool(other.scalar(text(query + " AND NOT granted")))

    def release() -> None:
        connection.rollback()
        connection.close()
        engine.dispose()

    return release, waiting


def test_sigterm_during_a_slow_request_answers_it_and_exits_cleanly(
    serve_app: Flask, start_serve: Callable[..., Served], database_url: str
) -> None:
    served = start_serve(database_url)
    call_sid = new_sid("CA")
    answers: list[Answer] = []
    release, waiting = _hold_contact_writes(database_url)
    try:
        request = threading.Thread(
            target=lambda: answers.append(
                served.web.post_signed("/voice/incoming", call_params(call_sid))
            )
        )
        request.start()
        wait_until(waiting, 10, "the webhook waiting for the database")
        time.sleep(1.0)  # SQLite: time for the request to reach its write
        assert request.is_alive(), answers

        served.process.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        still_serving = served.process.poll() is None and request.is_alive()
    finally:
        release()
    request.join(timeout=30)
    code = served.process.wait(timeout=STOP_TIMEOUT)

    assert still_serving, "stopped before the request in flight was answered"
    [answer] = answers
    assert answer.status == 200
    assert answer.twiml is not None
    assert dialled(answer.twiml) == ALWAYS_OPEN_STAFF  # the real answer, not the safe one
    assert code == 0, served.output
    with database(serve_app).session() as session:
        [contact] = session.scalars(select(Contact).where(Contact.call_sid == call_sid)).all()
        assert "incoming" in [e.kind for e in contact.events]  # the row and its event, whole
        assert contact.outcome == "in-progress"


def test_serve_answers_webhooks_under_gunicorn_with_the_scheduler_in_one_process(
    serve_app: Flask, start_serve: Callable[..., Served], database_url: str
) -> None:
    served = start_serve(database_url, "--workers", "3")
    answer = served.web.post_signed("/voice/incoming", call_params(new_sid("CA")))
    forged = dataclasses.replace(served.web, auth_token="not-" + AUTH_TOKEN)
    refused = forged.post_signed("/voice/incoming", call_params(new_sid("CA"))).status
    runs: set[datetime] = set()
    hosts: set[str] = set()

    def poll_ran_four_times() -> bool:
        with database(serve_app).session() as session:
            beat = session.get(JobHeartbeat, "mail-poll")
            if beat is not None:
                runs.add(beat.finished_at)
                hosts.add(beat.host)
        return len(runs) >= 4

    wait_until(poll_ran_four_times, 30, "the mail poll (every second) running four times")
    with database(serve_app).session() as session:
        every_job = {beat.host for beat in session.scalars(select(JobHeartbeat))}
    code = served.terminate()

    assert answer.status == 200
    assert answer.twiml is not None
    assert dialled(answer.twiml) == ALWAYS_OPEN_STAFF
    assert refused == 403
    # Three web workers; every job's every run in one process, the supervisor's other child.
    web_workers = re.findall(r"Booting worker with pid: (\d+)", served.output)
    assert len(web_workers) == 3
    [host] = hosts | every_job
    scheduler_pid = int(host.rsplit(":", 1)[1])
    assert scheduler_pid in served.child_pids
    assert str(scheduler_pid) not in web_workers
    assert served.output.count("worker running") == 1
    assert code == 0, served.output
    assert "Starting gunicorn" in served.output
    assert "development server" not in served.output.lower()
    assert "Traceback" not in served.output


def _histogram(directory: Path, endpoint: str) -> tuple[float, float]:
    """(count, sum) of the webhook histogram in one multiprocess directory."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    count = total = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.labels.get("endpoint") != endpoint:
                continue
            if sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return count, total


def test_metrics_add_up_what_two_gunicorn_workers_observed(
    start_serve: Callable[..., Served], tmp_path: Path
) -> None:
    """The histogram alone, so one database will do: an empty SQLite one."""
    url = f"sqlite:///{tmp_path / 'metrics.db'}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    metrics_dir = tmp_path / "metrics"
    served = start_serve(
        url, "--workers", "2", "--threads", "1", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    )
    answered: list[int] = []
    files: list[Path] = []
    # Until both workers have answered some: a worker still starting (the app takes seconds
    # to import on a loaded machine) leaves them all to the other. Bounded in time and count.
    deadline = time.monotonic() + 45
    for _ in range(100):
        if time.monotonic() > deadline:
            break
        batch = [
            threading.Thread(
                target=lambda: answered.append(
                    served.web.post_signed("/voice/fallback", call_params(new_sid("CA"))).status
                )
            )
            for _ in range(8)
        ]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join(timeout=30)
        files = sorted(metrics_dir.glob("histogram_*.db"))
        if len(files) >= 2:
            break
    assert len(files) == 2, files
    sent = len(answered)
    assert set(answered) == {200}

    scraped = []
    for _ in range(4):  # whichever worker answers the scrape
        scrape = served.web.get("/metrics")
        assert scrape.status == 200
        found = {
            (s.name, s.labels.get("endpoint")): s.value
            for family in text_string_to_metric_families(scrape.body)
            for s in family.samples
        }
        scraped.append(
            (
                found[("intake_webhook_duration_seconds_count", "voice.fallback")],
                found[("intake_webhook_duration_seconds_sum", "voice.fallback")],
            )
        )
    per_worker = []
    for n, file in enumerate(files):
        alone = tmp_path / f"worker{n}"
        alone.mkdir()
        shutil.copy(file, alone / file.name)
        per_worker.append(_histogram(alone, "voice.fallback"))
    assert served.terminate() == 0, served.output

    assert all(count > 0 for count, _ in per_worker)
    assert {count for count, _ in scraped} == {sent}
    assert sum(count for count, _ in per_worker) == sent
    for _, total in scraped:
        assert total == pytest.approx(sum(t for _, t in per_worker))


def _commandline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _children(served: Served, kind: str) -> list[int]:
    """The supervisor's children whose command line holds `kind`."""
    return [pid for pid in served.children() if kind in _commandline(pid)]


def _sqlite_database(tmp_path: Path, name: str) -> str:
    url = f"sqlite:///{tmp_path / name}"
    engine = create_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def test_a_scheduler_that_dies_is_started_again_and_a_web_server_that_dies_stops_it_all(
    start_serve: Callable[..., Served], tmp_path: Path
) -> None:
    served = start_serve(_sqlite_database(tmp_path, "restart.db"))
    [scheduler] = _children(served, "intake.shell.cli worker")
    [web] = _children(served, "gunicorn")
    os.kill(scheduler, signal.SIGKILL)
    wait_until(lambda: served.out.read_text().count("worker running") == 2, 60, "a new scheduler")
    [again] = _children(served, "intake.shell.cli worker")
    served.child_pids.append(again)
    still = served.web.get("/healthz").status

    os.kill(web, signal.SIGTERM)  # gunicorn stops (its workers with it): the service ends
    code = served.process.wait(timeout=STOP_TIMEOUT)

    assert again != scheduler
    assert still == 200  # the web went on serving meanwhile
    assert code == 1
    assert "the web server stopped unexpectedly" in served.output
    assert not Path(f"/proc/{again}").exists()  # the scheduler was stopped and reaped


def test_sigterm_while_the_scheduler_is_started_again_stops_the_service_cleanly(
    start_serve: Callable[..., Served], tmp_path: Path
) -> None:
    """The stop reaches the new scheduler while it is still starting (its imports alone
    take a second or more, the supervisor passes the signal on within a tick): SIGTERM
    ends it outright, and with nothing under way that is a clean stop."""
    served = start_serve(_sqlite_database(tmp_path, "restarting.db"))
    [scheduler] = _children(served, "intake.shell.cli worker")
    os.kill(scheduler, signal.SIGKILL)
    restarted: list[int] = []

    def started_again() -> bool:
        restarted[:] = [p for p in _children(served, "intake.shell.cli worker") if p != scheduler]
        return bool(restarted)

    wait_until(started_again, 30, "the scheduler started again")
    served.child_pids += restarted
    served.process.send_signal(signal.SIGTERM)
    code = served.process.wait(timeout=STOP_TIMEOUT)

    assert code == 0, served.output
    assert "stopped unexpectedly" not in served.output
    assert not Path(f"/proc/{restarted[0]}").exists()  # stopped and reaped


# --- its settings and its gunicorn command ---------------------------------------------------


def _environment(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"INTAKE_INSTANCE_PATH": str(tmp_path), "INTAKE_SECRET_KEY": "k" * 32, **values}


def test_serve_defaults_to_two_workers_of_four_threads(tmp_path: Path) -> None:
    config = from_environment(_environment(tmp_path))
    assert (config["WEB_WORKERS"], config["WEB_THREADS"], config["GRACEFUL_SECONDS"]) == (2, 4, 30)
    assert (config["METRICS_TOKEN"], config["METRICS_BIND"]) == ("", "")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("INTAKE_WEB_WORKERS", "0"),
        ("INTAKE_WEB_THREADS", "many"),
        ("INTAKE_GRACEFUL_SECONDS", "-1"),
        ("INTAKE_METRICS_BIND", "9100"),
        ("INTAKE_METRICS_BIND", "127.0.0.1:http"),
        ("INTAKE_METRICS_BIND", "127.0.0.1:70000"),
    ],
)
def test_a_wrong_serve_setting_is_refused_with_its_name(
    tmp_path: Path, name: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=name):
        from_environment(_environment(tmp_path, **{name: value}))


def test_gunicorn_is_run_as_a_deployment_runs_it_with_the_metrics_bind_beside() -> None:
    options = ServeOptions("::1", 5000, 3, 1, 20, metrics_bind="127.0.0.1:9100")
    command = gunicorn_command(options)

    assert command[1:3] == ["-m", "gunicorn"]
    binds = [command[i + 1] for i, arg in enumerate(command) if arg == "--bind"]
    assert binds == ["[::1]:5000", "127.0.0.1:9100"]
    assert command[command.index("--workers") + 1] == "3"
    assert command[command.index("--graceful-timeout") + 1] == "20"
    assert command[-1] == "intake:create_app()"
