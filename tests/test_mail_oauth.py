"""OAuth2 sign-in: Microsoft 365 and Google Workspace tokens, XOAUTH2 to IMAP and SMTP.

Everything is real but the providers' hosts: msal and google-auth fetch their tokens from a
local HTTPS stand-in (tests/oauthservers.py) with a test CA; a private Dovecot with the
oauth2 passdb (tests/oauthdovecot.py) asks the stand-in about every token, and so does the
SMTP sink. Time is a SimClock shared by the token providers and the stand-in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import smtplib
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests
from flask import Flask
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

from intake.core.clock import SimClock
from intake.core.db import Base, database
from intake.core.errors import IntakeError, SignInError
from intake.core.models import MailboxStatus
from intake.shell.jobs import flush_outbox, idle_accounts, poll_now
from mail.check import check_every_mailbox
from mail.idle import IdleWatchers
from mail.mailboxes import poll_every_mailbox
from mail.oauth import (
    GoogleTokens,
    MicrosoftCertificate,
    MicrosoftTokens,
    Tokens,
    imap_sign_in,
    smtp_sign_in,
    xoauth2,
)
from mail.poller import ImapSettings, connect
from mail.smtp import ConnectionTrouble, SmtpSettings, close, open_session, transaction
from mail.smtp import connect as smtp_connect
from routing.desk import Desk, Mailbox, MailServer, Signin
from tests.dovecot import SECOND_PASSWORD, SECOND_USER, Dovecot
from tests.mailservers import (
    LOCALHOST,
    SmtpSink,
)
from tests.oauthdovecot import OAuthDovecot
from tests.oauthservers import OAuthStandIn, rsa_certificate, token_checker

from .conftest import contacts, load_desk
from .factories import patient_mail

MAILBOX = "helpdesk@example.org"  # the user of the test Dovecot
TENANT = "contoso-care"
CLIENT_ID = "00000000-aaaa-bbbb-cccc-000000000001"
SECRET = "client-secret-value"
SERVICE_ACCOUNT = "intake@care-project.iam.gserviceaccount.com"


@pytest.fixture
def clock() -> SimClock:
    return SimClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def dovecot(oauth_dovecot: OAuthDovecot) -> OAuthDovecot:
    return oauth_dovecot


@pytest.fixture
def sink(smtp: SmtpSink, stand_in: OAuthStandIn) -> SmtpSink:
    """The test SMTP server, taking XOAUTH2 tokens the stand-in issued for the user."""
    smtp.token_check = token_checker(stand_in)
    return smtp


@pytest.fixture
def session(stand_in: OAuthStandIn) -> Iterator[requests.Session]:
    with stand_in.session() as http:
        yield http


def microsoft(
    stand_in: OAuthStandIn, session: requests.Session, clock: SimClock, *, mailbox: str = MAILBOX
) -> MicrosoftTokens:
    """An app registration with a secret and FullAccess to `mailbox`, and its tokens."""
    stand_in.microsoft_app(TENANT, CLIENT_ID, mailbox, secret=SECRET)
    return MicrosoftTokens(
        TENANT, CLIENT_ID, secret=SECRET, authority=stand_in.url, session=session, clock=clock
    )


def with_certificate(
    stand_in: OAuthStandIn,
    session: requests.Session,
    clock: SimClock,
    private_key: str,
    certificate: str,
) -> MicrosoftTokens:
    """The app's tokens, asked for with this certificate instead of a secret."""
    return MicrosoftTokens(
        TENANT,
        CLIENT_ID,
        certificate=MicrosoftCertificate(private_key, certificate),
        authority=stand_in.url,
        session=session,
        clock=clock,
    )


def google(
    stand_in: OAuthStandIn, session: requests.Session, clock: SimClock, *, delegated: str = MAILBOX
) -> GoogleTokens:
    """A service account with domain-wide delegation for `delegated`, acting as MAILBOX."""
    key = stand_in.google_service_account(SERVICE_ACCOUNT, delegated)
    return GoogleTokens(key, MAILBOX, session=session, clock=clock)


def imap_settings(dovecot: OAuthDovecot, tokens: Tokens) -> ImapSettings:
    return ImapSettings(
        host=dovecot.host,
        user=MAILBOX,
        password="",
        port=dovecot.port,
        ssl=False,
        starttls=True,
        cafile=dovecot.cafile,
        timeout=5.0,
        tokens=tokens,
    )


