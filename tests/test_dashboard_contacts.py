"""The Contacts pages: the log with its filters and search, a contact's page, walk-ins."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from intake.core.clock import SimClock
from intake.core.db import database
from intake.core.models import Contact, ContactEvent, ContactView
from intake.core.search import ContactQuery, search_contacts
from routing.desk import Desk

from .auth import COORDINATOR, STAFF, AuthActions, csrf_token
from .conftest import load_desk, local
from .factories import add_contact, add_mail

SCRIPT = "<script>alert(1)</script>"
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


# --- readers ---------------------------------------------------------------------------------


def ref(contact_id: int) -> str:
    return f"HD-{contact_id:06d}"


def listed(client: FlaskClient, path: str = "/contacts", **params: str) -> list[str]:
    """The references in the Contacts table, top to bottom."""
    response = client.get(path, query_string=params)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    table = (
        html.split('<table class="contacts">', 1)[1] if '<table class="contacts">' in html else ""
    )
    return re.findall(r">(HD-\d{6})</a>", table)


def contact_row(app: Flask, contact_id: int) -> Contact:
    with database(app).session() as session:
        row = session.get(Contact, contact_id)
        assert row is not None
        return row


# --- logins -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/contacts", "/contacts/1", "/walk-in", "/contacts/1/recording"])
def test_every_contacts_page_needs_a_login(app: Flask, path: str) -> None:
    response = app.test_client().get(path)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", ["/contacts/{id}/handled", "/walk-in"])
def test_forms_need_a_login_even_with_a_valid_token(app: Flask, desk: Desk, path: str) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    client = app.test_client()
    token = csrf_token(client)

    response = client.post(
        path.format(id=contact_id),
        data={"csrf_token": token, "topic": "Anders", "organisation": "Ziekenhuis Noord"},
    )

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")
    with database(app).session() as session:
        assert session.scalars(select(Contact.handled_at)).all() == [None]


# --- the log ----------------------------------------------------------------------------------


def test_the_log_lists_contacts_newest_first(app: Flask, desk: Desk, auth: AuthActions) -> None:
    oldest = add_contact(app, started_at=local("2026-11-20 10:00"))
    newest = add_contact(app, started_at=local("2026-11-23 08:00"))
    middle = add_contact(app, started_at=local("2026-11-21 10:00"))
    client = auth.login()

    assert listed(client) == [ref(newest), ref(middle), ref(oldest)]


def test_the_log_says_how_long_contacts_are_kept(
    app: Flask, example_desk: Desk, auth: AuthActions
) -> None:
    load_desk(app, dataclasses.replace(example_desk, retention_days=90))
    client = auth.login()

    html = client.get("/contacts").get_data(as_text=True)

    assert "Contacts are kept for 90 days" in html


@pytest.fixture
def mixed_log(app: Flask, desk: Desk) -> dict[str, int]:
    """One contact of each kind the filters tell apart, by name."""
    ids = {
        "answered call": add_contact(app, started_at=local("2026-11-23 09:00")),
        "voicemail": add_contact(
            app,
            outcome="voicemail",
            caller="+31687654321",
            organisation="Zorggroep De Linde",
            started_at=local("2026-11-22 23:30"),  # late Sunday evening, Amsterdam time
        ),
        "mail": add_contact(
            app,
            channel="mail",
            outcome="forwarded",
            caller="jan.jansen@example.net",
            subject="Inloggen lukt niet",
            started_at=local("2026-11-21 10:00"),
            handled_at=local("2026-11-21 11:00"),
            handled_by=STAFF,
        ),
        "walk-in": add_contact(
            app,
            channel="walk-in",
            outcome="handled",
            caller="",
            organisation="Oude Kliniek",  # no longer one of the desk's, still in the log
            started_at=local("2026-11-20 14:00"),
            handled_at=local("2026-11-20 14:00"),
            handled_by=STAFF,
        ),
    }
    add_mail(app, ids["mail"])
    return ids


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"channel": "call"}, ["answered call", "voicemail"]),
        ({"channel": "mail"}, ["mail"]),
        ({"channel": "walk-in"}, ["walk-in"]),
        ({"organisation": "Zorggroep De Linde"}, ["voicemail"]),
        ({"organisation": "Oude Kliniek"}, ["walk-in"]),
        ({"outcome": "voicemail"}, ["voicemail"]),
        ({"outcome": "missed"}, []),
        ({"handled": "yes"}, ["mail", "walk-in"]),
        ({"handled": "no"}, ["answered call", "voicemail"]),
        # Dates are the desk's: 23:30 on Sunday in Amsterdam is 22:30 UTC, still Sunday.
        ({"from": "2026-11-22", "to": "2026-11-22"}, ["voicemail"]),
        ({"from": "2026-11-23"}, ["answered call"]),
        ({"to": "2026-11-21"}, ["mail", "walk-in"]),
        (
            {"channel": "call", "handled": "no", "organisation": "Ziekenhuis Noord"},
            ["answered call"],
        ),
        # A value that is not a filter is left out rather than matching nothing.
        ({"channel": "fax"}, ["answered call", "voicemail", "mail", "walk-in"]),
    ],
)
def test_each_filter_narrows_the_log(
    app: Flask,
    mixed_log: dict[str, int],
    params: dict[str, str],
    expected: list[str],
    auth: AuthActions,
) -> None:
    client = auth.login()

    assert listed(client, **params) == [ref(mixed_log[name]) for name in expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("06 8765 4321", ["voicemail"]),  # typed the Dutch way, stored as +31687654321
        ("+31 6 87654321", ["voicemail"]),
        ("0687", ["voicemail"]),  # part of a number
        ("jan.jansen@example.net", ["mail"]),  # the mail address
        ("JANSEN@", ["mail"]),  # part of it, any case
        ("Jan Jansen", ["mail"]),  # the sender's name
        ("inloggen", ["mail"]),  # the subject
        ("100%", []),  # LIKE's wildcards are only characters here
        ("nobody", []),
    ],
)
def test_search_finds_numbers_addresses_names_and_subjects(
    app: Flask,
    mixed_log: dict[str, int],
    text: str,
    expected: list[str],
    auth: AuthActions,
) -> None:
    client = auth.login()

    assert listed(client, q=text) == [ref(mixed_log[name]) for name in expected]


def test_search_finds_a_sender_named_only_in_a_follow_up(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, channel="mail", outcome="forwarded", caller="info@example.net")
    add_mail(app, contact_id, from_name="Pieter Post", from_address="info@example.net", uid=2)
    add_contact(app, channel="mail", outcome="forwarded", caller="other@example.net")
    client = auth.login()

    assert listed(client, q="pieter") == [ref(contact_id)]


def test_a_reference_finds_exactly_that_contact(app: Flask, desk: Desk, auth: AuthActions) -> None:
    ids = [
        add_contact(app, started_at=local("2026-11-23 09:00") - timedelta(hours=n))
        for n in range(12)
    ]
    wanted = ids[3]
    client = auth.login()

    assert listed(client, q=ref(wanted)) == [ref(wanted)]
    assert listed(client, q=ref(wanted).lower()) == [ref(wanted)]
    assert listed(client, q="HD-999999") == []


def test_search_combines_with_the_filters(
    app: Flask, mixed_log: dict[str, int], auth: AuthActions
) -> None:
    client = auth.login()

    assert listed(client, q="example.net", channel="mail") == [ref(mixed_log["mail"])]
    assert listed(client, q="example.net", channel="call") == []


def test_the_log_comes_in_pages_of_fifty_that_keep_the_filters(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    start = local("2026-11-23 09:00")
    calls = [add_contact(app, started_at=start - timedelta(minutes=n)) for n in range(120)]
    for n in range(10):  # mail in between, which the filter leaves out
        add_contact(
            app,
            channel="mail",
            caller="x@example.net",
            started_at=start - timedelta(minutes=n, seconds=30),
        )
    client = auth.login()

    first = client.get("/contacts", query_string={"channel": "call"}).get_data(as_text=True)
    assert listed(client, channel="call") == [ref(i) for i in calls[:50]]
    assert "120 contacts" in first
    next_link = re.search(r'<a rel="next" href="([^"]+)"', first)
    assert next_link is not None
    assert 'rel="prev"' not in first

    second = client.get(next_link.group(1).replace("&amp;", "&"))
    second_html = second.get_data(as_text=True)
    assert "channel=call" in next_link.group(1)
    assert re.findall(r">(HD-\d{6})</a>", second_html.split('<table class="contacts">')[1]) == [
        ref(i) for i in calls[50:100]
    ]
    assert listed(client, channel="call", page="3") == [ref(i) for i in calls[100:]]
    third = client.get("/contacts", query_string={"channel": "call", "page": "3"}).get_data(
        as_text=True
    )
    assert 'rel="next"' not in third
    previous = re.search(r'<a rel="prev" href="([^"]+)"', third)
    assert previous is not None
    assert "channel=call" in previous.group(1) and "page=2" in previous.group(1)


def test_the_count_of_a_broad_filter_stops_at_its_limit(app: Flask, desk: Desk) -> None:
    for n in range(8):
        add_contact(app, started_at=local("2026-11-23 09:00") - timedelta(minutes=n))

    with database(app).session() as session:
        page = search_contacts(session, ContactQuery(), per_page=3, count_limit=5)
        searched = search_contacts(session, ContactQuery(text="0612"), per_page=3, count_limit=5)

    assert (page.total, page.total_is_lower_bound, page.has_next) == (5, True, True)
    # A search reads every row anyway, so it counts them all.
    assert (searched.total, searched.total_is_lower_bound) == (8, False)


def test_organisations_to_filter_on_are_the_desks_and_any_seen(
    app: Flask,
    mixed_log: dict[str, int],
    auth: AuthActions,
) -> None:
    client = auth.login()

    html = client.get("/contacts").get_data(as_text=True)
    select_box = html.split('name="organisation"', 1)[1].split("</select>", 1)[0]

    options = re.findall(r'<option value="([^"]*)"', select_box)
    assert options == ["", "Ziekenhuis Noord", "Zorggroep De Linde", "Oude Kliniek"]


@pytest.mark.parametrize("value", ["23-11-2026", "2026-13-01", "0001-01-01", "9999-12-31"])
@pytest.mark.parametrize("key", ["from", "to"])
def test_a_date_that_is_no_date_is_reported_not_applied(
    app: Flask,
    mixed_log: dict[str, int],
    key: str,
    value: str,
    auth: AuthActions,
) -> None:
    client = auth.login()

    response = client.get("/contacts", query_string={key: value})

    assert response.status_code == 200
    assert f"{value} is not a date such as 2026-11-23" in response.get_data(as_text=True)
    assert len(listed(client, **{key: value})) == 4


# --- a contact's page -------------------------------------------------------------------------


def contact_page(auth: AuthActions, contact_id: int) -> str:
    """The contact's page as a colleague who just logged in sees it."""
    return auth.login().get(f"/contacts/{contact_id}").get_data(as_text=True)


