"""The Now page's board: how long each item has waited, and "I'll call back" (ik bel terug).

A colleague takes an item so no two call one patient back: the board names them and since
when; taking an item someone else holds asks first; giving it back, marking it handled or
the hold time running out puts it back on the pile. Staff and coordinators alike take items.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import ContactTaken, User
from routing.desk import Desk

from .auth import STAFF, AuthActions, csrf_token
from .factories import add_contact

BRAM = "bram@example.org"  # Bram Jansen in the example desk
OUTSIDER = "invalkracht@example.org"  # a login who is not on the desk's staff list


def ref(contact_id: int) -> str:
    return f"HD-{contact_id:06d}"


def text(response: object) -> str:
    """The page as a person reads it: tags dropped, entities decoded, spaces folded."""
    body = response.get_data(as_text=True)  # type: ignore[attr-defined]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def row_of(client: FlaskClient, contact_id: int, path: str = "/") -> str:
    """The text of the contact's row on the board."""
    page = client.get(path).get_data(as_text=True)
    for row in re.findall(r"<tr>.*?</tr>", page, flags=re.S):
        if f">{ref(contact_id)}</a>" in row:
            return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
    raise AssertionError(f"{ref(contact_id)} is not on the board")


def take(client: FlaskClient, contact_id: int, *, take_over: bool = False) -> object:
    data = {"csrf_token": csrf_token(client, "/")}
    if take_over:
        data["take_over"] = "1"
    return client.post(f"/now/take/{contact_id}", data=data)


def release(client: FlaskClient, contact_id: int) -> object:
    return client.post(f"/now/release/{contact_id}", data={"csrf_token": csrf_token(client, "/")})


def holder(app: Flask, contact_id: int) -> tuple[str, str] | None:
    """Who holds the item in the database, and since when (HH:MM UTC); None when nobody."""
    with database(app).session() as session:
        row = session.execute(
            select(User.email, ContactTaken.taken_at)
            .join(User, User.id == ContactTaken.taken_by_id)
            .where(ContactTaken.contact_id == contact_id)
        ).first()
    return None if row is None else (row.email, row.taken_at.strftime("%H:%M"))


