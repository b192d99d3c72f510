"""Where a patient's mail goes: a colleague on shift, fairly shared, or held until opening."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from routing.desk import Desk
from routing.mailplan import plan_mail
from tests.factories import make_desk, shift

AMS = ZoneInfo("Europe/Amsterdam")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=AMS)


@pytest.fixture
def desk() -> Desk:
    desk = make_desk(
        hours={"mon": ["08:30-17:00"], "tue": ["08:30-17:00"]},
        staff_ids=["carl", "anna", "bram"],
        shifts=[shift(s, ["mon"], "08:30-17:00") for s in ("carl", "anna", "bram")],
    )
    # Carl has no mail address: he takes calls, never forwarded mail.
    carl = dataclasses.replace(desk.staff[0], email="")
    return dataclasses.replace(desk, staff=(carl, *desk.staff[1:]))


def test_open_forwards_to_the_first_colleague_in_rota_order(desk: Desk) -> None:
    plan = plan_mail(desk, MONDAY_10)

    assert plan.action == "forward"
    assert plan.colleague is not None and plan.colleague.id == "anna"


def test_round_robin_picks_whoever_had_a_mail_longest_ago(desk: Desk) -> None:
    plan = plan_mail(desk, MONDAY_10, last_forwarded={"anna": 12, "bram": 7})

    assert plan.colleague is not None and plan.colleague.id == "bram"


def test_a_follow_up_goes_to_the_colleague_who_had_the_first_mail(desk: Desk) -> None:
    plan = plan_mail(desk, MONDAY_10, previous="bram", last_forwarded={"anna": 3, "bram": 9})

    assert plan.colleague is not None and plan.colleague.id == "bram"


def test_a_follow_up_whose_colleague_is_off_goes_round_robin(desk: Desk) -> None:
    plan = plan_mail(desk, MONDAY_10, previous="dirk")

    assert plan.colleague is not None and plan.colleague.id == "anna"


@pytest.mark.parametrize(
    ("at", "reason", "opens"),
    [
        (datetime(2026, 11, 22, 10, 0, tzinfo=AMS), "closed", datetime(2026, 11, 23, 8, 30)),
        (datetime(2026, 11, 23, 18, 0, tzinfo=AMS), "closed", datetime(2026, 11, 24, 8, 30)),
        (
            datetime(2026, 11, 24, 10, 0, tzinfo=AMS),
            "nobody-on-shift",
            datetime(2026, 11, 30, 8, 30),
        ),
    ],
)
def test_mail_outside_hours_or_without_anyone_on_shift_is_held(
    desk: Desk, at: datetime, reason: str, opens: datetime
) -> None:
    plan = plan_mail(desk, at)

    assert plan.action == "hold"
    assert plan.reason == reason
    assert plan.colleague is None
    assert plan.next_opening is not None
    assert plan.next_opening.replace(tzinfo=None) == opens