def test_a_calls_page_offers_a_call_back_and_a_readable_timeline(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(
        app,
        outcome="answered",
        answered_by="anna",
        via="+31851234567",
        started_at=local("2026-11-23 09:00"),
        ended_at=local("2026-11-23 09:04"),
        duration_seconds=240,
    )
    with database(app).session() as session:
        session.add_all(
            [
                ContactEvent(
                    contact_id=contact_id,
                    at=local("2026-11-23 09:00"),
                    kind="incoming",
                    detail={"action": "dial", "reason": "open", "ringing": ["anna", "bram"]},
                ),
                ContactEvent(
                    contact_id=contact_id,
                    at=local("2026-11-23 09:00:10"),
                    kind="accepted",
                    detail={"staff": "anna"},
                ),
                ContactEvent(
                    contact_id=contact_id,
                    at=local("2026-11-23 09:04"),
                    kind="dial-ended",
                    detail={"status": "completed", "seconds": 0, "fallback": False},
                ),
            ]
        )
        session.commit()
    html = contact_page(auth, contact_id)

    assert 'href="tel:+31612345678"' in html
    assert "Ziekenhuis Noord" in html
    assert "Answered by</dt><dd>Anna de Vries" in html
    assert "Came in on</dt><dd>085 123 4567</dd>" in html
    # Sentences a colleague reads, not Twilio's words.
    assert "Call came in; ringing Anna de Vries, Bram Jansen</span>" in html
    assert "Anna de Vries answered after 10 s</span>" in html
    assert "Conversation ended after 0 s</span>" in html
    assert "completed" not in html and "dial" not in html.split('class="timeline"')[1]
    assert "4 minutes" in html


def test_a_mails_page_shows_the_text_attachments_and_problems(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(
        app,
        channel="mail",
        outcome="forwarded",
        caller="jan.jansen@example.net",
        subject="Inloggen lukt niet",
        needs_attention=True,
        forwarded_to="bram",
    )
    add_mail(
        app,
        contact_id,
        text="Regel een\nRegel twee",
        attachments=[
            {"filename": "schermafdruk.png", "content_type": "image/png", "size": 48_213},
            {"filename": "brief.pdf", "content_type": "application/pdf", "size": 512},
        ],
        problems=["the text part could not be decoded"],
        needs_attention=True,
    )
    html = contact_page(auth, contact_id)

    assert '<div class="mail-text">Regel een\nRegel twee</div>' in html  # pre-wrap: style.css
    assert ">schermafdruk.png</td>" in html and ">image/png</td>" in html
    assert "47 KB" in html and "512 bytes" in html
    assert "the text part could not be decoded" in html
    assert "Jan Jansen" in html and "&lt;jan.jansen@example.net&gt;" in html
    assert "Forwarded to</dt><dd>Bram Jansen" in html
    assert "tel:" not in html


def test_a_voicemails_page_has_a_player_from_the_recording_proxy(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(
        app,
        outcome="voicemail",
        recording_url="https://api.twilio.com/2010-04-01/Accounts/AC"
        + "1" * 32
        + "/Recordings/RE"
        + "a" * 32,
        recording_seconds=17,
    )
    html = contact_page(auth, contact_id)

    assert (
        f'<audio controls preload="none" src="/contacts/{contact_id}/recording"'
        ' data-unavailable="recording-unavailable">'
    ) in html
    # What the player says when the fetch fails, hidden until then (tested in Chromium).
    assert 'id="recording-unavailable" role="alert" hidden>' in html


@pytest.mark.parametrize(
    "field",
    ["subject", "caller", "organisation", "note", "topic"],
)
def test_a_script_from_a_patient_is_shown_as_text_on_the_contact_page(
    app: Flask,
    desk: Desk,
    field: str,
    auth: AuthActions,
) -> None:
    contact_id = add_contact(app, channel="mail", outcome="received", **{field: SCRIPT})
    html = contact_page(auth, contact_id)

    assert SCRIPT not in html
    assert ESCAPED_SCRIPT in html


def test_a_script_in_the_subject_is_text_in_the_log(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    add_contact(app, channel="mail", outcome="received", subject=SCRIPT, caller=SCRIPT)
    client = auth.login()

    html = client.get("/contacts").get_data(as_text=True)

    assert SCRIPT not in html
    assert html.count(ESCAPED_SCRIPT) == 2


def test_a_script_in_a_mail_is_text_wherever_it_appears(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, channel="mail", outcome="received", subject=SCRIPT)
    add_mail(
        app,
        contact_id,
        subject=SCRIPT,
        from_name=SCRIPT,
        from_address="x@example.net",
        text=SCRIPT,
        attachments=[{"filename": SCRIPT, "content_type": "text/html", "size": 1}],
        problems=[SCRIPT],
        needs_attention=True,
    )
    with database(app).session() as session:
        session.add(
            ContactEvent(
                contact_id=contact_id,
                at=local("2026-11-23 09:00"),
                kind="mail",
                detail={"subject": SCRIPT},
            )
        )
        session.commit()
    html = contact_page(auth, contact_id)

    assert SCRIPT not in html
    # The contact's subject in the heading, the message's subject, sender, text, attachment
    # name and problem, and the subject in the timeline.
    assert html.count(ESCAPED_SCRIPT) == 7


def test_a_missing_contact_is_not_found(app: Flask, desk: Desk, auth: AuthActions) -> None:
    client = auth.login()

    assert client.get("/contacts/424242").status_code == 404


# --- the record of views ----------------------------------------------------------------------


def test_every_view_is_recorded_and_a_coordinator_sees_the_record(
    app: Flask,
    desk: Desk,
    clock: SimClock,
    auth: AuthActions,
) -> None:
    contact_id = add_contact(app)
    staff = auth.login()
    assert staff.get(f"/contacts/{contact_id}").status_code == 200
    clock.advance(60)
    coordinator = auth.login(COORDINATOR, role="coordinator", client=app.test_client())

    html = coordinator.get(f"/contacts/{contact_id}").get_data(as_text=True)

    views = html.split('<table class="views">', 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<td[^>]*>([^<]+@example.org)</td><td[^>]*>([^<]+)</td>", views) == [
        (COORDINATOR, "23-11-2026 10:16:00"),
        (STAFF, "23-11-2026 10:15:00"),
    ]
    with database(app).session() as session:
        assert len(session.scalars(select(ContactView)).all()) == 2


def test_staff_do_not_see_who_viewed_a_contact(app: Flask, desk: Desk, auth: AuthActions) -> None:
    contact_id = add_contact(app)
    coordinator = auth.login(COORDINATOR, role="coordinator")
    coordinator.get(f"/contacts/{contact_id}")
    staff = auth.login(client=app.test_client())

    html = staff.get(f"/contacts/{contact_id}").get_data(as_text=True)

    assert "Viewed by" not in html
    assert COORDINATOR not in html


# --- marking handled --------------------------------------------------------------------------


def handle(client: FlaskClient, contact_id: int, *, with_token: bool = True, **form: str) -> Any:
    """Post the handling form as the contact page does (or without its CSRF token)."""
    data = dict(form)
    if with_token:
        data["csrf_token"] = csrf_token(client, f"/contacts/{contact_id}")
    return client.post(f"/contacts/{contact_id}/handled", data=data)


def test_marking_handled_saves_who_when_the_topic_and_the_note(
    app: Flask,
    desk: Desk,
    clock: SimClock,
    auth: AuthActions,
) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    client = auth.login()
    clock.advance(300)

    response = handle(
        client, contact_id, action="handled", topic="Patiëntportaal", note="Teruggebeld."
    )

    assert response.status_code == 302
    row = contact_row(app, contact_id)
    assert row.handled_at == clock()
    assert row.handled_by == STAFF
    assert row.topic == "Patiëntportaal"
    assert row.note == "Teruggebeld."
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{ref(contact_id)} is marked handled." in html
    assert "anna@example.org marked it handled" in html and "topic: Patiëntportaal" in html
    assert "by anna@example.org at 23-11-2026 10:20" in html


def test_marking_handled_without_the_csrf_token_is_refused(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    client = auth.login()

    response = handle(client, contact_id, with_token=False, action="handled", topic="Anders")

    assert response.status_code == 400
    assert contact_row(app, contact_id).handled_at is None


def test_marking_handled_needs_a_topic_from_the_list(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    client = auth.login()

    response = handle(client, contact_id, action="handled", topic="Iets anders", note="bewaard")

    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "Choose what the contact was about." in html
    assert ">bewaard</textarea>" in html  # what was typed is still there
    assert contact_row(app, contact_id).handled_at is None


def test_marking_handled_twice_keeps_the_first_colleagues_record(
    app: Flask,
    desk: Desk,
    clock: SimClock,
    auth: AuthActions,
) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    anna = auth.login()
    bram = auth.login("bram@example.org", client=app.test_client())
    anna_token = csrf_token(anna, f"/contacts/{contact_id}")
    bram_token = csrf_token(bram, f"/contacts/{contact_id}")  # both have the form open
    form = {"action": "handled", "topic": "Anders"}

    anna.post(f"/contacts/{contact_id}/handled", data={**form, "csrf_token": anna_token})
    clock.advance(30)
    response = bram.post(
        f"/contacts/{contact_id}/handled", data={**form, "csrf_token": bram_token, "note": "ook"}
    )

    row = contact_row(app, contact_id)
    assert (row.handled_by, row.note) == (STAFF, "")
    html = bram.get(response.headers["Location"]).get_data(as_text=True)
    assert f"{ref(contact_id)} was already handled by {STAFF}." in html


def test_a_handled_contact_can_be_reopened(app: Flask, desk: Desk, auth: AuthActions) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    client = auth.login()
    handle(client, contact_id, action="handled", topic="Anders")

    response = handle(client, contact_id, action="reopen")

    assert response.status_code == 302
    row = contact_row(app, contact_id)
    assert row.handled_at is None and row.handled_by is None
    assert listed(client, handled="no") == [ref(contact_id)]
    with database(app).session() as session:
        kinds = session.scalars(
            select(ContactEvent.kind)
            .where(ContactEvent.contact_id == contact_id)
            .order_by(ContactEvent.id)
        ).all()
    assert kinds == ["handled", "reopened"]


def test_the_topic_list_is_the_active_topics_in_order(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    contact_id = add_contact(app, outcome="voicemail")
    html = contact_page(auth, contact_id)
    select_box = html.split('name="topic"', 1)[1].split("</select>", 1)[0]

    assert re.findall(r'<option value="([^"]*)"', select_box) == [
        "",
        "App activeren",
        "Patiëntportaal",
        "Videoconsult",
        "Apparaat of besturingssysteem",
        "Anders",
    ]


# --- walk-ins ---------------------------------------------------------------------------------


def test_the_walk_in_form_offers_the_desks_organisations_first_one_chosen(
    app: Flask,
    desk: Desk,
    auth: AuthActions,
) -> None:
    client = auth.login()

    html = client.get("/walk-in").get_data(as_text=True)
    select_box = html.split('name="organisation"', 1)[1].split("</select>", 1)[0]

    assert re.findall(r'<option value="([^"]*)"( selected)?>', select_box) == [
        ("Ziekenhuis Noord", " selected"),
        ("Zorggroep De Linde", ""),
    ]


def test_a_walk_in_is_logged_as_a_handled_contact_with_its_topic(
    app: Flask,
    desk: Desk,
    clock: SimClock,
    auth: AuthActions,
) -> None:
    client = auth.login()
    token = csrf_token(client, "/walk-in")

    response = client.post(
        "/walk-in",
        data={
            "csrf_token": token,
            "topic": "Videoconsult",
            "organisation": "Zorggroep De Linde",
            "note": "Camera werkte niet",
        },
    )

    assert response.status_code == 302
    with database(app).session() as session:
        [row] = session.scalars(select(Contact)).all()
        [event] = session.scalars(select(ContactEvent)).all()
    assert (row.channel, row.outcome, row.topic) == ("walk-in", "handled", "Videoconsult")
    assert row.organisation == "Zorggroep De Linde"
    assert row.note == "Camera werkte niet"
    assert row.handled_by == STAFF
    assert row.started_at == row.handled_at == clock()
    assert event.kind == "walk-in" and event.contact_id == row.id
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Walk-in logged as {row.reference}." in html
    assert listed(client, channel="walk-in") == [row.reference]


def refused_walk_in(app: Flask, client: FlaskClient, form: dict[str, str]) -> str:
    """Posts the walk-in form, checks it was refused with nothing logged; the page it got."""
    response = client.post("/walk-in", data=form)

    assert response.status_code == 400
    with database(app).session() as session:
        assert session.scalars(select(Contact)).all() == []
    return response.get_data(as_text=True)


def test_a_walk_in_without_a_topic_is_not_logged(app: Flask, desk: Desk, auth: AuthActions) -> None:
    client = auth.login()
    token = csrf_token(client, "/walk-in")

    html = refused_walk_in(
        app, client, {"csrf_token": token, "topic": "", "organisation": "Ziekenhuis Noord"}
    )

    assert "Choose what the visit was about." in html


def test_a_walk_in_for_an_organisation_not_of_the_desk_is_refused(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = auth.login()
    token = csrf_token(client, "/walk-in")

    refused_walk_in(app, client, {"csrf_token": token, "topic": "Anders", "organisation": "Elders"})


def test_a_walk_in_without_the_csrf_token_is_refused(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    client = auth.login()

    refused_walk_in(app, client, {"topic": "Anders", "organisation": "Ziekenhuis Noord"})


def test_pages_answer_before_a_desk_is_loaded(app: Flask, auth: AuthActions) -> None:
    contact_id = add_contact(app, started_at=datetime.fromisoformat("2026-11-23T08:00:00+00:00"))
    client = auth.login()

    assert listed(client) == [ref(contact_id)]
    assert client.get(f"/contacts/{contact_id}").status_code == 200
    assert client.get("/walk-in").status_code == 200
