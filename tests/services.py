"""The rule for real services in tests: skipped with a reason, or failed when required.

CI sets INTAKE_REQUIRE_SERVICES=1: a service the tests need but cannot reach is then a
failure, never a silent skip.
"""

from __future__ import annotations

import os

import pytest


def require_services() -> bool:
    return os.environ.get("INTAKE_REQUIRE_SERVICES") == "1"


def missing_service(reason: str) -> None:
    if require_services():
        pytest.fail(f"{reason} (INTAKE_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(reason)
