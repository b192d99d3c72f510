"""Which URL Twilio used, and whether Twilio really signed the request.

Behind a TLS proxy the app sees http://internal-host/...; Twilio signed
https://public-host/.... With INTAKE_PUBLIC_URL set, both the URLs we hand to Twilio and
the URL we check signatures against are built from it, never from X-Forwarded-* headers
(which anyone can send).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from flask import current_app, request, url_for
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    compare,
    get_signature_algorithm,
)

log = logging.getLogger(__name__)

PATHS = "voice.paths"  # app.extensions: each endpoint's path, per script root
# What werkzeug's url_for leaves unquoted in a query (the WHATWG URL spec's safe set).
QUERY_SAFE = "!$'()*,/:;?@"


def twilio_url(endpoint: str, **values: Any) -> str:
    """The absolute URL Twilio should request for `endpoint`: the one place they are built.

    With INTAKE_PUBLIC_URL set, the endpoint's path is looked up once per script root and
    the query added as url_for adds it: an answer names four or more of these URLs, and
    url_for's rule building was a tenth of a call's first request.
    """
    public = current_app.config.get("PUBLIC_URL", "")
    if not public:
        return url_for(endpoint, _external=True, **values)
    if not all(isinstance(v, str | int) for v in values.values()):
        return str(public) + url_for(endpoint, **values)
    paths: dict[tuple[str, str], str] = current_app.extensions.setdefault(PATHS, {})
    key = (endpoint, request.script_root)
    path = paths.get(key)
    if path is None:
        path = paths[key] = url_for(endpoint)
    return str(public) + path + ("?" + urlencode(values, safe=QUERY_SAFE) if values else "")


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
    url = requested_url()
    # Twilio signs the URL it requested, which is the one we rebuilt: one signature settles
    # nearly every request. Only a mismatch pays for validate(), which computes two (the
    # URL with and without its port) and is the judge of anything unusual.
    try:
        if compare(validator.compute_signature(url, request.form, algorithm), signature):
            return True
    except ValueError:  # an algorithm this twilio does not know: validate() logs and refuses
        pass
    return bool(validator.validate(url, request.form, signature, algorithm))
