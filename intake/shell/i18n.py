"""Dutch first, English second, per user (Flask-Babel).

The catalogs live in git as .po files; they are compiled into the instance folder when the
app starts (and again whenever a .po is newer), so no generated file is kept in git and no
build step is needed before serving.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request, session
from flask_babel import Babel, get_locale
from flask_login import current_user

SOURCE = Path(__file__).parent / "translations"
LANGUAGES = ("nl", "en")
DEFAULT = "nl"


def compile_catalogs(target: Path) -> Path:
    """Compile every translations/<lang>/LC_MESSAGES/messages.po into `target`."""
    for po in SOURCE.glob("*/LC_MESSAGES/messages.po"):
        mo = target / po.relative_to(SOURCE).with_suffix(".mo")
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as source:
            catalog = read_po(source, locale=po.parent.parent.name)
        # Several workers may start at once: each writes its own file, then swaps it in.
        handle, partial = tempfile.mkstemp(dir=mo.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            write_mo(out, catalog)
        os.replace(partial, mo)
    return target


# Between the password and the second factor the user is known but not logged in: the
# code's page speaks their language (intake/shell/dashboard/account.py sets this).
LOGIN_LANGUAGE = "login_language"


def select_locale() -> str:
    if current_user.is_authenticated and current_user.language in LANGUAGES:
        return str(current_user.language)
    if session.get(LOGIN_LANGUAGE) in LANGUAGES:
        return str(session[LOGIN_LANGUAGE])
    return request.accept_languages.best_match(LANGUAGES) or DEFAULT


def init_app(app: Flask) -> None:
    compiled = compile_catalogs(Path(app.config["INSTANCE_PATH"]) / "translations")
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled)
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    Babel(app, locale_selector=select_locale)
    app.jinja_env.globals["get_locale"] = get_locale
