"""Reading the settings of a document one by one, collecting problems instead of stopping.

`FieldReader` knows tables, entries, text, numbers, times and lists; `DeskChecker` in
check.py builds the sections of a desk from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import time
from typing import Any, TypeVar

from routing.desk import LANGUAGES

from . import values
from .problem_text import either, kind_of, quote, suggest
from .sections import SECTIONS, Path
from .values import Invalid

_T = TypeVar("_T")


class FieldReader:
    """The problems found so far, and readers for each kind of setting that add to them."""

    def __init__(self) -> None:
        self.problems: list[tuple[Path, str]] = []

    def problem(self, path: Path, message: str) -> None:
        self.problems.append((path, message))

    # -- structure -----------------------------------------------------------------------

    def table(self, doc: Mapping[str, Any], name: str) -> Mapping[str, Any]:
        """The [name] section, or {} when it is missing or not a table."""
        value = doc.get(name, {})
        if not isinstance(value, Mapping):
            self.problem((name,), f"must be a section [{name}], not {kind_of(value)}")
            return {}
        if name == "hours":
            # Day names may be written in any case ("Mon"); hours() reports a day given twice.
            for key in value:
                try:
                    values.weekday(key)
                except Invalid as exc:
                    self.problem((name, key), str(exc))
        elif name == "messages":
            self.known_keys(value, (name,), LANGUAGES, "language")
        else:
            self.known_keys(value, (name,), SECTIONS[name], "setting")
        return value

    def entries(self, doc: Mapping[str, Any], name: str) -> list[tuple[Path, Mapping[str, Any]]]:
        """The [[name]] entries, each with its path; entries that are not tables are reported."""
        value = doc.get(name, [])
        if isinstance(value, Mapping):
            self.problem((name,), f"write [[{name}]] with double brackets, once per entry")
            return []
        if not isinstance(value, list):
            self.problem((name,), f"must be [[{name}]] entries, not {kind_of(value)}")
            return []
        found = []
        for index, entry in enumerate(value):
            path: Path = (name, index)
            if isinstance(entry, Mapping):
                self.known_keys(entry, path, SECTIONS[name], "setting")
                found.append((path, entry))
            else:
                self.problem(path, f"must be a table of settings, not {kind_of(entry)}")
        return found

    def known_keys(
        self,
        table: Mapping[str, Any],
        path: Path,
        allowed: Iterable[str],
        noun: str,
    ) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                self.problem(
                    (*path, key),
                    f"unknown {noun} {quote(key)}{suggest(key, allowed)}"
                    f" (the {noun}s are: {', '.join(allowed)})",
                )

    # -- scalars -------------------------------------------------------------------------

    def value(
        self,
        table: Mapping[str, Any],
        path: Path,
        default: _T,
        convert: Callable[[str], _T],
        *,
        required: bool = False,
    ) -> _T:
        """A string setting passed through `convert`, which raises Invalid when it is wrong."""
        key = str(path[-1])
        if key not in table:
            if required:
                self.problem(path, "is missing")
            return default
        raw = table[key]
        if not isinstance(raw, str):
            self.problem(path, f"must be text in quotes, not {kind_of(raw)}")
            return default
        try:
            return convert(raw)
        except Invalid as exc:
            self.problem(path, str(exc))
            return default

    def text(self, table: Mapping[str, Any], path: Path, *, required: bool = False) -> str:
        return self.value(
            table, path, "", values.required_text if required else str.strip, required=required
        )

    def choice(
        self, table: Mapping[str, Any], path: Path, default: str, options: tuple[str, ...]
    ) -> str:
        def pick(raw: str) -> str:
            if raw not in options:
                raise Invalid(f"{quote(raw)} is not allowed (use {either(options)})")
            return raw

        return self.value(table, path, default, pick)

    def integer(
        self,
        table: Mapping[str, Any],
        path: Path,
        default: int,
        *,
        minimum: int,
        maximum: int | None = None,
    ) -> int:
        key = str(path[-1])
        if key not in table:
            return default
        raw = table[key]
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.problem(path, f"must be a whole number, not {kind_of(raw)}")
            return default
        if raw < minimum or (maximum is not None and raw > maximum):
            limits = (
                f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
            )
            self.problem(path, f"{raw} is out of range (must be {limits})")
            return default
        return raw

    def boolean(self, table: Mapping[str, Any], path: Path, default: bool) -> bool:
        key = str(path[-1])
        if key not in table:
            return default
        raw = table[key]
        if not isinstance(raw, bool):
            self.problem(path, f"must be true or false (without quotes), not {kind_of(raw)}")
            return default
        return raw

    def time_of_day(self, table: Mapping[str, Any], path: Path) -> time | None:
        """A required "HH:MM" (or a TOML time); None, reported, when missing or wrong."""
        key = str(path[-1])
        if key not in table:
            self.problem(path, 'is missing (a time like "08:30")')
            return None
        raw = table[key]
        try:
            if isinstance(raw, str):
                return values.parse_time(raw)
            if isinstance(raw, time):
                return values.whole_minutes(raw)
            raise Invalid(f'must be a time in quotes like "08:30", not {kind_of(raw)}')
        except Invalid as exc:
            self.problem(path, str(exc))
            return None

    def string_list(self, table: Mapping[str, Any], path: Path) -> list[tuple[Path, str]] | None:
        """The strings of a list setting with their paths; None when it is not a list."""
        raw = table[str(path[-1])]
        if not isinstance(raw, list):
            self.problem(path, f"must be a list in square brackets, not {kind_of(raw)}")
            return None
        found = []
        for index, item in enumerate(raw):
            if isinstance(item, str):
                found.append(((*path, index), item))
            else:
                self.problem((*path, index), f"must be text in quotes, not {kind_of(item)}")
        return found

    # -- sections ------------------------------------------------------------------------