def smtp_settings(sink: SmtpSink, tokens: Tokens) -> SmtpSettings:
    return SmtpSettings(
        host=sink.host, port=sink.port, user=MAILBOX, starttls=False, timeout=5.0, tokens=tokens
    )


def inbox_count(dovecot: OAuthDovecot, tokens: Tokens) -> int:
    """Sign in through the poller's own connect() and look at the INBOX."""
    client = connect(imap_settings(dovecot, tokens))
    try:
        return int(client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"])
    finally:
        client.logout()


def send_one(sink: SmtpSink, tokens: Tokens) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = MAILBOX, "patient@example.net", "Test"
    message.set_content("Hello")
    smtp = open_session(smtp_connect, smtp_settings(sink, tokens))
    try:
        transaction(smtp, MAILBOX, ["patient@example.net"], message.as_bytes())
    finally:
        close(smtp)


@pytest.fixture(params=["microsoft", "google"])
def tokens(
    request: pytest.FixtureRequest,
    stand_in: OAuthStandIn,
    session: requests.Session,
    clock: SimClock,
) -> Tokens:
    make = microsoft if request.param == "microsoft" else google
    return make(stand_in, session, clock)


# -- signing in


def test_each_provider_signs_in_to_imap_with_xoauth2(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, tokens: Tokens
) -> None:
    dovecot.append(b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n")
    assert inbox_count(dovecot, tokens) == 1
    assert stand_in.introspections == 1  # Dovecot asked about the token it was given
    assert logged(dovecot, f"Login: user=<{MAILBOX}>, method=XOAUTH2")


def logged(dovecot: OAuthDovecot, text: str, timeout: float = 2.0) -> bool:
    """Whether Dovecot's log shows `text`; its log process may write a moment after."""
    deadline = time.monotonic() + timeout
    while text not in dovecot.log_tail(40):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_each_provider_sends_through_smtp_with_xoauth2(
    sink: SmtpSink, stand_in: OAuthStandIn, tokens: Tokens
) -> None:
    send_one(sink, tokens)
    (received,) = sink.wait_for(1)
    assert received.login == MAILBOX
    assert received.rcpt_tos == ("patient@example.net",)
    assert (sink.xoauth2_logins, sink.xoauth2_refusals) == (1, 0)


def test_a_microsoft_app_signs_in_with_a_certificate_instead_of_a_secret(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, session: requests.Session, clock: SimClock
) -> None:
    certificate, private_key = rsa_certificate()
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, certificate=certificate)
    tokens = with_certificate(stand_in, session, clock, private_key, certificate)
    assert inbox_count(dovecot, tokens) == 0
    assert [i.provider for i in stand_in.issued] == ["microsoft"]


def test_a_certificate_the_app_does_not_have_is_refused_with_entras_words(
    stand_in: OAuthStandIn, session: requests.Session, clock: SimClock
) -> None:
    registered, _key = rsa_certificate()
    other, other_key = rsa_certificate()
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, certificate=registered)
    tokens = with_certificate(stand_in, session, clock, other_key, other)
    with pytest.raises(SignInError, match="AADSTS700027"):
        tokens.token()


def test_the_xoauth2_initial_response_is_user_and_bearer_token_with_ctrl_a() -> None:
    assert xoauth2("a@b.nl", "tok") == "user=a@b.nl\x01auth=Bearer tok\x01\x01"


@pytest.mark.parametrize(
    ("secret", "with_certificate"), [("", False), ("s", True)], ids=["neither", "both"]
)
def test_a_microsoft_app_needs_exactly_one_credential(secret: str, with_certificate: bool) -> None:
    certificate = MicrosoftCertificate("key", "cert") if with_certificate else None
    with pytest.raises(ValueError, match="either a client secret or a certificate"):
        MicrosoftTokens(TENANT, CLIENT_ID, secret=secret, certificate=certificate)


# -- expiry and refusal


def test_a_token_is_kept_until_five_minutes_before_it_expires(
    stand_in: OAuthStandIn, tokens: Tokens, clock: SimClock
) -> None:
    first = tokens.token()
    clock.advance(54 * 60)
    assert tokens.token() == first
    clock.advance(2 * 60)  # 56 minutes: within the margin of the hour
    second = tokens.token()
    assert second != first
    assert [i.token for i in stand_in.issued] == [first, second]


