"""The routing decision for an incoming call."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC

import pytest

from routing.desk import Change, Desk, Shift
from routing.plan import CallPlan, plan_call
from tests.factories import absence, local, make_desk, shift

SHIFTS = [
    shift("anna", ["mon", "tue", "wed", "thu", "fri"], "08:30-12:30"),
    shift("bram", ["mon", "tue", "wed", "thu", "fri"], "08:30-17:00"),
    shift("carla", ["mon", "tue", "wed", "thu", "fri"], "12:30-17:00"),
]


def desk_with(
    *,
    shifts: Sequence[Shift] = SHIFTS,
    changes: Sequence[Change] = (),
    strategy: str = "simultaneous",
    fallback_number: str = "",
    language: str = "nl",
) -> Desk:
    """The example desk, closed on 24 and 31 December, with anna, bram and carla."""
    return make_desk(
        staff_ids=["anna", "bram", "carla"],
        shifts=shifts,
        changes=changes,
        closures=["2026-12-24", "2026-12-31"],
        strategy=strategy,
        fallback_number=fallback_number,
        language=language,
    )


def target_ids(plan: CallPlan) -> list[str]:
    return [s.id for s in plan.targets]


def test_open_with_colleagues_on_shift_dials_them_all_at_once() -> None:
    plan = plan_call(desk_with(), local("2026-11-24 10:00"))
    assert (plan.action, plan.reason, plan.strategy) == ("dial", "open", "simultaneous")
    assert target_ids(plan) == ["anna", "bram"]
    assert plan.next_opening == local("2026-11-25 08:30")  # filled while open too
    assert plan.closure_name is None


def test_sequential_strategy_dials_in_rota_order() -> None:
    plan = plan_call(desk_with(strategy="sequential"), local("2026-11-24 14:00"))
    assert (plan.action, plan.strategy) == ("dial", "sequential")
    assert target_ids(plan) == ["bram", "carla"]


def test_busy_colleagues_are_not_rung_again() -> None:
    plan = plan_call(desk_with(), local("2026-11-24 10:00"), busy={"anna"})
    assert (plan.action, target_ids(plan)) == ("dial", ["bram"])


def without_queue(desk: Desk) -> Desk:
    return dataclasses.replace(desk, voice=dataclasses.replace(desk.voice, queue=False))


def test_when_everyone_on_shift_is_busy_the_caller_waits_in_the_queue() -> None:
    plan = plan_call(desk_with(), local("2026-11-24 10:00"), busy=["anna", "bram", "dirk"])
    assert (plan.action, plan.reason, plan.targets) == ("queue", "all-busy", ())
    assert plan.next_opening == local("2026-11-25 08:30")
    # The fallback number is for a desk with nobody on shift, not for one whose colleagues
    # are on a call: they will be free in a moment.
    desk = desk_with(fallback_number="+31201234567")
    assert plan_call(desk, local("2026-11-24 10:00"), busy=("anna", "bram")).action == "queue"


def test_without_a_queue_everyone_busy_leaves_a_voicemail() -> None:
    desk = without_queue(desk_with())
    plan = plan_call(desk, local("2026-11-24 10:00"), busy=["anna", "bram", "dirk"])
    assert (plan.action, plan.reason, plan.targets) == ("voicemail", "all-busy", ())


def test_without_a_queue_everyone_busy_rings_the_fallback_number() -> None:
    desk = without_queue(desk_with(fallback_number="+31201234567"))
    plan = plan_call(desk, local("2026-11-24 10:00"), busy=("anna", "bram"))
    assert (plan.action, plan.reason, plan.fallback_number) == (
        "fallback",
        "all-busy",
        "+31201234567",
    )


@pytest.mark.parametrize(
    ("fallback", "action"),
    [("", "voicemail"), ("+31201234567", "fallback")],
)
def test_open_with_nobody_on_shift(fallback: str, action: str) -> None:
    desk = desk_with(shifts=[], fallback_number=fallback)
    plan = plan_call(desk, local("2026-11-24 10:00"))
    assert (plan.action, plan.reason, plan.fallback_number) == (action, "nobody-on-shift", fallback)


def test_an_absent_colleague_is_not_dialled() -> None:
    desk = desk_with(changes=[absence("anna", "2026-11-24")])
    plan = plan_call(desk, local("2026-11-24 10:00"))
    assert target_ids(plan) == ["bram"]


def test_closed_on_kings_day_takes_a_voicemail() -> None:
    plan = plan_call(desk_with(), local("2026-04-27 10:00"))
    assert (plan.action, plan.reason, plan.closure_name) == ("voicemail", "closure", "Koningsdag")
    assert plan.next_opening == local("2026-04-28 08:30")
    assert plan.targets == ()


def test_the_closure_name_follows_the_desk_language() -> None:
    plan = plan_call(desk_with(language="en"), local("2026-12-25 10:00"))
    assert (plan.reason, plan.closure_name) == ("closure", "Christmas Day")


@pytest.mark.parametrize(
    ("moment", "reason", "name", "opening"),
    [
        ("2026-12-24 10:00", "closure", "een sluitingsdag", "2026-12-28 08:30"),
        ("2026-12-25 10:00", "closure", "Eerste kerstdag", "2026-12-28 08:30"),
        ("2026-12-25 20:00", "closure", "Eerste kerstdag", "2026-12-28 08:30"),  # all day
        ("2026-12-26 10:00", "closed", None, "2026-12-28 08:30"),  # holiday, but a Saturday
        ("2027-01-01 10:00", "closure", "Nieuwjaarsdag", "2027-01-04 08:30"),
        ("2026-11-29 10:00", "closed", None, "2026-11-30 08:30"),  # Sunday
        ("2026-11-24 17:00", "closed", None, "2026-11-25 08:30"),  # exactly at closing
        ("2026-11-25 12:30", "closed", None, "2026-11-25 13:30"),  # Wednesday lunch break
        ("2026-03-28 12:00", "closed", None, "2026-03-30 08:30"),  # weekend of the spring change
        ("2026-10-24 12:00", "closed", None, "2026-10-26 08:30"),  # weekend of the autumn change
    ],
)
def test_closed_takes_a_voicemail_and_says_when_we_open(
    moment: str, reason: str, name: str | None, opening: str
) -> None:
    plan = plan_call(desk_with(fallback_number="+31201234567"), local(moment))
    assert (plan.action, plan.reason, plan.closure_name) == ("voicemail", reason, name)
    assert plan.next_opening == local(opening)
    assert plan.fallback_number == ""  # the fallback number is for open hours only


def test_a_shift_ending_at_closing_dials_until_the_last_second() -> None:
    assert plan_call(desk_with(), local("2026-11-24 16:59:59")).action == "dial"
    assert plan_call(desk_with(), local("2026-11-24 17:00")).action == "voicemail"


def test_the_instant_may_come_in_any_time_zone() -> None:
    plan = plan_call(desk_with(), local("2026-11-24 10:00").astimezone(UTC))
    assert target_ids(plan) == ["anna", "bram"]
