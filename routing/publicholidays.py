"""Public holidays from the `holidays` package: their dates, their names, and the names a
desk may use to stay open on one.

A desk that stays open on a public holiday names it by its English name as the package
spells it ("Good Friday"): one name that is the same every year and in every language,
where a date would stop meaning anything next year. Several holidays on one date come from
the package joined by "; " and are taken apart here.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from types import MappingProxyType

import holidays

# The years in which a holiday's name is looked for when a definition names one to stay
# open on: a name the package knows in none of them is a mistake.
NAME_YEARS = range(2000, 2051)


@lru_cache(maxsize=256)
def holiday_dates(country: str, year: int) -> frozenset[date]:
    try:
        found = holidays.country_holidays(country, years=year, language="en_US")
    except NotImplementedError:
        # An unknown country code is rejected when the desk definition is loaded; here, on
        # the call path, it must not take the webhook down, so it simply has no holidays.
        return frozenset()
    return frozenset(found.keys())


@lru_cache(maxsize=256)
def english_names(country: str, year: int) -> Mapping[date, tuple[str, ...]]:
    """Each holiday date of the year with the English names of the holidays on it."""
    try:
        found = holidays.country_holidays(country, years=year, language="en_US")
    except NotImplementedError:
        return MappingProxyType({})
    return MappingProxyType({day: tuple(found.get_list(day)) for day in found})


@lru_cache(maxsize=256)
def holiday_names(country: str, year: int, language: str) -> Mapping[date, str]:
    """Each holiday date of the year with its name in `language` (or the nearest one)."""
    try:
        # Without a language the package reads the process locale; always pass one.
        probe = holidays.country_holidays(country, years=year, language="en_US")
    except NotImplementedError:
        return MappingProxyType({})
    supported: tuple[str, ...] = tuple(probe.supported_languages)
    chosen = pick_language(language, supported)
    found = holidays.country_holidays(country, years=year, language=chosen)
    return MappingProxyType(dict(found.items()))


def pick_language(language: str, supported: tuple[str, ...]) -> str:
    """`nl` -> `nl`, `en` -> `en_US` (the package has no plain `en`); else English."""
    wanted = language.replace("-", "_")
    if wanted in supported:
        return wanted
    base = wanted.split("_")[0].lower()
    for candidate in supported:
        if candidate.lower() == base or candidate.lower().startswith(base + "_"):
            return candidate
    # Names in the package's source are English; an unsupported language keeps them.
    return "en_US"


@lru_cache(maxsize=32)
def known_names(country: str) -> Mapping[str, str]:
    """Every holiday name of the country in any of its languages (case-folded), each with
    its English name, over NAME_YEARS; empty for an unknown country."""
    try:
        probe = holidays.country_holidays(country, years=NAME_YEARS.start, language="en_US")
    except NotImplementedError:
        return MappingProxyType({})
    english = holidays.country_holidays(country, years=NAME_YEARS, language="en_US")
    found: dict[str, str] = {}
    for language in ("en_US", *probe.supported_languages):
        spoken = holidays.country_holidays(country, years=NAME_YEARS, language=language)
        for day in spoken:
            for name, english_name in zip(spoken.get_list(day), english.get_list(day), strict=True):
                found.setdefault(english_name.casefold(), english_name)
                found.setdefault(name.casefold(), english_name)
    return MappingProxyType(found)


def english_name(country: str, written: str) -> str | None:
    """The English name of the holiday written as `written` (any case, any of the
    country's languages): "goede vrijdag" -> "Good Friday"; None when there is none."""
    return known_names(country).get(written.strip().casefold())
