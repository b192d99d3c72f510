"""The routing decision for one incoming mail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from routing.desk import Desk, Staff
from routing.hours import is_open, next_opening, require_aware
from routing.rota import on_shift


@dataclass(frozen=True)
class MailPlan:
    action: str  # "forward" | "hold": acknowledge now, forward when the next shift starts
    reason: str  # "open" | "closed" | "nobody-on-shift" | "no-address"
    colleague: Staff | None = None  # "forward": to whom
    next_opening: datetime | None = None  # desk time zone


def plan_mail(
    desk: Desk,
    at: datetime,
    *,
    previous: str | None = None,
    last_forwarded: Mapping[str, int] | None = None,
) -> MailPlan:
    """Decide what to do with a mail arriving (or waiting) at `at`.

    While the desk is open, the mail goes to a colleague on shift who has an address: the
    one who had the patient's earlier mail (`previous`) when on shift, else round-robin: the
    colleague whose last forward came first. `last_forwarded` numbers each colleague's most
    recent forward in the order they were made (mail fetched together is forwarded at one
    instant, so times would tie); rota order breaks ties among those who had none.
    Otherwise it is held: acknowledged now, forwarded when a shift starts.
    """
    require_aware(at)
    if not is_open(desk, at):
        return MailPlan(action="hold", reason="closed", next_opening=next_opening(desk, at))
    reachable = [s for s in on_shift(desk, at) if s.email]
    if not reachable:
        reason = "nobody-on-shift"
        return MailPlan(action="hold", reason=reason, next_opening=next_opening(desk, at))
    for staff in reachable:
        if staff.id == previous:
            return MailPlan(action="forward", reason="open", colleague=staff)
    last = last_forwarded or {}
    order = {staff.id: n for n, staff in enumerate(reachable)}
    chosen = min(reachable, key=lambda s: (last.get(s.id, -1), order[s.id]))
    return MailPlan(action="forward", reason="open", colleague=chosen)
