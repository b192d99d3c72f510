"""The texts of both channels as one catalogue, and how a desk's override takes a key's place.

Spoken and mail texts share one key space, one placeholder syntax ({name}) and one rule:
the desk's `[messages.xx]` text when it has one, else the built-in text. The desk
definition checks overrides against `MESSAGE_KEYS` and `PLACEHOLDERS` when it is loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from string import Formatter
from types import MappingProxyType

from routing.desk import LANGUAGES, Desk
from routing.languages import base_language

from . import mail, spoken

TEXTS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        language: MappingProxyType({**spoken.BUILT_IN[language], **mail.BUILT_IN[language]})
        for language in LANGUAGES
    }
)

MESSAGE_KEYS: tuple[str, ...] = (*spoken.SPOKEN_KEYS, *mail.MAIL_KEYS)

PLACEHOLDERS: Mapping[str, frozenset[str]] = MappingProxyType(
    {**spoken.PLACEHOLDERS, **mail.PLACEHOLDERS}
)


def placeholders_in(text: str) -> frozenset[str]:
    """The {names} a text uses. Raises ValueError on broken braces or `{0}`/`{a.b}` fields.

    For the desk definition validator: a text passes when this does not raise and the
    result is a subset of `PLACEHOLDERS[key]`.
    """
    names: set[str] = set()
    for _literal, field, _spec, _conversion in Formatter().parse(text):
        if field is None:
            continue
        if not field.isidentifier():
            raise ValueError(f"placeholder {{{field}}} is not a plain name")
        names.add(field)
    return frozenset(names)


def _fill(text: str, values: Mapping[str, str]) -> str:
    # Only plain names are replaced (no attribute or index look-ups, no format specs), and a
    # missing value is "", so a text can never make a caller hear an error.
    parts: list[str] = []
    for literal, field, _spec, _conversion in Formatter().parse(text):
        parts.append(literal)
        if field is not None:
            parts.append(values.get(field, ""))
    return "".join(parts)


def render(desk: Desk, key: str, /, language: str | None = None, **values: str) -> str:
    """The text for `key`: the desk's override if it has one, else the built-in text.

    `language` defaults to the desk's. {desk}, {email} and {website} default to the desk's
    name, address and website; other placeholders without a value come out empty.
    """
    if key not in PLACEHOLDERS:
        raise KeyError(f"unknown message key {key!r}")
    chosen = base_language(language or desk.language)
    filled = {"desk": desk.name, "email": desk.email, "website": desk.website, **values}
    override = desk.messages.get(chosen, {}).get(key)
    if override is not None:
        try:
            placeholders_in(override)
        except ValueError:
            pass  # a broken override slipped past validation: the built-in text still works
        else:
            return _fill(override, filled)
    return _fill(TEXTS[chosen][key], filled)


def last_resort_text(language: str = "nl") -> str:
    """What a caller hears when even a webhook's safe answer failed: built in, never overridden."""
    return spoken.LAST_RESORT[base_language(language)]
