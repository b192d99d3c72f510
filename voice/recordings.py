"""The desk's own recordings on the line: which text a call plays instead of saying it, and
the audio itself, served to Twilio.

Twilio fetches a `<Play>` URL without signing the request, so the audio is served outside
the signed webhooks (`media`, at /media/recordings/<token>), by a token nobody can guess
that is new with every upload. A new upload is therefore a new URL: the audio under a URL
never changes, and Twilio may cache it for a year.

Which recordings there are is read from the database once per change, as the desk is:
`/voice/incoming` reads their version in its one snapshot (`use`), other webhooks on
their first `<Say>`. When the database is what failed, a webhook's safe answer uses the
recordings last read, and without any, the spoken text.
"""

from __future__ import annotations

import logging
import threading

from flask import Blueprint, Response, abort, current_app, g, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from intake.core import announcements
from intake.core.announcements import NONE, Recordings, language_of
from intake.core.db import get_session
from routing.languages import base_language

log = logging.getLogger(__name__)

media = Blueprint("voice_media", __name__, url_prefix="/media")

EXTENSION = "voice.recordings"
EXTENSIONS = {"audio/mpeg": "mp3", "audio/wav": "wav"}
YEAR = 365 * 24 * 3600


class _Kept:
    """The recordings as last read, per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version = -1
        self.table: Recordings = NONE


def _kept() -> _Kept:
    kept: _Kept = current_app.extensions.setdefault(EXTENSION, _Kept())
    return kept


def use(version: int | None = None) -> Recordings:
    """This request's recordings: read again only when `version` (or the database's) moved."""
    kept = _kept()
    session = get_session()
    if version is None:
        version = announcements.version(session)
    table = kept.table
    if version != kept.version:
        table = announcements.current(session)
        with kept.lock:
            kept.version, kept.table = version, table
    g.voice_recordings = table
    return table


def offline() -> None:
    """The database failed in this request: from here on, the recordings last read."""
    g.voice_recordings = _kept().table


def _this_request() -> Recordings:
    table: Recordings | None = g.get("voice_recordings")
    if table is not None:
        return table
    try:
        return use()
    except Exception:
        # The text is spoken instead; the view's own use of the database will say more.
        log.exception("could not read the desk's recordings: the texts are spoken")
        offline()
        return _kept().table


def recording_url(key: str, language: str) -> str | None:
    """The absolute URL of the recording callers hear for text `key`, or None: say it."""
    if key not in announcements.SLOTS:
        return None  # a text no recording can replace: no need to read which there are
    recording = _this_request().get((key, language_of(key, base_language(language))))
    if recording is None:
        return None
    token, ext = recording.token, EXTENSIONS.get(recording.content_type, "mp3")
    public = str(current_app.config.get("PUBLIC_URL", "") or "")
    if public:
        return public + url_for("voice_media.recording", token=token, ext=ext)
    return url_for("voice_media.recording", token=token, ext=ext, _external=True)


@media.get("/recordings/<token>.<ext>")
def recording(token: str, ext: str) -> BaseResponse:
    found = announcements.audio_of(get_session(), token)
    if found is None or EXTENSIONS.get(found[0]) != ext:
        abort(404)
    content_type, audio = found
    response = Response(audio, mimetype=content_type)
    response.headers["Cache-Control"] = f"public, max-age={YEAR}, immutable"
    response.set_etag(token)
    return response.make_conditional(request)
