"""What patients hear and read, and what colleagues read in the desk's own mail: one catalogue.

`spoken` holds the callers' texts, `mail` the acknowledgement, forward note and voicemail
notice, `rendering` the one way a key becomes text (the desk's override or the built-in
text). The dashboard's own words are gettext's, in intake/shell/translations.
"""

from __future__ import annotations

from .rendering import (
    MESSAGE_KEYS,
    PLACEHOLDERS,
    TEXTS,
    last_resort_text,
    placeholders_in,
    render,
)
from .spoken import SAY_LANGUAGE

__all__ = [
    "MESSAGE_KEYS",
    "PLACEHOLDERS",
    "SAY_LANGUAGE",
    "TEXTS",
    "last_resort_text",
    "placeholders_in",
    "render",
]
