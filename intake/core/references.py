"""A contact's reference, "HD-000123": how it is written and where it is read back.

Patients quote it in a mail's subject, staff type it in the search box, and our own mail
carries it in subjects and Message-IDs. One module owns the format so that what we write
is always what we read.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

PREFIX = "HD-"
DIGITS = 6  # at least; a contact beyond HD-999999 simply has more
# A reference inside a text (a subject): "Re: [HD-000123] Vraag", in any case.
IN_TEXT = re.compile(rf"\b{PREFIX}(\d{{{DIGITS},}})\b", re.IGNORECASE)
_WHOLE = re.compile(rf"{PREFIX}\d{{{DIGITS},}}")
# Any reference in square brackets, as a subject carries it: "Re: [ HD-000123 ] Vraag".
_BRACKETED = re.compile(rf"\[\s*({PREFIX}\d+)\s*\]", re.IGNORECASE)


def reference_for(contact_id: int) -> str:
    """The reference of contact `contact_id`: 123 -> "HD-000123"."""
    return f"{PREFIX}{contact_id:0{DIGITS}d}"


def is_reference(text: str) -> bool:
    """Whether `text` is exactly a reference as we write it (what goes into a Message-ID)."""
    return _WHOLE.fullmatch(text) is not None


def id_from_reference(text: str) -> int | None:
    """The contact id of a reference someone typed (" hd-123 " -> 123), or None."""
    cleaned = text.strip().upper()
    if not cleaned.startswith(PREFIX):
        return None
    digits = cleaned[len(PREFIX) :]
    return int(digits) if digits.isdigit() else None


def ids_in_text(text: str) -> Iterator[int]:
    """The contact ids of the references in `text` (a subject), in order."""
    for match in IN_TEXT.finditer(text):
        yield int(match.group(1))


def without_reference(text: str, reference: str) -> str:
    """`text` with each "[HD-000123]" of this reference replaced by a space.

    One pattern for every reference, compared afterwards: a pattern made per reference was
    compiled anew for nearly every forward (a new reference each time, past `re`'s cache).
    """
    wanted = reference.upper()
    if "[" not in text or wanted not in text.upper():
        return text
    return _BRACKETED.sub(lambda m: " " if m.group(1).upper() == wanted else m.group(0), text)
