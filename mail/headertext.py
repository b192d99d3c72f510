"""Text as one clean line: what may go into a header we write or a field we show.

`one_line` is the one rule for both directions: the parser applies it to every header it
reads (subjects, display names, file names), and compose applies it, through
`header_text`, to everything a patient sent before it reaches a header we write.
"""

from __future__ import annotations

import contextlib
import re
from email.header import decode_header, make_header

# Become a space: C0/C1 controls, DEL, the Unicode line and paragraph separators, and lone
# surrogates (which cannot be written at all). A space, not nothing, so that a control
# between two words never glues them into one.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Removed: bidi embeddings, overrides and isolates, which make a text read as something else.
_BIDI = re.compile(r"[\u202a-\u202e\u2066-\u2069]")
_WHITESPACE = re.compile(r"\s+")


def one_line(value: str) -> str:
    """`value` without line breaks, controls or bidi marks, its whitespace runs one space."""
    if value.isascii() and value.isprintable() and "  " not in value:
        return value.strip(" ")  # printable ASCII: its only whitespace is the space
    return _WHITESPACE.sub(" ", _CONTROLS.sub(" ", _BIDI.sub("", value))).strip()


def header_text(value: str, limit: int = 200) -> str:
    """`value` (anything a patient sent) as one safe line for a header, at most `limit` long.

    Controls (CR and LF among them) become spaces, whitespace runs collapse, and an
    encoded-word ("=?utf-8?q?...?=") is decoded and its result cleaned like the rest; what
    still looks like the start of one is broken up ("= ?"), because the `email` package
    would decode it again, line breaks and all, when it writes the header.
    """
    text = one_line(value)
    if "=?" in text:
        # An unknown charset or a broken encoding: the text stays as it is.
        with contextlib.suppress(Exception):
            text = one_line(str(make_header(decode_header(text))))
        text = text.replace("=?", "= ?")
    if len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text
