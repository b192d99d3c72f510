"""The Recordings page: the coordinator records the desk's own voice.

For each text that is the same on every call (the greeting, the closed messages, the
queue's announcements) and each language, a recording can be uploaded, listened to and
removed; callers then hear it instead of the spoken text. The music between the queue's
announcements is one more, in no language. What is checked (MP3 or WAV, its length) is
intake.core.announcements'; the voice webhooks play it (voice/recordings.py).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from intake.core import announcements
from intake.core.clock import now as clock_now
from intake.core.db import get_session
from intake.core.deskstore import current_desk
from intake.core.errors import NoDeskError, RecordingRefused
from intake.core.texts import render
from intake.shell.auth import coordinator_required, login_required
from intake.shell.dashboard import bp
from intake.shell.dashboard.users import LANGUAGE_NAMES
from routing.desk import LANGUAGES, Desk
from routing.languages import base_language

# Room for the form's other fields around the largest recording.
MAX_REQUEST_BYTES = announcements.MAX_BYTES + 64 * 1024

SLOT_LABELS = {
    "greeting": lazy_gettext("Welcome, while the call is put through"),
    "queue_intro": lazy_gettext("Everyone is on a call: the caller waits"),
    "queue_too_long": lazy_gettext("Waited too long, before the voicemail"),
    "unavailable": lazy_gettext("Nobody could answer: leave a message"),
    "closed": lazy_gettext("Closed, with when the desk opens again"),
    "closed_no_next": lazy_gettext("Closed, no next opening known"),
    "closure": lazy_gettext("Closed for a closure day"),
    "voicemail_thanks": lazy_gettext("Thanks after a message"),
    "no_message": lazy_gettext("No message was left"),
    announcements.MUSIC: lazy_gettext("Music while waiting"),
}
# The texts that name something a recording cannot know.
CHANGING_PARTS = {
    "closed": lazy_gettext("The spoken text says when the desk opens again: say your hours."),
    "closure": lazy_gettext("The spoken text names the closure and when the desk opens again."),
}


def _(text: str, **variables: Any) -> str:
    return str(gettext(text, **variables))


def _refusal(refused: RecordingRefused) -> str:
    """Why the upload or removal was refused, in the user's language."""
    return _reason(refused.reason) or str(refused)


def _reason(reason: str) -> str:
    reasons = {
        "empty": _("the file is empty"),
        "too_large": _(
            "the file is larger than %(mb)d MB", mb=announcements.MAX_BYTES // (1024 * 1024)
        ),
        "not_audio": _("it is not an MP3 or WAV recording"),
        "too_short": _("the recording is shorter than half a second"),
        "too_long": _(
            "the recording is longer than %(n)d minutes",
            n=int(announcements.MAX_SECONDS // 60),
        ),
        "unknown_slot": _("there is no such text"),
        "unknown_language": _("there is no such language"),
    }
    return reasons.get(reason, "")


def _spoken(desk: Desk, slot: str, language: str) -> str:
    """The text callers hear without a recording, its changing parts named, not filled in."""
    if slot == announcements.MUSIC:
        return ""
    return render(
        desk,
        slot,
        language=language,
        organisation=desk.lines[0].organisation if desk.lines else desk.name,
        next_opening=_("[when the desk opens again]"),
        closure_name=_("[the closure]"),
    )


@bp.get("/recordings")
@login_required
@coordinator_required
def announcements_page() -> str:
    session = get_session()
    try:
        desk = current_desk(session)
    except NoDeskError:
        return render_template("no_desk.html")
    spoken = base_language(desk.language)
    languages = [spoken, *(language for language in LANGUAGES if language != spoken)]
    return render_template(
        "announcements.html",
        desk=desk,
        languages=languages,
        language_names=LANGUAGE_NAMES,
        spoken_language=spoken,
        slots=announcements.SPOKEN_SLOTS,
        music=announcements.MUSIC,
        labels=SLOT_LABELS,
        changing=CHANGING_PARTS,
        spoken=lambda slot, language: _spoken(desk, slot, language),
        current=announcements.current(session),
        max_mb=announcements.MAX_BYTES // (1024 * 1024),
        max_minutes=int(announcements.MAX_SECONDS // 60),
    )


def _back(slot: str, language: str) -> BaseResponse:
    # The row's id on the page (the music's has no language: "queue_music-").
    return redirect(url_for("dashboard.announcements_page", _anchor=f"{slot}-{language}"))


def _slot_asked() -> tuple[str, str, str]:
    """The slot and language the form names, and the slot's label for the message after."""
    slot = request.form.get("slot", "")
    return slot, request.form.get("language", ""), str(SLOT_LABELS.get(slot, slot))


@bp.post("/recordings")
@login_required
@coordinator_required
def upload_announcement() -> BaseResponse:
    slot, language, label = _slot_asked()
    if (request.content_length or 0) > MAX_REQUEST_BYTES:
        flash(_("Not saved: %(reason)s.", reason=_reason("too_large")), "error")
        return _back(slot, language)
    upload = request.files.get("recording")
    if upload is None or not upload.filename:
        flash(_("Choose a recording to upload for “%(what)s”.", what=label), "error")
        return _back(slot, language)
    data = upload.stream.read(announcements.MAX_BYTES + 1)
    session = get_session()
    try:
        announcements.store(
            session,
            slot=slot,
            language=language,
            data=data,
            filename=upload.filename,
            by=current_user.email,
            at=clock_now(),
        )
    except RecordingRefused as refused:
        session.rollback()
        flash(
            _(
                "%(file)s was not saved for “%(what)s”: %(reason)s.",
                file=upload.filename,
                what=label,
                reason=_refusal(refused),
            ),
            "error",
        )
        return _back(slot, language)
    session.commit()
    flash(_("Saved: callers now hear your recording for “%(what)s”.", what=label), "info")
    return _back(slot, language)


@bp.post("/recordings/remove")
@login_required
@coordinator_required
def remove_announcement() -> BaseResponse:
    slot, language, label = _slot_asked()
    session = get_session()
    try:
        removed = announcements.remove(
            session, slot=slot, language=language, by=current_user.email, at=clock_now()
        )
    except RecordingRefused as refused:
        flash(_("Nothing was removed: %(reason)s.", reason=_refusal(refused)), "error")
        return _back(slot, language)
    session.commit()
    if removed:
        flash(_("Removed: callers hear the spoken text for “%(what)s” again.", what=label), "info")
    else:
        flash(_("There was no recording for “%(what)s”: nothing was removed.", what=label), "info")
    return _back(slot, language)
