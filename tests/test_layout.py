"""The package picture holds at run time, as import-linter holds it in the source.

import-linter (`make lint`) checks the imports written in the code. These tests check what
Python does with them: that each layer imports on its own in a fresh interpreter, in any
order, and that importing the core or a channel loads nothing above it. And the tests keep
their own rule: no module under tests/ imports a `test_*` module; what two suites share lives
in a helper module beside them (`tests/factories.py`, `tests/two_mailboxes.py`, ...).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

# What must stay unloaded when a module of a lower layer is imported first.
ABOVE = {
    "routing.plan": ("intake", "voice", "mail", "flask", "sqlalchemy"),
    "intake.core.contactlog": ("intake.shell", "voice", "mail"),
    "intake.core.texts": ("intake.shell", "voice", "mail"),
    "voice.twiml": ("intake.shell", "mail"),
    "voice.simulator": ("intake.shell", "mail"),
    "mail.parsing": ("intake.shell", "voice"),
    "mail.poller": ("intake.shell", "voice"),
}


def loaded_after_import(module: str) -> set[str]:
    script = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


@pytest.mark.parametrize(("module", "above"), sorted(ABOVE.items()))
def test_a_lower_layer_imports_first_without_loading_the_layers_above(
    module: str, above: tuple[str, ...]
) -> None:
    loaded = loaded_after_import(module)
    assert module in loaded
    pulled_in = sorted(
        name for name in loaded for top in above if name == top or name.startswith(top + ".")
    )
    assert pulled_in == []


def test_gunicorn_finds_the_app_factory_where_the_readme_says(tmp_path: Path) -> None:
    script = (
        "from gunicorn.util import import_app\n"
        "app = import_app('intake:create_app()')\n"
        "print(sorted(app.blueprints))\n"
    )
    env = {
        **os.environ,
        "INTAKE_INSTANCE_PATH": str(tmp_path),
        "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'intake.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,  # no .env of the project's is read
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['dashboard', 'voice', 'voice_media']"


def test_the_architecture_page_names_every_module_and_only_modules_that_exist() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`((?:intake|voice|mail|routing)/[\w/]+\.py)`", page))
    modules = {
        path.relative_to(ROOT).as_posix()
        for package in ("intake", "voice", "mail", "routing")
        for path in (ROOT / package).rglob("*.py")
    }
    assert sorted(modules - named) == []  # a module the page does not describe
    assert sorted(named - modules) == []  # a module the page describes that is gone


def is_test_module(dotted: str) -> bool:
    return any(part.startswith("test_") for part in dotted.split("."))


def imported_test_modules(source: str) -> list[str]:
    """The `test_*` modules the source imports, written as it imports them."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if is_test_module(alias.name)]
        elif isinstance(node, ast.ImportFrom):
            package = "." * node.level + (node.module or "")
            if is_test_module(node.module or ""):
                found.append(package)
            elif node.module in (None, "tests"):  # from . import test_x, from tests import test_x
                prefix = package if node.module is None else package + "."
                found += [prefix + a.name for a in node.names if is_test_module(a.name)]
    return found


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from .test_lifecycle import make", [".test_lifecycle"]),
        ("from tests.test_health import outbox_row", ["tests.test_health"]),
        ("import tests.test_mail_mailboxes", ["tests.test_mail_mailboxes"]),
        ("from . import factories, test_health", [".test_health"]),
        ("from tests import test_health", ["tests.test_health"]),
        ("def later() -> None:\n    from .test_x import y", [".test_x"]),
        ("from .factories import make_desk\nfrom tests.conftest import local", []),
        ("from .lifecycle_moves import test_named_helper", []),
    ],
)
def test_the_import_check_sees_each_way_of_importing_a_test_module(
    source: str, found: list[str]
) -> None:
    assert imported_test_modules(source) == found


def test_no_module_under_tests_imports_a_test_module() -> None:
    offenders = {
        path.relative_to(ROOT).as_posix(): imported
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if (imported := imported_test_modules(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}  # what two suites share belongs in a helper module under tests/
