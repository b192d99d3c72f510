"""Voicemail audio for staff: fetched from Twilio with the account's credentials, streamed.

The credentials go to Twilio's API host and nowhere else, whatever the database holds:
only a recording path on exactly that host is fetched, and redirects off it are refused.
"""

from __future__ import annotations

import base64
import http.client
import logging
import re
import urllib.request
from collections.abc import Iterator
from typing import IO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit, urlunsplit

from flask import Response, abort, current_app

from intake.core.db import get_session
from intake.core.models import Contact
from intake.shell.auth import login_required
from intake.shell.dashboard import bp
from intake.shell.settings import TWILIO_API_BASE

log = logging.getLogger(__name__)

# Where Twilio keeps a recording: its API host, then this path (Twilio gives it without an
# extension; ".mp3" asks for the MP3 rendering).
RECORDING_PATH = re.compile(
    r"/\d{4}-\d{2}-\d{2}/Accounts/AC[0-9a-fA-F]{32}/Recordings/RE[0-9a-fA-F]{32}"
)
CHUNK = 64 * 1024
FETCH_TIMEOUT = 10.0  # seconds, for connecting and for each read


class RecordingUnavailable(Exception):
    """Twilio did not give the recording (refused, down, slow, or not audio)."""


def twilio_api_base() -> str:
    return str(current_app.config.get("TWILIO_API_BASE") or TWILIO_API_BASE)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def recording_media_url(recording_url: str | None, api_base: str) -> str | None:
    """The MP3 of a Twilio recording URL, or None for anything not on Twilio's API host.

    Only a recording path on exactly `api_base`'s scheme and host passes, whatever the
    database holds: the account's credentials go nowhere else.
    """
    if not recording_url or not recording_url.isascii() or not recording_url.isprintable():
        return None
    if any(ch.isspace() for ch in recording_url):
        return None
    parts = urlsplit(recording_url)
    if (parts.scheme, parts.netloc) != _origin(api_base) or parts.query or parts.fragment:
        return None
    if parts.scheme not in ("https", "http") or not RECORDING_PATH.fullmatch(parts.path):
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path + ".mp3", "", ""))


class _StayOnApiHost(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only on the API host itself, so the credentials never leave it."""

    def __init__(self, api_base: str) -> None:
        super().__init__()
        self.origin = _origin(api_base)

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _origin(newurl) != self.origin:
            log.warning("recording fetch redirected off the API host; not followed")
            return None  # urllib then raises the 3xx as an HTTPError
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def open_recording(
    media_url: str,
    *,
    api_base: str,
    account_sid: str,
    auth_token: str,
    timeout: float = FETCH_TIMEOUT,
    opener: urllib.request.OpenerDirector | None = None,
) -> tuple[http.client.HTTPResponse, str]:
    """The upstream response for `media_url` (checked by `recording_media_url`) and its type."""
    if not account_sid or not auth_token:
        raise RecordingUnavailable("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are needed")
    opener = opener or urllib.request.build_opener(_StayOnApiHost(api_base))
    credentials = base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode("ascii")
    upstream_request = urllib.request.Request(  # noqa: S310  (the URL was checked above)
        media_url, headers={"Authorization": f"Basic {credentials}", "Accept": "audio/mpeg"}
    )
    try:
        upstream: http.client.HTTPResponse = opener.open(upstream_request, timeout=timeout)
    except HTTPError as exc:
        exc.close()
        raise RecordingUnavailable(f"Twilio answered {exc.code}") from None
    except (URLError, OSError, http.client.HTTPException) as exc:
        raise RecordingUnavailable(f"Twilio could not be reached: {exc}") from None
    content_type = upstream.headers.get_content_type()
    if not content_type.startswith("audio/"):
        upstream.close()
        raise RecordingUnavailable(f"Twilio sent {content_type}, not audio")
    return upstream, upstream.headers.get("Content-Type", content_type)


def _chunks(upstream: http.client.HTTPResponse, reference: str) -> Iterator[bytes]:
    try:
        while chunk := upstream.read(CHUNK):
            yield chunk
    except (OSError, http.client.HTTPException) as exc:
        # The headers are sent by now; the player stops where the audio broke off.
        log.warning("recording of %s broke off: %s", reference, exc)
    finally:
        upstream.close()


@bp.get("/contacts/<int:contact_id>/recording")
@login_required
def contact_recording(contact_id: int) -> Response:
    """The voicemail's audio, fetched from Twilio with the account's credentials."""
    session = get_session()
    row = session.get(Contact, contact_id)
    if row is None:
        abort(404)
    api_base = twilio_api_base()
    media_url = recording_media_url(row.recording_url, api_base)
    reference = row.reference
    session.close()  # no database connection held while the audio streams
    if media_url is None:
        abort(404)
    try:
        upstream, content_type = open_recording(
            media_url,
            api_base=api_base,
            account_sid=current_app.config.get("TWILIO_ACCOUNT_SID", ""),
            auth_token=current_app.config.get("TWILIO_AUTH_TOKEN", ""),
            timeout=float(current_app.config.get("TWILIO_MEDIA_TIMEOUT", FETCH_TIMEOUT)),
        )
    except RecordingUnavailable as exc:
        log.warning("recording of %s not available: %s", reference, exc)
        abort(502)
    response = Response(_chunks(upstream, reference), content_type=content_type)
    length = upstream.headers.get("Content-Length", "")
    if length.isdigit():
        response.headers["Content-Length"] = length
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Disposition"] = f'inline; filename="{reference}.mp3"'
    return response
