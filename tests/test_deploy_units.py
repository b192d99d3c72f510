"""The systemd units and the example settings of deploy/, checked by the tools that read them.

`systemd-analyze verify` reads the units as systemd would (with /opt/intake/venv pointed at
this checkout's virtualenv, so that the commands exist) and `systemd-analyze security`
scores their hardening, both offline: no running systemd is needed. gunicorn checks the web
unit's own command line and loads the app with the example settings. The nginx site is
tried in tests/test_deploy_nginx.py.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from intake.shell.settings import from_environment

from .serverkit import find_program
from .services import missing_service

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
UNITS = ("intake-web.service", "intake-worker.service")
VENV = Path(sys.executable).parent.parent
# `systemd-analyze security` scores exposure from 0 (locked down) to 10; 2.0 and under is
# what it calls OK. The units score 1.3 with systemd 252.
MOST_EXPOSURE = "20"  # tenths, as --threshold takes it
SOURCES = ("intake", "mail", "voice", "routing")


def unit_settings(path: Path) -> dict[str, list[str]]:
    """Each `Key=value` of a unit (continued lines joined), every value of a repeated key."""
    settings: dict[str, list[str]] = defaultdict(list)
    joined = re.sub(r"\\\n\s*", " ", path.read_text())
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings[key.strip()].append(value.strip())
    return settings


def example_env(*, commented: bool = True) -> dict[str, str]:
    """The example env file's settings; with `commented`, the commented-out ones too."""
    found: dict[str, str] = {}
    for line in (DEPLOY / "intake.env.example").read_text().splitlines():
        match = re.fullmatch(r"(#?)([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match and (commented or not match.group(1)):
            found[match.group(2)] = match.group(3)
    return found


@pytest.fixture
def systemd_analyze() -> str:
    binary = find_program("systemd-analyze")
    if binary is None:
        missing_service("systemd-analyze is not installed (Debian: apt-get install systemd)")
        raise AssertionError("unreachable")
    return binary


@pytest.fixture
def units_here(tmp_path: Path) -> list[Path]:
    """The units as shipped, with /opt/intake/venv pointing at this checkout's virtualenv."""
    copies = []
    for name in UNITS:
        text = (DEPLOY / name).read_text()
        assert "/opt/intake/venv/" in text
        copy = tmp_path / name
        copy.write_text(text.replace("/opt/intake/venv/", f"{VENV}/"))
        copies.append(copy)
    return copies


def test_systemd_reads_the_units_without_a_complaint(
    systemd_analyze: str, units_here: list[Path]
) -> None:
    result = subprocess.run(
        [systemd_analyze, "verify", *map(str, units_here)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_the_units_are_hardened(systemd_analyze: str, units_here: list[Path]) -> None:
    result = subprocess.run(
        [systemd_analyze, "security", "--offline=yes", f"--threshold={MOST_EXPOSURE}",
         *map(str, units_here)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    for unit in units_here:
        settings = unit_settings(unit)
        assert settings["NoNewPrivileges"] == ["yes"]
        assert settings["ProtectSystem"] == ["strict"]
        assert settings["PrivateTmp"] == ["yes"]
        assert settings["User"] == ["intake"]
        assert settings["EnvironmentFile"] == ["/etc/intake/intake.env"]
        assert settings["StateDirectory"] == ["intake"]  # /var/lib/intake, writable


def test_gunicorn_accepts_the_web_units_command_line_and_loads_the_app(
    units_here: list[Path], tmp_path: Path
) -> None:
    web = unit_settings(units_here[0])
    (start,) = web["ExecStart"]
    command = shlex.split(start)
    env = {
        **example_env(commented=False),
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'intake.db'}",
        "INTAKE_INSTANCE_PATH": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }

    result = subprocess.run(
        [command[0], "--check-config", *command[1:]],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert command[-1] == "intake:create_app()"


def test_the_web_unit_nginx_and_metrics_directory_agree() -> None:
    web = unit_settings(DEPLOY / "intake-web.service")
    (start,) = web["ExecStart"]
    bind = shlex.split(start)[shlex.split(start).index("--bind") + 1]
    site = (DEPLOY / "nginx" / "intake.conf").read_text()

    assert re.search(rf"^\s*server {re.escape(bind)};", site, re.M), bind
    assert bind.startswith("127.0.0.1:")  # only nginx reaches gunicorn
    (runtime,) = web["RuntimeDirectory"]
    assert web["Environment"] == [f"PROMETHEUS_MULTIPROC_DIR=/run/{runtime}"]
    assert web["ExecStartPre"] == [f"/usr/bin/find /run/{runtime} -mindepth 1 -delete"]
    # systemd lets the master stop its workers gracefully before it kills anything.
    graceful = int(shlex.split(start)[shlex.split(start).index("--graceful-timeout") + 1])
    assert int(web["TimeoutStopSec"][0]) > graceful


def test_the_example_settings_are_real_settings_without_secrets(tmp_path: Path) -> None:
    example = example_env()
    code = "\n".join(
        path.read_text() for package in SOURCES for path in (REPO / package).rglob("*.py")
    )
    # A [[mailbox]]'s secrets are named by the desk definition, not by the code.
    unknown = [
        name for name in example if name not in code and not name.startswith("INTAKE_MAILBOX_")
    ]
    assert unknown == []
    for secret in ("INTAKE_SECRET_KEY", "TWILIO_AUTH_TOKEN", "INTAKE_IMAP_PASSWORD",
                   "INTAKE_SMTP_PASSWORD"):  # fmt: skip
        assert example[secret] == "", secret
    # Read by systemd and by sh alike: nothing either would read differently.
    assert [v for v in example.values() if re.search(r"[\s'\"$`\\]", v)] == []

    config = from_environment(
        {**example_env(commented=False), "INTAKE_INSTANCE_PATH": str(tmp_path)}
    )

    assert config["PUBLIC_URL"].startswith("https://")
    assert config["TRUSTED_PROXIES"] == 1
    assert config["DATABASE_URL"].startswith("postgresql+psycopg://")
