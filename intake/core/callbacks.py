"""Calling a patient back through the helpline: the record of each attempt, and its steps
on the contact's timeline.

A callback rings the colleague first (Twilio's REST API, voice/callbacks.py), tells them
which patient it is for, and on their 1 rings the patient showing the line's number. Its
life, decided by the database:

    ringing-colleague --1 pressed--> ringing-patient --> answered | patient-busy
         |                                               | patient-no-answer | patient-failed
         +--> refused (Twilio said no) | colleague-no-answer | colleague-declined | lost

- at most one callback per contact is under way: a partial unique index on the contact
  where `ended_at IS NULL`, so two colleagues pressing at once place one call;
- each move is a conditional UPDATE on the row as it is expected to be, and its timeline
  step has a key, so Twilio repeating a request moves nothing twice;
- a callback whose end was never reported stops blocking the contact after UNDER_WAY_FOR
  ("lost").

The contact's outcome is not changed: calling back is work on a contact, and the colleague
marks it handled when it is.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from intake.core.lifecycle import add_event
from intake.core.models import Callback, Contact

UNDER_WAY_FOR = timedelta(minutes=30)

RINGING_COLLEAGUE = "ringing-colleague"
RINGING_PATIENT = "ringing-patient"
ANSWERED = "answered"
# What each of Twilio's final DialCallStatus values means for the patient's leg, and each
# CallStatus for the colleague's leg when it ends before the patient was rung.
PATIENT_ENDS = {
    "completed": ANSWERED,
    "answered": ANSWERED,
    "busy": "patient-busy",
    "no-answer": "patient-no-answer",
    "failed": "patient-failed",
    "canceled": "patient-no-answer",
}
COLLEAGUE_ENDS = {
    "busy": "colleague-no-answer",
    "no-answer": "colleague-no-answer",
    "failed": "colleague-no-answer",
    "canceled": "colleague-no-answer",
    "completed": "colleague-declined",  # answered, but never pressed 1
}


class CallbackUnderWay(Exception):
    """Another callback for this contact is under way: who pressed it, and when."""

    def __init__(self, callback: Callback) -> None:
        super().__init__(f"callback {callback.id} is under way")
        self.callback = callback


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _step(session: Session, callback: Callback, stage: str, at: datetime, **detail: Any) -> None:
    contact = session.get(Contact, callback.contact_id)
    if contact is not None:
        key = f"callback:{callback.id}:{stage}"
        add_event(
            session, contact, "callback", at, key=key, stage=stage, staff=callback.staff, **detail
        )


def under_way(session: Session, contact_id: int) -> Callback | None:
    row: Callback | None = session.scalars(
        select(Callback).where(Callback.contact_id == contact_id, Callback.ended_at.is_(None))
    ).first()
    return row


def start(session: Session, contact: Contact, *, staff: str, by: str, now: datetime) -> Callback:
    """Record a new callback before any call is placed; CallbackUnderWay when another
    one for this contact is (the unique index decides, not a read)."""
    session.execute(
        update(Callback)
        .where(
            Callback.contact_id == contact.id,
            Callback.ended_at.is_(None),
            Callback.requested_at < now - UNDER_WAY_FOR,
        )
        .values(ended_at=now, status="lost")
    )
    row = Callback(
        contact_id=contact.id,
        staff=staff,
        requested_by=by,
        requested_at=now,
        status=RINGING_COLLEAGUE,
        reason="",
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        other = under_way(session, contact.id)
        if other is None:  # ended between the two statements: try once more is not needed
            raise
        raise CallbackUnderWay(other) from None
    _step(session, row, "requested", now, by=by)
    return row


def placed(session: Session, callback: Callback, call_sid: str) -> None:
    """Twilio accepted the call to the colleague: its CallSid finds the callback again."""
    session.execute(update(Callback).where(Callback.id == callback.id).values(call_sid=call_sid))


def refused(session: Session, callback: Callback, now: datetime, reason: str) -> bool:
    """Twilio would not place the call (a wrong number, a blocked account, ...)."""
    return finish(session, callback, "refused", now, reason=reason)


def ringing_patient(session: Session, callback: Callback, now: datetime) -> bool:
    """The colleague pressed 1: the patient's phone is rung now."""
    result = session.execute(
        update(Callback)
        .where(
            Callback.id == callback.id,
            Callback.ended_at.is_(None),
            Callback.status == RINGING_COLLEAGUE,
        )
        .values(status=RINGING_PATIENT)
    )
    if _rowcount(result) != 1:
        return False
    _step(session, callback, RINGING_PATIENT, now)
    return True


def finish(
    session: Session,
    callback: Callback,
    status: str,
    now: datetime,
    *,
    seconds: int | None = None,
    reason: str = "",
    only_from: str | None = None,
) -> bool:
    """End the callback as `status`, once; `only_from` ends it only from that status."""
    conditions = [Callback.id == callback.id, Callback.ended_at.is_(None)]
    if only_from is not None:
        conditions.append(Callback.status == only_from)
    result = session.execute(
        update(Callback).where(*conditions).values(ended_at=now, status=status, reason=reason)
    )
    if _rowcount(result) != 1:
        return False
    detail: dict[str, Any] = {"reason": reason} if reason else {}
    if seconds is not None:
        detail["seconds"] = seconds
    _step(session, callback, status, now, **detail)
    return True


def patient_leg_ended(
    session: Session, callback: Callback, dial_status: str, seconds: int | None, now: datetime
) -> bool:
    status = PATIENT_ENDS.get(dial_status, "patient-failed")
    return finish(session, callback, status, now, seconds=seconds)


def colleague_leg_ended(
    session: Session, callback: Callback, call_status: str, now: datetime
) -> bool:
    """The colleague's call is over. Only a callback still ringing the colleague ends here:
    once the patient was rung, the patient's leg says how it went."""
    status = COLLEAGUE_ENDS.get(call_status)
    if status is None:
        return False
    if finish(session, callback, status, now, only_from=RINGING_COLLEAGUE):
        return True
    # Over while the patient's phone still rang, with no word from that leg: the colleague
    # hung up first (Twilio asks the <Dial> action first when the patient's leg ends).
    return finish(session, callback, "colleague-hung-up", now, only_from=RINGING_PATIENT)


def by_call_sid(session: Session, call_sid: str) -> Callback | None:
    row: Callback | None = session.scalars(
        select(Callback).where(Callback.call_sid == call_sid)
    ).first()
    return row
