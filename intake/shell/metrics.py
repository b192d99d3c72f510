"""`/metrics` in Prometheus' text format (the `prometheus_client` package).

Two kinds of figures:
- what a web process measures itself, webhook latency per endpoint (a histogram, observed
  in the shell's request hooks around the `voice` blueprint). Under gunicorn every worker
  is a process of its own, so with PROMETHEUS_MULTIPROC_DIR set (before prometheus_client
  is imported: `intake serve` sets it, deploy units set it) each writes its values there
  and a scrape adds up all of them;
- facts about the desk (calls per outcome, mails logged, the outbox, each mailbox's polls
  and failures, the jobs' last successes), read from the database at scrape time, so every
  web host tells the same truth whichever worker did the work.

No label carries a phone number or an address: endpoints, outcomes, job names and the
mailbox's organisation (`health.mailbox_labels`).

Restricting it: INTAKE_METRICS_TOKEN asks for `Authorization: Bearer <token>`;
INTAKE_METRICS_BIND (HOST:PORT, a second `--bind` of gunicorn) answers /metrics only on
that address, so the proxy in front of the public one never passes it on. Both may be set.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Iterable

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from intake.core.db import database
from intake.core.lifecycle import Channel
from intake.core.models import Contact, MailMessage
from intake.shell.health import read_facts

EXTENSION = "intake.metrics"
# Twilio waits 15 s for a webhook; the buckets reach it.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)
LATENCY = "intake_webhook_duration_seconds"
ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 (a bind's host, compared)
LOOPBACK = frozenset({"127.0.0.1", "::1"})


class WebMetrics:
    """This app's own histogram, in a registry of its own (tests make many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.webhook_seconds = Histogram(
            LATENCY,
            "Time to answer a Twilio webhook, by endpoint.",
            ["endpoint"],
            buckets=BUCKETS,
            registry=self.registry,
        )


def multiprocess_dir() -> str:
    """prometheus_client's own switch, read by it when it is first imported."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")


class DeskCollector(Collector):
    """The desk's figures, read from the database at every scrape."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("intake_database_up", "Whether the database could be read.")
        try:
            figures = list(self._figures())
        except SQLAlchemyError:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        return [up, *figures]

    def _figures(self) -> Iterable[Metric]:
        with database(self.app).session() as session:
            facts = read_facts(self.app, session)
            outcomes = session.execute(
                select(Contact.outcome, func.count())
                .where(Contact.channel == Channel.CALL.value)
                .group_by(Contact.outcome)
            ).all()
            mails = session.scalar(select(func.count()).select_from(MailMessage))
        calls = GaugeMetricFamily(
            "intake_calls", "Calls in the contact log, by outcome.", labels=["outcome"]
        )
        for outcome, n in sorted(outcomes):
            calls.add_metric([outcome], n)
        yield calls
        yield GaugeMetricFamily(
            "intake_mails_logged", "Mail messages in the contact log.", value=mails or 0
        )
        backlog = facts.backlog
        yield GaugeMetricFamily(
            "intake_outbox_waiting", "Outgoing mail not sent yet.", value=backlog.waiting
        )
        yield GaugeMetricFamily(
            "intake_outbox_failed", "Outgoing mail refused for good.", value=backlog.failed
        )
        oldest = (
            (facts.now - backlog.oldest_waiting).total_seconds()
            if backlog.oldest_waiting is not None
            else 0.0
        )
        yield GaugeMetricFamily(
            "intake_outbox_oldest_waiting_seconds",
            "Age of the oldest outgoing mail not sent yet (0: none waits).",
            value=oldest,
        )
        failures = CounterMetricFamily(
            "intake_mail_poll_failures", "Failed polls, per mailbox.", labels=["mailbox"]
        )
        mailbox_up = GaugeMetricFamily(
            "intake_mailbox_up", "Whether the mailbox's last poll read it.", labels=["mailbox"]
        )
        last_good = GaugeMetricFamily(
            "intake_mailbox_last_good_poll_timestamp_seconds",
            "When the mailbox was last read (Unix time).",
            labels=["mailbox"],
        )
        for label, status in facts.mailboxes:
            failures.add_metric([label], status.failures)
            mailbox_up.add_metric([label], 1 if status.ok else 0)
            if status.last_ok_at is not None:
                last_good.add_metric([label], status.last_ok_at.timestamp())
        yield from (failures, mailbox_up, last_good)
        jobs = GaugeMetricFamily(
            "intake_job_last_success_timestamp_seconds",
            "When each scheduled job last finished without an error (Unix time).",
            labels=["job"],
        )
        for name, beat in sorted(facts.heartbeats.items()):
            jobs.add_metric([name], beat.finished_at.timestamp())
        yield jobs


class _Together(Collector):
    def __init__(self, *parts: Collector) -> None:
        self.parts = parts

    def collect(self) -> Iterable[Metric]:
        for part in self.parts:
            yield from part.collect()


def scrape(app: Flask) -> bytes:
    """The whole text: the web processes' figures and the desk's."""
    own = web_metrics(app).registry
    if multiprocess_dir():
        own = CollectorRegistry()  # every worker's files, this one's included
        MultiProcessCollector(own)  # type: ignore[no-untyped-call]
    return generate_latest(_Together(own, DeskCollector(app)))


def web_metrics(app: Flask) -> WebMetrics:
    metrics: WebMetrics = app.extensions[EXTENSION]
    return metrics


def _on_metrics_bind(app: Flask) -> bool:
    bind = app.config.get("METRICS_BIND", "")
    if not bind:
        return True
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    # gunicorn's SERVER_* name the socket, not the Host header; behind a trusted proxy,
    # ProxyFix has put the forwarded host and port there, so the socket's are its originals.
    environ = request.environ.get("werkzeug.proxy_fix.orig") or request.environ
    if str(environ.get("SERVER_PORT", "")) != port:
        return False
    if host in ANY_ADDRESS:
        return True
    names = LOOPBACK if host == "localhost" else {host}  # the socket's address, not a name
    return environ.get("SERVER_NAME") in names


def _token_given(app: Flask) -> bool:
    token = app.config.get("METRICS_TOKEN", "")
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # As bytes: compare_digest refuses str with non-ASCII characters (a 500, not a 401).
    given_bytes = given.strip().encode("utf-8", "surrogateescape")
    return scheme.lower() == "bearer" and hmac.compare_digest(given_bytes, token.encode())


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = metrics = WebMetrics()

    @app.before_request
    def start_clock() -> None:
        if request.blueprint == "voice":
            g.webhook_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        started = g.pop("webhook_started", None)
        if started is not None and request.endpoint is not None:
            metrics.webhook_seconds.labels(request.endpoint).observe(time.perf_counter() - started)
        return response

    @app.get("/metrics")
    def metrics_view() -> Response:
        if not _on_metrics_bind(app):
            return Response("Not Found\n", 404, mimetype="text/plain")
        if not _token_given(app):
            return Response(
                "Unauthorized: /metrics asks for its Bearer token.\n",
                401,
                {"WWW-Authenticate": 'Bearer realm="metrics"'},
                mimetype="text/plain",
            )
        response = Response(scrape(app), 200, mimetype=None)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        response.headers["Cache-Control"] = "no-store"
        return response
