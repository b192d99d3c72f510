"""A move is judged on the contact as the database holds it, not as the request read it.

Two requests about one contact (Twilio's callbacks, two workers, two colleagues) each read
it, then move it. Each row here plays the interleaving that loses an update when a move is
checked in Python: the slower request reads the contact, a quicker one makes its move and
commits, and only then does the slower one make its own move, on what it read before. The
outcome afterwards is what the two moves give one after the other, in the order the
database saw them; the move that lost says so (False, or refused) and writes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from intake.core import lifecycle
from intake.core.db import database
from intake.core.errors import TransitionNotAllowed
from intake.core.lifecycle import Channel, Outcome
from intake.core.models import Contact

from .lifecycle_moves import AT, MOVES, RECORDING_URL, STAFF, make, state

REFUSED = "refused"
MOVES_TOO = {
    **MOVES,
    "accepted by bram": lambda s, c: lifecycle.call_accepted(s, c, AT, staff="bram"),
    "marked handled by bram": lambda s, c: lifecycle.marked_handled(
        s, c, AT, by="bram@example.org", topic="Anders", note="Bram was eerder"
    ),
    "voicemail RE2 recorded": lambda s, c: lifecycle.voicemail_recorded(
        s, c, AT, sid="RE2", status="completed", seconds=30, url=RECORDING_URL + "2"
    ),
}
CALL, MAIL = Channel.CALL, Channel.MAIL
S = Outcome


@pytest.mark.parametrize(
    ("channel", "before", "fields", "quicker", "slower", "result", "after", "then"),
    [
        # Two colleagues press 1: the first keeps the call, the log names only them.
        (CALL, S.IN_PROGRESS, {}, "accepted by bram", "accepted by anna", False, S.ANSWERED,
         {"answered_by": "bram", "accepted": ["accepted:bram"]}),
        # Pressing 1 after the voicemail was recorded: the voicemail stays.
        (CALL, S.IN_PROGRESS, {}, "voicemail recorded", "accepted by anna", REFUSED, S.VOICEMAIL,
         {"answered_by": None, "accepted": []}),
        # The voicemail and the end of the call reported at once: a voicemail, not missed.
        (CALL, S.IN_PROGRESS, {}, "voicemail recorded", "ended", True, S.VOICEMAIL,
         {"recording_sid": "RE1", "duration_seconds": 42}),
        (CALL, S.IN_PROGRESS, {}, "ended", "voicemail recorded", True, S.VOICEMAIL,
         {"recording_sid": "RE1", "duration_seconds": 42}),
        # The same recording reported twice at once: colleagues are told once.
        (CALL, S.IN_PROGRESS, {}, "voicemail recorded", "voicemail recorded", False, S.VOICEMAIL,
         {"recording_sid": "RE1"}),
        # A second recording does not replace the first.
        (CALL, S.IN_PROGRESS, {}, "voicemail RE2 recorded", "voicemail recorded", False,
         S.VOICEMAIL, {"recording_sid": "RE2"}),
        # The fallback number answering and the end of the call, either way round.
        (CALL, S.IN_PROGRESS, {}, "answered at the fallback", "ended", True, S.FALLBACK, {}),
        (CALL, S.IN_PROGRESS, {}, "ended", "answered at the fallback", False, S.MISSED, {}),
        # The answer undone (the caller was never put through), then the end: missed.
        (CALL, S.ANSWERED, {"answered_by": "anna"}, "not bridged", "ended", True, S.MISSED,
         {"answered_by": None}),
        # Accepted while the dial ended without a bridge: that answer is undone.
        (CALL, S.IN_PROGRESS, {}, "accepted by anna", "not bridged", True, S.IN_PROGRESS,
         {"answered_by": None}),
        # Mail: forwarded meanwhile, then acknowledged: it stays forwarded.
        (MAIL, S.RECEIVED, {}, "forwarded to bram", "acknowledged", True, S.FORWARDED,
         {"forwarded_to": "bram"}),
        # Two workers releasing the same held mail: one takes it.
        (MAIL, S.ACKNOWLEDGED, {"forward_pending": True}, "hold released", "hold released",
         False, S.ACKNOWLEDGED, {"forward_pending": False}),
        (MAIL, S.RECEIVED, {}, "held", "held", False, S.RECEIVED, {"forward_pending": True}),
        (MAIL, S.RECEIVED, {}, "needs attention", "needs attention", False, S.RECEIVED,
         {"needs_attention": True}),
        # Two colleagues mark it handled: the first one's record stands.
        (MAIL, S.RECEIVED, {}, "marked handled by bram", "marked handled", REFUSED, S.RECEIVED,
         {"handled_by": "bram@example.org", "note": "Bram was eerder", "handled": 1}),
        (MAIL, S.RECEIVED, {"handled_at": AT, "handled_by": STAFF}, "reopened", "reopened",
         False, S.RECEIVED, {"handled_at": None, "reopened": 1}),
    ],
)  # fmt: skip
def test_a_move_is_judged_on_what_a_quicker_request_committed(
    app: Flask,
    channel: str,
    before: str,
    fields: dict[str, Any],
    quicker: str,
    slower: str,
    result: object,
    after: str,
    then: dict[str, Any],
) -> None:
    contact_id = make(app, channel, before, **fields)
    with database(app).session() as session:
        read_first = session.get(Contact, contact_id)  # the slower request reads first
        assert read_first is not None
        with database(app).session() as other:
            quick = other.get(Contact, contact_id)
            assert quick is not None
            MOVES_TOO[quicker](other, quick)
            other.commit()
        if result == REFUSED:
            with pytest.raises(TransitionNotAllowed):
                MOVES_TOO[slower](session, read_first)
        else:
            assert MOVES_TOO[slower](session, read_first) == result
        # The slower request's object now holds what the database holds.
        assert read_first.outcome == after
        session.commit()

    row, timeline = state(app, contact_id)
    assert row["outcome"] == after
    events: dict[str, list[str | None]] = {}
    for kind, key, _detail in timeline:
        events.setdefault(kind, []).append(key)
    for name, expected in then.items():
        if name == "accepted":
            assert events.get("accepted", []) == expected
        elif name in ("handled", "reopened"):
            assert len(events.get(name, [])) == expected
        else:
            assert row[name] == expected, name