def test_the_board_says_how_long_each_item_has_waited(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    minutes = add_contact(app, outcome="voicemail", started_at=clock() - timedelta(minutes=12))
    hours = add_contact(app, outcome="missed", started_at=clock() - timedelta(hours=3))
    days = add_contact(
        app, channel="mail", outcome="received", started_at=clock() - timedelta(days=2)
    )
    client = auth.login()

    assert "waiting 12 minutes" in row_of(client, minutes)
    assert "waiting 3 hours" in row_of(client, hours)
    assert "waiting 2 days" in row_of(client, days)


def test_the_board_speaks_dutch_to_a_dutch_colleague(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    contact_id = add_contact(app, outcome="voicemail", started_at=clock() - timedelta(minutes=12))
    anna = auth.login(language="nl")
    bram = auth.login(BRAM, language="nl", client=app.test_client())

    assert "wacht 12 minuten" in row_of(anna, contact_id)
    assert "Ik bel terug" in row_of(anna, contact_id)
    take(anna, contact_id)
    assert "Anna de Vries · sinds 10:15" in row_of(bram, contact_id)
    assert "Geef terug" in row_of(anna, contact_id)
    asked = take(bram, contact_id)
    assert (
        f"Anna de Vries belt {ref(contact_id)} al terug (sinds 10:15). Wil je het toch overnemen?"
        in text(asked)
    )


def test_taking_an_item_names_who_calls_back_and_since_when(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    contact_id = add_contact(app, outcome="voicemail", started_at=clock() - timedelta(minutes=5))
    anna = auth.login()
    bram = auth.login(BRAM, client=app.test_client())
    assert "I'll call back" in row_of(anna, contact_id)

    response = take(anna, contact_id)

    assert response.status_code == 302  # type: ignore[attr-defined]
    assert holder(app, contact_id) == (STAFF, "09:15")  # 10:15 in Amsterdam
    assert f"You are calling {ref(contact_id)} back." in text(anna.get("/"))
    assert "Anna de Vries · since 10:15" in row_of(anna, contact_id)
    assert "Give back" in row_of(anna, contact_id)
    assert "Anna de Vries · since 10:15" in row_of(bram, contact_id)
    assert "Give back" not in row_of(bram, contact_id)


def test_a_colleague_not_on_the_staff_list_is_named_by_their_address(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, outcome="missed")
    outsider = auth.login(OUTSIDER)

    take(outsider, contact_id)

    assert "invalkracht · since 10:15" in row_of(outsider, contact_id)


def test_giving_an_item_back_puts_it_on_the_pile(app: Flask, desk: Desk, auth: AuthActions) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    anna = auth.login()
    bram = auth.login(BRAM, client=app.test_client())
    take(anna, contact_id)

    assert release(bram, contact_id).status_code == 302  # type: ignore[attr-defined]
    assert holder(app, contact_id) == (STAFF, "09:15")  # only the holder gives it back
    assert f"You were not calling {ref(contact_id)} back." in text(bram.get("/"))

    assert release(anna, contact_id).status_code == 302  # type: ignore[attr-defined]

    assert holder(app, contact_id) is None
    assert f"{ref(contact_id)} is back on the pile." in text(anna.get("/"))
    assert "since" not in row_of(bram, contact_id)
    assert "I'll call back" in row_of(anna, contact_id)


def test_taking_an_item_a_colleague_holds_asks_first_then_takes_it_over(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    contact_id = add_contact(app, outcome="missed")
    anna = auth.login()
    # A coordinator takes items as staff do.
    bram = auth.login(BRAM, role="coordinator", client=app.test_client())
    take(anna, contact_id)
    clock.advance(5 * 60)

    asked = take(bram, contact_id)

    assert asked.status_code == 409  # type: ignore[attr-defined]
    assert (
        f"Anna de Vries is already calling {ref(contact_id)} back (since 10:15). "
        "Take it over anyway?" in text(asked)
    )
    assert 'name="take_over" value="1"' in asked.get_data(as_text=True)  # type: ignore[attr-defined]
    assert holder(app, contact_id) == (STAFF, "09:15")  # nothing moved before the answer

    confirmed = take(bram, contact_id, take_over=True)

    assert confirmed.status_code == 302  # type: ignore[attr-defined]
    assert holder(app, contact_id) == (BRAM, "09:20")
    assert "Bram Jansen · since 10:20" in row_of(anna, contact_id)
    assert "Give back" in row_of(bram, contact_id)


def test_an_item_handled_meanwhile_cannot_be_taken(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    anna = auth.login()
    bram = auth.login(BRAM, client=app.test_client())
    handled = bram.post(
        f"/contacts/{contact_id}/handled",
        data={
            "action": "handled",
            "topic": "Anders",
            "note": "teruggebeld",
            "csrf_token": csrf_token(bram, f"/contacts/{contact_id}"),
        },
    )
    assert handled.status_code == 302

    for take_over in (False, True):
        response = take(anna, contact_id, take_over=take_over)

        assert response.status_code == 302  # type: ignore[attr-defined]
        assert holder(app, contact_id) is None
        assert f"{ref(contact_id)} was already handled by {BRAM}: nothing to call back." in text(
            anna.get("/")
        )


def test_marking_a_taken_item_handled_ends_the_hold(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    anna = auth.login()
    take(anna, contact_id)
    anna.post(
        f"/contacts/{contact_id}/handled",
        data={
            "action": "handled",
            "topic": "Anders",
            "note": "teruggebeld",
            "csrf_token": csrf_token(anna, f"/contacts/{contact_id}"),
        },
    )
    assert holder(app, contact_id) is None

    # Re-opened, it is back on the board for anyone, not still Anna's.
    anna.post(
        f"/contacts/{contact_id}/handled",
        data={"action": "reopen", "csrf_token": csrf_token(anna, f"/contacts/{contact_id}")},
    )
    assert "since" not in row_of(anna, contact_id)


def test_a_taken_item_returns_to_the_pile_after_the_hold_time(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    anna = auth.login()
    bram = auth.login(BRAM, client=app.test_client())
    take(anna, contact_id)

    clock.advance(29 * 60)  # the default hold is 30 minutes
    assert "Anna de Vries · since 10:15" in row_of(bram, contact_id)
    assert take(bram, contact_id).status_code == 409  # type: ignore[attr-defined]

    clock.advance(2 * 60)
    assert "since" not in row_of(bram, contact_id)
    assert take(bram, contact_id).status_code == 302  # type: ignore[attr-defined]
    assert holder(app, contact_id) == (BRAM, "09:46")


def test_the_hold_time_is_a_setting(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    app.config["TAKE_MINUTES"] = 5
    contact_id = add_contact(app, outcome="voicemail")
    anna = auth.login()
    bram = auth.login(BRAM, client=app.test_client())
    take(anna, contact_id)

    clock.advance(6 * 60)

    assert "since" not in row_of(bram, contact_id)
    assert take(bram, contact_id).status_code == 302  # type: ignore[attr-defined]


def test_the_board_alone_is_served_for_the_page_to_refresh_and_never_cached(
    app: Flask, desk: Desk, auth: AuthActions, clock: SimClock
) -> None:
    anna = auth.login()
    assert 'data-url="/now/board"' in anna.get("/").get_data(as_text=True)
    contact_id = add_contact(app, outcome="missed", started_at=clock() - timedelta(minutes=3))
    take(anna, contact_id)
    clock.advance(60)

    board = anna.get("/now/board")

    assert board.status_code == 200
    assert board.headers["Cache-Control"] == "no-store"
    body = board.get_data(as_text=True)
    assert body.lstrip().startswith('<section class="waiting">')
    assert "<header>" not in body and "<html" not in body
    assert "waiting 4 minutes" in row_of(anna, contact_id, "/now/board")
    assert "Anna de Vries · since 10:15" in row_of(anna, contact_id, "/now/board")
    assert "Not updated since 10:16" in text(board)  # shown by board.js when a fetch fails


def test_the_board_and_taking_need_a_login(app: Flask, desk: Desk) -> None:
    client = app.test_client()
    contact_id = add_contact(app, outcome="missed")

    assert client.get("/now/board").status_code == 302
    assert client.post(f"/now/take/{contact_id}").status_code in (302, 400)
    assert holder(app, contact_id) is None
