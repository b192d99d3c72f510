"""`/metrics`, read with prometheus_client's own parser, on both databases.

- webhook latency per endpoint, observed around every voice webhook;
- the desk's figures from the database: calls per outcome, mails logged, the outbox's
  waiting and failed mail, poll failures per mailbox (by organisation), the jobs;
- no phone number, no address; a token or a bind address restricts it.
The multiprocess half (two gunicorn workers adding up) is in tests/test_serve.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from intake import create_app
from intake.core.clock import SimClock
from intake.core.db import database
from intake.shell.proxy import trust_proxies
from routing.desk import Desk

from .conftest import Twilio, app_config, leave_voicemail, new_call
from .factories import add_contact, add_mail, save
from .health_rows import assert_no_patient_or_desk_details, every_job_ran, mailbox_round, outbox_row

TOKEN = "metrics-token-0123456789"


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def value(found: Iterable[Sample], name: str, **labels: str) -> float:
    [match] = [s.value for s in found if s.name == name and s.labels == labels]
    return match


def scrape(client: FlaskClient, **kw: object) -> str:
    reply = client.get("/metrics", **kw)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.headers["Content-Type"].startswith("text/plain; version=")
    return reply.get_data(as_text=True)


def test_webhook_latency_is_a_histogram_per_endpoint(
    client: FlaskClient, desk: Desk, twilio: Twilio
) -> None:
    twilio.call()
    new_call(twilio).call()
    twilio.post(twilio.url("voice.fallback"))

    found = samples(scrape(client))

    incoming = {"endpoint": "voice.incoming"}
    assert value(found, "intake_webhook_duration_seconds_count", **incoming) == 2
    assert value(found, "intake_webhook_duration_seconds_bucket", le="+Inf", **incoming) == 2
    assert value(found, "intake_webhook_duration_seconds_sum", **incoming) > 0
    assert value(found, "intake_webhook_duration_seconds_count", endpoint="voice.fallback") == 1
    # The dashboard and /metrics itself are no webhooks.
    assert {s.labels.get("endpoint") for s in found if s.name.startswith("intake_webhook")} == {
        "voice.incoming",
        "voice.fallback",
    }


def test_the_desks_figures_come_from_the_database(
    app: Flask, client: FlaskClient, desk: Desk, twilio: Twilio, clock: SimClock
) -> None:
    twilio.call()  # in progress
    leave_voicemail(new_call(twilio))
    leave_voicemail(new_call(twilio, caller="+31611111111"), sid="RE" + "f" * 32)
    for _ in range(3):
        add_mail(app, add_contact(app, channel="mail"))
    now = clock()
    save(app, outbox_row(app, 1, now - timedelta(minutes=5)))
    save(app, outbox_row(app, 2, now, failed_at=now))
    every_job_ran(app)
    mailbox_round(app, ok=False)
    mailbox_round(app, ok=False)
    mailbox_round(app, ok=True)

    found = samples(scrape(client))

    assert value(found, "intake_database_up") == 1
    assert value(found, "intake_calls", outcome="voicemail") == 2
    assert value(found, "intake_calls", outcome="in-progress") == 1
    assert value(found, "intake_mails_logged") == 3
    assert value(found, "intake_outbox_waiting") == 3  # with the two voicemail notices
    assert value(found, "intake_outbox_failed") == 1
    assert value(found, "intake_outbox_oldest_waiting_seconds") == 300
    noord = {"mailbox": "Ziekenhuis Noord"}
    assert value(found, "intake_mail_poll_failures_total", **noord) == 2
    assert value(found, "intake_mailbox_up", **noord) == 1
    assert value(found, "intake_mailbox_last_good_poll_timestamp_seconds", **noord) == (
        now.timestamp()
    )
    assert value(found, "intake_job_last_success_timestamp_seconds", job="outbox") == (
        now.timestamp()
    )


def test_metrics_name_no_number_and_no_address(
    app: Flask, client: FlaskClient, desk: Desk, twilio: Twilio
) -> None:
    twilio.call()
    leave_voicemail(new_call(twilio, caller="+31687654321"))
    add_mail(app, add_contact(app, channel="mail", caller="jan.jansen@example.net"))
    every_job_ran(app)
    mailbox_round(app, ok=False)
    save(app, outbox_row(app, 1, app.config["CLOCK"]()))

    assert_no_patient_or_desk_details(scrape(client))


def test_a_database_that_cannot_be_read_is_a_figure_not_an_error(
    clock: SimClock, tmp_path: Path
) -> None:
    closed = "postgresql+psycopg://postgres@127.0.0.1:9/test?connect_timeout=2"
    app = create_app(app_config(closed, clock, tmp_path))
    try:
        found = samples(scrape(app.test_client()))
    finally:
        database(app).engine.dispose()
    assert value(found, "intake_database_up") == 0


@pytest.fixture
def guarded(app: Flask) -> FlaskClient:
    app.config["METRICS_TOKEN"] = TOKEN
    return app.test_client()


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer wrong-token",
        f"Basic {TOKEN}",
        f"Bearer {TOKEN}x",
        "Bearer",
        "Bearer t\u00f6ken",
    ],
)
def test_metrics_refuses_a_missing_or_wrong_token(
    guarded: FlaskClient, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    reply = guarded.get("/metrics", headers=headers)
    assert reply.status_code == 401
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert "intake_" not in reply.get_data(as_text=True)


def test_metrics_answers_with_its_token(guarded: FlaskClient) -> None:
    text = scrape(guarded, headers={"Authorization": f"Bearer {TOKEN}"})
    assert "intake_database_up 1.0" in text


def test_metrics_on_its_own_bind_is_not_found_on_the_public_one(app: Flask) -> None:
    app.config["METRICS_BIND"] = "127.0.0.1:9100"
    client = app.test_client()

    public = client.get("/metrics", base_url="http://127.0.0.1:8000")
    other_host = client.get("/metrics", base_url="http://10.0.0.5:9100")
    private = scrape(client, base_url="http://127.0.0.1:9100")

    assert (public.status_code, other_host.status_code) == (404, 404)
    assert "intake_database_up 1.0" in private


def test_a_forwarded_host_or_port_does_not_reach_metrics_on_its_own_bind(app: Flask) -> None:
    # Behind a trusted proxy the host and port a request names are the proxy's word; the
    # bind is judged by the socket the request came in on.
    app.config.update(METRICS_BIND="127.0.0.1:9100", TRUSTED_PROXIES=1)
    trust_proxies(app)
    client = app.test_client()

    forged = [
        client.get("/metrics", base_url="http://127.0.0.1:8000", headers=headers).status_code
        for headers in (
            {"X-Forwarded-Host": "127.0.0.1:9100"},
            {"X-Forwarded-Host": "127.0.0.1", "X-Forwarded-Port": "9100"},
        )
    ]
    private = scrape(client, base_url="http://127.0.0.1:9100")

    assert forged == [404, 404]
    assert "intake_database_up 1.0" in private


@pytest.mark.parametrize("bind", ["localhost:9100", "0.0.0.0:9100"])
def test_a_metrics_bind_by_name_or_on_every_address_matches_the_socket(
    app: Flask, bind: str
) -> None:
    app.config["METRICS_BIND"] = bind
    client = app.test_client()

    assert client.get("/metrics", base_url="http://127.0.0.1:8000").status_code == 404
    assert "intake_database_up 1.0" in scrape(client, base_url="http://127.0.0.1:9100")
