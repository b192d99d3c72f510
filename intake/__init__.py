"""The application: `create_app()` for gunicorn, the CLI and the tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then the environment, then `test_config` (which skips the environment)."""
    app = Flask(__name__, instance_relative_config=False)
    configure(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    register_routes(app)
    return app


def configure(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    from .clock import system_clock
    from .settings import from_environment

    app.config.update(CLOCK=system_clock, PUBLIC_URL="", TWILIO_AUTH_TOKEN="", INSECURE_DEV=False)
    if test_config is None:
        app.config.update(from_environment())
    else:
        app.config.update(test_config)


def register_extensions(app: Flask) -> None:
    from . import auth, db, deskstore, i18n

    db.init_app(app)
    deskstore.init_app(app)
    auth.init_app(app)
    i18n.init_app(app)


def register_blueprints(app: Flask) -> None:
    from flask_wtf.csrf import CSRFProtect

    from voice import bp as voice_bp

    from .dashboard import bp as dashboard_bp

    csrf = CSRFProtect(app)
    # Twilio posts to the webhooks; they are guarded by its signature, not by a form token.
    csrf.exempt(voice_bp)
    app.register_blueprint(voice_bp)
    app.register_blueprint(dashboard_bp)


def register_routes(app: Flask) -> None:
    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "ok", 200
