"""The deployment of deploy/, tried: Debian's nginx with a self-signed certificate, running
the shipped site in front of a real gunicorn on the test database.

Twilio's requests are played through https, signed for INTAKE_PUBLIC_URL, the nginx origin
(`https://127.0.0.1:PORT`), as they would be signed for https://intake.example.org: the
signature checks out behind the proxy, every URL handed back to Twilio is https on that
origin, and a request signed for anything else is refused. The dashboard's cookies are
Secure and its login (CSRF included) works through the proxy; plain http is sent to https;
/metrics and /readyz are refused to anyone but this host. Both databases.
"""

from __future__ import annotations

import re
import socket
import ssl
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask, request
from sqlalchemy import func, select

from intake import create_app
from intake.core.db import database
from intake.core.errors import ConfigurationError
from intake.core.models import Contact
from intake.shell.settings import from_environment
from voice.simulator import new_sid

from .conftest import AUTH_TOKEN, load_desk
from .factories import PASSWORD, add_user, always_open_desk, make_desk
from .nginx import STATIC, HttpsClient, Nginx, Ports, Reply, plain_get
from .serverkit import (
    LOCALHOST,
    ServiceUnavailable,
    client_context,
    find_program,
    free_ports,
    self_signed_cert,
)
from .services import missing_service
from .twiml import only
from .webservers import WebServer, WebServers, web_env

LINE = "+31851234567"
CALLER = "+31687654321"
ANOTHER_HOST = "127.0.0.2"  # the loopback answers for all of 127/8: a client from elsewhere
LOGIN_BURST = 10  # deploy/nginx/intake.conf: limit_req ... burst=10
LOGIN_TRIES = 15
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Front:
    """nginx at `https`, gunicorn behind it, and clients of both sides of the proxy."""

    nginx: Nginx
    web: WebServer
    https: HttpsClient

    def from_host(self, source: str) -> HttpsClient:
        return HttpsClient(
            LOCALHOST, self.nginx.ports.https, self.nginx.cafile, AUTH_TOKEN,
            self.nginx.public_url, source=source,
        )  # fmt: skip


def nginx_binary() -> str:
    binary = find_program("nginx")
    if binary is None:
        missing_service("nginx is not installed (Debian: apt-get install nginx)")
        raise AssertionError("unreachable")
    return binary


def make_nginx(directory: Path, ports: Ports) -> Nginx:
    binary = nginx_binary()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        cert, key = self_signed_cert(directory)
    except ServiceUnavailable as exc:
        missing_service(str(exc))
        raise
    return Nginx(binary, directory, ports, cert, key)


@pytest.fixture
def front(
    app: Flask, database_url: str, tmp_path: Path, web_servers: WebServers
) -> Iterator[Front]:
    load_desk(app, always_open_desk())
    # The public URL names nginx's port: it is chosen before gunicorn starts.
    https, http = free_ports(2)
    public = f"https://{LOCALHOST}:{https}"
    env = web_env(
        database_url, tmp_path / "instance", public, AUTH_TOKEN, INTAKE_TRUSTED_PROXIES="1"
    )
    web = web_servers.start(env, workers=1, threads=2)
    nginx = make_nginx(tmp_path / "nginx", Ports(https, http, web.port))
    try:
        nginx.start()
    except ServiceUnavailable as exc:
        missing_service(str(exc))
    try:
        yield Front(nginx, web, HttpsClient(LOCALHOST, https, nginx.cafile, AUTH_TOKEN, public))
    finally:
        nginx.stop()


def call(call_sid: str, **fields: str) -> dict[str, str]:
    return {
        "AccountSid": "AC" + "1" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": call_sid,
        "From": CALLER,
        "To": LINE,
        "Direction": "inbound",
        "CallStatus": "ringing",
        **fields,
    }


def urls_in(reply: Reply) -> list[str]:
    """Everything in the TwiML that Twilio would request: each attribute or text that is a
    URL or a path (a <Redirect>'s text is one; a <Number>'s is a phone number)."""
    assert reply.twiml is not None, reply.body
    found = []
    for element in reply.twiml.iter():
        for value in [*element.attrib.values(), (element.text or "").strip()]:
            if value.startswith(("http://", "https://", "/")):
                found.append(value)
    return found


