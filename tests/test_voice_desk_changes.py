"""A desk the coordinator loads counts for the very next call, whichever process serves it.

Each web process keeps the parsed desk in memory and asks the database only for the newest
version's id with every call; this proves that a `load-config` run as its own process is
seen by a server that has the old desk in memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flask import Flask

from routing.desk import Desk

from .conftest import ANNA, BRAM, EXAMPLE_DESK, Twilio, desk_versions, new_call
from .twiml import dialled

INTAKE = Path(sys.executable).with_name("intake")
ANNA_NEW_PHONE = "+31611223344"


def test_a_desk_loaded_by_another_process_counts_for_the_next_call(
    app: Flask, desk: Desk, twilio: Twilio, database_url: str, tmp_path: Path
) -> None:
    assert dialled(twilio.call()) == [ANNA, BRAM]  # this process now holds the desk

    changed = tmp_path / "helpdesk.toml"
    changed.write_text(EXAMPLE_DESK.read_text().replace('"06 1234 5678"', '"06 1122 3344"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "TWILIO_"))}
    env.update(INTAKE_DATABASE_URL=database_url, INTAKE_INSTANCE_PATH=str(tmp_path / "instance"))
    done = subprocess.run(
        [str(INTAKE), "load-config", str(changed)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert desk_versions(app) == 2

    assert dialled(new_call(twilio).call()) == [ANNA_NEW_PHONE, BRAM]
