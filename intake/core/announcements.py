"""The desk's own recordings: what callers hear instead of a spoken text, per language.

A coordinator uploads a recording for a slot (the greeting, the closed message, a queue
announcement, or the music between the queue's announcements) and a language; callers
then hear it in place of the text, which stays the fallback when there is none. Only a
text that is the same for every call can be replaced: a recording cannot say a caller's
place in the queue or their own number.

The table only grows: the newest row of a slot and language decides (a removal is a row
without a token), so its highest id is the recordings' version, read on the hot path of
a call beside the desk's. An upload is checked for what Twilio's <Play> plays, MP3 or
WAV, by `mutagen` reading the file itself (not its name or the browser's type).
"""

from __future__ import annotations

import io
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

import mutagen
from mutagen.mp3 import MP3
from mutagen.wave import WAVE
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from routing.desk import LANGUAGES

from .errors import RecordingRefused
from .locks import in_turn
from .models import Announcement

MUSIC = "queue_music"
# The slots, in the order the dashboard shows them: texts the same for every call.
SPOKEN_SLOTS: tuple[str, ...] = (
    "greeting",
    "queue_intro",
    "queue_too_long",
    "unavailable",
    "closed",
    "closed_no_next",
    "closure",
    "voicemail_thanks",
    "no_message",
)
SLOTS: tuple[str, ...] = (*SPOKEN_SLOTS, MUSIC)

MAX_BYTES = 5 * 1024 * 1024  # five minutes of telephone-quality WAV, or a long MP3
MAX_SECONDS = 300.0
MIN_SECONDS = 0.5
# What <Play> is served as; Twilio plays both.
CONTENT_TYPES = {"mp3": "audio/mpeg", "wav": "audio/wav"}


@dataclass(frozen=True)
class Audio:
    kind: str  # "mp3" or "wav"
    seconds: float

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.kind]


@dataclass(frozen=True)
class Recording:
    """A slot's current recording, as callers hear it and the dashboard shows it."""

    id: int
    slot: str
    language: str
    token: str
    content_type: str
    size_bytes: int
    seconds: float
    filename: str
    changed_by: str
    changed_at: datetime


Recordings = Mapping[tuple[str, str], Recording]
NONE: Recordings = MappingProxyType({})


def language_of(slot: str, language: str) -> str:
    """The language a slot is kept under: music has none."""
    return "" if slot == MUSIC else language


def inspect_audio(data: bytes) -> Audio:
    """What the file is, read from its bytes; RecordingRefused says why it cannot be played."""
    if not data:
        raise RecordingRefused("empty", "the file is empty")
    if len(data) > MAX_BYTES:
        raise RecordingRefused(
            "too_large", f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB"
        )
    try:
        found = mutagen.File(io.BytesIO(data), options=[WAVE, MP3])
    except Exception:  # mutagen raises its own error per format on a damaged file
        found = None
    if found is None or found.info is None:
        raise RecordingRefused("not_audio", "the file is not an MP3 or WAV recording")
    kind = "wav" if isinstance(found, WAVE) else "mp3"
    if kind == "wav" and (
        not found.info.sample_rate or not found.info.channels or not found.info.bits_per_sample
    ):
        raise RecordingRefused("not_audio", "the WAV file holds no sound Twilio can play")
    seconds = float(found.info.length or 0.0)
    if seconds < MIN_SECONDS:
        raise RecordingRefused("too_short", "the recording is shorter than half a second")
    if seconds > MAX_SECONDS:
        raise RecordingRefused(
            "too_long", f"the recording is longer than {int(MAX_SECONDS // 60)} minutes"
        )
    return Audio(kind, seconds)


def _check_slot(slot: str, language: str) -> None:
    if slot not in SLOTS:
        raise RecordingRefused("unknown_slot", f"there is no recording called {slot!r}")
    if slot != MUSIC and language not in LANGUAGES:
        raise RecordingRefused("unknown_language", f"there is no language {language!r}")


def store(
    session: Session,
    *,
    slot: str,
    language: str,
    data: bytes,
    filename: str,
    by: str,
    at: datetime,
) -> Recording:
    """Check and keep an upload as the slot's recording; the one it replaces loses its audio.

    Not committed here. Two uploads at once are two rows: the later id is what callers hear.
    """
    _check_slot(slot, language)
    audio = inspect_audio(data)
    language = language_of(slot, language)
    # Changes to one slot in turn: the later sees the earlier's row and drops its audio.
    in_turn(session, f"announcement/{slot}/{language}")
    row = Announcement(
        slot=slot,
        language=language,
        token=secrets.token_urlsafe(24),
        content_type=audio.content_type,
        audio=data,
        size_bytes=len(data),
        seconds=round(audio.seconds, 1),
        filename=filename[-200:],
        changed_by=by,
        changed_at=at,
    )
    session.add(row)
    session.flush()
    _drop_older_audio(session, slot, language, row.id)
    return _recording(row)


def remove(session: Session, *, slot: str, language: str, by: str, at: datetime) -> bool:
    """Callers hear the spoken text again; False when there was no recording to remove."""
    _check_slot(slot, language)
    language = language_of(slot, language)
    in_turn(session, f"announcement/{slot}/{language}")  # as `store`
    if (slot, language) not in current(session):
        return False
    row = Announcement(slot=slot, language=language, token=None, changed_by=by, changed_at=at)
    session.add(row)
    session.flush()
    _drop_older_audio(session, slot, language, row.id)
    return True


def _drop_older_audio(session: Session, slot: str, language: str, newest: int) -> None:
    session.execute(
        update(Announcement)
        .where(
            Announcement.slot == slot,
            Announcement.language == language,
            Announcement.id < newest,
            Announcement.audio.is_not(None),
        )
        .values(audio=None)
    )


def version(session: Session) -> int:
    """Changes with every upload and removal (0 before the first)."""
    return int(session.scalar(select(func.max(Announcement.id))) or 0)


def current(session: Session) -> Recordings:
    """Every slot's recording now, by (slot, language); removed and replaced ones left out."""
    newest = select(func.max(Announcement.id)).group_by(Announcement.slot, Announcement.language)
    rows = session.scalars(
        select(Announcement).where(Announcement.id.in_(newest), Announcement.token.is_not(None))
    ).all()
    return MappingProxyType({(r.slot, r.language): _recording(r) for r in rows})


def audio_of(session: Session, token: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of a recording still in use or kept; None for an unknown token."""
    row = session.execute(
        select(Announcement.content_type, Announcement.audio).where(Announcement.token == token)
    ).first()
    if row is None or row.audio is None:
        return None
    return row.content_type, bytes(row.audio)


def _recording(row: Announcement) -> Recording:
    assert row.token is not None
    return Recording(
        id=row.id,
        slot=row.slot,
        language=row.language,
        token=row.token,
        content_type=row.content_type,
        size_bytes=row.size_bytes,
        seconds=row.seconds,
        filename=row.filename,
        changed_by=row.changed_by,
        changed_at=row.changed_at,
    )