def path_of(url: str, origin: str) -> str:
    assert url.startswith(origin + "/"), url
    return url[len(origin) :]


def contacts(app: Flask) -> int:
    with database(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(Contact)) or 0)


# --- the shipped files, checked by the tools that run them ------------------------------


def test_the_shipped_site_passes_nginx_t(tmp_path: Path) -> None:
    nginx = make_nginx(tmp_path / "nginx", Ports(*free_ports(3)))

    result = nginx.check()

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    directives = [line.split("#")[0] for line in nginx.site.read_text().splitlines()]
    assert not [line for line in directives if "intake.example.org" in line or ":8000" in line]


def handshake(nginx: Nginx, highest: ssl.TLSVersion, ciphers: str = "") -> str:
    """The TLS version agreed with a client that offers at most `highest`, or the alert
    nginx answered with."""
    context = client_context(nginx.cafile)
    with warnings.catch_warnings():  # TLS 1.1 is deprecated: that is what is tried
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = min(highest, ssl.TLSVersion.TLSv1_2)
        context.maximum_version = highest
    if ciphers:
        context.set_ciphers(ciphers)
    address = (LOCALHOST, nginx.ports.https)
    try:
        with (
            socket.create_connection(address, timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=LOCALHOST) as tls,
        ):
            return str(tls.version())
    except ssl.SSLError as exc:
        return str(exc.reason)


