"""A local stand-in for Twilio's REST API (Calls), for the `twilio` package's own `Client`.

    POST /2010-04-01/Accounts/{AccountSid}/Calls.json

checked as Twilio checks it: HTTP Basic with the account SID and auth token (else 401,
Twilio's code 20003), the account in the path the authenticated one (20004 otherwise),
`To` a phone number (21211), `From` one of the account's own numbers (21210: Twilio places
calls only from a number it holds for you, which is why the patient sees the line), `Url`
and `StatusCallback` absolute http(s) URLs (21205). A placed call is answered with Twilio's
call resource (a new CA sid, status "queued") and kept in `calls` for the test to play the
rest of the call through the signed webhooks. `refuse_next` makes the next request fail
with the given Twilio error code, as a blocked or suspended account would.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

from tests.serverkit import LocalHTTPService

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CALLS_PATH = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-f]{32})/Calls\.json$")


@dataclass
class PlacedCall:
    sid: str
    to: str
    from_: str
    url: str
    method: str
    status_callback: str
    status_events: list[str]
    timeout: str


@dataclass
class TwilioApi(LocalHTTPService):
    account_sid: str
    auth_token: str
    numbers: set[str]  # the account's own phone numbers
    calls: list[PlacedCall] = field(default_factory=list)
    refused: list[tuple[int, int]] = field(default_factory=list)  # (HTTP status, Twilio code)
    refuse_next: int | None = None  # a Twilio error code for the next request
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __hash__(self) -> int:  # kept in a WeakSet until closed (tests/serverkit.py)
        return id(self)

    def start(self) -> TwilioApi:
        self.start_serving(_handler_for(self))
        return self

    def create_call(
        self, path: str, authorization: str, form: dict[str, list[str]]
    ) -> tuple[int, dict[str, Any]]:
        expected = (
            "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        )
        if not secrets.compare_digest(authorization, expected):
            return self._error(401, 20003, "Authenticate")
        match = CALLS_PATH.match(path)
        if match is None:
            return self._error(404, 20404, "The requested resource was not found")
        if match.group(1) != self.account_sid:
            return self._error(403, 20004, "Method not allowed for this account")
        if self.refuse_next is not None:
            code, self.refuse_next = self.refuse_next, None
            return self._error(400, code, "Account not authorized to call this number")
        one = {key: values[0] for key, values in form.items()}
        to, from_ = one.get("To", ""), one.get("From", "")
        if not E164.match(to):
            return self._error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if from_ not in self.numbers:
            return self._error(
                400, 21210, f"The source phone number provided, {from_}, is not yet verified"
            )
        for name in ("Url", "StatusCallback"):
            if name in one and not re.match(r"^https?://", one[name]):
                return self._error(400, 21205, f"{name} is not a valid URL: {one[name]}")
        if "Url" not in one and "Twiml" not in one:
            return self._error(400, 21205, "Url parameter is required")
        call = PlacedCall(
            sid="CA" + secrets.token_hex(16),
            to=to,
            from_=from_,
            url=one.get("Url", ""),
            method=one.get("Method", "POST"),
            status_callback=one.get("StatusCallback", ""),
            status_events=form.get("StatusCallbackEvent", []),
            timeout=one.get("Timeout", "60"),
        )
        with self._lock:
            self.calls.append(call)
        return 201, {
            "sid": call.sid,
            "account_sid": self.account_sid,
            "to": to,
            "from": from_,
            "status": "queued",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{call.sid}.json",
        }

    def _error(self, status: int, code: int, message: str) -> tuple[int, dict[str, Any]]:
        self.refused.append((status, code))
        return status, {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }


def _handler_for(api: TwilioApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
            status, payload = api.create_call(
                self.path, self.headers.get("Authorization", ""), form
            )
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
