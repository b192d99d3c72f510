"""Twilio sends one callback several times at the same moment: it counts once.

Twilio repeats a callback it got no quick answer to, and may open a call we never logged
(its first request failed, or the Fallback URL answered it) with any callback. Played in
one web process, as a repeat reaches whichever thread is free: each request a thread of its
own with a database connection of its own, released together by a barrier, over several
calls. One contact per call, each event once, ended once; no request gets an error.
"""

from __future__ import annotations

import threading

from flask import Flask

from intake.core.clock import SimClock
from routing.desk import Desk
from voice.simulator import Reply, TwilioSide, new_sid

from .conftest import AUTH_TOKEN, LINE_NOORD, contacts

ROUNDS = 6
REPEATS = 3


def repeated_at_once(app: Flask, url: str, params: dict[str, str]) -> list[Reply | None]:
    barrier = threading.Barrier(REPEATS)
    replies: list[Reply | None] = [None] * REPEATS

    def run(i: int) -> None:
        side = TwilioSide(app, AUTH_TOKEN)  # a client of its own
        barrier.wait(10)
        replies[i] = side.post(url, params)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(REPEATS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return replies


def test_a_status_callback_repeated_at_once_for_a_call_never_logged_counts_once(
    app: Flask, desk: Desk, clock: SimClock
) -> None:
    url = TwilioSide(app, AUTH_TOKEN).url("voice.status")
    for n in range(ROUNDS):
        call_sid = new_sid("CA")
        params = {
            "AccountSid": "AC" + "1" * 32,
            "CallSid": call_sid,
            "From": f"+3168765432{n}",
            "To": LINE_NOORD,
            "Direction": "inbound",
            "CallStatus": "completed",
            "CallDuration": "17",
            "SequenceNumber": "2",
        }

        replies = repeated_at_once(app, url, params)

        assert [r.status if r else None for r in replies] == [204] * REPEATS
        [contact] = [c for c in contacts(app) if c.call_sid == call_sid]
        assert (contact.outcome, contact.duration_seconds) == ("missed", 17)
        assert contact.ended_at == clock()
        assert [e.kind for e in contact.events] == ["status"]
