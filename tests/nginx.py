"""Debian's nginx in front of a test gunicorn, running the site we ship.

The site is deploy/nginx/intake.conf itself: its ports, host name, certificate and paths
replaced by the test's (`site_config`), each replacement required to match, so a change to
the shipped file is a change to what the tests run. A small main config around it gives
nginx a private prefix (pid, logs, temporary files) under the test's directory; nginx runs
as an ordinary child process (`daemon off`) on free ports of 127.0.0.1 and is stopped by
its pid. `HttpsClient` talks to it as Twilio and a browser would: over TLS, trusting only
the test certificate, and Twilio's requests signed for the public https URL.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

from twilio.request_validator import RequestValidator

from .serverkit import LOCALHOST, ServiceUnavailable, client_context, port_open

REPO = Path(__file__).resolve().parent.parent
SHIPPED_SITE = REPO / "deploy" / "nginx" / "intake.conf"
STATIC = REPO / "intake" / "shell" / "static"
MIME_TYPES = Path("/etc/nginx/mime.types")
READY_SECONDS = 10.0
STOP_SECONDS = 10.0
REQUEST_SECONDS = 30.0


@dataclass(frozen=True)
class Ports:
    https: int
    http: int
    upstream: int  # gunicorn's


def site_config(shipped: str, ports: Ports, cert: Path, key: Path, logs: Path) -> str:
    """The shipped site with the test's ports, host and paths; the IPv6 listens left out
    (a test machine may have no IPv6). Every replaced text must be found in the file."""
    public = f"https://{LOCALHOST}:{ports.https}"
    replacements = [
        ("server 127.0.0.1:8000;", f"server {LOCALHOST}:{ports.upstream};"),
        ("listen 443 ssl http2;", f"listen {LOCALHOST}:{ports.https} ssl http2;"),
        ("listen [::]:443 ssl http2;", "# (the IPv6 listen is left out in the test)"),
        ("listen 80;", f"listen {LOCALHOST}:{ports.http};"),
        ("listen [::]:80;", "# (the IPv6 listen is left out in the test)"),
        ("https://intake.example.org", public),
        ("server_name intake.example.org;", f"server_name {LOCALHOST};"),
        ("/etc/ssl/intake/fullchain.pem", str(cert)),
        ("/etc/ssl/intake/privkey.pem", str(key)),
        ("/var/log/nginx/", f"{logs}/"),
        ("/opt/intake/src/intake/shell/static/", f"{STATIC}/"),
    ]
    text = shipped
    for old, new in replacements:
        if old not in text:
            raise AssertionError(f"deploy/nginx/intake.conf no longer has {old!r}")
        text = text.replace(old, new)
    return text


def main_config(directory: Path, site: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf gives a site, with everything kept private."""
    # Run as root (CI), the workers would become `nobody`, who cannot enter the test's
    # private temporary directory; as any other user the directive does not apply.
    user = "user root;" if os.geteuid() == 0 else ""
    mime = f"include {MIME_TYPES};" if MIME_TYPES.exists() else ""
    return f"""
{user}
daemon off;
master_process on;
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/logs/error.log info;
events {{ worker_connections 256; }}
http {{
    {mime}
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {directory}/temp/body;
    proxy_temp_path {directory}/temp/proxy;
    fastcgi_temp_path {directory}/temp/fastcgi;
    uwsgi_temp_path {directory}/temp/uwsgi;
    scgi_temp_path {directory}/temp/scgi;
    include {site};
}}
"""