def test_tls_is_1_2_or_1_3_with_forward_secret_aead_ciphers(tmp_path: Path) -> None:
    nginx = make_nginx(tmp_path / "nginx", Ports(*free_ports(3)))
    nginx.start()
    try:
        assert handshake(nginx, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        assert handshake(nginx, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        # The refusals are nginx's own alerts, not this client giving up.
        old = handshake(nginx, ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0")
        assert old == "TLSV1_ALERT_PROTOCOL_VERSION"
        cbc = handshake(nginx, ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA")
        assert cbc == "SSLV3_ALERT_HANDSHAKE_FAILURE"
    finally:
        nginx.stop()


# --- Twilio through https ---------------------------------------------------------------


def test_a_call_through_nginx_is_answered_with_https_urls_on_the_public_url(
    app: Flask, front: Front
) -> None:
    public = front.nginx.public_url
    call_sid = new_sid("CA")

    incoming = front.https.post_signed("/voice/incoming", call(call_sid))

    assert incoming.status == 200, incoming.body
    assert incoming.headers["Strict-Transport-Security"].startswith("max-age=")
    dial = only(incoming.twiml, "Dial") if incoming.twiml is not None else None
    assert dial is not None
    handed = urls_in(incoming)
    assert handed and all(url.startswith(public + "/voice/") for url in handed), handed

    # A colleague's leg: the <Number url> as Twilio requests it, its query and all, signed
    # for that https URL; the prompt's own URL is https again, and 1 puts the call through.
    number = next(dial.iter("Number"))
    colleague = (number.text or "").strip()
    leg = call(new_sid("CA"), ParentCallSid=call_sid, Direction="outbound-dial", To=colleague)
    prompt = front.https.post_signed(path_of(number.attrib["url"], public), leg)
    assert prompt.status == 200, prompt.body
    gather = only(prompt.twiml, "Gather") if prompt.twiml is not None else None
    assert gather is not None and gather.attrib["action"].startswith(public + "/voice/")
    accepted = front.https.post_signed(
        path_of(gather.attrib["action"], public), {**leg, "Digits": "1"}
    )
    assert accepted.status == 200 and accepted.twiml is not None
    assert list(accepted.twiml) == []  # an empty <Response/>: the caller is put through
    with database(app).session() as session:
        contact = session.scalars(select(Contact).where(Contact.call_sid == call_sid)).one()
        assert contact.answered_by is not None

    # Closed: the voicemail's <Record> hands Twilio its URLs, https on the public URL too.
    load_desk(app, make_desk(hours={}, public_holidays=""))
    closed = front.https.post_signed("/voice/incoming", call(new_sid("CA")))
    assert closed.status == 200 and closed.twiml is not None, closed.body
    record = only(closed.twiml, "Record")
    assert {"action", "recordingStatusCallback"} <= set(record.attrib), closed.body
    handed = urls_in(closed)
    assert all(url.startswith(public + "/voice/") for url in handed), handed


def test_a_request_not_signed_for_the_public_https_url_is_refused(app: Flask, front: Front) -> None:
    path = "/voice/incoming"
    internal = f"http://{LOCALHOST}:{front.web.port}{path}"  # what gunicorn itself sees
    plain = front.nginx.public_url.replace("https://", "http://") + path

    refused = [
        front.https.post(path, call(new_sid("CA")), {"X-Twilio-Signature": "bm90IHNpZ25lZA=="}),
        front.https.post(path, call(new_sid("CA"))),
        front.https.post_signed(path, call(new_sid("CA")), signed_for=internal),
        front.https.post_signed(path, call(new_sid("CA")), signed_for=plain),
    ]

    assert [reply.status for reply in refused] == [403, 403, 403, 403]
    assert contacts(app) == 0


# --- the dashboard through https --------------------------------------------------------


def test_the_dashboard_sets_secure_cookies_and_logs_in_through_nginx(
    app: Flask, front: Front
) -> None:
    add_user(app, "anna@example.org")
    public = front.nginx.public_url

    page = front.https.get("/login")

    assert page.status == 200
    session_cookie = page.cookies()["session"]
    attributes = [a.strip().lower() for a in session_cookie.split(";")[1:]]
    assert "secure" in attributes and "httponly" in attributes, session_cookie
    assert "samesite=lax" in attributes, session_cookie
    assert page.headers["Strict-Transport-Security"] == "max-age=63072000"

    # The form posted back as a browser does, with its token and the Referer it sends:
    # the CSRF check behind the proxy holds the Referer to the Host nginx passes on.
    token = TOKEN.search(page.body)
    assert token is not None
    cookie = session_cookie.split(";")[0]
    form = {"email": "anna@example.org", "password": PASSWORD, "csrf_token": token.group(1)}
    logged_in = front.https.post("/login", form, {"Cookie": cookie, "Referer": public + "/login"})
    assert logged_in.status == 302, logged_in.body
    assert logged_in.headers["Location"] in ("/", public + "/")
    now = front.https.get("/", {"Cookie": logged_in.cookies()["session"].split(";")[0]})
    assert now.status == 200
    assert 'action="/logout"' in now.body


# --- what nginx answers itself ----------------------------------------------------------


def oversized_post(front: Front, path: str = "/voice/incoming", size: int = 2_000_000) -> bytes:
    """The status line nginx answers a post of `size` bytes with, having sent only the
    headers: over the limit, it answers on Content-Length before reading a byte of the body."""
    context = client_context(front.nginx.cafile)
    address = (LOCALHOST, front.nginx.ports.https)
    with (
        socket.create_connection(address, timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=LOCALHOST) as tls,
    ):
        tls.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
            + b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {size}\r\n\r\n".encode()
        )
        return tls.recv(4096).split(b"\r\n", 1)[0]


def upload_through(front: Front, size: int) -> bytes:
    """The status line of a whole upload of `size` bytes to the Recordings page."""
    context = client_context(front.nginx.cafile)
    address = (LOCALHOST, front.nginx.ports.https)
    boundary = "recording-upload"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="recording"; '
            'filename="welkom.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
        + bytes(size)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with (
        socket.create_connection(address, timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=LOCALHOST) as tls,
    ):
        tls.sendall(
            b"POST /recordings HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        return tls.recv(4096).split(b"\r\n", 1)[0]


def test_what_nginx_answers_itself(app: Flask, front: Front) -> None:
    """Plain http goes to https, the stylesheet comes from disk, monitoring stays inside,
    a body over the limit never reaches the app, and logins are rate-limited per address."""
    redirect = plain_get(front.nginx.ports.http, "/voice/incoming?x=1")
    assert redirect.status == 301
    assert redirect.headers["Location"] == front.nginx.public_url + "/voice/incoming?x=1"

    sheet = front.https.get("/static/style.css")
    assert sheet.status == 200
    assert sheet.headers["Content-Type"].startswith("text/css")
    assert sheet.headers["Cache-Control"] == "max-age=3600"
    assert sheet.body == (STATIC / "style.css").read_text()

    elsewhere = front.from_host(ANOTHER_HOST)
    assert elsewhere.get("/healthz").status == 200
    assert elsewhere.get("/metrics").status == 403
    assert elsewhere.get("/readyz").status == 403
    # From this host, nginx passes them on: the answer is the app's, not nginx's refusal.
    assert front.https.get("/metrics").status != 403
    assert front.https.get("/readyz").status != 403

    status_line = oversized_post(front)
    assert status_line.split()[1] == b"413", status_line
    assert contacts(app) == 0
    # A recording of up to 5 MB reaches the app (which wants the form's token), more does not.
    assert upload_through(front, 4_500_000).split()[1] == b"400"  # the app's: no form token
    assert oversized_post(front, "/recordings", 7_000_000).split()[1] == b"413"

    # Someone trying passwords from one address is slowed down by nginx, per address.
    tries = [elsewhere.get("/login").status for _ in range(LOGIN_TRIES)]
    assert tries.count(200) <= LOGIN_BURST + 1 and tries[-1] == 429, tries
    assert front.https.get("/login").status == 200


# --- the app behind a proxy: which X-Forwarded-* headers it believes --------------------


def proxied_app(tmp_path: Path, hops: int) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'proxy.db'}",
            "SECRET_KEY": "test",
            "INSTANCE_PATH": str(tmp_path),
            "TRUSTED_PROXIES": hops,
        }
    )

    @app.get("/seen-as")
    def seen_as() -> str:  # a test's window on what the app believes
        return f"{request.remote_addr} {request.scheme} {request.host}"

    return app


FORWARDED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "intake.example.org",
    "X-Forwarded-Port": "443",
}


