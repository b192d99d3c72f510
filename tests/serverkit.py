"""What the test servers share: free ports on 127.0.0.1, a self-signed certificate a client
can trust, finding a program in the sbin directories, and closing at exit a server whose
fixture never finished."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "LOCALHOST",
    "ServiceUnavailable",
    "client_context",
    "find_program",
    "forget_server",
    "free_ports",
    "port_open",
    "remember_server",
    "self_signed_cert",
    "wait_until_closed",
]

LOCALHOST = "127.0.0.1"
# Where Debian puts the binaries; /usr/sbin is often missing from a non-root PATH.
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class ServiceUnavailable(RuntimeError):
    """A test server is not installed or could not be started."""


def find_program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory, name)
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_ports(count: int, host: str = LOCALHOST) -> list[int]:
    """Ports nobody listens on right now; held open together so that they differ."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until_closed(host: str, ports: Iterable[int], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    for port in ports:
        while port_open(host, port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host}:{port} still accepts connections")
            time.sleep(0.01)


def self_signed_cert(directory: Path, name: str = "server") -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key; the certificate is its own CA."""
    openssl = find_program("openssl")
    if openssl is None:
        raise ServiceUnavailable("the `openssl` command is needed to make a test certificate")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    result = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "7",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ServiceUnavailable(f"openssl could not make a test certificate: {result.stderr}")
    cert.chmod(0o644)
    return cert, key


def client_context(cafile: Path | str) -> ssl.SSLContext:
    """A client context that trusts only the test certificate, with hostname checks on."""
    return ssl.create_default_context(cafile=str(cafile))


class _Server(Protocol):
    def close(self) -> None: ...


# Servers still running when the interpreter exits (a fixture finalizer that never ran).
_running: weakref.WeakSet[_Server] = weakref.WeakSet()


def remember_server(server: _Server) -> None:
    """Close `server` when the interpreter exits, if nothing closed it before."""
    _running.add(server)


def forget_server(server: _Server) -> None:
    """`server` was closed: nothing left to do for it at exit."""
    _running.discard(server)


@atexit.register
def _close_leftovers() -> None:
    for server in list(_running):
        with contextlib.suppress(Exception):
            server.close()


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server whose clients may hang up without a traceback in the output."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class LocalHTTPService:
    """A stand-in's HTTP server on a free port of 127.0.0.1, served from a thread:
    `start_serving(handler)`, `base`, `close()` (also at exit if a test forgot)."""

    _http: QuietHTTPServer | None = None
    _serving: threading.Thread | None = None

    @property
    def base(self) -> str:
        assert self._http is not None, "the stand-in has not been started"
        return f"http://{LOCALHOST}:{self._http.server_address[1]}"

    def start_serving(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._http = QuietHTTPServer((LOCALHOST, 0), handler)
        remember_server(self)
        self._serving = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._serving.start()

    def close(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
            forget_server(self)
        if self._serving is not None:
            self._serving.join(5)
