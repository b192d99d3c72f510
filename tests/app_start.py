"""Run in a child process by tests/test_worker.py: make the app, as one gunicorn worker
does at its start, at the same moment as the others (a barrier), and say how it went.

A module of its own, with few imports, so a spawned child starts quickly."""

from __future__ import annotations

from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from intake import create_app
from intake.core.db import database


def make_app(config: dict[str, Any], together: Barrier, failures: Queue[str]) -> None:
    together.wait(60)
    try:
        app = create_app(config)
        database(app).engine.dispose()
    except Exception as exc:  # what the test is looking for
        failures.put(f"{type(exc).__name__}: {exc}")