def test_forwarded_headers_are_believed_only_when_a_proxy_is_trusted(tmp_path: Path) -> None:
    direct = proxied_app(tmp_path, 0).test_client()
    behind = proxied_app(tmp_path, 1).test_client()

    seen_direct = direct.get("/seen-as", headers=FORWARDED).get_data(as_text=True)
    seen_behind = behind.get("/seen-as", headers=FORWARDED).get_data(as_text=True)

    assert seen_direct == "127.0.0.1 http localhost"
    assert seen_behind == "203.0.113.9 https intake.example.org"


def test_a_spoofed_chain_before_the_proxy_is_not_believed(tmp_path: Path) -> None:
    behind = proxied_app(tmp_path, 1).test_client()

    seen = behind.get(
        "/seen-as", headers={**FORWARDED, "X-Forwarded-For": "10.0.0.1, 203.0.113.9"}
    ).get_data(as_text=True)

    assert seen.split()[0] == "203.0.113.9"  # the one the proxy added, not the client's


@pytest.mark.parametrize(("value", "hops"), [("", 0), ("0", 0), ("1", 1), (" 2 ", 2)])
def test_trusted_proxies_is_a_number_of_proxies(tmp_path: Path, value: str, hops: int) -> None:
    env = {"INTAKE_INSTANCE_PATH": str(tmp_path), "INTAKE_SECRET_KEY": "k" * 32}
    config = from_environment({**env, "INTAKE_TRUSTED_PROXIES": value})
    assert config["TRUSTED_PROXIES"] == hops


@pytest.mark.parametrize("value", ["-1", "6", "yes", "nginx"])
def test_a_wrong_number_of_proxies_is_refused_at_start_up(tmp_path: Path, value: str) -> None:
    env = {"INTAKE_INSTANCE_PATH": str(tmp_path), "INTAKE_SECRET_KEY": "k" * 32}
    with pytest.raises(ConfigurationError, match="INTAKE_TRUSTED_PROXIES"):
        from_environment({**env, "INTAKE_TRUSTED_PROXIES": value})