def test_a_token_that_expires_mid_run_is_fetched_again_for_the_next_sign_in(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, tokens: Tokens, clock: SimClock
) -> None:
    assert inbox_count(dovecot, tokens) == 0
    (old,) = stand_in.tokens_for(MAILBOX)
    clock.advance(3600)  # the hour is over: the old token is no good at the server
    client = dovecot.connect("starttls", login=False)
    try:
        with pytest.raises(LoginError):
            client.oauth2_login(MAILBOX, old)
    finally:
        client.shutdown()
    assert inbox_count(dovecot, tokens) == 0
    assert len(stand_in.tokens_for(MAILBOX)) == 2


def test_a_token_the_imap_server_refuses_is_fetched_again_once(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, tokens: Tokens
) -> None:
    stand_in.revoke(tokens.token())  # cached, but no longer valid at the server
    assert inbox_count(dovecot, tokens) == 0
    assert len(stand_in.issued) == 2
    assert stand_in.introspections == 2  # the revoked token, then the new one


def test_a_token_the_smtp_server_refuses_is_fetched_again_once(
    sink: SmtpSink, stand_in: OAuthStandIn, tokens: Tokens
) -> None:
    stand_in.revoke(tokens.token())
    send_one(sink, tokens)
    assert sink.wait_for(1)[0].login == MAILBOX
    assert (sink.xoauth2_logins, sink.xoauth2_refusals) == (1, 1)
    assert len(stand_in.issued) == 2


def test_a_mailbox_the_app_may_not_open_fails_after_one_retry_naming_it(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, session: requests.Session, clock: SimClock
) -> None:
    # FullAccess was given to another mailbox: every token is refused for this one.
    tokens = microsoft(stand_in, session, clock, mailbox="frontdesk@example.org")
    with pytest.raises(SignInError) as refused:
        connect(imap_settings(dovecot, tokens))
    assert len(stand_in.issued) == 2  # one fresh token tried again, then no more
    message = str(refused.value)
    assert message.startswith(f"{MAILBOX}: signing in with Microsoft 365 failed: IMAP: ")
    assert "AUTHENTICATIONFAILED" in message


def test_a_revoked_client_secret_names_the_mailbox_and_entras_error_in_one_line(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, session: requests.Session, clock: SimClock
) -> None:
    tokens = microsoft(stand_in, session, clock)
    stand_in.revoke_secret(TENANT, CLIENT_ID)
    with pytest.raises(SignInError) as refused:
        connect(imap_settings(dovecot, tokens))
    error = refused.value
    assert isinstance(error, IntakeError)  # the CLI prints it as one line
    assert str(error).startswith(f"{MAILBOX}: signing in with Microsoft 365 failed: ")
    assert "invalid_client: AADSTS7000215: Invalid client secret provided." in str(error)
    assert "\n" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__  # no chained traceback
    assert stand_in.introspections == 0  # nothing reached the mail server


def test_a_revoked_client_secret_keeps_the_outbox_waiting_with_an_error_to_log(
    sink: SmtpSink, stand_in: OAuthStandIn, session: requests.Session, clock: SimClock
) -> None:
    tokens = microsoft(stand_in, session, clock)
    stand_in.revoke_secret(TENANT, CLIENT_ID)
    with pytest.raises(ConnectionTrouble) as trouble:
        open_session(smtp_connect, smtp_settings(sink, tokens))
    assert trouble.value.level == logging.ERROR
    assert str(trouble.value).startswith(f"{MAILBOX}: signing in with Microsoft 365 failed: ")
    assert "AADSTS7000215" in str(trouble.value)
    assert sink.xoauth2_logins == sink.xoauth2_refusals == 0


def test_a_service_account_without_delegation_for_the_mailbox_gets_googles_error(
    stand_in: OAuthStandIn, session: requests.Session, clock: SimClock, sink: SmtpSink
) -> None:
    tokens = google(stand_in, session, clock, delegated="someone-else@example.org")
    with pytest.raises(ConnectionTrouble) as trouble:
        open_session(smtp_connect, smtp_settings(sink, tokens))
    assert str(trouble.value) == (
        f"{MAILBOX}: signing in with Google Workspace failed: unauthorized_client: Client is "
        "unauthorized to retrieve access tokens using this method, or client not authorized "
        "for any of the scopes requested."
    )


