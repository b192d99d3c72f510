"""How long one routing decision takes on a large desk, against a naive scan in the same run.

A desk of 500 colleagues and 5,000 weekly shifts (seeded, spread over Monday to Friday
07:00-22:00) and a few one-off changes; `plan_call` at random instants through one week.
The baseline makes the same decision but finds who is on shift by scanning every shift and
change, as one would without an index. Target: under 1 ms per decision (p99).

Run from the repository root: `.venv/bin/python bench/routing.py`.
"""

from __future__ import annotations

import random
import statistics
import sys
import time as clock
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from routing.desk import Change, Desk, Shift, Staff, TimeRange, VoiceSettings
from routing.hours import (
    closure_name,
    is_closure_day,
    is_open,
    next_opening,
    weekly_hours,
)
from routing.plan import CallPlan, plan_call
from routing.rota import on_shift

SEED = 20261124
STAFF = 500
SHIFTS = 5_000
CHANGES = 60
WARM_UP = 2_000
CALLS = 5_000
TARGET_US = 1_000.0
WEEK = date(2026, 11, 23)  # a Monday


def build_desk(rng: random.Random) -> Desk:
    staff = tuple(Staff(f"s{n:03d}", f"Colleague {n}", f"+3161{n:07d}") for n in range(STAFF))
    shifts: list[Shift] = []
    for _ in range(SHIFTS):
        start = rng.randrange(14, 44)  # half hours: 07:00 .. 21:30
        end = min(start + rng.randint(2, 16), 44)  # one to eight hours, until 22:00 at most
        days = tuple(sorted(rng.sample(range(5), rng.randint(1, 5))))
        hours = TimeRange(time(start // 2, start % 2 * 30), time(end // 2, end % 2 * 30))
        shifts.append(Shift(rng.choice(staff).id, days, hours))
    changes: list[Change] = []
    for _ in range(CHANGES):
        day = WEEK + timedelta(days=rng.randrange(7))
        member = rng.choice(staff).id
        if rng.random() < 0.5:
            changes.append(Change(member, day, off=True))
        else:
            changes.append(Change(member, day, off=False, hours=TimeRange(time(9), time(13))))
    open_hours = (TimeRange(time(7), time(22)),)
    return Desk(
        name="Bench desk",
        hours=(open_hours,) * 5 + ((), ()),
        # A closure on the Wednesday.
        closure_dates=MappingProxyType({WEEK + timedelta(days=2): ""}),
        staff=staff,
        shifts=tuple(shifts),
        changes=tuple(changes),
        voice=VoiceSettings(strategy="sequential"),
    )


# --- the baseline: the same decision with a linear scan -------------------------------------


def naive_on_shift(desk: Desk, at: datetime) -> tuple[Staff, ...]:
    local = at.astimezone(desk.tz)
    day, moment = local.date(), local.time()
    ids: list[str] = []
    if not is_closure_day(desk, day):
        for shift in desk.shifts:
            if day.weekday() in shift.days and shift.hours.contains(moment):
                ids.append(shift.staff)
    away: set[str] = set()
    for change in desk.changes:
        if change.date != day:
            continue
        if change.off and (change.hours is None or change.hours.contains(moment)):
            away.add(change.staff)
        elif not change.off and change.hours is not None and change.hours.contains(moment):
            ids.append(change.staff)
    found: list[Staff] = []
    seen: set[str] = set()
    for staff_id in ids:
        member = desk.staff_by_id.get(staff_id)
        if member is not None and staff_id not in away and staff_id not in seen:
            seen.add(staff_id)
            found.append(member)
    return tuple(found)


def naive_plan_call(desk: Desk, at: datetime, busy: Collection[str] = ()) -> CallPlan:
    opening = next_opening(desk, at)
    if not is_open(desk, at):
        day = at.astimezone(desk.tz).date()
        if weekly_hours(desk)[day.weekday()] and is_closure_day(desk, day):
            name = closure_name(desk, day, desk.language)
            return CallPlan("voicemail", "closure", next_opening=opening, closure_name=name)
        return CallPlan("voicemail", "closed", next_opening=opening)
    staff = naive_on_shift(desk, at)
    free = tuple(s for s in staff if s.id not in busy)
    if free:
        return CallPlan("dial", "open", free, desk.voice.strategy, next_opening=opening)
    reason = "all-busy" if staff else "nobody-on-shift"
    return CallPlan("voicemail", reason, next_opening=opening)


# --- timing ----------------------------------------------------------------------------------


def time_each(
    decide: Callable[[Desk, datetime, Collection[str]], object],
    desk: Desk,
    instants: Sequence[datetime],
    busy: Collection[str],
) -> list[float]:
    """Microseconds per call."""
    spent: list[float] = []
    for at in instants:
        started = clock.perf_counter()
        decide(desk, at, busy)
        spent.append((clock.perf_counter() - started) * 1e6)
    return spent


def p99(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> int:
    rng = random.Random(SEED)
    desk = build_desk(rng)
    week_start = datetime.combine(WEEK, time(0), tzinfo=desk.tz).astimezone(UTC)

    def instants(count: int) -> list[datetime]:
        return [week_start + timedelta(seconds=rng.randrange(7 * 24 * 3600)) for _ in range(count)]

    warm_up, timed = instants(WARM_UP), instants(CALLS)
    busy = frozenset(rng.sample([s.id for s in desk.staff], 20))

    is_closure_day(desk, WEEK)  # loads the year's holidays, so only the index is timed
    started = clock.perf_counter()
    on_shift(desk, timed[0])
    build_ms = (clock.perf_counter() - started) * 1e3

    for at in warm_up:
        plan_call(desk, at, busy)
        naive_plan_call(desk, at, busy)

    mismatches = sum(plan_call(desk, at, busy) != naive_plan_call(desk, at, busy) for at in timed)
    indexed = time_each(plan_call, desk, timed, busy)
    naive = time_each(naive_plan_call, desk, timed, busy)
    rota = time_each(lambda d, at, _busy: on_shift(d, at), desk, timed, busy)
    rota_naive = time_each(lambda d, at, _busy: naive_on_shift(d, at), desk, timed, busy)
    dials = sum(plan_call(desk, at, busy).action == "dial" for at in timed)
    targets = statistics.mean(len(plan_call(desk, at, busy).targets) for at in timed)

    print(f"desk: {STAFF} colleagues, {SHIFTS} weekly shifts, {CHANGES} changes")
    print(f"calls: {CALLS} timed after {WARM_UP} warm-up, {dials} dialled")
    print(f"colleagues rung per dialled call: {targets:.0f} on average")
    print(f"rota index built on first use in {build_ms:.1f} ms")
    print(f"{'per decision':24}{'mean µs':>10}{'p99 µs':>10}")
    rows = (
        ("plan_call (indexed)", indexed),
        ("plan_call (naive scan)", naive),
        ("on_shift (indexed)", rota),
        ("on_shift (naive scan)", rota_naive),
    )
    for label, spent in rows:
        print(f"{label:24}{statistics.mean(spent):10.1f}{p99(spent):10.1f}")
    ratio = statistics.mean(naive) / statistics.mean(indexed)
    rota_ratio = statistics.mean(rota_naive) / statistics.mean(rota)
    print(f"ratio: plan_call {ratio:.1f}x, on_shift {rota_ratio:.1f}x faster than the naive scan")
    same = "yes" if mismatches == 0 else f"NO, {mismatches} differ"
    print(f"same decisions as the baseline: {same}")
    holds = p99(indexed) < TARGET_US
    verdict = "HOLDS" if holds else "MISSED"
    print(f"target under 1 ms per decision: {verdict} (p99 {p99(indexed):.0f} µs)")
    return 0 if holds and mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
