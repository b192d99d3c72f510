"""The answer to a new call that rings colleagues, built once per call shape.

Every call in the same situation (the same desk version, line, colleagues to ring and
texts) gets the same TwiML but for its contact id in the URLs. Building it (the twilio
classes, the URLs, the XML) was a fifth of `/voice/incoming`; here it is built once with a
stand-in id, kept as the text around that id, and each call gets the text with its own id
put in. What is built is `twiml.dial_colleagues`'s own answer, byte for byte.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from flask import Response, current_app, request

from routing.desk import Desk, Staff

from .recordings import recording_url
from .twiml import MAX_NUMBERS_PER_DIAL, dial_colleagues

EXTENSION = "voice.answers"
MAX_SHAPES = 256  # a desk has a handful; the cache starts over when it holds more
# Where the contact id goes. No real id comes near it, and every URL names it as
# `contact=<id>`, which the text around it is split on.
STAND_IN = 987654321987654321
MARK = f"contact={STAND_IN}"

Shape = tuple[object, ...]


class AnswerCache:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: dict[Shape, tuple[str, ...]] = {}

    def get(self, shape: Shape) -> tuple[str, ...] | None:
        return self._parts.get(shape)

    def put(self, shape: Shape, parts: tuple[str, ...]) -> None:
        with self._lock:
            if len(self._parts) >= MAX_SHAPES:
                self._parts.clear()
            self._parts[shape] = parts


def _cache() -> AnswerCache:
    cache: AnswerCache = current_app.extensions.setdefault(EXTENSION, AnswerCache())
    return cache


def ring_colleagues(
    desk_version: int,
    desk: Desk,
    contact_id: int,
    staff: Sequence[Staff],
    greeting: Mapping[str, str],
    line: str = "",
) -> Response:
    """`dial_colleagues(desk, contact_id, staff, greeting=greeting, line=line)` as a response."""
    if desk.voice.strategy != "sequential" and len(staff) > MAX_NUMBERS_PER_DIAL:
        # A crowded round is rare, and dial_colleagues logs it under the call's reference.
        text = str(dial_colleagues(desk, contact_id, staff, greeting=dict(greeting), line=line))
        return Response(text, status=200, mimetype="text/xml")
    shape: Shape = (
        desk_version,
        tuple(s.id for s in staff),
        tuple(sorted(greeting.items())),
        line,
        # The greeting the coordinator recorded, if any (played instead of said).
        recording_url("greeting", desk.language),
        # What the URLs are built from besides the endpoint and its values.
        current_app.config.get("PUBLIC_URL", ""),
        request.host_url,
        request.script_root,
    )
    cache = _cache()
    parts = cache.get(shape)
    if parts is None:
        parts = _split(desk, staff, greeting, line)
        if parts is None:  # the stand-in turned up elsewhere too: this one without the cache
            text = str(dial_colleagues(desk, contact_id, staff, greeting=dict(greeting), line=line))
            return Response(text, status=200, mimetype="text/xml")
        cache.put(shape, parts)
    return Response(f"contact={contact_id}".join(parts), status=200, mimetype="text/xml")


def _split(
    desk: Desk, staff: Sequence[Staff], greeting: Mapping[str, str], line: str
) -> tuple[str, ...] | None:
    """The answer as the text around its contact ids; None unless that is all that varies.

    Built with two stand-ins: the text around them must be the same, so the id is used at
    the marks and nowhere else.
    """
    texts = [
        str(dial_colleagues(desk, stand_in, staff, greeting=dict(greeting), line=line))
        for stand_in in (STAND_IN, STAND_IN + 1)
    ]
    parts = tuple(texts[0].split(MARK))
    if len(parts) < 2 or tuple(texts[1].split(f"contact={STAND_IN + 1}")) != parts:
        return None
    return parts
