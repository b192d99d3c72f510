"""A contact's life: every transition from the states it is allowed in, and the moves refused.

Each row of the tables puts a contact in a state in the database, makes one move, and reads
back the outcome and the timeline. A refused move raises before anything is written: the
row and its timeline are the same afterwards, even once the session is committed.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from intake.core import lifecycle
from intake.core.db import database
from intake.core.errors import IntakeError, TransitionNotAllowed
from intake.core.lifecycle import Channel, Outcome
from intake.core.models import Contact
from routing.desk import Desk
from voice.simulator import new_sid

from .conftest import Twilio, contacts
from .lifecycle_moves import AT, MOVES, RECORDING_URL, STAFF, START, make, state
from .twiml import only

# States a contact is put in, beyond its channel and outcome.
HANDLED = {"handled_at": START, "handled_by": "bram@example.org"}
BY_ANNA, BY_BRAM = {"answered_by": "anna"}, {"answered_by": "bram"}
ENDED = {"ended_at": START}
RECORDED = {"recording_sid": "RE1"}
HELD = {"forward_pending": True}
# Events a move writes: (kind, key).
ACCEPTED = ("accepted", "accepted:anna")
RECORDING = ("recording", "recording:RE1:completed")
PROCESSING = ("recording", "recording:RE1:in-progress")
STATUS = ("status", "status:completed:3")


def apply(app: Flask, contact_id: int, move: str) -> object:
    with database(app).session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        result = MOVES[move](session, contact)
        session.commit()
        return result


def test_the_stored_words_are_the_enumerations_values() -> None:
    """No migration: the values are exactly what the database already holds."""
    assert [str(c) for c in Channel] == ["call", "mail", "walk-in"]
    assert [str(o) for o in Outcome] == [
        "in-progress",
        "answered",
        "fallback",
        "missed",
        "voicemail",
        "received",
        "forwarded",
        "acknowledged",
        "automatic",
        "handled",
    ]
    assert issubclass(TransitionNotAllowed, IntakeError)


CALL, MAIL, WALK_IN = Channel.CALL, Channel.MAIL, Channel.WALK_IN
S = Outcome  # the states, short, for the tables


@pytest.mark.parametrize(
    ("channel", "before", "fields", "move", "result", "after", "event"),
    [
        # A call.
        (CALL, S.IN_PROGRESS, {}, "accepted by anna", True, S.ANSWERED, ACCEPTED),
        (CALL, S.ANSWERED, BY_ANNA, "accepted by anna", True, S.ANSWERED, ACCEPTED),
        (CALL, S.ANSWERED, BY_BRAM, "accepted by anna", False, S.ANSWERED, None),
        (CALL, S.ANSWERED, BY_ANNA, "not bridged", True, S.IN_PROGRESS, None),
        (CALL, S.IN_PROGRESS, {}, "not bridged", False, S.IN_PROGRESS, None),
        (CALL, S.IN_PROGRESS, {}, "answered at the fallback", True, S.FALLBACK, None),
        (CALL, S.FALLBACK, {}, "answered at the fallback", False, S.FALLBACK, None),
        (CALL, S.MISSED, ENDED, "answered at the fallback", False, S.MISSED, None),
        (CALL, S.IN_PROGRESS, {}, "ended", True, S.MISSED, None),
        (CALL, S.ANSWERED, BY_ANNA, "ended", True, S.ANSWERED, None),
        (CALL, S.VOICEMAIL, {}, "ended", True, S.VOICEMAIL, None),
        (CALL, S.IN_PROGRESS, {}, "status completed", True, S.IN_PROGRESS, STATUS),
        (CALL, S.IN_PROGRESS, {}, "voicemail recorded", True, S.VOICEMAIL, RECORDING),
        (CALL, S.MISSED, ENDED, "voicemail recorded", True, S.VOICEMAIL, RECORDING),
        # A recording reported for an answered call keeps "answered".
        (CALL, S.ANSWERED, BY_ANNA, "voicemail recorded", True, S.ANSWERED, RECORDING),
        (CALL, S.VOICEMAIL, RECORDED, "voicemail recorded", False, S.VOICEMAIL, RECORDING),
        (CALL, S.IN_PROGRESS, {}, "recording processing", False, S.IN_PROGRESS, PROCESSING),
        # Mail.
        (MAIL, S.RECEIVED, {}, "forwarded to bram", True, S.FORWARDED, ("forwarded", None)),
        (MAIL, S.ACKNOWLEDGED, HELD, "forwarded to bram", True, S.FORWARDED, ("forwarded", None)),
        (MAIL, S.AUTOMATIC, {}, "forwarded to bram", True, S.AUTOMATIC, ("forwarded", None)),
        # A colleague's reply to the notice of a voicemail joins that call.
        (CALL, S.VOICEMAIL, {}, "forwarded to bram", True, S.VOICEMAIL, ("forwarded", None)),
        (MAIL, S.RECEIVED, {}, "acknowledged", True, S.ACKNOWLEDGED, ("acknowledged", None)),
        (MAIL, S.FORWARDED, {}, "acknowledged", True, S.FORWARDED, ("acknowledged", None)),
        (MAIL, S.RECEIVED, {}, "held", True, S.RECEIVED, None),
        (MAIL, S.ACKNOWLEDGED, HELD, "held", False, S.ACKNOWLEDGED, None),
        (MAIL, S.ACKNOWLEDGED, HELD, "hold released", True, S.ACKNOWLEDGED, None),
        (MAIL, S.FORWARDED, {}, "follow-up", True, S.FORWARDED, ("follow-up", None)),
        (MAIL, S.RECEIVED, {}, "needs attention", True, S.RECEIVED, None),
        (MAIL, S.RECEIVED, {"needs_attention": True}, "needs attention", False, S.RECEIVED, None),
        # The desk.
        (MAIL, S.FORWARDED, {}, "marked handled", None, S.FORWARDED, ("handled", None)),
        (CALL, S.MISSED, {}, "marked handled", None, S.MISSED, ("handled", None)),
        (WALK_IN, S.HANDLED, HANDLED, "reopened", True, S.HANDLED, ("reopened", None)),
        (MAIL, S.RECEIVED, {}, "reopened", False, S.RECEIVED, None),
    ],
)
def test_each_transition_from_the_states_that_allow_it(
    app: Flask,
    channel: str,
    before: str,
    fields: dict[str, Any],
    move: str,
    result: object,
    after: str,
    event: tuple[str, str | None] | None,
) -> None:
    contact_id = make(app, channel, before, **fields)
    _, timeline_before = state(app, contact_id)

    assert apply(app, contact_id, move) == result

    row, timeline = state(app, contact_id)
    assert row["outcome"] == after
    added = [(kind, key) for kind, key, _detail in timeline[len(timeline_before) :]]
    assert added == ([event] if event else [])


@pytest.mark.parametrize(
    ("channel", "before", "fields", "move"),
    [
        # Answered after the call already ended in a voicemail, missed or at the fallback.
        (CALL, S.VOICEMAIL, RECORDED, "accepted by anna"),
        (CALL, S.MISSED, ENDED, "accepted by anna"),
        (CALL, S.FALLBACK, {}, "accepted by anna"),
        (CALL, S.ANSWERED, BY_ANNA, "answered at the fallback"),
        (CALL, S.VOICEMAIL, RECORDED, "answered at the fallback"),
        # A call's moves on a mail or a walk-in.
        (MAIL, S.RECEIVED, {}, "accepted by anna"),
        (MAIL, S.RECEIVED, {}, "ended"),
        (MAIL, S.RECEIVED, {}, "status completed"),
        (WALK_IN, S.HANDLED, HANDLED, "voicemail recorded"),
        (MAIL, S.RECEIVED, {}, "not bridged"),
        # Mail's moves on a walk-in, handled on the spot.
        (WALK_IN, S.HANDLED, HANDLED, "forwarded to bram"),
        (WALK_IN, S.HANDLED, HANDLED, "acknowledged"),
        (WALK_IN, S.HANDLED, HANDLED, "held"),
        (WALK_IN, S.HANDLED, HANDLED, "follow-up"),
        (WALK_IN, S.HANDLED, HANDLED, "needs attention"),
        # Handled twice: whoever was first, theirs stands.
        (WALK_IN, S.HANDLED, HANDLED, "marked handled"),
        (MAIL, S.FORWARDED, HANDLED, "marked handled"),
    ],
)
def test_a_move_the_state_does_not_allow_is_refused_and_changes_nothing(
    app: Flask, channel: str, before: str, fields: dict[str, Any], move: str
) -> None:
    contact_id = make(app, channel, before, **fields)
    unchanged = state(app, contact_id)

    with database(app).session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        with pytest.raises(TransitionNotAllowed) as refused:
            MOVES[move](session, contact)
        session.commit()  # whatever the move had left pending would be written now

    assert refused.value.contact == f"HD-{contact_id:06d}"
    assert state(app, contact_id) == unchanged


def test_repeating_a_move_changes_nothing_the_second_time(app: Flask) -> None:
    """Twilio repeats its callbacks: the same report twice is the same as once."""
    contact_id = make(app, CALL, S.IN_PROGRESS)
    for move in ("accepted by anna", "status completed", "ended", "voicemail recorded"):
        apply(app, contact_id, move)
        once = state(app, contact_id)
        apply(app, contact_id, move)
        assert state(app, contact_id) == once


def test_a_mail_is_received_as_a_new_contact_with_its_event(app: Flask) -> None:
    with database(app).session() as session:
        made = [
            lifecycle.mail_received(
                session,
                via="helpdesk@example.org",
                organisation="Ziekenhuis Noord",
                caller="jan@example.nl",
                subject="Inloggen",
                message_id=f"<{n}@example.nl>",
                automatic=automatic,
                needs_attention=False,
                at=AT,
                detail={"subject": "Inloggen"},
            ).id
            for n, automatic in enumerate((False, True))
        ]
        session.commit()

    person, robot = (state(app, i) for i in made)
    assert (person[0]["channel"], person[0]["outcome"]) == ("mail", "received")
    assert robot[0]["outcome"] == "automatic"
    assert person[1] == [("mail", None, {"subject": "Inloggen"})]


def test_a_walk_in_is_a_contact_handled_on_the_spot(app: Flask) -> None:
    with database(app).session() as session:
        contact = lifecycle.walk_in_handled(
            session, organisation="Ziekenhuis Noord", by=STAFF, topic="Inloggen", note="", at=AT
        )
        session.commit()
        contact_id = contact.id

    row, timeline = state(app, contact_id)
    assert (row["channel"], row["outcome"], row["handled_by"]) == ("walk-in", "handled", STAFF)
    assert row["handled_at"] == row["ended_at"] == row["started_at"]
    assert timeline == [("walk-in", None, {"by": STAFF, "topic": "Inloggen"})]


# --- a refused move behind a webhook: still the call's own answer -------------------------


def test_pressing_1_after_the_call_went_to_voicemail_hangs_up_that_leg(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    dial = only(twilio.call(), "Dial")
    twilio.twiml(dial.attrib["action"], DialCallStatus="no-answer")
    recording = twilio.params(
        RecordingSid="RE" + "e" * 32,
        RecordingUrl=RECORDING_URL,
        RecordingDuration="9",
        RecordingStatus="completed",
    )
    assert twilio.post(twilio.url("voice.recording"), recording).status == 204

    # A colleague's leg, late: it picked up and pressed 1 after all.
    number = next(iter(dial.iter("Number")))
    leg = new_sid("CA")
    gather = only(twilio.leg(number.attrib["url"], leg), "Gather")
    answer = twilio.leg(gather.attrib["action"], leg, Digits="1")

    assert [verb.tag for verb in answer] == ["Hangup"]
    [contact] = contacts(app)
    assert contact.outcome == "voicemail"
    assert contact.answered_by is None
    assert "accepted" not in [e.kind for e in contact.events]
    assert "picked-up" in [e.kind for e in contact.events]  # the rest of the request stays


def test_a_callback_about_a_walk_in_is_acknowledged_and_changes_nothing(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    contact_id = make(app, WALK_IN, S.HANDLED, **HANDLED)
    unchanged = state(app, contact_id)

    reply = twilio.post(
        twilio.url("voice.status", contact=contact_id),
        twilio.params(CallStatus="completed", CallDuration="30"),
    )

    assert reply.status == 204
    assert state(app, contact_id) == unchanged


def test_the_fallback_answering_after_a_voicemail_ends_the_call_as_a_voicemail(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    contact_id = make(app, CALL, S.VOICEMAIL, call_sid=twilio.call_sid, **RECORDED)

    document = twilio.twiml(
        twilio.url("voice.dial_result", contact=contact_id, fallback=1),
        DialCallStatus="completed",
    )

    assert [verb.tag for verb in document] == ["Hangup"]
    row, _timeline = state(app, contact_id)
    assert row["outcome"] == "voicemail"
    assert row["ended_at"] is not None