def test_smtp_refusing_every_token_gives_the_servers_answer_after_one_retry(
    sink: SmtpSink, stand_in: OAuthStandIn, session: requests.Session, clock: SimClock
) -> None:
    tokens = microsoft(stand_in, session, clock, mailbox="frontdesk@example.org")
    with smtplib.SMTP(sink.host, sink.port, timeout=5.0) as smtp:
        smtp.ehlo()
        with pytest.raises(SignInError) as refused:
            smtp_sign_in(smtp, MAILBOX, tokens)
    assert str(refused.value) == (
        f"{MAILBOX}: signing in with Microsoft 365 failed: SMTP: 535 5.7.8 Username and "
        "Password not accepted (test server)"
    )
    assert sink.xoauth2_refusals == 2
    assert len(stand_in.issued) == 2


def test_the_password_sign_in_still_works_on_the_oauth_server(dovecot: OAuthDovecot) -> None:
    client: IMAPClient = dovecot.connect("starttls")
    try:
        assert client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0
    finally:
        client.logout()


def test_imap_sign_in_can_be_called_on_a_connection_made_elsewhere(
    dovecot: OAuthDovecot, stand_in: OAuthStandIn, session: requests.Session, clock: SimClock
) -> None:
    tokens = google(stand_in, session, clock)
    client = dovecot.connect("ssl", login=False)
    try:
        imap_sign_in(client, MAILBOX, tokens)
        assert client.list_folders()
    finally:
        client.logout()
    assert stand_in.issued[0].expires == clock() + timedelta(hours=1)


def test_a_token_endpoint_that_never_answers_gives_up_after_the_timeout() -> None:
    with socket.create_server((LOCALHOST, 0)) as silent:  # accepts, and never says a word
        port = silent.getsockname()[1]
        tokens = MicrosoftTokens(
            TENANT, CLIENT_ID, secret=SECRET, authority=f"https://{LOCALHOST}:{port}", timeout=0.3
        )
        started = time.monotonic()
        with pytest.raises(
            SignInError, match=r"^signing in with Microsoft 365 failed: .*timed out"
        ):
            tokens.token()
    assert time.monotonic() - started < 5


# -- a mailbox of the desk definition, end to end

SECRET_ENV = "INTAKE_MAILBOX_NOORD_CLIENT_SECRET"


def oauth_mailbox(dovecot: OAuthDovecot, sink: SmtpSink, signin: Signin) -> Mailbox:
    return Mailbox(
        address=MAILBOX,
        organisation="Ziekenhuis Noord",
        imap=MailServer(
            host=dovecot.host, port=dovecot.port, tls="starttls", cafile=dovecot.cafile
        ),
        smtp=MailServer(host=sink.host, port=sink.port, tls="none"),
        signin=signin,
    )


@pytest.fixture(params=["microsoft", "google"])
def signin(request: pytest.FixtureRequest, stand_in: OAuthStandIn, tmp_path: Path) -> Signin:
    """How the desk's mailbox signs in, as a coordinator's definition would say it."""
    if request.param == "microsoft":
        stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, secret=SECRET)
        return Signin(
            method="microsoft", tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env=SECRET_ENV
        )
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps(stand_in.google_service_account(SERVICE_ACCOUNT, MAILBOX)))
    return Signin(method="google", service_account_file=str(key_file))


@pytest.fixture
def oauth_app(app: Flask, stand_in: OAuthStandIn, sink: SmtpSink) -> Flask:
    """The worker's settings: the token services' address and CA, and the client secret."""
    app.config.update(
        MAILBOX_ENVIRONMENT={SECRET_ENV: SECRET},
        MICROSOFT_AUTHORITY=stand_in.url,
        OAUTH_CAFILE=stand_in.cafile,
        SMTP_HOST=sink.host,
        SMTP_PORT=sink.port,
        SMTP_STARTTLS=False,
    )
    return app


