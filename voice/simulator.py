"""Twilio's side of a call, played locally against the real webhooks.

`TwilioSide` signs every request with the `twilio` package's own `RequestValidator`, as
Twilio does, posts it to the app in-process and parses the TwiML that comes back.
`simulate_call` follows that TwiML the way Twilio would (say, dial, screen, record, hang
up) and writes down each step; `intake simulate-call` prints them.
"""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from flask import Flask
from twilio.request_validator import RequestValidator

from intake.core.announcements import inspect_audio
from intake.core.clock import SimClock
from intake.core.errors import RecordingRefused
from routing.desk import Desk
from routing.voices import find_voice, fits

from .signature import twilio_url

ACCOUNT_SID = "AC" + "5" * 32  # any well-formed sid: the simulation never reaches Twilio


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def say_problem(say: ET.Element) -> str | None:
    """Why Twilio would fail this <Say> (a voice that does not speak its language, text over
    its limit), or None when Twilio speaks it."""
    name, language = say.get("voice", ""), say.get("language", "")
    found = find_voice(name) if name else None
    if found is None:
        return f"Twilio lists no voice {name!r} for us" if name else "no voice (Twilio's man)"
    voice = found[1]
    if voice.name != name or voice.locale != language:
        return f"{voice.name} speaks {voice.locale}, not {language or 'en-US'}"
    if not fits(say.text or "", voice):
        return f"more text than one <Say> with {name} may hold"
    return None


@dataclass
class Reply:
    status: int
    content_type: str
    body: str
    twiml: ET.Element | None  # the parsed <Response>, when the answer was TwiML


