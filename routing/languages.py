"""The languages the desk speaks, and how a language tag someone wrote becomes one of them.

One place for both, because the spoken texts, the mail texts and the wording of days and
hours must agree on what "nl-BE" or "EN_gb" means: the base language when the desk knows
it, English otherwise. It lives in routing, the lowest layer, so that the wording of
moments here and the texts of the core share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from routing.desk import LANGUAGES

# The Babel (CLDR) locale each language's names of days and months and numbers come from.
LOCALES: Mapping[str, str] = MappingProxyType({"nl": "nl_NL", "en": "en_GB"})
FALLBACK = "en"


def base_language(language: str) -> str:
    """ "nl-BE", "NL_nl" -> "nl"; a language the desk does not speak -> "en"."""
    base = language.replace("_", "-").split("-")[0].lower()
    return base if base in LANGUAGES else FALLBACK
