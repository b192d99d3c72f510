"""Settings from the environment: a wrong value is refused at start-up, with its name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from intake.core.errors import ConfigurationError
from intake.shell.settings import from_environment


def environment(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"INTAKE_INSTANCE_PATH": str(tmp_path), "INTAKE_SECRET_KEY": "k" * 32, **values}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("helpdesk@example.org", "helpdesk@example.org"),
        ("  helpdesk@example.org ", "helpdesk@example.org"),
        ("", ""),
    ],
)
def test_the_sender_is_one_plain_address(tmp_path: Path, value: str, expected: str) -> None:
    config = from_environment(environment(tmp_path, INTAKE_SMTP_FROM=value))
    assert config["SMTP_FROM"] == expected


@pytest.mark.parametrize(
    "value",
    [
        "Helpdesk <helpdesk@example.org>",
        "helpdesk@localhost",
        "helpdesk@example.org, other@example.org",
        "helpdesk",
    ],
)
def test_a_sender_the_outbox_would_refuse_is_refused_at_start_up(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(ConfigurationError, match="INTAKE_SMTP_FROM must be one plain address"):
        from_environment(environment(tmp_path, INTAKE_SMTP_FROM=value))


def test_the_microsoft_sign_in_host_must_be_https(tmp_path: Path) -> None:
    national = "https://login.microsoftonline.us/"
    config = from_environment(environment(tmp_path, INTAKE_MICROSOFT_AUTHORITY=national))
    assert config["MICROSOFT_AUTHORITY"] == "https://login.microsoftonline.us"
    with pytest.raises(ConfigurationError, match="INTAKE_MICROSOFT_AUTHORITY must be an https"):
        from_environment(environment(tmp_path, INTAKE_MICROSOFT_AUTHORITY="http://login.example"))


def test_a_dashboard_session_lasts_a_working_day_unless_set_otherwise(tmp_path: Path) -> None:
    default = from_environment(environment(tmp_path))
    assert (default["SESSION_IDLE_TIMEOUT"], default["SESSION_MAX_AGE"]) == (
        timedelta(hours=8),
        timedelta(hours=12),
    )

    config = from_environment(
        environment(tmp_path, INTAKE_SESSION_IDLE_HOURS="2", INTAKE_SESSION_MAX_HOURS="10")
    )
    assert (config["SESSION_IDLE_TIMEOUT"], config["SESSION_MAX_AGE"]) == (
        timedelta(hours=2),
        timedelta(hours=10),
    )


def test_a_taken_item_is_held_half_an_hour_unless_set_otherwise(tmp_path: Path) -> None:
    assert from_environment(environment(tmp_path))["TAKE_MINUTES"] == 30
    assert from_environment(environment(tmp_path, INTAKE_TAKE_MINUTES="10"))["TAKE_MINUTES"] == 10
