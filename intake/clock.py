"""The one place the application reads the time; tests and the simulator inject theirs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from flask import current_app

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def now() -> datetime:
    clock: Clock = current_app.config["CLOCK"]
    return clock()
