"""Phone numbers: normalising what people type, and masking numbers in logs."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

DEFAULT_REGION = "NL"


def normalise(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 for a number as a person writes it ("06 1234 5678" -> "+31612345678").

    Raises ValueError with a readable reason when it is not a valid number.
    """
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# How a withheld caller is stored (caller_identity keeps Twilio's marks as they came):
# "anonymous", and Twilio's stand-in numbers for anonymous, restricted, blocked and
# unavailable callers.
WITHHELD = frozenset(
    {
        "anonymous",
        "restricted",
        "+266696687",
        "+7378742833",
        "+2562533",
        "+8656696",
        "+86282452253",
    }
)


def is_withheld(caller: str | None) -> bool:
    return (caller or "").strip().lower() in WITHHELD


def can_call_back(caller: str | None) -> bool:
    """A real number, not withheld: one we may ring (a callback, a call back offered)."""
    text = (caller or "").strip()
    if not text.startswith("+") or is_withheld(text):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(text, None))
    except phonenumbers.NumberParseException:
        return False


@lru_cache(maxsize=4096)
def caller_identity(raw: str | None, region: str = DEFAULT_REGION) -> str:
    """What we record as the caller: E.164 when it is a real number, else the raw text.

    Twilio sends "anonymous", "+266696687" (its mark for a withheld number), "client:…"
    and "sip:…" callers; they are kept as they came, never refused.
    """
    text = (raw or "").strip()
    if not text:
        return "unknown"
    if text.startswith(("client:", "sip:")) or not any(ch.isdigit() for ch in text):
        return text[:200]
    try:
        return normalise(text, region)
    except ValueError:
        return text[:200]


def mask(number: str) -> str:
    """A number as it may appear in application logs: "+31612345678" -> "+316*****678"."""
    if len(number) < 8 or not number.lstrip("+").isdigit():
        return number if number in ("anonymous", "unknown") else "***"
    return number[:4] + "*" * (len(number) - 7) + number[-3:]
