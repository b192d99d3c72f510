"""The pure domain: opening hours, closures, the rota and the routing decision for a call.

Data in, decision out: nothing here reads the clock, a file, a database or the network.
"""

from __future__ import annotations

from routing.desk import (
    WEEKDAYS,
    Change,
    Desk,
    Line,
    Mailbox,
    Shift,
    Staff,
    TimeRange,
    VoiceSettings,
)
from routing.hours import (
    closes_at,
    closure_name,
    is_closure_day,
    is_open,
    next_opening,
    opening_ranges,
)
from routing.plan import CallPlan, plan_call
from routing.rota import on_shift
from routing.wording import describe_hours, describe_moment

__all__ = [
    "WEEKDAYS",
    "CallPlan",
    "Change",
    "Desk",
    "Line",
    "Mailbox",
    "Shift",
    "Staff",
    "TimeRange",
    "VoiceSettings",
    "closes_at",
    "closure_name",
    "describe_hours",
    "describe_moment",
    "is_closure_day",
    "is_open",
    "next_opening",
    "on_shift",
    "opening_ranges",
    "plan_call",
]
