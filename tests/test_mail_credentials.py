"""How the worker reaches the token services: through the proxy the environment names, with
the CA bundle INTAKE_OAUTH_CAFILE names, and a key file it can use or a clear refusal.

A hospital's network often lets nothing out but through its proxy (HTTPS_PROXY), and a
TLS-inspecting proxy signs with the hospital's own CA: both must hold at once. The proxy
here is a small HTTP CONNECT tunnel on 127.0.0.1 that counts whom it was asked to reach;
the token service is the local stand-in, reached by msal itself.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import certifi
import pytest
from cryptography.hazmat.primitives import serialization

from mail.credentials import MissingSecret, OAuthEndpoints, tokens_for
from mail.poller import ImapSettings
from routing.desk import Mailbox, Signin
from tests.oauthservers import OAuthStandIn, rsa_certificate

MAILBOX = "helpdesk@example.org"
TENANT = "contoso-care"
CLIENT_ID = "00000000-aaaa-bbbb-cccc-000000000002"
SECRET = "client-secret-value"
SECRET_ENV = "INTAKE_MAILBOX_NOORD_CLIENT_SECRET"


class _Tunnel(socketserver.BaseRequestHandler):
    server: TunnelProxy

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        method, target, _version = head.split(b"\r\n", 1)[0].decode().split(" ")
        if method != "CONNECT":
            self.request.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return
        host, port = target.rsplit(":", 1)
        self.server.asked.append(target)
        with socket.create_connection((host, int(port)), timeout=5) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            ends = [self.request, upstream]
            while True:
                readable, _, _ = select.select(ends, [], [], 5)
                if not readable:
                    return
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is self.request else self.request).sendall(data)


class TunnelProxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Tunnel)
        self.asked: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy() -> Iterator[TunnelProxy]:
    server = TunnelProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def network(monkeypatch: pytest.MonkeyPatch, proxy: TunnelProxy) -> TunnelProxy:
    """The hospital's: everything through the proxy, and a CA bundle in REQUESTS_CA_BUNDLE
    (here certifi's public CAs) that does not know the token service's certificate."""
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    return proxy


def microsoft_mailbox(**signin: str) -> Mailbox:
    return Mailbox(
        address=MAILBOX,
        organisation="Ziekenhuis Noord",
        signin=Signin(method="microsoft", tenant_id=TENANT, client_id=CLIENT_ID, **signin),
    )


def endpoints(stand_in: OAuthStandIn) -> OAuthEndpoints:
    return OAuthEndpoints(microsoft_authority=stand_in.url, cafile=stand_in.cafile)


def test_tokens_are_fetched_through_the_proxy_and_checked_with_our_ca(
    stand_in: OAuthStandIn, network: TunnelProxy
) -> None:
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, secret=SECRET)
    tokens = tokens_for(
        microsoft_mailbox(client_secret_env=SECRET_ENV), {SECRET_ENV: SECRET}, endpoints(stand_in)
    )

    assert tokens is not None and tokens.token()
    where = stand_in.url.removeprefix("https://")
    assert network.asked and set(network.asked) == {where}


def test_no_proxy_sends_the_token_requests_straight_there(
    stand_in: OAuthStandIn, network: TunnelProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, secret=SECRET)
    tokens = tokens_for(
        microsoft_mailbox(client_secret_env=SECRET_ENV), {SECRET_ENV: SECRET}, endpoints(stand_in)
    )

    assert tokens is not None and tokens.token()
    assert network.asked == []


def test_an_encrypted_private_key_is_refused_with_what_to_do(
    stand_in: OAuthStandIn, tmp_path: Path
) -> None:
    certificate, key = rsa_certificate()
    encrypted = (
        serialization.load_pem_private_key(key.encode(), password=None)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
        .decode()
    )
    pem = tmp_path / "noord.pem"
    pem.write_text(encrypted + certificate)
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, certificate=certificate)

    with pytest.raises(MissingSecret) as refused:
        tokens_for(microsoft_mailbox(certificate_path=str(pem)), {}, endpoints(stand_in))

    assert str(refused.value).startswith(f"the private key in {pem} is encrypted")
    assert MAILBOX in str(refused.value) and "openssl pkey" in str(refused.value)


def test_a_mailboxs_password_is_not_in_its_settings_repr() -> None:
    # Settings end up in log lines and tracebacks; the password must not go with them.
    settings = ImapSettings(host="imap.example.org", user=MAILBOX, password="s3cr3t-Pa55")

    assert "s3cr3t-Pa55" not in repr(settings) and MAILBOX in repr(settings)
