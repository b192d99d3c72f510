"""The `intake` command as a coordinator uses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from flask import Flask

from intake.core.definition import parse_definition
from routing.desk import Desk

from .conftest import EXAMPLE_DESK, desk_versions


def test_loading_the_example_twice_changes_nothing_the_second_time(intake, app: Flask) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = intake("load-config", str(EXAMPLE_DESK))
    assert code == 0
    assert "4 colleagues" in out

    code, out, _ = intake("load-config", str(EXAMPLE_DESK))
    assert code == 0
    assert "nothing changed" in out
    assert desk_versions(app) == 1


def test_a_bad_file_is_refused_whole_with_every_problem_and_lines(
    intake,
    app: Flask,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    intake("load-config", str(EXAMPLE_DESK))
    text = EXAMPLE_DESK.read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(
        text.replace('staff = "chantal"', 'staff = "charlotte"').replace(
            'timezone = "Europe/Amsterdam"', 'timezone = "Europe/Amsterdm"'
        )
    )

    code, out, err = intake("load-config", str(bad))

    assert code == 2
    assert out == ""
    assert "charlotte" in err and "Europe/Amsterdm" in err
    assert "Traceback" not in err
    line_of_charlotte = next(
        n for n, line in enumerate(bad.read_text().splitlines(), 1) if "charlotte" in line
    )
    assert f"bad.toml:{line_of_charlotte}:" in err
    assert desk_versions(app) == 1  # the database is left as it was


def test_export_round_trips_through_load_config(intake, example_desk: Desk, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    intake("load-config", str(EXAMPLE_DESK))

    code, out, _ = intake("export-config")

    assert code == 0
    assert parse_definition(out) == example_desk
    exported = tmp_path / "exported.toml"
    exported.write_text(out)
    assert "nothing changed" in intake("load-config", str(exported))[1]


@pytest.mark.parametrize(
    ("at", "is_open", "on_shift", "next_opening"),
    [
        ("2026-11-23T10:15", True, ["anna", "bram"], None),
        ("2026-11-23T13:00", True, ["bram", "chantal"], None),
        ("2026-11-24T10:15", True, ["bram"], None),  # anna is off that day
        ("2026-11-22T10:15", False, [], "2026-11-23T08:30:00+01:00"),
        ("2026-11-25T12:45", False, [], "2026-11-25T13:30:00+01:00"),
        ("2026-11-23T17:00", False, [], "2026-11-24T08:30:00+01:00"),
        ("2026-03-29T10:00", False, [], "2026-03-30T08:30:00+02:00"),  # summer time starts
        ("2026-12-24T10:00", False, [], "2026-12-28T08:30:00+01:00"),  # closure, Christmas
    ],
)
def test_who_json_says_open_who_and_next_opening(
    intake,
    at: str,
    is_open: bool,
    on_shift: list[str],
    next_opening: str | None,  # type: ignore[no-untyped-def]
) -> None:
    intake("load-config", str(EXAMPLE_DESK))

    code, out, _ = intake("who", "--at", at, "--json")

    assert code == 0
    answer = json.loads(out)
    assert answer["open"] is is_open
    assert answer["on_shift"] == on_shift
    assert answer["next_opening"] == next_opening


def test_simulated_call_is_answered_and_logged(intake) -> None:  # type: ignore[no-untyped-def]
    intake("load-config", str(EXAMPLE_DESK))

    code, out, _ = intake("simulate-call", "--from", "06 1234 5678", "--at", "2026-11-23T10:15")

    assert code == 0
    assert "rings anna (+31612345678), bram (+31623456789)" in out
    assert "anna     presses 1" in out
    assert "outcome answered by anna" in out

    code, out, _ = intake("contacts", "--json")
    [contact] = json.loads(out)
    assert contact["reference"] == "HD-" + contact["reference"][3:].zfill(6)
    assert contact["channel"] == "call"
    assert contact["organisation"] == "Ziekenhuis Noord"
    assert contact["caller"] == "+31612345678"
    assert contact["outcome"] == "answered"
    assert contact["answered_by"] == "anna"
    assert contact["call_sid"].startswith("CA")
    assert contact["started_at"] == "2026-11-23T09:15:00+00:00"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            ["--at", "2026-11-23T10:15", "--answer", "none"],
            ["nobody took the call", "outcome voicemail"],
        ),
        (
            ["--at", "2026-11-23T10:15", "--answer", "bram"],
            ["bram     presses 1", "answered by bram"],
        ),
        (["--at", "2026-11-22T10:15"], ["gesloten", "morgen om 8.30 uur", "outcome voicemail"]),
        (["--at", "2026-04-27T10:15"], ["Koningsdag", "outcome voicemail"]),
    ],
)
def test_simulated_calls_at_other_moments(intake, extra: list[str], expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    intake("load-config", str(EXAMPLE_DESK))

    code, out, err = intake("simulate-call", "--from", "0612345678", *extra)

    assert code == 0, err
    for text in expected:
        assert text in out


def test_contacts_since_filters_by_day(intake) -> None:  # type: ignore[no-untyped-def]
    intake("load-config", str(EXAMPLE_DESK))
    intake("simulate-call", "--from", "0612345678", "--at", "2026-11-20T10:15")
    intake("simulate-call", "--from", "0687654321", "--at", "2026-11-23T10:15")

    code, out, _ = intake("contacts", "--since", "2026-11-21", "--json")

    assert code == 0
    assert [c["caller"] for c in json.loads(out)] == ["+31687654321"]
    assert "+31687654321" in intake("contacts")[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["who", "--at", "next tuesday"], "is not an ISO time"),
        (["contacts", "--since", "yesterday"], "is not a date"),
        (["load-config", "no-such-file.toml"], "cannot read no-such-file.toml"),
        (["simulate-call", "--from", "0612345678", "--answer", "zoe"], "not a colleague"),
        (["export-config"], "no desk definition loaded yet"),
    ],
)
def test_errors_are_one_line_and_a_non_zero_exit(intake, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    if args[0] in ("who", "simulate-call"):
        intake("load-config", str(EXAMPLE_DESK))

    code, _out, err = intake(*args)

    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_an_uninitialised_database_says_to_run_init(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}",
        "INTAKE_INSTANCE_PATH": str(tmp_path / "instance"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        """The installed `intake` command on the fresh database, as an operator types it."""
        return subprocess.run(
            [str(Path(sys.executable).with_name("intake")), *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
        )

    result = run("who")

    assert result.returncode == 1
    assert (
        result.stderr.strip() == "intake: the database has no tables yet: run `intake init` first"
    )

    init = run("init")
    assert init.returncode == 0, init.stderr
    loaded = run("load-config", str(EXAMPLE_DESK))
    assert loaded.returncode == 0, loaded.stderr
