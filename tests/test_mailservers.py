"""The test mail servers are real servers, and their helpers do what they say."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
from imapclient import IMAPClient
from imapclient.exceptions import LoginError

if TYPE_CHECKING:  # imported at run time by pytest, as a plugin, so its asserts are rewritten
    from tests.mailservers import Dovecot, SmtpSink

# The root conftest registers the plugin for the whole suite; naming it here too lets this
# file run on its own. pytest loads a plugin once.
pytest_plugins = ["tests.mailservers"]

RAW = (
    b"From: Patient <patient@example.net>\r\n"
    b"To: helpdesk@example.org\r\n"
    b"Subject: =?utf-8?q?Inloggen_lukt_niet_=E2=80=93_graag_hulp?=\r\n"
    b"Message-ID: <first@example.net>\r\n"
    b"Date: Mon, 23 Nov 2026 10:15:00 +0100\r\n"
    b"\r\n"
    b"Ik kan niet inloggen op de app.\r\n"
)


def outgoing(subject: str = "HD-000123: uw vraag") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "helpdesk@example.org"
    message["To"] = "patient@example.net"
    message["Subject"] = subject
    message.set_content("Wij hebben uw bericht ontvangen.")
    return message


# -- IMAP


def test_plain_port_offers_starttls_and_the_login_verifies_the_certificate(
    dovecot: Dovecot,
) -> None:
    client = dovecot.connect("plain", login=False)
    try:
        assert b"STARTTLS" in client.capabilities()
        client.starttls(dovecot.ssl_context())
        client.login(dovecot.user, dovecot.password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    finally:
        client.logout()


def test_ssl_port_presents_the_test_certificate(dovecot: Dovecot) -> None:
    client = dovecot.connect("ssl")
    try:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    finally:
        client.logout()
    # The certificate is verified for real: a client that does not trust it gives up.
    with pytest.raises(ssl.SSLCertVerificationError):
        IMAPClient(
            dovecot.host, dovecot.ssl_port, ssl=True, ssl_context=ssl.create_default_context()
        )


def test_appended_message_comes_back_whole_and_stays_unseen(dovecot: Dovecot) -> None:
    uid = dovecot.append(RAW, flags=["\\Flagged"])

    client = dovecot.connect()
    try:
        client.select_folder("INBOX")
        fetched = client.fetch([uid], ["BODY.PEEK[]"])
    finally:
        client.logout()

    assert fetched[uid][b"BODY[]"] == RAW
    assert dovecot.fetch(uid) == RAW
    assert dovecot.uids() == [uid]
    assert dovecot.message_count() == 1
    assert dovecot.flags(uid) == {"\\Flagged"}


def test_a_wrong_password_is_refused(dovecot: Dovecot) -> None:
    client = dovecot.connect(login=False)
    try:
        with pytest.raises(LoginError):
            client.login(dovecot.user, dovecot.password + "-wrong")
    finally:
        client.shutdown()


def test_reset_uidvalidity_changes_it_and_keeps_the_messages(dovecot: Dovecot) -> None:
    uids = [dovecot.append(RAW), dovecot.append(RAW, flags=["\\Seen"])]
    before = dovecot.uidvalidity()

    after = dovecot.reset_uidvalidity()

    assert after != before
    client = dovecot.connect()
    try:
        assert client.select_folder("INBOX")[b"UIDVALIDITY"] == after
    finally:
        client.logout()
    assert dovecot.uids() == uids
    assert dovecot.flags(uids[1]) == {"\\Seen"}


def test_clear_empties_the_mailbox_and_removes_folders(dovecot: Dovecot) -> None:
    dovecot.create_folder("Processed")
    dovecot.create_folder("Archive.2026")
    dovecot.append(RAW)
    dovecot.append(RAW, folder="Processed")
    assert dovecot.folders() == ["Archive", "Archive.2026", "INBOX", "Processed"]

    dovecot.clear()

    assert dovecot.folders() == ["INBOX"]
    assert dovecot.uids() == []


def test_a_killed_server_drops_its_sessions_and_comes_back_with_the_mail(dovecot: Dovecot) -> None:
    uid = dovecot.append(RAW)
    client = dovecot.connect()
    client.select_folder("INBOX")

    dovecot.kill()

    with pytest.raises((IMAPClient.AbortError, OSError)):
        client.noop()
    client.shutdown()
    with pytest.raises(ConnectionRefusedError):
        dovecot.connect()

    dovecot.start()
    assert dovecot.uids() == [uid]


def test_a_restart_keeps_ports_and_mail(dovecot: Dovecot) -> None:
    ports = (dovecot.port, dovecot.ssl_port)
    uid = dovecot.append(RAW)

    dovecot.restart()

    assert (dovecot.port, dovecot.ssl_port) == ports
    assert dovecot.fetch(uid) == RAW


# -- SMTP


def test_a_sent_message_arrives_with_envelope_and_parsed_headers(smtp: SmtpSink) -> None:
    with smtplib.SMTP(smtp.host, smtp.port) as client:
        client.starttls(context=smtp.ssl_context())
        client.login(smtp.user, smtp.password)
        client.send_message(outgoing("HD-000123: uw vraag – ontvangen"))

    [mail] = smtp.wait_for(1)
    assert mail.mail_from == "helpdesk@example.org"
    assert mail.rcpt_tos == ("patient@example.net",)
    assert mail.message["Subject"] == "HD-000123: uw vraag – ontvangen"
    assert mail.message.get_content().strip() == "Wij hebben uw bericht ontvangen."
    assert mail.raw.startswith(b"From: helpdesk@example.org\r\n")
    assert b"=?utf-8?" in mail.raw  # the bytes as sent, not a re-serialisation
    assert mail.login == smtp.user
    assert mail.tls


def test_plain_smtp_without_login_is_accepted_too(smtp: SmtpSink) -> None:
    with smtplib.SMTP(smtp.host, smtp.port) as client:
        client.send_message(outgoing())

    [mail] = smtp.wait_for(1)
    assert mail.login is None
    assert not mail.tls


def test_a_wrong_smtp_password_is_refused(smtp: SmtpSink) -> None:
    with (
        smtplib.SMTP(smtp.host, smtp.port) as client,
        pytest.raises(smtplib.SMTPAuthenticationError) as refused,
    ):
        client.login(smtp.user, smtp.password + "-wrong")
    assert refused.value.smtp_code == 535


def test_refuse_answers_data_with_a_temporary_failure(smtp: SmtpSink) -> None:
    smtp.refuse(451)

    with (
        smtplib.SMTP(smtp.host, smtp.port) as client,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        client.send_message(outgoing())

    assert refused.value.smtp_code == 451
    assert smtp.messages == []
    assert smtp.refusals == 1

    smtp.accept()
    with smtplib.SMTP(smtp.host, smtp.port) as client:
        client.send_message(outgoing())
    assert len(smtp.wait_for(1)) == 1


def test_refuse_a_recipient_once_then_accept(smtp: SmtpSink) -> None:
    smtp.refuse(451, at="RCPT", times=1)

    with smtplib.SMTP(smtp.host, smtp.port) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.send_message(outgoing())
        client.send_message(outgoing())

    assert refused.value.recipients["patient@example.net"][0] == 451
    assert len(smtp.wait_for(1)) == 1


def test_a_stopped_server_refuses_connections_until_started(smtp: SmtpSink) -> None:
    port = smtp.port
    smtp.stop()

    with pytest.raises(ConnectionRefusedError):
        smtplib.SMTP(smtp.host, smtp.port, timeout=2)

    smtp.start()
    assert smtp.port == port
    with smtplib.SMTP(smtp.host, smtp.port) as client:
        client.send_message(outgoing())
    assert len(smtp.wait_for(1)) == 1


def test_wait_for_names_what_is_missing(smtp: SmtpSink) -> None:
    with pytest.raises(AssertionError, match="0 of 1 messages arrived"):
        smtp.wait_for(1, timeout=0.05)
