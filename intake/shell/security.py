"""The headers every response carries: no framing by another site, no sniffing, no
referrer to elsewhere, a Content-Security-Policy for the dashboard's own files, and no
copy of a dashboard page (patient data) in any cache.

HSTS is nginx's (deploy/nginx/intake.conf), where TLS ends; set here too it would be sent
twice. nginx also sends the framing, sniffing and referrer headers, with the same values,
for its own error pages; the app sends them for a deployment without nginx in front.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.wrappers import Response

# No inline script and no inline style anywhere (tests/test_browser_layout.py visits every
# page and counts what the browser refused); nothing loads from another site.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

# The blueprints whose pages show patient data (or lead to it): never stored by a cache,
# the browser's own included.
PRIVATE_BLUEPRINTS = ("dashboard",)


def add_security_headers(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.blueprint in PRIVATE_BLUEPRINTS and "no-store" not in response.headers.get(
        "Cache-Control", ""
    ):
        response.headers["Cache-Control"] = "no-store"
    return response


def init_app(app: Flask) -> None:
    app.after_request(add_security_headers)
