"""Reading the [closures] section: public holidays, the desk's own closure dates (each may
have a name), and the public holidays the desk stays open on.

A closure date is written as a date, or as an inline table when it has a name:

    dates = ["2026-12-31", { date = "2026-12-24", name = "de teamdag" }]

One list, so a date is written once and a name is only an addition to it. A holiday the
desk stays open on is written by its name, in English or in a language of the country
("Good Friday", "Goede vrijdag"): a name holds every year, where a date would quietly stop
meaning anything next year. The desk keeps the English name, as the `holidays` package
spells it, so the file means the same whatever language the desk speaks.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import date
from types import MappingProxyType
from typing import Any

from routing.publicholidays import NAME_YEARS, english_name, known_names

from . import values
from .fields import FieldReader
from .problem_text import kind_of, quote
from .sections import CLOSURE_KEYS, Path
from .values import Invalid

# The longest name a closure date may have: it is spoken to callers in one sentence.
CLOSURE_NAME_LENGTH = 80


class ClosureReader(FieldReader):
    def closure_dates(self, table: Mapping[str, Any]) -> Mapping[date, str]:
        """`dates`: each date with its name, "" when it has none."""
        path: Path = ("closures", "dates")
        if "dates" not in table:
            return MappingProxyType({})
        raw = table["dates"]
        if not isinstance(raw, list):
            self.problem(path, f"must be a list of dates in square brackets, not {kind_of(raw)}")
            return MappingProxyType({})
        found: dict[date, str] = {}
        for index, item in enumerate(raw):
            entry = self.closure_entry((*path, index), item)
            if entry is None:
                continue
            day, name = entry
            if day in found and name and found[day] and found[day] != name:
                self.problem(
                    (*path, index),
                    f"{day.isoformat()} is listed twice, with different names"
                    f" ({quote(found[day])} and {quote(name)})",
                )
                continue
            found[day] = found.get(day) or name
        return MappingProxyType(dict(sorted(found.items())))

    def closure_entry(self, path: Path, item: object) -> tuple[date, str] | None:
        if isinstance(item, Mapping):
            self.known_keys(item, path, CLOSURE_KEYS, "setting")
            if "date" not in item:
                self.problem((*path, "date"), 'is missing (a date like "2026-12-24")')
                return None
            try:
                day = values.parse_date(item["date"])
            except Invalid as exc:
                self.problem((*path, "date"), str(exc))
                return None
            name = self.value(item, (*path, "name"), "", _closure_name)
            return day, name
        try:
            return values.parse_date(item), ""
        except Invalid as exc:
            self.problem(
                path,
                f'{exc}, or a date with a name like {{ date = "2026-12-24", name = "de teamdag" }}',
            )
            return None

    def open_on_holidays(self, table: Mapping[str, Any], country: str) -> frozenset[str]:
        """`open_on_holidays`: the English names of the holidays the desk stays open on."""
        path: Path = ("closures", "open_on_holidays")
        if "open_on_holidays" not in table:
            return frozenset()
        items = self.string_list(table, path)
        if items is None:
            return frozenset()
        if not country:
            if items:
                self.problem(
                    path, 'needs public_holidays (a country code like "NL") to name its holidays'
                )
            return frozenset()
        found: set[str] = set()
        for item_path, raw in items:
            name = english_name(country, raw)
            if name is None:
                self.problem(item_path, _unknown_holiday(raw, country))
                continue
            found.add(name)
        return frozenset(found)


def _closure_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise Invalid("must not be empty (leave the name out, or write the date alone)")
    if len(name) > CLOSURE_NAME_LENGTH:
        raise Invalid(f"is too long: at most {CLOSURE_NAME_LENGTH} characters, callers hear it")
    return name


def _unknown_holiday(raw: str, country: str) -> str:
    names = known_names(country)
    english = sorted(set(names.values()))
    close = difflib.get_close_matches(raw.strip().casefold(), list(names), n=1, cutoff=0.6)
    hint = f"; did you mean {quote(names[close[0]])}?" if close else ""
    return (
        f"{quote(raw)} is not a public holiday of {country}"
        f" in {NAME_YEARS.start}-{NAME_YEARS.stop - 1}{hint}"
        f" (the holidays are: {', '.join(english)})"
    )
