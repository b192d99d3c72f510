"""`intake load-config`, `check-mail` and `poll-once` with a mailbox per organisation.

Through the command line as an admin runs it: the TOML file, the secrets in the
environment, a real Dovecot with two users and real SMTP servers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from intake.core.definition import parse_definition
from tests.dovecot import IMAP_PASSWORD, SECOND_PASSWORD, SECOND_USER, Dovecot
from tests.smtpsink import SmtpSink

from .conftest import EXAMPLE_DESK
from .factories import patient_mail


@pytest.fixture(scope="module")
def linde_smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(user=SECOND_USER, password=SECOND_PASSWORD)
    sink.start()
    try:
        yield sink
    finally:
        sink.close()


def definition(dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path) -> Path:
    """The example desk with its mailbox and a second one, each with its own connection."""
    host, cafile = dovecot.host, dovecot.cafile
    text = re.sub(
        r'\[\[mailbox\]\][^\n]*\naddress = "helpdesk@example.org"\n'
        r'organisation = "Ziekenhuis Noord"\n',
        lambda _match: (
            f"""[[mailbox]]
address = "helpdesk@example.org"
organisation = "Ziekenhuis Noord"
signin = "password"
password_env = "INTAKE_MAILBOX_NOORD_PASSWORD"
imap = {{ host = "{host}", port = {dovecot.port}, tls = "starttls", cafile = "{cafile}" }}

[[mailbox]]
address = "{SECOND_USER}"
organisation = "Zorggroep De Linde"
password_env = "INTAKE_MAILBOX_LINDE_PASSWORD"
imap = {{ host = "{host}", port = {dovecot.ssl_port}, tls = "ssl", cafile = "{cafile}" }}
smtp = {{ host = "{smtp.host}", port = {smtp.port}, tls = "none" }}
"""
        ),
        EXAMPLE_DESK.read_text(),
        count=1,
    )
    assert [m.imap is not None for m in parse_definition(text).mailboxes] == [True, True]
    path = tmp_path / "desk.toml"
    path.write_text(text)
    return path


@pytest.fixture
def mailboxes(
    intake,  # type: ignore[no-untyped-def]
    dovecot: Dovecot,
    linde_smtp: SmtpSink,
    smtp: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    linde_smtp.accept()
    linde_smtp.clear()
    dovecot.as_user().clear()
    for name in ("INTAKE_IMAP_HOST", "INTAKE_MAILBOX_NOORD_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INTAKE_MAILBOX_LINDE_PASSWORD", SECOND_PASSWORD)
    monkeypatch.setenv("INTAKE_SMTP_HOST", smtp.host)
    monkeypatch.setenv("INTAKE_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("INTAKE_SMTP_STARTTLS", "0")
    return definition(dovecot, linde_smtp, tmp_path)


def test_load_config_warns_of_a_missing_secret_and_export_names_no_secret(
    intake,
    mailboxes: Path,  # type: ignore[no-untyped-def]
) -> None:
    code, out, _ = intake("load-config", str(mailboxes))

    assert code == 0
    assert "warning: INTAKE_MAILBOX_NOORD_PASSWORD (for helpdesk@example.org) is not set" in out
    assert "LINDE" not in out
    code, exported, _ = intake("export-config")
    assert 'password_env = "INTAKE_MAILBOX_LINDE_PASSWORD"' in exported
    assert SECOND_PASSWORD not in exported


def test_load_config_warns_of_a_key_file_it_cannot_find(
    intake,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    # The Google key named by the definition is not on this machine: said, not refused.
    text = EXAMPLE_DESK.read_text() + (
        "\n[[mailbox]]\n"
        'address = "zorg@delinde.nl"\n'
        'organisation = "Zorggroep De Linde"\n'
        'signin = "google"\n'
        f'service_account_file = "{tmp_path / "google-key.json"}"\n'
        'imap = { host = "imap.gmail.com", port = 993, tls = "ssl" }\n'
    )
    path = tmp_path / "desk.toml"
    path.write_text(text)

    code, out, _ = intake("load-config", str(path))

    assert code == 0
    assert (
        f"warning: {tmp_path / 'google-key.json'} (for zorg@delinde.nl) cannot be found here;"
        in out
    )


def test_check_mail_gives_the_servers_refusal_on_its_line_and_ok_on_the_other(
    intake,
    mailboxes: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    intake("load-config", str(mailboxes))
    monkeypatch.setenv("INTAKE_MAILBOX_NOORD_PASSWORD", "not-the-password")

    code, out, err = intake("check-mail")

    assert code != 0
    noord, linde, default_smtp = out.splitlines()  # a line per mailbox, IMAP | SMTP
    assert noord.startswith("helpdesk@example.org (Ziekenhuis Noord) IMAP")
    assert "(starttls): reachable, sign-in refused:" in noord
    assert "AUTHENTICATIONFAILED" in noord
    linde_imap, linde_smtp = linde.split(" | ")
    assert linde_imap.startswith(f"{SECOND_USER} (Zorggroep De Linde) IMAP")
    assert "(ssl): OK, signed in; INBOX has 0 messages" in linde_imap
    assert linde_smtp.startswith("SMTP ")
    assert "(no TLS): OK, signed in; 0 waiting in the outbox" in linde_smtp
    assert default_smtp.startswith("INTAKE_SMTP_* SMTP")
    assert "1 of 3 mailboxes failed" in err

    monkeypatch.setenv("INTAKE_MAILBOX_NOORD_PASSWORD", IMAP_PASSWORD)
    code, out, _ = intake("check-mail")
    assert code == 0, out


def test_check_mail_says_a_missing_secret_and_an_unreachable_server(
    intake,
    mailboxes: Path,
    dovecot: Dovecot,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    broken = mailboxes.read_text().replace(f"port = {dovecot.ssl_port}", "port = 1")
    path = tmp_path / "broken.toml"
    path.write_text(broken)
    intake("load-config", str(path))

    code, out, _ = intake("check-mail")

    assert code != 0
    lines = out.splitlines()
    assert "INTAKE_MAILBOX_NOORD_PASSWORD is not set" in lines[0]
    assert ": not reachable: ConnectionRefusedError" in lines[1]


def test_poll_once_reads_both_mailboxes_and_says_each(
    intake,
    mailboxes: Path,
    dovecot: Dovecot,
    linde_smtp: SmtpSink,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INTAKE_MAILBOX_NOORD_PASSWORD", IMAP_PASSWORD)
    intake("load-config", str(mailboxes))
    dovecot.append(patient_mail(message_id="<noord@x.nl>"))
    dovecot.as_user().append(patient_mail(message_id="<linde@x.nl>"))

    code, out, _ = intake("poll-once")

    assert code == 0, out
    assert "helpdesk@example.org (Ziekenhuis Noord): polled: 1 fetched, 1 logged" in out
    assert f"{SECOND_USER} (Zorggroep De Linde): polled: 1 fetched, 1 logged" in out
    code, listed, _ = intake("contacts", "--json")
    assert '"Zorggroep De Linde"' in listed
