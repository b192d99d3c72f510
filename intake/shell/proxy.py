"""Behind a TLS proxy: which of its X-Forwarded-* headers the app believes.

INTAKE_TRUSTED_PROXIES is the number of proxies in front of the app that each set
X-Forwarded-For, -Proto, -Host and -Port (deploy/nginx/intake.conf is one). At 0, the
default, none is believed: anyone who reaches the app can send those headers. Set, werkzeug's
ProxyFix takes the last that many values, so `request.remote_addr` is the client's address,
and the scheme and host are the ones the client used.

Neither setting decides what Twilio is told or what a signature is checked against: both are
built from INTAKE_PUBLIC_URL (voice/signature.py), and the session cookies are Secure when
that is https (intake/shell/auth.py), whatever the headers say.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(app: Flask) -> None:
    hops = int(app.config.get("TRUSTED_PROXIES", 0))
    if hops > 0:
        # A reverse proxy mounted at the root: no X-Forwarded-Prefix.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )
