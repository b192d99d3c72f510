"""What the queue, callback and TwiML-limits suites share: Twilio's REST API stand-in with
the account it answers for, colleagues already on calls, and a request of a call Twilio
placed to a colleague. Fixtures are imported by name into the modules that use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from flask import Flask

from intake.core.clock import SimClock
from routing.desk import Desk
from voice.simulator import new_sid

from .conftest import AUTH_TOKEN, LINE_NOORD, Twilio
from .factories import add_contact
from .twilioapi import PlacedCall, TwilioApi

ACCOUNT_SID = "AC" + "1" * 32
QUEUE_SID = "QU" + "7" * 32
PATIENT = "+31687654321"


@pytest.fixture
def twilio_api(app: Flask, desk: Desk) -> Iterator[TwilioApi]:
    """Twilio's REST API (tests/twilioapi.py): with it the line queues callers, rings the
    colleague who frees up first, and calls patients back."""
    api = TwilioApi(ACCOUNT_SID, AUTH_TOKEN, {line.number for line in desk.lines}).start()
    app.config.update(TWILIO_API_BASE=api.base, TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    yield api
    api.close()


@pytest.fixture
def busy_calls(app: Flask, desk: Desk, clock: SimClock, twilio_api: TwilioApi) -> dict[str, str]:
    """Anna and Bram, on shift on Monday morning, are each on a helpdesk call: its CallSid."""
    sids = {}
    for staff in ("anna", "bram"):
        sids[staff] = new_sid("CA")
        add_contact(
            app,
            outcome="answered",
            answered_by=staff,
            caller="+31600000001",
            via=LINE_NOORD,
            call_sid=sids[staff],
            started_at=clock() - timedelta(minutes=4),
        )
    return sids


def colleague_leg(twilio: Twilio, call: PlacedCall, url: str, **fields: str) -> ET.Element:
    """A request of the call Twilio placed to the colleague, signed as Twilio signs it."""
    return twilio.twiml(
        url,
        CallSid=call.sid,
        From=call.from_,
        To=call.to,
        Direction="outbound-api",
        CallStatus="in-progress",
        **fields,
    )
