"""The shell around every voice webhook: the signature, the commit, and the safe answers.

A webhook never answers Twilio with an error page. Each view names a safe answer that
needs no database; when the view fails (the database is down, a bug), the failure goes to
the log and Twilio gets that answer, and should even that fail, fixed TwiML. Twilio's form
is read here too, the same way for every view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, current_app, request
from sqlalchemy.exc import DBAPIError, IntegrityError
from twilio.twiml.voice_response import VoiceResponse

from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import last_known_desk
from routing.desk import Desk

from . import bp, recordings
from .signature import is_signed_by_twilio
from .twiml import (
    UNKNOWN_DESK,
    goodbye,
    hang_up,
    last_resort,
    message_values,
    screen_prompt,
    twiml,
    voicemail,
)

log = logging.getLogger(__name__)

ANSWERED_DIAL_STATUSES = frozenset({"completed", "answered"})
# What a failed callback leaves in the log: Twilio's ids and statuses, no phone numbers.
LOGGED_CALLBACK_FIELDS = (
    "CallSid",
    "CallStatus",
    "CallDuration",
    "RecordingSid",
    "RecordingUrl",
    "RecordingStatus",
    "RecordingDuration",
)


@bp.before_request
def require_twilio_signature() -> Response | None:
    if is_signed_by_twilio():
        return None
    log.warning("refused %s: missing or wrong X-Twilio-Signature", request.path)
    return Response(
        "Forbidden: this request is not signed by Twilio.\n", 403, mimetype="text/plain"
    )


def webhook(
    safe: Callable[[], VoiceResponse | Response], *, database: bool = True
) -> Callable[[Callable[[], Any]], Any]:
    """Commit after the view; on any failure, log it and answer with `safe()` instead."""

    def decorate(view: Callable[[], VoiceResponse | Response]) -> Callable[[], Response]:
        @wraps(view)
        def run() -> Response:
            if not database:
                recordings.offline()  # no database here, not even for the recordings
            try:
                return _respond(_run_committed(view) if database else view())
            except Exception:
                log.exception("webhook %s failed; answering with its safe TwiML", request.path)
                _discard_session()
                recordings.offline()
                try:
                    return _respond(safe())
                except Exception:
                    log.exception("the safe answer of %s failed too", request.path)
                    return Response(last_resort(_webhooks_url()), 200, mimetype="text/xml")

        return run

    return decorate


def _webhooks_url() -> str:
    """The absolute URL the webhooks live under, read without url_for; "" if even that fails."""
    try:
        public = str(current_app.config.get("PUBLIC_URL", "") or "")
        root = public + request.script_root if public else request.url_root.rstrip("/")
        return root + request.path.rsplit("/", 1)[0] + "/"
    except Exception:
        log.exception("no URL for the last-resort answer: relative URLs instead")
        return ""


def _worth_retrying(exc: DBAPIError) -> bool:
    # Twilio may send the same request twice at once: the loser of that race hits a unique
    # constraint, and its second run finds what the winner wrote. A pooled connection the
    # server closed (a restart, an idle timeout) fails once, then the pool has a fresh one.
    return isinstance(exc, IntegrityError) or exc.connection_invalidated


def _run_committed(view: Callable[[], VoiceResponse | Response]) -> VoiceResponse | Response:
    for attempt in (1, 2):
        try:
            result = view()
            get_session().commit()
            return result
        except DBAPIError as exc:
            get_session().rollback()
            if attempt == 2 or not _worth_retrying(exc):
                raise
            log.warning("retrying %s once: %s", request.path, exc.__class__.__name__)
    raise AssertionError("unreachable")


def _respond(result: VoiceResponse | Response) -> Response:
    return result if isinstance(result, Response) else twiml(result)


def _discard_session() -> None:
    try:
        get_session().rollback()
    except Exception:
        log.exception("rollback failed")


def no_content() -> Response:
    return Response(status=204)


# --- reading Twilio's request -------------------------------------------------------------


def form_value(name: str) -> str:
    return (request.form.get(name) or "").strip()


def form_int(name: str) -> int | None:
    try:
        return int(form_value(name))
    except ValueError:
        return None


def contact_arg() -> int:
    """The contact id our own URL carries (0 when it carries none)."""
    raw = request.args.get("contact", "")
    return int(raw) if raw.isdigit() else 0


# --- the safe answers: what each webhook says without a database --------------------------


def safe_desk() -> Desk:
    return last_known_desk() or UNKNOWN_DESK


def safe_voicemail() -> VoiceResponse:
    desk = safe_desk()
    return voicemail(desk, "technical_trouble", message_values(desk, "", clock_now()))


def safe_screen() -> VoiceResponse:
    desk = safe_desk()
    return screen_prompt(desk, contact_arg(), request.args.get("staff", ""), desk.name)


def safe_screen_result() -> VoiceResponse:
    # Without the database we cannot record it, but a colleague who pressed 1 gets the call.
    return VoiceResponse() if form_value("Digits") == "1" else hang_up()


def safe_dial_result() -> VoiceResponse:
    if form_value("DialCallStatus") in ANSWERED_DIAL_STATUSES:
        return hang_up()
    return safe_voicemail()


def safe_voicemail_action() -> VoiceResponse:
    desk = safe_desk()
    return goodbye(desk, "voicemail_thanks", message_values(desk, "", clock_now()))


def log_callback_failure() -> Response:
    # Twilio does not retry these; keep what it told us in the log so nothing is lost.
    fields = {k: request.form[k] for k in LOGGED_CALLBACK_FIELDS if k in request.form}
    log.error("could not record %s callback: %s", request.path, fields)
    return no_content()


def bare_fallback() -> VoiceResponse:
    return voicemail(UNKNOWN_DESK, "technical_trouble", {"desk": UNKNOWN_DESK.name})
