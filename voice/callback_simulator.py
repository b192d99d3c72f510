"""Twilio's side of a callback through the helpline, played locally against the real
webhooks (`intake simulate-callback`): the colleague's phone rings from the line, the
colleague hears who it is for and presses 1 (or not), the patient's phone rings showing
the line, the patient answers (or not), and the call ends."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

from intake.core.clock import SimClock
from routing.desk import Staff

from .simulator import ACCOUNT_SID, Step, TwilioSide, new_sid, say_problem


@dataclass
class CallbackSimulation:
    twilio: TwilioSide
    clock: SimClock
    callback_id: int
    colleague: Staff
    line: str
    press: bool = True  # the colleague presses 1
    patient_answers: bool = True
    talk_seconds: int = 120
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    steps: list[Step] = field(default_factory=list)

    def note(self, who: str, text: str) -> None:
        self.steps.append(Step(self.clock(), who, text))

    def request(self, url: str, extra: Mapping[str, str] | None = None) -> ET.Element | None:
        params = {
            "AccountSid": ACCOUNT_SID,
            "ApiVersion": "2010-04-01",
            "CallSid": self.call_sid,
            "From": self.line,
            "To": self.colleague.phone,
            "Direction": "outbound-api",
            "CallStatus": "in-progress",
            **(extra or {}),
        }
        reply = self.twilio.post(url, params)
        self.note("twilio", f"POST {url.split('?')[0].split('/voice')[-1]} -> {reply.status}")
        if reply.status >= 400:
            raise RuntimeError(f"{url} answered {reply.status}: {reply.body[:200]}")
        return reply.twiml

    def hear(self, who: str, document: ET.Element | None) -> None:
        for say in document.iter("Say") if document is not None else ():
            problem = say_problem(say)
            text = (say.text or "").strip()
            self.note(who if problem is None else "twilio", f'hears "{text}"' if problem is None
                      else f'cannot say "{text}": {problem}')  # fmt: skip

    def run(self) -> list[Step]:
        who = self.colleague.id
        self.note("twilio", f"rings {who} ({self.colleague.phone}) from the line {self.line}")
        self.clock.advance(5)
        self.note(who, "picks up")
        prompt = self.request(
            self.twilio.url("voice.callback_colleague", callback=self.callback_id)
        )
        self.hear(who, prompt)
        gather = prompt.find("Gather") if prompt is not None else None
        status = "completed"
        if gather is not None and self.press:
            self.clock.advance(4)
            self.note(who, "presses 1")
            dial_doc = self.request(gather.get("action", ""), {"Digits": "1"})
            dial = dial_doc.find("Dial") if dial_doc is not None else None
            if dial is not None:
                self.dial(dial)
        else:
            self.clock.advance(10)
            self.note(who, "does not press 1; Twilio hangs up")
        self.clock.advance(1)
        self.request(
            self.twilio.url("voice.callback_status", callback=self.callback_id),
            {"CallStatus": status},
        )
        return self.steps

    def dial(self, dial: ET.Element) -> None:
        patient = ", ".join((n.text or "").strip() for n in dial.iter("Number"))
        self.note("twilio", f"rings the patient {patient}, showing {dial.get('callerId', '?')}")
        if self.patient_answers:
            self.clock.advance(8)
            self.note("patient", "picks up")
            self.clock.advance(self.talk_seconds)
            self.note("patient", f"hangs up after {self.talk_seconds} s")
            extra = {"DialCallStatus": "completed", "DialCallDuration": str(self.talk_seconds)}
        else:
            self.clock.advance(int(dial.get("timeout", "30")))
            self.note("twilio", "the patient did not answer")
            extra = {"DialCallStatus": "no-answer", "DialCallDuration": "0"}
        after = self.request(dial.get("action", ""), {**extra, "DialCallSid": new_sid("CA")})
        self.hear(self.colleague.id, after)