class Nginx:
    """One nginx master and its worker, serving the shipped site on the test's ports."""

    def __init__(self, binary: str, directory: Path, ports: Ports, cert: Path, key: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.cafile = cert  # self-signed: the certificate is its own CA
        self.ports = ports
        self.process: subprocess.Popen[bytes] | None = None
        (directory / "logs").mkdir(parents=True, exist_ok=True)
        (directory / "temp").mkdir(exist_ok=True)
        self.site = directory / "intake.conf"
        self.site.write_text(
            site_config(SHIPPED_SITE.read_text(), ports, cert, key, directory / "logs")
        )
        self.config = directory / "nginx.conf"
        self.config.write_text(main_config(directory, self.site))

    @property
    def public_url(self) -> str:
        return f"https://{LOCALHOST}:{self.ports.https}"

    def command(self, *extra: str) -> list[str]:
        # -e: where nginx writes before it has read error_log from the config.
        return [
            self.binary, "-p", str(self.directory), "-c", str(self.config),
            "-e", str(self.directory / "logs" / "startup.log"), *extra,
        ]  # fmt: skip

    def check(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t`: the configuration parsed and its files (certificate, paths) opened."""
        return subprocess.run(
            self.command("-t"), capture_output=True, text=True, timeout=30, check=False
        )

    def log_tail(self, lines: int = 20) -> str:
        text = ""
        for name in ("startup.log", "error.log"):
            with contextlib.suppress(OSError):
                text += (self.directory / "logs" / name).read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        out = (self.directory / "logs" / "nginx.out").open("ab")
        with out:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceUnavailable(f"nginx exited at start: {self.log_tail()}")
            if port_open(LOCALHOST, self.ports.https) and port_open(LOCALHOST, self.ports.http):
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceUnavailable(f"nginx not listening in {READY_SECONDS} s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the master (which ends its worker), SIGKILL to its group if not."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.process = None


@dataclass
class Reply:
    """An answer as the client received it: headers as sent, TwiML parsed when it is TwiML."""

    status: int
    headers: Message
    body: str
    twiml: ET.Element | None

    def cookies(self) -> dict[str, str]:
        """Each Set-Cookie by the cookie's name: the whole header, attributes and all."""
        return {
            value.split("=", 1)[0].strip(): value
            for value in self.headers.get_all("Set-Cookie", [])
        }


@dataclass
class HttpsClient:
    """Twilio's and a browser's side: https to nginx, trusting only the test certificate."""

    host: str
    port: int
    cafile: Path
    auth_token: str
    public_url: str
    source: str = LOCALHOST  # the client's own address (127.0.0.2 is "another host")
    validator: RequestValidator = field(init=False)

    def __post_init__(self) -> None:
        self.validator = RequestValidator(self.auth_token)

    def post_signed(
        self, path: str, params: Mapping[str, str], *, signed_for: str | None = None
    ) -> Reply:
        """POST `params` to `path`, signed as Twilio signs: for the public URL, unless told."""
        url = signed_for if signed_for is not None else self.public_url + path
        signature = self.validator.compute_signature(url, dict(params))
        return self.post(path, params, {"X-Twilio-Signature": signature})

    def post(
        self, path: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> Reply:
        body = urllib.parse.urlencode(params).encode()
        sent = {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "TwilioProxy/1.1",
            **(headers or {}),
        }
        return self.request("POST", path, body, sent)

    def get(self, path: str, headers: Mapping[str, str] | None = None) -> Reply:
        return self.request("GET", path, None, dict(headers or {}))

    def request(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> Reply:
        connection = http.client.HTTPSConnection(
            self.host, self.port, timeout=REQUEST_SECONDS, context=client_context(self.cafile),
            source_address=(self.source, 0),
        )  # fmt: skip
        return _exchange(connection, method, path, body, headers)


def plain_get(port: int, path: str) -> Reply:
    """GET over plain http, as a browser does when someone types the bare host name."""
    connection = http.client.HTTPConnection(LOCALHOST, port, timeout=REQUEST_SECONDS)
    return _exchange(connection, "GET", path, None, {})


def _exchange(
    connection: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None,
    headers: Mapping[str, str],
) -> Reply:
    try:
        connection.request(method, path, body=body, headers=dict(headers))
        response = connection.getresponse()
        text = response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()
    content_type = (response.getheader("Content-Type") or "").split(";")[0]
    # Our own app's answer: not untrusted input.
    tree = ET.fromstring(text) if content_type == "text/xml" else None  # noqa: S314
    return Reply(response.status, response.msg, text, tree)
