"""Which URL Twilio used, and whether Twilio really signed the request.

Behind a TLS proxy the app sees http://internal-host/...; Twilio signed
https://public-host/.... With INTAKE_PUBLIC_URL set, both the URLs we hand to Twilio and
the URL we check signatures against are built from it, never from X-Forwarded-* headers
(which anyone can send).
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, request, url_for
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

log = logging.getLogger(__name__)


def twilio_url(endpoint: str, **values: Any) -> str:
    """The absolute URL Twilio should request for `endpoint`: the one place they are built."""
    public = current_app.config.get("PUBLIC_URL", "")
    if public:
        return str(public) + url_for(endpoint, **values)
    return url_for(endpoint, _external=True, **values)


def requested_url() -> str:
    """The URL of this request as Twilio saw it (and signed it)."""
    public = current_app.config.get("PUBLIC_URL", "")
    query = request.query_string.decode("latin-1")
    if public:
        path = request.script_root + request.path
        return str(public) + path + (f"?{query}" if query else "")
    return request.base_url + (f"?{query}" if query else "")


def is_signed_by_twilio() -> bool:
    """Checks X-Twilio-Signature over the URL and every form field received."""
    token = current_app.config.get("TWILIO_AUTH_TOKEN", "")
    if not token:
        if current_app.config.get("INSECURE_DEV"):
            log.warning("INTAKE_INSECURE_DEV: accepting an unsigned webhook (never in production)")
            return True
        log.error("TWILIO_AUTH_TOKEN is not set: refusing webhook %s", request.path)
        return False
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not signature:
        return False
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER, ""))
    validator = RequestValidator(token)
    return bool(validator.validate(requested_url(), request.form, signature, algorithm))
