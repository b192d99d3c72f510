"""How the dashboard writes numbers, phone numbers, durations and shares in the user's language.

One place, so the Now page, the contact log, the demand page and the CSV downloads write a
number the same way (Babel, in the locale Flask-Babel chose for the user).
"""

from __future__ import annotations

from datetime import timedelta

import phonenumbers
from babel.lists import format_list
from babel.numbers import get_decimal_symbol
from babel.units import format_unit
from flask_babel import format_decimal, format_percent, format_timedelta, get_locale

from intake.core.phones import DEFAULT_REGION, is_withheld
from intake.shell.dashboard import bp
from intake.shell.dashboard.labels import _

# The desk's own country: its numbers are written as people there dial them ("06 12345678"),
# any other country's in international form ("+32 470 12 34 56"), never as a foreign national
# number a colleague would dial wrongly.
DESK_REGION = DEFAULT_REGION


def _parsed(caller: str) -> phonenumbers.PhoneNumber | None:
    if not caller.startswith("+") or is_withheld(caller):
        return None
    try:
        number = phonenumbers.parse(caller, None)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def phone_link(caller: str | None) -> str | None:
    """The `tel:` address (E.164) of a number a colleague can call back; None for any other."""
    number = _parsed(caller or "")
    if number is None:
        return None
    return "tel:" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_text(caller: str | None) -> str:
    """A caller as a person reads it: "06 12345678", "+32 470 12 34 56", "withheld"."""
    text = (caller or "").strip()
    if is_withheld(text):
        return _("withheld")
    if text == "unknown":  # Twilio sent no caller at all (intake.core.phones.caller_identity)
        return _("unknown")
    number = _parsed(text)
    if number is None:
        return text
    own = phonenumbers.region_code_for_number(number) == DESK_REGION
    formats = phonenumbers.PhoneNumberFormat
    style = formats.NATIONAL if own else formats.INTERNATIONAL
    return phonenumbers.format_number(number, style)


def number(value: int | float) -> str:
    """12345 -> "12.345" in Dutch, "12,345" in English; a fraction keeps one decimal."""
    if isinstance(value, int):
        return str(format_decimal(value, format="#,##0"))
    return str(format_decimal(value, format="#,##0.0"))


def percent(fraction: float | None) -> str:
    """0.125 -> "12,5%" in Dutch, "12.5%" in English; a whole share without decimals."""
    if fraction is None:
        return ""
    return str(format_percent(fraction, format="#,##0.#%"))


def duration(seconds: float | None) -> str:
    """A wait in words, to the unit that matters: "9 dagen", "3 uur", "25 seconden"."""
    if seconds is None:
        return ""
    return str(format_timedelta(timedelta(seconds=seconds), threshold=1.5))


def call_length(seconds: int | float | None) -> str:
    """How long a call or a recording lasted, exact enough to tell one from another:
    "45 seconden", "12 minuten en 34 seconden", "1 uur en 3 minuten" (no seconds past an
    hour). `duration` rounds to one unit, which suits a wait but not a call."""
    if seconds is None:
        return ""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "duration-hour"), (minutes, "duration-minute")]
    if not hours:
        parts.append((secs, "duration-second"))
    locale = str(get_locale() or "nl")
    words = [format_unit(n, unit, length="long", locale=locale) for n, unit in parts if n]
    if not words:  # a call of no length at all
        words = [format_unit(0, "duration-second", length="long", locale=locale)]
    return str(format_list(words, locale=locale))


def decimal_symbol() -> str:
    return str(get_decimal_symbol(str(get_locale() or "nl")))


def csv_delimiter() -> str:
    """Dutch Excel splits on semicolons (its list separator, as the comma is its decimal)."""
    return ";" if decimal_symbol() == "," else ","


def plain_decimal(value: float, places: int = 1) -> str:
    """A number for a spreadsheet: no thousands separator, the locale's decimal symbol."""
    return f"{value:.{places}f}".replace(".", decimal_symbol())


# The formats as Jinja filters, for the templates.
for _filter, _name in (
    (phone_text, "phone"),
    (phone_link, "phone_link"),
    (number, "number"),
    (percent, "percent"),
    (duration, "duration"),
    (call_length, "call_length"),
):
    bp.add_app_template_filter(_filter, _name)
