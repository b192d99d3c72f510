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


SSO = {
    "INTAKE_OIDC_ISSUER": "https://login.microsoftonline.com/0000-tenant/v2.0/",
    "INTAKE_OIDC_CLIENT_ID": "client",
    "INTAKE_OIDC_CLIENT_SECRET": "secret",
    "INTAKE_OIDC_STAFF_GROUPS": " staff-a , staff-b,",
}


def test_the_organisations_sign_in_is_read_with_its_groups(tmp_path: Path) -> None:
    config = from_environment(environment(tmp_path, **SSO, INTAKE_LOCAL_LOGIN="0"))

    assert config["OIDC_ISSUER"] == "https://login.microsoftonline.com/0000-tenant/v2.0"
    assert config["OIDC_STAFF_GROUPS"] == ("staff-a", "staff-b")
    assert config["OIDC_COORDINATOR_GROUPS"] == ()
    assert config["OIDC_GROUPS_CLAIM"] == "groups"
    assert config["LOCAL_LOGIN"] is False


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {**SSO, "INTAKE_OIDC_ISSUER": "http://idp.example"},
            "INTAKE_OIDC_ISSUER must be an https",
        ),
        ({**SSO, "INTAKE_OIDC_CLIENT_SECRET": ""}, "INTAKE_OIDC_CLIENT_SECRET are needed"),
        ({**SSO, "INTAKE_OIDC_STAFF_GROUPS": ""}, "no group may log in"),
        ({"INTAKE_LOCAL_LOGIN": "0"}, "leaves no way to log in"),
    ],
)
def test_a_sign_in_setting_that_cannot_work_is_refused_at_start_up(
    tmp_path: Path, values: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        from_environment(environment(tmp_path, **values))
