"""The routing decision for one incoming call."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from routing.desk import Desk, Staff
from routing.hours import (
    closure_name,
    is_closure_day,
    is_open,
    next_opening,
    require_aware,
    weekly_hours,
)
from routing.rota import on_shift

ACTIONS: tuple[str, ...] = ("dial", "queue", "fallback", "voicemail")
REASONS: tuple[str, ...] = ("open", "closed", "closure", "nobody-on-shift", "all-busy")


@dataclass(frozen=True)
class CallPlan:
    action: str  # "dial" | "queue" | "fallback" | "voicemail"
    reason: str  # "open" | "closed" | "closure" | "nobody-on-shift" | "all-busy"
    # "dial": who to ring, all at once (simultaneous) or one by one in this order (sequential).
    targets: tuple[Staff, ...] = ()
    strategy: str = "simultaneous"
    fallback_number: str = ""  # "fallback": the number to ring
    next_opening: datetime | None = None  # desk time zone; filled whenever there is one
    closure_name: str | None = None  # "Koningsdag", when reason == "closure"


def plan_call(desk: Desk, at: datetime, busy: Collection[str] = ()) -> CallPlan:
    """Decide what to do with a call arriving at `at`.

    `busy` holds the ids of colleagues already on an answered helpdesk call; they are not
    rung again.
    """
    require_aware(at)
    opening = next_opening(desk, at)
    if not is_open(desk, at):
        day = at.astimezone(desk.tz).date()
        # "Closure" only when the closure is why we are shut today: a holiday on a Sunday
        # of a desk that never opens on Sundays is just "closed".
        if weekly_hours(desk)[day.weekday()] and is_closure_day(desk, day):
            return CallPlan(
                action="voicemail",
                reason="closure",
                next_opening=opening,
                closure_name=closure_name(desk, day, desk.language),
            )
        return CallPlan(action="voicemail", reason="closed", next_opening=opening)

    staff = on_shift(desk, at)
    free = tuple(s for s in staff if s.id not in busy) if busy else staff
    if free:
        return CallPlan(
            action="dial",
            reason="open",
            targets=free,
            strategy=desk.voice.strategy,
            next_opening=opening,
        )
    reason = "all-busy" if staff else "nobody-on-shift"
    if staff and desk.voice.queue:
        # Colleagues are on shift but on a call: the caller waits for the first one free.
        return CallPlan(action="queue", reason=reason, next_opening=opening)
    if desk.voice.fallback_number:
        return CallPlan(
            action="fallback",
            reason=reason,
            fallback_number=desk.voice.fallback_number,
            next_opening=opening,
        )
    return CallPlan(action="voicemail", reason=reason, next_opening=opening)
