"""A file's size as a person reads it: "308 bytes", "47 KB", "1,5 MB" (Dutch), "1.5 MB".

The forwards tell colleagues how large each attachment is, and the dashboard lists them;
both should say the same thing in the reader's language, so the numbers come from Babel's
locale data. The units are 1024 bytes each, so they are written KB and MB (as the dashboard
always did), not the SI kB of 1000 bytes.
"""

from __future__ import annotations

from babel.numbers import format_decimal

from routing.languages import LOCALES, base_language

_KIB = 1024
_MIB = 1024 * 1024


def file_size(size: int, language: str) -> str:
    """`size` bytes in the largest unit that keeps a number of at least 1 (1024 per unit)."""
    locale = LOCALES[base_language(language)]
    if size < _KIB:
        return f"{size} bytes"
    if size < _MIB:
        return f"{format_decimal(round(size / _KIB), locale=locale)} KB"
    return f"{format_decimal(round(size / _MIB, 1), format='#,##0.0', locale=locale)} MB"
