"""The one place the application reads the time; tests and the simulator inject theirs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    clock: Clock = current_app.config["CLOCK"]
    return clock()


@dataclass
class SimClock:
    """A clock the simulation moves forward; the app reads it as its `CLOCK`."""

    moment: datetime

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)
