"""IMAP IDLE: a mail that arrives while the worker waits is a contact within seconds.

Real Dovecot, both databases. Every wait is bounded and polls the database (or the
watcher's state), never a bare sleep: a slow machine makes the test slower, not flaky.
"""

# ruff: noqa: F811  (the fixtures of two_mailboxes, imported by name, are arguments)
from __future__ import annotations

import dataclasses
import itertools
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import func, select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.errors import ConfigurationError
from intake.core.models import MailMessage
from intake.shell.jobs import idle_accounts, poll_mailbox, poll_now, watch_mailboxes
from intake.shell.settings import from_environment
from mail.accounts import ImapAccount
from mail.idle import IdleWatcher, IdleWatchers
from mail.poller import ImapSettings, connect
from routing.desk import Desk
from tests.dovecot import Dovecot
from tests.mailservers import configure_mail
from tests.smtpsink import SmtpSink

from .conftest import contacts, load_desk
from .factories import always_open_desk, patient_mail
from .intake_process import intake_env, start_intake
from .two_mailboxes import (  # noqa: F401  (fixtures used by name)
    LINDE,
    NOORD,
    desk_app,
    linde,
    linde_mailbox,
    linde_smtp,
    linde_smtp_server,
    noord_mailbox,
    two_desk,
)

WITHIN = 10.0  # seconds a mail may take from the server to the contact log


def wait_until(what: Callable[[], bool], timeout: float = WITHIN) -> float:
    """Seconds until `what()` held; fails the test after `timeout`."""
    start = time.monotonic()
    while not what():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def logged(app: Flask) -> int:
    with database(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(MailMessage)) or 0)


def watching(watchers: IdleWatchers, count: int = 1) -> Callable[[], bool]:
    def ready() -> bool:
        found = watchers.watchers.values()
        return len(found) == count and all(w.state == "watching" for w in found)

    return ready


def watchers_of(app: Flask, **kw: float) -> IdleWatchers:
    settings = {"check_seconds": 0.5, "first_pause": 0.2, "max_pause": 1.0, **kw}
    return IdleWatchers(lambda account: lambda: poll_now(app, account.key), **settings)


@pytest.fixture
def imap_app(app: Flask, desk: Desk, dovecot: Dovecot, smtp: SmtpSink) -> Flask:
    """The INTAKE_IMAP_* mailbox on the test Dovecot."""
    return configure_mail(app, dovecot, smtp)


@pytest.fixture
def watchers(imap_app: Flask) -> Iterator[IdleWatchers]:
    found = watchers_of(imap_app)
    try:
        yield found
    finally:
        found.stop()


def test_a_mail_appended_while_idling_is_a_contact_within_seconds(
    imap_app: Flask, watchers: IdleWatchers, dovecot: Dovecot, capsys: pytest.CaptureFixture[str]
) -> None:
    watchers.sync(idle_accounts(imap_app))
    wait_until(watching(watchers))

    dovecot.append(patient_mail(message_id="<idle@x.nl>"))
    took = wait_until(lambda: len(contacts(imap_app)) == 1)

    assert took < WITHIN
    assert logged(imap_app) == 1
    with capsys.disabled():
        print(f"\n  IDLE: append to contact in {took:.2f} s")


def test_two_mailboxes_idle_at_once_and_each_mail_lands_once(
    desk_app: Flask, two_desk: Desk, dovecot: Dovecot, linde: Dovecot
) -> None:
    watchers = watchers_of(desk_app)
    try:
        watchers.sync(idle_accounts(desk_app))
        wait_until(watching(watchers, 2))
        assert sorted(watchers.watchers) == [NOORD, LINDE]

        dovecot.append(patient_mail(message_id="<noord@x.nl>"))
        linde.append(patient_mail(message_id="<linde@x.nl>"))
        poll_mailbox(desk_app)  # the scheduled poll at the same moment: still once each
        wait_until(lambda: len(contacts(desk_app)) == 2)
        poll_mailbox(desk_app)
    finally:
        watchers.stop()

    found = sorted((c.via, c.organisation) for c in contacts(desk_app))
    assert found == [(NOORD, "Ziekenhuis Noord"), (LINDE, "Zorggroep De Linde")]
    assert logged(desk_app) == 2