def test_a_mailbox_of_the_definition_is_read_and_answered_through_oauth2(
    oauth_app: Flask,
    example_desk: Desk,
    dovecot: OAuthDovecot,
    sink: SmtpSink,
    signin: Signin,
) -> None:
    mailbox = oauth_mailbox(dovecot, sink, signin)
    load_desk(oauth_app, dataclasses.replace(example_desk, mailboxes=(mailbox,)))
    dovecot.append(patient_mail(message_id="<oauth@mail.example.nl>"))

    rounds = poll_every_mailbox(oauth_app)
    flush_outbox(oauth_app)

    assert [(r.key, r.error) for r in rounds] == [(MAILBOX, "")]
    assert [(c.channel, c.organisation, c.outcome) for c in contacts(oauth_app)] == [
        ("mail", "Ziekenhuis Noord", "forwarded")
    ]
    sent = sink.messages  # the forward, through the mailbox's own SMTP with XOAUTH2
    assert [(m.mail_from, m.login) for m in sent] == [(MAILBOX, MAILBOX)]


def test_no_secret_and_no_token_is_kept_in_the_database(
    oauth_app: Flask,
    example_desk: Desk,
    dovecot: OAuthDovecot,
    sink: SmtpSink,
    stand_in: OAuthStandIn,
) -> None:
    """The client secret stays in the worker's environment and the tokens in its memory:
    after a round that read, forwarded and sent, no column of any table holds either."""
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, secret=SECRET)
    microsoft = Signin(
        method="microsoft", tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env=SECRET_ENV
    )
    mailbox = oauth_mailbox(dovecot, sink, microsoft)
    load_desk(oauth_app, dataclasses.replace(example_desk, mailboxes=(mailbox,)))
    dovecot.append(patient_mail(message_id="<secret-check@mail.example.nl>"))
    poll_every_mailbox(oauth_app)
    flush_outbox(oauth_app)
    tokens = stand_in.tokens_for(MAILBOX)
    assert tokens and sink.messages  # it did sign in, on both protocols

    kept = []
    with database(oauth_app).engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in connection.execute(table.select()):
                kept += [
                    bytes(v).decode("latin-1") if isinstance(v, bytes | memoryview) else str(v)
                    for v in row
                ]
    everything = "\n".join(kept)
    assert SECRET not in everything
    assert not [token for token in tokens if token in everything]


def test_a_client_secret_kept_in_a_file_signs_the_mailbox_in(
    oauth_app: Flask,
    example_desk: Desk,
    dovecot: OAuthDovecot,
    sink: SmtpSink,
    stand_in: OAuthStandIn,
    tmp_path: Path,
) -> None:
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, secret=SECRET)
    secret = tmp_path / "noord-client-secret"
    secret.write_text(SECRET + "\n")
    from_file = Signin(
        method="microsoft", tenant_id=TENANT, client_id=CLIENT_ID, client_secret_file=str(secret)
    )
    mailbox = oauth_mailbox(dovecot, sink, from_file)
    load_desk(oauth_app, dataclasses.replace(example_desk, mailboxes=(mailbox,)))
    oauth_app.config["MAILBOX_ENVIRONMENT"] = {}
    dovecot.append(patient_mail(message_id="<secret-file@mail.example.nl>"))

    rounds = poll_every_mailbox(oauth_app)

    assert [(r.key, r.error) for r in rounds] == [(MAILBOX, "")]
    assert [c.via for c in contacts(oauth_app)] == [MAILBOX]


def test_a_mailbox_that_signs_in_with_oauth2_is_watched_with_idle(
    oauth_app: Flask,
    example_desk: Desk,
    dovecot: OAuthDovecot,
    sink: SmtpSink,
    signin: Signin,
    stand_in: OAuthStandIn,
) -> None:
    """The IDLE connection signs in as the poll does (XOAUTH2 with the mailbox's token), and
    a mail appended while it waits is a contact within seconds."""
    mailbox = oauth_mailbox(dovecot, sink, signin)
    load_desk(oauth_app, dataclasses.replace(example_desk, mailboxes=(mailbox,)))
    watchers = IdleWatchers(
        lambda account: lambda: poll_now(oauth_app, account.key), check_seconds=0.5
    )
    try:
        watchers.sync(idle_accounts(oauth_app))
        deadline = time.monotonic() + 10
        while [w.state for w in watchers.watchers.values()] != ["watching"]:
            assert time.monotonic() < deadline, "IDLE did not start"
            time.sleep(0.05)
        dovecot.append(patient_mail(message_id="<idle-oauth@mail.example.nl>"))
        while not contacts(oauth_app):
            assert time.monotonic() < deadline + 10, "the mail was not logged within seconds"
            time.sleep(0.05)
    finally:
        watchers.stop()

    assert [(c.channel, c.via) for c in contacts(oauth_app)] == [("mail", MAILBOX)]
    assert stand_in.introspections >= 2  # Dovecot checked the IDLE sign-in and the poll's


