"""The demand page: contacts per hour of the week in local time, the hours the desk was
closed, calls by outcome, time until handled, topics, and every table as CSV."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask

from intake.core.db import database
from intake.core.demand import Demand, Period, percentile, read_demand
from intake.core.deskstore import current_desk, store_desk
from routing.desk import Desk

from .auth import COORDINATOR, AuthActions
from .conftest import load_desk, local
from .factories import contact, make_desk, save, utc
from .pages import WEEKDAY_NAMES, csv_rows, html_table

MONDAY, TUESDAY, WEDNESDAY, SATURDAY, SUNDAY = 0, 1, 2, 5, 6
TABLE_NAMES = ("heatmap", "outside", "per_day", "calls", "handling", "topics")


# --- helpers ----------------------------------------------------------------------------------


def figures(app: Flask, first: str, last: str) -> Demand:
    with app.app_context(), database(app).session() as session:
        return read_demand(session, current_desk(session), period(first, last))


def period(first: str, last: str) -> Period:
    return Period(datetime.fromisoformat(first).date(), datetime.fromisoformat(last).date())


def cells(grid: tuple[tuple[int, ...], ...]) -> dict[tuple[int, int], int]:
    """The non-empty cells of a week grid: {(weekday, hour): count}."""
    return {(day, hour): n for day, row in enumerate(grid) for hour, n in enumerate(row) if n}


def row(rows: Iterable[list[str]], first: str) -> list[str]:
    return next(r for r in rows if r[0] == first)


# --- who may see it -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/demand", "/demand.csv?table=calls"])
def test_demand_is_for_the_coordinator_only(
    app: Flask, desk: Desk, path: str, auth: AuthActions
) -> None:
    assert app.test_client().get(path).status_code == 302  # to the login page
    staff = auth.login("staff@example.org")
    assert staff.get(path).status_code == 403
    coordinator = auth.login(COORDINATOR, role="coordinator", client=app.test_client())
    assert coordinator.get(path).status_code == 200


def test_the_menu_shows_demand_to_the_coordinator_only(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    staff_page = auth.login("staff@example.org").get("/").get_data(True)
    coordinator = auth.login(COORDINATOR, role="coordinator", client=app.test_client())
    coordinator_page = coordinator.get("/").get_data(True)

    assert 'href="/demand"' not in staff_page
    assert 'href="/demand"' in coordinator_page


# --- counting in local time -------------------------------------------------------------------


def test_heatmap_counts_in_desk_local_time_across_both_dst_changes(app: Flask, desk: Desk) -> None:
    save(
        app,
        # Sunday 29 March 2026: at 01:00 UTC the clocks go from 02:00 to 03:00.
        contact(utc("2026-03-29 00:30")),  # 01:30 CET
        contact(utc("2026-03-29 01:30")),  # 03:30 CEST (02:xx never happens that night)
        # Sunday 25 October 2026: at 01:00 UTC the clocks go from 03:00 back to 02:00.
        contact(utc("2026-10-25 00:30")),  # 02:30 CEST
        contact(utc("2026-10-25 01:30")),  # 02:30 CET: the same local hour, again
        # The same UTC time is 10:00 in summer and 09:00 in winter.
        contact(utc("2026-07-01 08:00"), channel="mail", outcome="forwarded"),  # a Wednesday
        contact(utc("2026-11-25 08:00"), channel="walk-in", outcome="handled"),  # a Wednesday
    )

    demand = figures(app, "2026-03-01", "2026-11-30")

    assert cells(demand.heatmap) == {
        (SUNDAY, 1): 1,
        (SUNDAY, 3): 1,
        (SUNDAY, 2): 2,
        (WEDNESDAY, 10): 1,
        (WEDNESDAY, 9): 1,
    }
    per_day = {day.isoformat(): counts for day, counts in demand.per_day if any(counts)}
    assert demand.channels[:3] == ("call", "mail", "walk-in")
    assert per_day == {
        "2026-03-29": (2, 0, 0),
        "2026-10-25": (2, 0, 0),
        "2026-07-01": (0, 1, 0),
        "2026-11-25": (0, 0, 1),
    }


def test_the_period_runs_from_local_midnight_to_local_midnight(app: Flask, desk: Desk) -> None:
    save(
        app,
        contact(local("2026-11-01 00:00")),  # the first second: in
        contact(local("2026-10-31 23:59:59")),  # out
        contact(local("2026-11-30 23:59:59")),  # the last second: in
        contact(local("2026-12-01 00:00")),  # out
    )

    demand = figures(app, "2026-11-01", "2026-11-30")

    assert demand.total == 2
    assert len(demand.per_day) == 30
    assert demand.per_day[0][1][0] == 1 and demand.per_day[-1][1][0] == 1


@pytest.mark.parametrize(
    ("moment", "outside"),
    [
        ("2026-11-23 08:29:59", True),  # Monday, before opening at 08:30
        ("2026-11-23 08:30:00", False),
        ("2026-11-23 16:59:59", False),
        ("2026-11-23 17:00:00", True),  # closing time is closed
        ("2026-11-25 12:45:00", True),  # Wednesday's lunch break, 12:30-13:30
        ("2026-11-25 13:30:00", False),
        ("2026-11-27 16:30:00", True),  # Friday closes at 16:00
        ("2026-11-28 10:00:00", True),  # Saturday
        ("2026-12-24 10:00:00", True),  # a closure date of the desk (a Thursday)
        ("2026-12-25 10:00:00", True),  # Christmas Day, a public holiday (a Friday)
        ("2026-12-23 10:00:00", False),  # an ordinary Wednesday morning
    ],
)
def test_contacts_outside_opening_hours_are_counted_apart(
    app: Flask, desk: Desk, moment: str, outside: bool
) -> None:
    at = local(moment)
    save(app, contact(at))

    demand = figures(app, "2026-11-01", "2026-12-31")

    weekday, hour = at.weekday(), at.hour
    assert cells(demand.heatmap) == {(weekday, hour): 1}
    assert cells(demand.outside) == ({(weekday, hour): 1} if outside else {})


def test_outside_hours_follow_the_opening_hours_in_force_at_the_time(app: Flask) -> None:
    # Until Wednesday 11 November 2026 the desk closed at 17:00; from then on at 20:00.
    early = make_desk(hours={"mon": ["08:30-17:00"]})
    late = make_desk(hours={"mon": ["08:30-20:00"]})
    with database(app).session() as session:
        store_desk(session, early, source="test", at=local("2026-10-01 12:00"))
        store_desk(session, late, source="test", at=local("2026-11-11 12:00"))
        session.commit()
    save(
        app,
        contact(local("2026-11-09 18:00")),  # closed then
        contact(local("2026-11-16 18:00")),  # open by then
        contact(local("2026-11-16 20:00")),  # closed still
    )

    demand = figures(app, "2026-11-01", "2026-11-30")

    assert cells(demand.heatmap) == {(MONDAY, 18): 2, (MONDAY, 20): 1}
    assert cells(demand.outside) == {(MONDAY, 18): 1, (MONDAY, 20): 1}
    # The page outlines today's opening hours: Monday until 20:00.
    assert demand.open_hours[MONDAY][8] and demand.open_hours[MONDAY][19]
    assert not demand.open_hours[MONDAY][20] and not demand.open_hours[MONDAY][7]


def test_a_new_version_in_the_middle_of_an_hour_counts_from_its_minute(app: Flask) -> None:
    # On Wednesday 11 November 2026 at 12:30 the desk stopped closing at noon.
    with database(app).session() as session:
        store_desk(
            session,
            make_desk(hours={"wed": ["08:30-12:00"]}),
            source="test",
            at=local("2026-10-01 12:00"),
        )
        store_desk(
            session,
            make_desk(hours={"wed": ["08:30-17:00"]}),
            source="test",
            at=local("2026-11-11 12:30"),
        )
        session.commit()
    save(
        app,
        contact(local("2026-11-11 12:20")),  # closed, by the hours in force then
        contact(local("2026-11-11 12:40")),  # open, by the new hours
    )

    demand = figures(app, "2026-11-09", "2026-11-15")

    assert cells(demand.heatmap) == {(WEDNESDAY, 12): 2}
    assert cells(demand.outside) == {(WEDNESDAY, 12): 1}


def test_a_zone_whose_clocks_move_by_half_an_hour_counts_each_minute_right(app: Flask) -> None:
    # Lord Howe Island: UTC+10:30 in winter, +11:00 in summer. On Sunday 4 October 2026 at
    # 02:00 (15:30 UTC the day before) the clocks go to 02:30.
    load_desk(app, make_desk(hours={"sun": ["02:00-03:00"]}, timezone="Australia/Lord_Howe"))
    save(
        app,
        contact(datetime(2026, 10, 3, 15, 20, tzinfo=UTC)),  # 01:50 +10:30: closed
        contact(datetime(2026, 10, 3, 15, 40, tzinfo=UTC)),  # 02:40 +11:00: open
        contact(datetime(2026, 10, 3, 16, 10, tzinfo=UTC)),  # 03:10 +11:00: closed
    )

    demand = figures(app, "2026-10-04", "2026-10-04")

    assert cells(demand.heatmap) == {(SUNDAY, 1): 1, (SUNDAY, 2): 1, (SUNDAY, 3): 1}
    assert cells(demand.outside) == {(SUNDAY, 1): 1, (SUNDAY, 3): 1}


def test_a_desk_in_another_time_zone_counts_in_its_own_local_time(app: Flask) -> None:
    # Kolkata is UTC+05:30 all year: its local hours start at half past the UTC hour.
    load_desk(app, make_desk(hours={"mon": ["09:00-17:00"]}, timezone="Asia/Kolkata"))
    save(
        app,
        contact(datetime(2026, 11, 23, 3, 29, tzinfo=UTC)),  # 08:59 Monday: closed
        contact(datetime(2026, 11, 23, 3, 30, tzinfo=UTC)),  # 09:00: open
    )

    demand = figures(app, "2026-11-23", "2026-11-23")

    assert cells(demand.heatmap) == {(MONDAY, 8): 1, (MONDAY, 9): 1}
    assert cells(demand.outside) == {(MONDAY, 8): 1}


def test_automatic_mail_is_not_demand(app: Flask, desk: Desk) -> None:
    save(
        app,
        contact(local("2026-11-23 10:00"), channel="mail", outcome="automatic"),
        contact(local("2026-11-23 10:00"), channel="mail", outcome="forwarded"),
    )

    assert figures(app, "2026-11-23", "2026-11-23").total == 1


# --- shares, percentiles, topics ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([10, 20, 30, 40], 0.5, 25.0),
        ([10, 20, 30, 40], 0.9, 37.0),
        ([10, 20, 30], 0.5, 20.0),
        ([5], 0.9, 5.0),
        ([], 0.5, None),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.9, 9.1),
    ],
)
def test_percentile_interpolates_between_ranks(
    values: list[int], fraction: float, expected: float | None
) -> None:
    found = percentile(values, fraction)
    assert found == (pytest.approx(expected) if expected is not None else None)


def known_week(app: Flask) -> None:
    """Ten calls and four handled mails in the week of Monday 16 November 2026."""
    monday = local("2026-11-16 10:00")
    outcomes = ["answered"] * 6 + ["missed"] * 2 + ["voicemail", "fallback"]
    calls = [contact(monday + timedelta(minutes=n), outcome=o) for n, o in enumerate(outcomes)]
    waits = [(10, "Videoconsult"), (20, "Videoconsult"), (30, "Patiëntportaal"), (40, None)]
    mails = [
        contact(
            monday + timedelta(hours=1, minutes=n),
            channel="mail",
            outcome="forwarded",
            handled_at=monday + timedelta(hours=1, minutes=n + wait),
            topic=topic,
        )
        for n, (wait, topic) in enumerate(waits)
    ]
    save(app, *calls, *mails)


def test_call_shares_handling_times_and_topics_on_a_known_week(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    known_week(app)
    client = auth.login(COORDINATOR, role="coordinator")

    page = client.get("/demand?from=2026-11-16&to=2026-11-22").get_data(as_text=True)

    calls = html_table(page, "calls")
    assert calls[0] == ["Outcome", "Calls", "Share"]
    # A whole share without a decimal point, a fraction with one.
    assert row(calls, "answered") == ["answered", "6", "60%"]
    assert row(calls, "missed") == ["missed", "2", "20%"]
    assert row(calls, "voicemail") == ["voicemail", "1", "10%"]
    assert row(calls, "answered at the fallback number")[1:] == ["1", "10%"]
    assert row(calls, "All calls") == ["All calls", "10", "100%"]

    handling = html_table(page, "handling")
    # Mails handled after 10, 20, 30 and 40 minutes: median 25, 90th percentile 37.
    assert row(handling, "mail") == ["mail", "4", "4", "25 minutes", "37 minutes"]
    assert row(handling, "call") == ["call", "10", "0", "", ""]
    assert row(handling, "All channels") == ["All channels", "14", "4", "25 minutes", "37 minutes"]

    topics = html_table(page, "topics")
    assert topics[1:] == [
        ["Videoconsult", "2", "14.3%"],
        ["Patiëntportaal", "1", "7.1%"],
        ["(no topic)", "11", "78.6%"],
    ]


def test_the_dutch_page_writes_shares_and_waits_as_dutch_does(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    monday = local("2026-11-16 10:00")
    save(
        app,
        # Handled after 12773.8 minutes: the page says nine days, not a count of minutes.
        contact(
            monday,
            channel="mail",
            outcome="forwarded",
            handled_at=monday + timedelta(minutes=12773.8),
            topic="Videoconsult",
        ),
        *(contact(monday + timedelta(minutes=n), outcome="answered") for n in range(7)),
        contact(monday + timedelta(minutes=8), outcome="missed"),
    )
    client = auth.login(COORDINATOR, role="coordinator", language="nl")

    page = client.get("/demand?from=2026-11-16&to=2026-11-30").get_data(as_text=True)

    handling = html_table(page, "handling")
    assert row(handling, "mail")[3:] == ["9 dagen", "9 dagen"]
    calls = html_table(page, "calls")
    assert row(calls, "opgenomen")[2] == "87,5%"
    assert row(calls, "gemist")[2] == "12,5%"
    assert row(calls, "Alle oproepen")[2] == "100%"
    assert "9 contacten, waarvan 0 (0%) terwijl de helpdesk gesloten was." in page


def test_the_dutch_csv_opens_as_columns_in_dutch_excel(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    known_week(app)
    client = auth.login(COORDINATOR, role="coordinator", language="nl")

    body = client.get("/demand.csv?table=topics&from=2026-11-16&to=2026-11-22").data

    # A byte-order mark, semicolons between the columns and a decimal comma.
    assert body.startswith(b"\xef\xbb\xbf")
    lines = body[3:].decode("utf-8").split("\r\n")
    assert lines[0] == "Thema;Contacten;Aandeel (%)"
    assert lines[1:4] == ["Videoconsult;2;14,3", "Patiëntportaal;1;7,1", "(geen thema);11;78,6"]
    handling = client.get("/demand.csv?table=handling&from=2026-11-16&to=2026-11-22").data
    # Waits in minutes, a number a spreadsheet can sum.
    assert "\r\nmail;4;4;25,0;37,0\r\n" in handling.decode("utf-8-sig")


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_every_table_downloads_as_csv_with_the_same_rows(
    app: Flask, desk: Desk, name: str, auth: AuthActions
) -> None:
    known_week(app)
    client = auth.login(COORDINATOR, role="coordinator")
    query = "from=2026-11-16&to=2026-11-22"

    page = client.get(f"/demand?{query}").get_data(as_text=True)
    response = client.get(f"/demand.csv?table={name}&{query}")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="demand-{name.replace("_", "-")}-2026-11-16-2026-11-22.csv"'
    )
    # The same rows, labelled the same; the CSV holds numbers (shares in percent, waits in
    # minutes) where the page writes them in words.
    rows, shown = csv_rows(response.data), html_table(page, name)
    assert [r[0] for r in rows] == [r[0] for r in shown]
    assert [len(r) for r in rows] == [len(r) for r in shown]
    assert all(re.fullmatch(r"\d+(\.\d)?|", cell) for r in rows[1:] for cell in r[1:])
    assert f'href="/demand.csv?table={name}&amp;from=2026-11-16&amp;to=2026-11-22"' in page


def test_the_heatmap_csv_has_a_row_per_weekday_and_a_column_per_hour(
    app: Flask,
    desk: Desk,
    auth: AuthActions,
) -> None:
    known_week(app)

    response = auth.login(COORDINATOR, role="coordinator").get(
        "/demand.csv?table=heatmap&from=2026-11-16&to=2026-11-22"
    )

    rows = csv_rows(response.data)
    assert rows[0] == ["Day", *(f"{hour:02d}" for hour in range(24)), "Total"]
    assert [r[0] for r in rows[1:]] == WEEKDAY_NAMES
    assert rows[1][1 + 10] == "10"  # ten calls on Monday from 10:00
    assert rows[1][1 + 11] == "4"  # four mails from 11:00
    assert rows[1][-1] == "14"


def test_a_topic_that_looks_like_a_formula_is_text_in_the_csv(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    save(
        app,
        contact(
            local("2026-11-23 10:00"),
            channel="mail",
            outcome="forwarded",
            handled_at=local("2026-11-23 10:05"),
            topic="=HYPERLINK(1)",
        ),
    )

    response = auth.login(COORDINATOR, role="coordinator").get(
        "/demand.csv?table=topics&from=2026-11-23&to=2026-11-23"
    )

    assert csv_rows(response.data)[1] == ["'=HYPERLINK(1)", "1", "100.0"]
    assert csv_rows(response.data)[0] == ["Topic", "Contacts", "Share (%)"]


# --- the period -------------------------------------------------------------------------------


def test_the_default_period_is_the_last_eight_weeks(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    # The test clock says Monday 23 November 2026.
    page = auth.login(COORDINATOR, role="coordinator").get("/demand").get_data(as_text=True)

    assert 'name="from" value="2026-09-29"' in page
    assert 'name="to" value="2026-11-23"' in page
    assert "<svg" in page and "<script" not in page


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-11-30&to=2026-11-01",
        "from=30-11-2026&to=2026-12-01",
        "from=2020-01-01&to=2026-01-01",
    ],
)
def test_a_period_that_cannot_be_used_says_why(
    app: Flask, desk: Desk, query: str, auth: AuthActions
) -> None:
    client = auth.login(COORDINATOR, role="coordinator")

    page = client.get(f"/demand?{query}")
    download = client.get(f"/demand.csv?table=calls&{query}")

    assert page.status_code == 400
    assert 'role="alert"' in page.get_data(as_text=True)
    assert download.status_code == 400


def test_an_unknown_csv_table_is_not_found(app: Flask, desk: Desk, auth: AuthActions) -> None:
    assert (
        auth.login(COORDINATOR, role="coordinator").get("/demand.csv?table=users").status_code
        == 404
    )


def test_the_pictures_have_text_for_screen_readers(
    app: Flask, desk: Desk, auth: AuthActions
) -> None:
    known_week(app)

    page = (
        auth.login(COORDINATOR, role="coordinator")
        .get("/demand?from=2026-11-16&to=2026-11-22")
        .get_data(as_text=True)
    )

    assert page.count('role="img"') >= 4
    assert "<title>Monday 10:00-11:00: 10 contacts</title>" in page
    assert "<title>2026-11-16: 14 (call 10, mail 4)</title>" in page
