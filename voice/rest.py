"""Twilio's REST API, spoken to with the `twilio` package's own `Client`: placing the calls
the desk makes itself (a callback through the helpline, a free colleague rung for the
queue), and saying a number so text-to-speech says it digit by digit.

`TWILIO_API_BASE` points the client at Twilio itself in production and at a local
stand-in in the tests; only the host changes.
"""

from __future__ import annotations

from typing import Any

import phonenumbers
from flask import current_app
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from intake.core.models import Callback, Contact
from intake.core.phones import DEFAULT_REGION
from routing.desk import Desk

from .signature import twilio_url

TWILIO_API = "https://api.twilio.com"


class CallbackRefused(Exception):
    """Twilio would not place the call; the message is what a colleague can act on."""


class _ApiBase(TwilioHttpClient):  # type: ignore[misc]
    """Twilio's own HTTP client, sending to TWILIO_API_BASE: Twilio itself in production,
    the local stand-in in tests. Only the host changes; every request is the library's."""

    def __init__(self, base: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base = base.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> TwilioResponse:
        if self.base != TWILIO_API and url.startswith(TWILIO_API):
            url = self.base + url[len(TWILIO_API) :]
        return super().request(method, url, *args, **kwargs)


def rest_client() -> Client:
    config = current_app.config
    base = str(config.get("TWILIO_API_BASE") or TWILIO_API)
    return Client(
        config.get("TWILIO_ACCOUNT_SID", ""),
        config.get("TWILIO_AUTH_TOKEN", ""),
        http_client=_ApiBase(base, timeout=10),
    )


def can_place_calls() -> bool:
    config = current_app.config
    return bool(config.get("TWILIO_ACCOUNT_SID") and config.get("TWILIO_AUTH_TOKEN"))


def place_callback(desk: Desk, callback: Callback, contact: Contact, colleague_phone: str) -> str:
    """Ring the colleague from the patient's line; the colleague leg's CallSid."""
    try:
        call = rest_client().calls.create(
            to=colleague_phone,
            from_=contact.via,
            url=twilio_url("voice.callback_colleague", callback=callback.id),
            method="POST",
            status_callback=twilio_url("voice.callback_status", callback=callback.id),
            status_callback_method="POST",
            status_callback_event=["completed"],
            timeout=desk.voice.ring_seconds,
        )
    except TwilioRestException as exc:
        raise CallbackRefused(f"Twilio refused the call ({exc.code}: {exc.msg})") from None
    except (TwilioException, OSError) as exc:
        raise CallbackRefused(f"Twilio could not be reached ({type(exc).__name__})") from None
    return str(call.sid)


def spoken_number(number: str) -> str:
    """A number for text-to-speech, a digit at a time with a pause between the groups a
    person says: "0 6, 8 7, 6 5, 4 3, 2 1" for 06 87654321, "0 8 5, 1 2 3, 4 5 6 7"."""
    try:
        parsed = phonenumbers.parse(number, None)
        style = phonenumbers.PhoneNumberFormat.NATIONAL
        if phonenumbers.region_code_for_number(parsed) != DEFAULT_REGION:
            style = phonenumbers.PhoneNumberFormat.INTERNATIONAL
        written = phonenumbers.format_number(parsed, style)
    except phonenumbers.NumberParseException:
        written = number
    groups: list[str] = []
    for group in written.split():
        digits = [ch for ch in group if ch.isdigit()]
        if len(digits) > 4:  # a long run is said in pairs
            groups.extend(" ".join(digits[i : i + 2]) for i in range(0, len(digits), 2))
        elif digits:
            groups.append(" ".join(digits))
    return ", ".join(groups)
