"""The application factory: `create_app()` for gunicorn, the CLI and the tests.

The one place that knows every part: it wires the core, the phone line (`voice`), mail
and the dashboard into one Flask app.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from intake.core import db, deskstore
from intake.core.announcements import MAX_BYTES as MAX_UPLOAD_BYTES
from intake.core.clock import system_clock
from intake.core.notices import set_voicemail_notifier
from intake.shell import auth, errors, health, i18n, metrics, oidc, security
from intake.shell.dashboard import bp as dashboard_bp
from intake.shell.proxy import trust_proxies
from intake.shell.settings import from_environment
from mail.notices import voicemail_left
from voice import bp as voice_bp
from voice import media as voice_media


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Defaults, then the environment, then `test_config` (which skips the environment)."""
    app = Flask(__name__, instance_relative_config=False)
    configure(app, test_config)
    register_extensions(app)
    register_blueprints(app)
    register_routes(app)
    register_errorhandlers(app)
    return app


def configure(app: Flask, test_config: Mapping[str, Any] | None) -> None:
    app.config.update(
        CLOCK=system_clock,
        PUBLIC_URL="",
        TWILIO_AUTH_TOKEN="",
        INSECURE_DEV=False,
        # The largest request anyone has reason to send: a recording's upload (at most 5 MB)
        # and its form. Anything larger is refused before it is read, with or without nginx.
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES + 1024 * 1024,
    )
    if test_config is None:
        app.config.update(from_environment())
    else:
        app.config.update(test_config)


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    deskstore.init_app(app)
    auth.init_app(app)
    oidc.init_app(app)
    i18n.init_app(app)
    # Framing, sniffing, referrers, CSP and no-store on the dashboard's pages.
    security.init_app(app)
    # The phone line records a voicemail; mail tells the colleagues about it.
    set_voicemail_notifier(app, voicemail_left)
    # Behind nginx: X-Forwarded-* believed only as far as INTAKE_TRUSTED_PROXIES says.
    trust_proxies(app)


def register_blueprints(app: Flask) -> None:
    csrf = CSRFProtect(app)
    # Twilio posts to the webhooks; they are guarded by its signature, not by a form token.
    csrf.exempt(voice_bp)
    app.register_blueprint(voice_bp)
    app.register_blueprint(voice_media)
    app.register_blueprint(dashboard_bp)


def register_routes(app: Flask) -> None:
    # /healthz and /readyz for the load balancer; /metrics and the webhooks' latency.
    health.init_app(app)
    metrics.init_app(app)


def register_errorhandlers(app: Flask) -> None:
    # The dashboard's own error pages; a form whose token ran out is asked again.
    errors.init_app(app)
