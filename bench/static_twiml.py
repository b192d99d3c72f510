"""The baseline for bench/voice.py: a tiny Flask app that answers with a fixed TwiML document.

No signature check, no database, no routing: what serving a call's answer costs in Flask
under gunicorn on this machine, against which `/voice/incoming` is measured. Serve it from
the repository root with

    gunicorn 'bench.static_twiml:create_app()'

(not with bench/ on the path: bench/voice.py would hide the app's `voice` package).
"""

from __future__ import annotations

from flask import Flask, Response

# About the size and shape of the real answer: a greeting and a <Dial> ringing colleagues.
TWIML = (
    b'<?xml version="1.0" encoding="UTF-8"?><Response><Say language="nl-NL">'
    b"Welkom bij de Helpdesk Digitale Zorg. U wordt doorverbonden met een medewerker. "
    b"Een moment geduld alstublieft.</Say>"
    b'<Dial action="http://127.0.0.1/voice/dial-result?contact=1" answerOnBridge="true"'
    b' method="POST" timeout="20">'
    b'<Number method="POST" url="http://127.0.0.1/voice/screen?contact=1&amp;staff=anna">'
    b"+31612345678</Number>"
    b'<Number method="POST" url="http://127.0.0.1/voice/screen?contact=1&amp;staff=bram">'
    b"+31623456789</Number>"
    b"</Dial></Response>"
)


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/voice/incoming")
    def incoming() -> Response:
        return Response(TWIML, status=200, mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> tuple[str, int]:
        return "ok", 200

    return app