def test_a_killed_imap_session_reconnects_and_loses_nothing(
    imap_app: Flask,
    watchers: IdleWatchers,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    watchers.sync(idle_accounts(imap_app))
    wait_until(watching(watchers))
    dovecot.append(patient_mail(message_id="<before@x.nl>"))
    wait_until(lambda: len(contacts(imap_app)) == 1)
    [watcher] = watchers.watchers.values()

    with caplog.at_level(logging.INFO, logger="mail.idle"):
        assert dovecot.kill_sessions()  # the watcher's session, as a crash would end it
        wait_until(lambda: watcher.connections >= 2 and watcher.state == "watching")
        dovecot.append(patient_mail(message_id="<after@x.nl>"))
        wait_until(lambda: len(contacts(imap_app)) == 2)
    poll_mailbox(imap_app)

    assert logged(imap_app) == 2
    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    again = [r for r in caplog.records if "works again" in r.getMessage()]
    assert len(lost) == 1 and len(again) == 1


class Drops:
    """An IDLE watcher on the test Dovecot whose sessions the test kills, one at a time, and
    the pause each drop was followed by. Its clock stands still unless the test moves it,
    so a session has watched exactly as long as the test says (the pauses are real)."""

    def __init__(self, app: Flask, **pauses: float) -> None:
        self.now = 0.0
        self.signed_in: list[float] = []  # time.monotonic() of each sign-in
        self.watchers = IdleWatchers(
            lambda account: lambda: True,  # no poll: its connection would be killed too
            connector=self.connect,
            check_seconds=0.5,
            clock=lambda: self.now,
            **pauses,
        )
        try:
            self.watchers.sync(idle_accounts(app))
            wait_until(watching(self.watchers))
        except BaseException:
            self.watchers.stop()  # a watcher left running would reconnect in later tests
            raise
        [self.watcher] = self.watchers.watchers.values()

    def connect(self, settings: ImapSettings) -> IMAPClient:
        self.signed_in.append(time.monotonic())
        return connect(settings)

    def drop(self, dovecot: Dovecot, after: float = 0.0) -> float:
        """Kill the session once it has watched `after` seconds; the seconds until the
        watcher signed in again, which is the pause it waited and a few milliseconds."""
        self.now += after
        sessions = self.watcher.connections
        killed_at = time.monotonic()
        assert dovecot.kill_sessions()
        wait_until(lambda: self.watcher.connections > sessions)
        return self.signed_in[-1] - killed_at


def about(pauses: list[float], expected: list[float]) -> bool:
    """Each pause at least the one expected and less than the next doubling."""
    return len(pauses) == len(expected) and all(
        e <= p < 2 * e for p, e in zip(pauses, expected, strict=True)
    )


def test_a_drop_after_a_stable_connection_waits_the_first_pause_again(
    imap_app: Flask, dovecot: Dovecot
) -> None:
    """Three sessions that drop at once grow the pause to 2 s; the fourth watches for the
    stable period, so its drop is followed by the first pause, not by 4 s."""
    drops = Drops(imap_app, first_pause=0.5, max_pause=8.0, stable_seconds=60.0)
    try:
        pauses = [drops.drop(dovecot) for _ in range(3)]
        pauses.append(drops.drop(dovecot, after=60.0))
    finally:
        drops.watchers.stop()

    assert about(pauses, [0.5, 1.0, 2.0, 0.5]), pauses


def test_sessions_that_drop_before_the_stable_period_keep_the_pause_growing(
    imap_app: Flask, dovecot: Dovecot
) -> None:
    """Signing in and IDLE working is not enough: a session that watched for less than the
    stable period (59 s of 60) grows the pause all the same, up to its maximum."""
    drops = Drops(imap_app, first_pause=0.5, max_pause=2.0, stable_seconds=60.0)
    try:
        pauses = [drops.drop(dovecot), drops.drop(dovecot), drops.drop(dovecot, after=59.0)]
        pauses.append(drops.drop(dovecot))
    finally:
        drops.watchers.stop()

    assert about(pauses, [0.5, 1.0, 2.0, 2.0]), pauses


def test_a_new_credential_for_a_mailbox_gives_it_a_new_idle_connection(
    imap_app: Flask, dovecot: Dovecot
) -> None:
    """A rotated client secret or a replaced key file is another token provider: the IDLE
    connection signed in with the old one is ended and the mailbox watched with the new."""

    def signed_in_as(provider: object) -> list[ImapAccount]:  # a provider stands for a key
        return [
            dataclasses.replace(a, settings=dataclasses.replace(a.settings, tokens=provider))
            for a in idle_accounts(imap_app)
            if a.settings is not None
        ]

    # The test Dovecot takes a password: the connector signs in with it, whatever the tokens.
    watchers = IdleWatchers(
        lambda account: lambda: True,
        connector=lambda settings: connect(dataclasses.replace(settings, tokens=None)),
        check_seconds=0.5,
    )
    old_key, new_key = object(), object()
    try:
        watchers.sync(signed_in_as(old_key))
        wait_until(watching(watchers))
        [first] = watchers.watchers.values()
        watchers.sync(signed_in_as(old_key))  # the same credential: left as it is
        assert list(watchers.watchers.values()) == [first]

        watchers.sync(signed_in_as(new_key))
        wait_until(watching(watchers))
        [second] = watchers.watchers.values()
    finally:
        watchers.stop()

    assert second is not first and second.settings.tokens is new_key
    assert first.stopping.is_set()


def test_while_the_server_is_down_one_line_says_so_and_it_comes_back(
    imap_app: Flask,
    watchers: IdleWatchers,
    dovecot: Dovecot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    watchers.sync(idle_accounts(imap_app))
    wait_until(watching(watchers))
    [watcher] = watchers.watchers.values()

    with caplog.at_level(logging.INFO, logger="mail.idle"):
        with dovecot.down():
            wait_until(lambda: watcher.state == "dropped")
            time.sleep(2.5)  # several refused reconnects (pauses of 0.2, 0.4, 0.8, 1 s)
        dovecot.append(patient_mail(message_id="<down@x.nl>"))
        wait_until(lambda: len(contacts(imap_app)) == 1, timeout=WITHIN + 2)

    lost = [r for r in caplog.records if "lost" in r.getMessage()]
    assert len(lost) == 1
    assert watcher.state == "watching"


def test_idle_re_issued_before_the_limit_keeps_waking(imap_app: Flask, dovecot: Dovecot) -> None:
    watchers = watchers_of(imap_app, reissue_seconds=0.5)
    try:
        watchers.sync(idle_accounts(imap_app))
        wait_until(watching(watchers))
        time.sleep(1.5)  # three re-issues (DONE, IDLE) on the same connection
        dovecot.append(patient_mail(message_id="<later@x.nl>"))
        wait_until(lambda: len(contacts(imap_app)) == 1)
        [watcher] = watchers.watchers.values()
        assert watcher.connections == 1
    finally:
        watchers.stop()


def test_stopping_ends_every_watcher_within_seconds_and_logs_out(
    desk_app: Flask, two_desk: Desk, dovecot: Dovecot
) -> None:
    watchers = watchers_of(desk_app, check_seconds=2.0)
    watchers.sync(idle_accounts(desk_app))
    wait_until(watching(watchers, 2))
    threads = [t for t in threading.enumerate() if t.name.startswith("idle:")]
    assert len(threads) == 2

    started = time.monotonic()
    watchers.stop(timeout=10)

    assert time.monotonic() - started < 5
    assert not any(t.is_alive() for t in threads)
    watchers.sync(idle_accounts(desk_app))  # after stop: nothing starts again
    assert watchers.watchers == {}


def test_a_mailbox_added_to_the_definition_is_watched_and_its_mail_logged_within_seconds(
    desk_app: Flask,
    example_desk: Desk,
    dovecot: Dovecot,
    linde: Dovecot,
    linde_smtp: SmtpSink,
) -> None:
    load_desk(desk_app, dataclasses.replace(example_desk, mailboxes=(noord_mailbox(dovecot),)))
    watchers = watchers_of(desk_app)
    try:
        watchers.sync(idle_accounts(desk_app))
        wait_until(watching(watchers, 1))

        # The coordinator adds Linde's mailbox; the worker's idle-sync job runs.
        both = (noord_mailbox(dovecot), linde_mailbox(dovecot, linde_smtp))
        load_desk(desk_app, dataclasses.replace(example_desk, mailboxes=both))
        watchers.sync(idle_accounts(desk_app))
        wait_until(watching(watchers, 2))
        linde.append(patient_mail(message_id="<linde-new@x.nl>"))
        wait_until(lambda: len(contacts(desk_app)) == 1)
    finally:
        watchers.stop()

    assert [(c.via, c.organisation) for c in contacts(desk_app)] == [(LINDE, "Zorggroep De Linde")]


def test_a_mailbox_taken_out_of_the_definition_is_no_longer_watched(
    desk_app: Flask, two_desk: Desk, example_desk: Desk, dovecot: Dovecot
) -> None:
    watchers = watchers_of(desk_app)
    try:
        watchers.sync(idle_accounts(desk_app))
        wait_until(watching(watchers, 2))
        [linde_watcher] = [w for k, w in watchers.watchers.items() if k == LINDE]

        load_desk(desk_app, dataclasses.replace(example_desk, mailboxes=(noord_mailbox(dovecot),)))
        watchers.sync(idle_accounts(desk_app))

        assert sorted(watchers.watchers) == [NOORD]
        assert linde_watcher.stopping.is_set()
    finally:
        watchers.stop()


def test_a_server_without_idle_is_left_to_the_poll(imap_app: Flask) -> None:
    def no_idle(settings: ImapSettings) -> IMAPClient:
        client = connect(settings)
        client.has_capability = lambda capability: capability != "IDLE"  # type: ignore[method-assign]
        return client

    settings = ImapSettings.from_config(imap_app.config)
    assert settings is not None
    watcher = IdleWatcher("helpdesk", settings, wake=lambda: True, connector=no_idle)

    watcher.run()  # returns at once: nothing to wait for

    assert watcher.state == "no-idle"
    assert watcher.connections == 0


def test_a_server_without_idle_is_asked_again_after_growing_pauses(
    imap_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The idle-sync job's `sync()` starts the watcher of a mailbox that had no IDLE again,
    after 60 s, then 120 s; the third time the server offers IDLE and it is watched."""
    now = [0.0]
    connected: list[float] = []

    def idle_from_the_third_time(settings: ImapSettings) -> IMAPClient:
        connected.append(now[0])
        client = connect(settings)
        if len(connected) < 3:
            client.has_capability = lambda capability: capability != "IDLE"  # type: ignore[method-assign]
        return client

    watchers = IdleWatchers(
        lambda account: lambda: poll_now(imap_app, account.key),
        connector=idle_from_the_third_time,
        check_seconds=0.5,
        clock=lambda: now[0],
        no_idle_pause=60.0,
    )
    accounts = idle_accounts(imap_app)

    def no_watcher_thread() -> bool:
        return not any(t.name.startswith("idle:") for t in threading.enumerate())

    caplog.set_level(logging.INFO, logger="mail.idle")
    try:
        watchers.sync(accounts)
        wait_until(no_watcher_thread)  # it ended: no IDLE
        assert [w.state for w in watchers.watchers.values()] == ["no-idle"]

        for moment in (0.0, 30.0, 59.0):  # the idle-sync job runs; the pause is not over
            now[0] = moment
            watchers.sync(accounts)
        assert connected == [0.0]

        now[0] = 61.0
        watchers.sync(accounts)
        wait_until(lambda: len(connected) == 2)
        wait_until(no_watcher_thread)
        for moment in (62.0, 120.0, 180.0):  # 120 s from the second try
            now[0] = moment
            watchers.sync(accounts)
        assert connected == [0.0, 61.0]

        now[0] = 182.0
        watchers.sync(accounts)
        wait_until(watching(watchers))
        assert connected == [0.0, 61.0, 182.0]
    finally:
        watchers.stop()
    said = [r.getMessage() for r in caplog.records if r.name == "mail.idle"]
    assert sum("offers no IMAP IDLE" in line for line in said) == 1, said  # once, not per try
    assert any("new mail is logged as it arrives" in line for line in said), said


def test_the_worker_starts_watchers_unless_idle_is_off(imap_app: Flask) -> None:
    scheduler = BackgroundScheduler()
    watchers = watch_mailboxes(scheduler, imap_app, watchers_of(imap_app))
    assert watchers is not None
    assert scheduler.get_job("idle-sync") is not None
    watchers.stop()

    imap_app.config["IDLE"] = False
    assert watch_mailboxes(BackgroundScheduler(), imap_app) is None


@pytest.mark.parametrize(
    ("env", "idle", "seconds"),
    [({}, True, 25 * 60), ({"INTAKE_IDLE": "0", "INTAKE_IDLE_MINUTES": "10"}, False, 600)],
)
def test_idle_settings(env: dict[str, str], idle: bool, seconds: int, tmp_path: object) -> None:
    config = from_environment(
        {"INTAKE_SECRET_KEY": "k", "INTAKE_INSTANCE_PATH": str(tmp_path), **env}
    )
    assert (config["IDLE"], config["IDLE_REISSUE_SECONDS"]) == (idle, seconds)


def test_an_idle_renewed_after_the_rfc_limit_is_refused(tmp_path: object) -> None:
    with pytest.raises(ConfigurationError, match="INTAKE_IDLE_MINUTES"):
        from_environment(
            {
                "INTAKE_SECRET_KEY": "k",
                "INTAKE_INSTANCE_PATH": str(tmp_path),
                "INTAKE_IDLE_MINUTES": "29",
            }
        )


def test_an_account_without_settings_gets_no_watcher(imap_app: Flask) -> None:
    watchers = watchers_of(imap_app)
    watchers.sync([ImapAccount("x@example.org", "x", None, "X is not set")])
    assert watchers.watchers == {}
    watchers.stop()


def first_poll_done(log: str) -> bool:
    """APScheduler's line for the mail-poll job's first run (its next is an hour away)."""
    return any(
        '"mail-poll' in line and "executed successfully" in line for line in log.splitlines()
    )


def test_the_worker_logs_a_mail_within_seconds_while_its_poll_waits_an_hour(
    app: Flask,
    clock: SimClock,
    database_url: str,
    dovecot: Dovecot,
    smtp: SmtpSink,
    tmp_path: Path,
) -> None:
    """The real `intake worker`: its scheduled poll runs once at the start and then not for
    an hour, so the mail appended afterwards can only come in through IDLE."""
    clock.moment = datetime.now(UTC)
    load_desk(app, always_open_desk())
    env = intake_env(
        database_url, tmp_path, dovecot, smtp, INTAKE_POLL_SECONDS="3600", INTAKE_LOG_LEVEL="INFO"
    )
    process, _out, err = start_intake(["worker"], env, tmp_path, "worker")
    try:
        wait_until(lambda: "new mail is logged as it arrives" in err.read_text(), timeout=30)
        wait_until(lambda: first_poll_done(err.read_text()), timeout=10)

        dovecot.append(patient_mail(message_id="<worker@x.nl>"))
        took = wait_until(lambda: logged(app) == 1)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert took < WITHIN
    assert [c.via for c in contacts(app)] == ["helpdesk@example.org"]


def test_a_refused_sign_in_is_tried_again_after_growing_pauses_and_logged_once(
    imap_app: Flask, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
) -> None:
    tried: list[float] = []

    def refused_three_times(settings: ImapSettings) -> IMAPClient:
        tried.append(time.monotonic())
        if len(tried) <= 3:
            return connect(dataclasses.replace(settings, password="wrong"))
        return connect(settings)

    watchers = IdleWatchers(
        lambda account: lambda: poll_now(imap_app, account.key),
        connector=refused_three_times,
        check_seconds=0.5,
        first_pause=0.2,
        max_pause=5.0,
    )
    try:
        with caplog.at_level(logging.INFO, logger="mail.idle"):
            watchers.sync(idle_accounts(imap_app))
            wait_until(watching(watchers))
    finally:
        watchers.stop()

    pauses = [later - earlier for earlier, later in itertools.pairwise(tried)]
    assert len(pauses) == 3
    assert pauses[0] >= 0.2 and pauses[1] >= 0.4 and pauses[2] >= 0.8
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot connect" in m for m in messages) == 1
    assert sum("works again" in m for m in messages) == 1


def test_no_more_polls_are_woken_at_once_than_the_database_pool_can_serve() -> None:
    """Twenty mailboxes woken together would each hold two pooled connections."""
    watchers = IdleWatchers(lambda account: lambda: True, check_seconds=0.2, max_wakes=2)
    running, most = 0, 0
    guard, release = threading.Lock(), threading.Event()

    def poll() -> bool:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        release.wait(5)
        with guard:
            running -= 1
        return True

    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda: results.append(watchers.in_turn(poll)())) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.1)  # let them all ask
    release.set()
    for thread in threads:
        thread.join(10)

    assert most == 2
    # Those that found no place within a check say so, and their watcher asks again.
    assert len(results) == 6 and results.count(True) >= 2