def test_a_revoked_client_secret_fails_that_mailbox_with_entras_words_and_no_other(
    oauth_app: Flask,
    example_desk: Desk,
    dovecot: OAuthDovecot,
    dovecot_server: Dovecot,
    sink: SmtpSink,
    stand_in: OAuthStandIn,
) -> None:
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, secret=SECRET)
    microsoft = Signin(
        method="microsoft", tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env=SECRET_ENV
    )
    dovecot_server.start()
    linde = dovecot_server.as_user()  # a mailbox of another organisation, with a password
    linde.clear()
    linde_mailbox = Mailbox(
        address=SECOND_USER,
        organisation="Zorggroep De Linde",
        imap=MailServer(host=linde.host, port=linde.port, tls="starttls", cafile=linde.cafile),
        signin=Signin(password_env="INTAKE_MAILBOX_LINDE_PASSWORD"),
    )
    desk = dataclasses.replace(
        example_desk, mailboxes=(oauth_mailbox(dovecot, sink, microsoft), linde_mailbox)
    )
    load_desk(oauth_app, desk)
    oauth_app.config["MAILBOX_ENVIRONMENT"] = {
        SECRET_ENV: SECRET,
        "INTAKE_MAILBOX_LINDE_PASSWORD": SECOND_PASSWORD,
    }
    stand_in.revoke_secret(TENANT, CLIENT_ID)
    linde.append(patient_mail(message_id="<linde@mail.example.nl>"))

    rounds = {r.key: r for r in poll_every_mailbox(oauth_app)}

    assert "helpdesk@example.org: signing in with Microsoft 365 failed" in rounds[MAILBOX].error
    assert "AADSTS7000215" in rounds[MAILBOX].error
    assert "\n" not in rounds[MAILBOX].error
    assert rounds[SECOND_USER].error == ""
    assert [c.organisation for c in contacts(oauth_app)] == ["Zorggroep De Linde"]


def test_a_revoked_client_secret_is_logged_once_though_entra_words_each_refusal_anew(
    oauth_app: Flask,
    example_desk: Desk,
    dovecot: OAuthDovecot,
    sink: SmtpSink,
    stand_in: OAuthStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Entra ID names each refusal's own trace, correlation id and moment: the same revoked
    # secret, polled again and again, is still one failure, logged once, failing since then.
    stand_in.microsoft_app(TENANT, CLIENT_ID, MAILBOX, secret=SECRET)
    microsoft = Signin(
        method="microsoft", tenant_id=TENANT, client_id=CLIENT_ID, client_secret_env=SECRET_ENV
    )
    load_desk(
        oauth_app,
        dataclasses.replace(example_desk, mailboxes=(oauth_mailbox(dovecot, sink, microsoft),)),
    )
    stand_in.revoke_secret(TENANT, CLIENT_ID)
    clock = oauth_app.config["CLOCK"]
    first = clock()

    errors = []
    with caplog.at_level(logging.INFO, logger="mail"):
        for _ in range(3):
            errors += [r.error for r in poll_every_mailbox(oauth_app)]
            clock.advance(120)

    assert len(set(errors)) == 3  # each refusal worded anew
    logged = [r.getMessage() for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(logged) == 1 and "AADSTS7000215" in logged[0]
    with database(oauth_app).session() as session:
        status = session.get(MailboxStatus, MAILBOX)
        assert status is not None and not status.ok
        assert status.since == first and status.failures == 3


def test_check_mail_signs_a_mailbox_in_through_oauth2_on_both_protocols(
    oauth_app: Flask, example_desk: Desk, dovecot: OAuthDovecot, sink: SmtpSink, signin: Signin
) -> None:
    mailbox = oauth_mailbox(dovecot, sink, signin)
    load_desk(oauth_app, dataclasses.replace(example_desk, mailboxes=(mailbox,)))

    [line] = [line for line in check_every_mailbox(oauth_app) if MAILBOX in line.text]

    imap, smtp = line.text.split(" | ")
    assert line.ok
    assert "IMAP" in imap and "OK, signed in; INBOX has 0 messages" in imap
    assert smtp.startswith("SMTP ") and "OK, signed in" in smtp