class TwilioSide:
    """Sends signed webhook requests to `app` exactly as Twilio would."""

    def __init__(self, app: Flask, auth_token: str | None = None) -> None:
        self.app = app
        self.auth_token = auth_token or app.config["TWILIO_AUTH_TOKEN"]
        self.validator = RequestValidator(self.auth_token)
        self.client = app.test_client()

    def url(self, endpoint: str, **values: object) -> str:
        """The absolute URL a Twilio number would be configured with for `endpoint`."""
        with self.app.test_request_context():
            return twilio_url(endpoint, **values)

    def post(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """POST form `params` to the absolute `url`, signed unless `signature` is given."""
        if signature is None:
            signature = self.validator.compute_signature(url, dict(params))
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        all_headers = {"X-Twilio-Signature": signature, **(headers or {})}
        response = self.client.post(
            path,
            data=dict(params),
            headers=all_headers,
            base_url=f"{parts.scheme}://{parts.netloc}",
        )
        body = response.get_data(as_text=True)
        # Our own app's answer, parsed as Twilio would: not untrusted input.
        tree = ET.fromstring(body) if response.mimetype == "text/xml" else None  # noqa: S314
        return Reply(response.status_code, response.mimetype or "", body, tree)

    def fetch(self, url: str) -> tuple[int, str, bytes] | None:
        """GET a <Play> URL as Twilio does (unsigned); None when it is not on this app."""
        parts = urlsplit(url)
        with self.app.test_request_context():
            ours = twilio_url("voice.incoming")
        if urlsplit(ours).netloc != parts.netloc:
            return None
        response = self.client.get(parts.path, base_url=f"{parts.scheme}://{parts.netloc}")
        return response.status_code, response.mimetype or "", response.get_data()


@dataclass
class Step:
    at: datetime
    who: str
    text: str


@dataclass
class CallSimulation:
    """One inbound call; `answer` is the colleague who presses 1, or None for nobody."""

    twilio: TwilioSide
    clock: SimClock
    desk: Desk
    caller: str
    called: str
    answer: str | None
    talk_seconds: int = 180
    message_seconds: int = 25
    press_in_queue: str = ""  # the key the caller presses while waiting in the queue
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    steps: list[Step] = field(default_factory=list)
    started: datetime | None = None

    def note(self, who: str, text: str) -> None:
        self.steps.append(Step(self.clock(), who, text))

    def base_params(self) -> dict[str, str]:
        return {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "From": self.caller,
            "Caller": self.caller,
            "To": self.called,
            "Called": self.called,
            "CallerCountry": "NL",
            "CalledCountry": "NL",
        }

    def request(self, url: str, extra: Mapping[str, str] | None = None) -> Reply:
        params = {**self.base_params(), **(extra or {})}
        reply = self.twilio.post(url, params)
        self.note("twilio", f"POST {urlsplit(url).path} -> {reply.status} {reply.content_type}")
        if reply.status >= 400:
            raise RuntimeError(f"{urlsplit(url).path} answered {reply.status}: {reply.body[:200]}")
        return reply

    # --- following TwiML as Twilio does ------------------------------------------------

    def run(self) -> list[Step]:
        self.started = self.clock()
        self.note("caller", f"{self.caller} calls {self.called}")
        reply: Reply | None = self.request(self.twilio.url("voice.incoming"))
        while reply is not None and reply.twiml is not None:
            reply = self.execute(reply.twiml)
        self.clock.advance(1)
        seconds = int((self.clock() - self.started).total_seconds())
        self.note("caller", "the call ends")
        self.request(
            self.twilio.url("voice.status"),
            {"CallStatus": "completed", "CallDuration": str(seconds)},
        )
        return self.steps

    def execute(self, document: ET.Element) -> Reply | None:
        """Run one TwiML document for the caller; the next document, or None at the end."""
        for verb in document:
            if verb.tag == "Say":
                self.hear_say("caller", verb)
                self.clock.advance(len((verb.text or "").split()) * 0.4)
            elif verb.tag == "Play":
                self.hear_play("caller", verb)
            elif verb.tag == "Dial":
                return self.dial(verb)
            elif verb.tag == "Record":
                return self.record(verb)
            elif verb.tag == "Enqueue":
                return self.enqueue(verb)
            elif verb.tag == "Hangup":
                self.note("twilio", "hangs up")
                return None
            else:
                self.note("twilio", f"skips <{verb.tag}>")
        return None

    def hear_say(self, who: str, say: ET.Element) -> None:
        """`who` hears the text of a <Say>, unless Twilio would refuse to speak it."""
        text = (say.text or "").strip()
        problem = say_problem(say)
        if problem is None:
            self.note(who, f'hears "{text}"')
        else:
            self.note("twilio", f'cannot say "{text}" to {who}: {problem}')

    def hear_play(self, who: str, play: ET.Element) -> None:
        """`who` hears a recording: ours fetched as Twilio fetches it, anything else named."""
        url = (play.text or "").strip()
        fetched = self.twilio.fetch(url)
        if fetched is None:
            self.note(who, f"hears the audio at {url}")
            return
        status, content_type, audio = fetched
        if status != 200 or not content_type.startswith("audio/"):
            self.note("twilio", f"cannot play {urlsplit(url).path}: {status} {content_type}")
            return
        try:
            seconds = inspect_audio(audio).seconds
        except RecordingRefused as refused:
            self.note("twilio", f"cannot play {urlsplit(url).path}: {refused}")
            return
        self.note(who, f"hears the desk's recording ({content_type}, {seconds:.0f} s)")
        self.clock.advance(seconds)

    def who(self, number: str) -> str:
        for staff in self.desk.staff:
            if staff.phone == number:
                return staff.id
        if number == self.desk.voice.fallback_number:
            return "fallback number"
        return number

    def dial(self, dial: ET.Element) -> Reply | None:
        numbers = [(n.text or "").strip() for n in dial.iter("Number")]
        ringing = ", ".join(f"{self.who(n)} ({n})" for n in numbers)
        self.note("twilio", f"rings {ringing}; the caller hears ringing")
        timeout = int(dial.get("timeout", "30"))
        bridged: tuple[str, str] | None = None
        for number_el in dial.iter("Number"):
            number = (number_el.text or "").strip()
            person = self.who(number)
            if self.answer is None or person != self.answer:
                continue
            leg_sid = new_sid("CA")
            self.clock.advance(min(6, timeout - 1))
            self.note(person, "picks up")
            if self.leg(number_el, person, leg_sid):
                bridged = (person, leg_sid)
                break
        extra: dict[str, str]
        if bridged is not None:
            person, leg_sid = bridged
            self.note("twilio", f"connects the caller with {person}; the other phones stop")
            self.clock.advance(self.talk_seconds)
            self.note(person, f"hangs up after {self.talk_seconds} s")
            extra = {
                "DialCallStatus": "completed",
                "DialCallSid": leg_sid,
                "DialCallDuration": str(self.talk_seconds),
            }
        else:
            self.clock.advance(timeout)
            self.note("twilio", f"nobody took the call within {timeout} s")
            extra = {"DialCallStatus": "no-answer", "DialCallSid": new_sid("CA")}
        action = dial.get("action")
        if action is None:
            return None
        return self.request(action, extra)

    def leg(self, number_el: ET.Element, person: str, leg_sid: str) -> bool:
        """A colleague's phone picked up: run its <Number url>. True when bridged."""
        url = number_el.get("url")
        if url is None:
            return True
        leg_params = {
            "CallSid": leg_sid,
            "ParentCallSid": self.call_sid,
            "Direction": "outbound-dial",
            "CallStatus": "in-progress",
            "To": (number_el.text or "").strip(),
            "Called": (number_el.text or "").strip(),
        }
        reply = self.request(url, leg_params)
        if reply.twiml is None:
            return False
        for verb in reply.twiml:
            if verb.tag == "Gather":
                for say in verb.iter("Say"):
                    self.hear_say(person, say)
                self.clock.advance(3)
                self.note(person, "presses 1")
                result = self.request(verb.get("action", url), {**leg_params, "Digits": "1"})
                if result.twiml is None:
                    return False
                return all(self.hear(person, after) for after in result.twiml)
            if not self.hear(person, verb):
                return False
        return True

    def hear(self, person: str, verb: ET.Element) -> bool:
        """What a colleague's leg does with a <Say> or <Hangup>; False when the leg ends."""
        if verb.tag == "Say":
            self.hear_say(person, verb)
        if verb.tag == "Hangup":
            self.note("twilio", f"ends {person}'s leg")
            return False
        return True

    def record(self, record: ET.Element) -> Reply | None:
        self.note("caller", "hears a beep")
        recording_sid = new_sid("RE")
        recording_url = (
            f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/{recording_sid}"
        )
        callback = record.get("recordingStatusCallback")
        if self.message_seconds <= 0:
            self.clock.advance(int(record.get("timeout", "5")))
            self.note("caller", "says nothing")
            if callback:
                self.request(
                    callback,
                    {
                        "RecordingSid": recording_sid,
                        "RecordingStatus": "absent",
                        "RecordingDuration": "0",
                        "ErrorCode": "16102",
                    },
                )
            return None  # Twilio goes on with the verbs after <Record>
        self.clock.advance(self.message_seconds)
        self.note("caller", f"leaves a message of {self.message_seconds} s and hangs up")
        fields = {
            "RecordingSid": recording_sid,
            "RecordingUrl": recording_url,
            "RecordingDuration": str(self.message_seconds),
        }
        reply: Reply | None = None
        action = record.get("action")
        if action:
            reply = self.request(action, {**fields, "Digits": "hangup"})
            if reply.twiml is not None:
                for verb in reply.twiml:
                    if verb.tag == "Say":
                        self.note("twilio", f'would say "{(verb.text or "").strip()}" (gone)')
        if callback:
            self.request(callback, {**fields, "RecordingStatus": "completed"})
        return None

    # --- the queue ---------------------------------------------------------------------

    # A wait is bounded: a desk's max_wait_seconds is at most an hour, asked every ~25 s.
    MAX_WAIT_ROUNDS = 200

    def enqueue(self, enqueue: ET.Element) -> Reply | None:
        """Wait in the queue as Twilio holds a caller: its wait URL, over and over, until
        the TwiML says <Leave> (or the caller presses the key they were told to)."""
        self.note("twilio", f"puts the caller in the queue {(enqueue.text or '').strip()}")
        queued = self.clock()
        result = "hangup"
        for _ in range(self.MAX_WAIT_ROUNDS):
            waited = int((self.clock() - queued).total_seconds())
            wait = self.request(
                enqueue.get("waitUrl", ""),
                {"QueueSid": "QU" + "5" * 32, "QueueTime": str(waited), "AvgQueueTime": "0"},
            )
            if wait.twiml is None:
                break
            left = self.wait_round(wait.twiml)
            if left:
                result = "leave"
                break
        action = enqueue.get("action")
        if action is None:
            return None
        waited = int((self.clock() - queued).total_seconds())
        return self.request(action, {"QueueResult": result, "QueueTime": str(waited)})

    def wait_round(self, document: ET.Element) -> bool:
        """One run of the wait URL's TwiML; True when the caller leaves the queue."""
        for verb in document:
            if verb.tag == "Say":
                self.hear_say("caller", verb)
                self.clock.advance(len((verb.text or "").split()) * 0.4)
            elif verb.tag == "Gather":
                for say in verb.iter("Say"):
                    self.hear_say("caller", say)
                if self.press_in_queue:
                    self.note("caller", f"presses {self.press_in_queue}")
                    pressed = self.request(verb.get("action", ""), {"Digits": self.press_in_queue})
                    self.press_in_queue = ""
                    if pressed.twiml is not None:
                        return self.wait_round(pressed.twiml)
                self.clock.advance(int(verb.get("timeout", "5")))
            elif verb.tag == "Play":
                self.hear_play("caller", verb)
            elif verb.tag == "Pause":
                self.clock.advance(int(verb.get("length", "1")))
            elif verb.tag == "Leave":
                self.note("twilio", "takes the caller out of the queue")
                return True
        return False
