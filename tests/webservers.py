"""Real web processes: gunicorn serving `intake:create_app()` on 127.0.0.1, and Twilio's
signed webhook requests sent to them over HTTP.

Each server is pointed at the test database (the same `database_url` as the `app` fixture)
and told it is reached at `tests.conftest.PUBLIC_URL`, as it would be behind a TLS proxy:
a request is signed for that public URL and posted to the server's own port. A server
reads the real clock: give it a desk that is open now (`tests.factories.always_open_desk`).

The `web_servers` fixture starts them and, whatever the test did, stops every one it
started by its pid (SIGTERM to the master, then SIGKILL to its process group).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator

from .serverkit import LOCALHOST, free_ports

GUNICORN = Path(sys.executable).with_name("gunicorn")
LINE = "+31851234567"  # the example desk's first line, as Twilio sends it in `To`
READY_SECONDS = 30.0
STOP_SECONDS = 15.0
REQUEST_SECONDS = 30.0


def web_env(
    database_url: str, instance: Path, public_url: str, auth_token: str, **extra: str
) -> dict[str, str]:
    """The environment of a web process: this one's without any intake or Twilio setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "TWILIO_"))}
    env.update(
        INTAKE_DATABASE_URL=database_url,
        INTAKE_INSTANCE_PATH=str(instance),
        INTAKE_SECRET_KEY="test-secret-key-for-the-web-processes",
        INTAKE_PUBLIC_URL=public_url,
        TWILIO_AUTH_TOKEN=auth_token,
        **extra,
    )
    return env


def call_params(call_sid: str, **fields: str) -> dict[str, str]:
    """The form of Twilio's webhook requests about the call `call_sid` to the desk's line."""
    return {
        "AccountSid": "AC" + "1" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "From": "+31687654321",
        "To": LINE,
        "Direction": "inbound",
        "CallStatus": "ringing",
        **fields,
    }


@dataclass
class Answer:
    """A server's answer to one request, the TwiML parsed when it is TwiML."""

    status: int
    content_type: str
    body: str
    twiml: ET.Element | None


@dataclass
class WebServer:
    """One gunicorn master and its workers, on its own port."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    public_url: str
    auth_token: str
    validator: RequestValidator = field(init=False)

    def __post_init__(self) -> None:
        self.validator = RequestValidator(self.auth_token)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Answer:
        return self._request("GET", path, None, dict(headers or {}))

    def post_signed(self, path: str, params: Mapping[str, str]) -> Answer:
        """POST `params` to `path` (with its query), signed for the public URL as Twilio
        signs its webhooks."""
        signature = self.validator.compute_signature(self.public_url + path, dict(params))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
        }
        return self._request("POST", path, urllib.parse.urlencode(params).encode(), headers)

    def _request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> Answer:
        connection = http.client.HTTPConnection(LOCALHOST, self.port, timeout=REQUEST_SECONDS)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read().decode("utf-8", errors="replace")
            content_type = (response.getheader("Content-Type") or "").split(";")[0]
        finally:
            connection.close()
        # Our own app's answer: not untrusted input.
        tree = ET.fromstring(text) if content_type == "text/xml" else None  # noqa: S314
        return Answer(response.status, content_type, text, tree)

    def stop(self) -> None:
        """SIGTERM to the master, which lets its workers finish; the group's SIGKILL if not."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
                return
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def all_at_once(
    requests: Sequence[Callable[[], Answer]], timeout: float = REQUEST_SECONDS * 2
) -> list[Answer | BaseException]:
    """Each request in a thread of its own, released together; what each got."""
    barrier = threading.Barrier(len(requests))
    answers: list[Answer | BaseException] = [TimeoutError("no answer")] * len(requests)

    def run(i: int) -> None:
        barrier.wait()
        try:
            answers[i] = requests[i]()
        except BaseException as exc:
            answers[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return answers


class WebServers:
    """Starts web servers for one test and remembers them, to stop each at its end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[WebServer] = []

    def start(
        self,
        env: Mapping[str, str],
        *,
        name: str = "web",
        workers: int = 2,
        threads: int = 1,
        extra_args: tuple[str, ...] = (),
    ) -> WebServer:
        if not GUNICORN.exists():
            pytest.fail(f"gunicorn is not installed next to {sys.executable}")
        (port,) = free_ports(1)
        log = self.workdir / f"{name}-{port}.log"
        command = [
            str(GUNICORN),
            "--bind", f"{LOCALHOST}:{port}",
            "--workers", str(workers),
            "--threads", str(threads),
            "--graceful-timeout", "5",
            "--no-control-socket",  # several masters would share ~/.gunicorn/gunicorn.ctl
            "--log-level", "warning",
            "--error-logfile", str(log),
            *extra_args,
            "intake:create_app()",
        ]  # fmt: skip
        with log.open("ab") as out:
            # A process group of its own, so that the workers can be ended with the master.
            process = subprocess.Popen(
                command, env=dict(env), cwd=self.workdir, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        server = WebServer(
            name, port, process, log, env["INTAKE_PUBLIC_URL"], env["TWILIO_AUTH_TOKEN"]
        )
        self.started.append(server)
        self._wait_ready(server)
        return server

    def _wait_ready(self, server: WebServer) -> None:
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise AssertionError(f"{server.name} exited at start:\n{server.log_tail()}")
            with contextlib.suppress(OSError):
                if server.get("/healthz").status == 200:
                    return
            time.sleep(0.05)
        raise AssertionError(f"{server.name} not ready in {READY_SECONDS} s:\n{server.log_tail()}")

    def stop_all(self) -> None:
        for server in self.started:
            server.stop()


@pytest.fixture
def web_servers(tmp_path: Path) -> Iterator[WebServers]:
    servers = WebServers(tmp_path)
    try:
        yield servers
    finally:
        servers.stop_all()
