"""How the checker speaks of what a coordinator wrote: places, kinds of values, suggestions."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time

from .sections import Path

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def render_path(path: Path) -> str:
    """`("shift", 2, "staff")` -> "shift[3].staff": indices counted from 1, as people do."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else quote(part)
            out += f".{name}" if out else name
    return out


def kind_of(value: object) -> str:
    """What a coordinator wrote, in words: 'a whole number (20)'."""
    if isinstance(value, bool):
        kind = "true/false"
    elif isinstance(value, int):
        kind = "a whole number"
    elif isinstance(value, float):
        kind = "a decimal number"
    elif isinstance(value, str):
        return f"text ({quote(value)})"
    elif isinstance(value, datetime):
        kind = "a date and time"
    elif isinstance(value, date):
        kind = "a date"
    elif isinstance(value, time):
        kind = "a time"
    elif isinstance(value, list):
        return "a list"
    elif isinstance(value, Mapping):
        return "a table"
    else:
        return type(value).__name__
    shown = str(value).lower() if isinstance(value, bool) else str(value)
    return f"{kind} ({shown})"


def suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word.lower(), list(options), n=1, cutoff=0.6)
    return f"; did you mean {quote(close[0])}?" if close else ""


def quote(text: str) -> str:
    """Quoted as in a TOML file: "bob"."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def either(options: Iterable[str]) -> str:
    names = [f'"{o}"' for o in options]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
