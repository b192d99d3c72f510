"""The voices Twilio's <Say> can speak each of the desk's languages in, and the default.

Data from Twilio's lists (the text-to-speech page and the `SayVoice` values of Twilio's
own helper library), each Amazon Polly name checked against the locale Amazon gives it.
A voice speaks one locale, and <Say> must name that locale as its `language`: Twilio
fails a <Say> whose voice and language do not match (and its default voice, `man`,
speaks no Dutch). So a desk chooses a voice per language, and the locale follows.

Twilio also limits the text of one <Say> (error 13521): 3000 bytes for Polly, 5000 for
Google, and 4500 characters once URL-encoded. `say_chunks` cuts a longer text at
sentence ends into pieces that fit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import quote

from routing.desk import LANGUAGES, Desk
from routing.languages import base_language

LANGUAGE_NAMES: Mapping[str, str] = MappingProxyType({"nl": "Dutch", "en": "English"})

# Twilio's error 13521: the most text one <Say> may hold, per provider, in UTF-8 bytes,
# and the most its URL-encoded form may be.
MAX_SAY_BYTES: Mapping[str, int] = MappingProxyType({"Polly": 3000, "Google": 5000})
MAX_SAY_ENCODED = 4500


@dataclass(frozen=True)
class Voice:
    name: str  # Twilio's `voice` attribute: "Polly.Laura-Neural"
    locale: str  # the <Say language> it speaks: "nl-NL"

    @property
    def provider(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def max_bytes(self) -> int:
        return MAX_SAY_BYTES[self.provider]


_CHIRP = ("Aoede", "Charon", "Fenrir", "Kore", "Leda", "Orus", "Puck", "Zephyr")


def _google(locale: str, *, chirp: bool = True, **kinds: str) -> tuple[Voice, ...]:
    """Google voices of `locale`: Standard="ABC" for Standard-A, -B and -C; Chirp3-HD too."""
    found = [
        Voice(f"Google.{locale}-{kind}-{letter}", locale)
        for kind, letters in kinds.items()
        for letter in letters
    ]
    if chirp:
        found += [Voice(f"Google.{locale}-Chirp3-HD-{name}", locale) for name in _CHIRP]
    return tuple(found)


def _polly(locale: str, *names: str) -> tuple[Voice, ...]:
    return tuple(Voice(f"Polly.{name}", locale) for name in names)


# Per desk language, every voice Twilio lists for it: neural Polly voices first.
VOICES: Mapping[str, tuple[Voice, ...]] = MappingProxyType(
    {
        "nl": (
            *_polly("nl-NL", "Laura-Neural", "Lotte", "Ruben"),
            *_polly("nl-BE", "Lisa-Neural"),
            *_google("nl-NL", Standard="ABCDEFG", Wavenet="ABCDEFG"),
            *_google("nl-BE", chirp=False, Standard="ABCD", Wavenet="ABCD"),
        ),
        "en": (
            *_polly(
                "en-GB",
                "Amy-Neural",
                "Brian-Neural",
                "Emma-Neural",
                "Arthur-Neural",
                "Amy-Generative",
                "Amy",
                "Brian",
                "Emma",
            ),
            *_polly(
                "en-US",
                "Joanna-Neural",
                "Matthew-Neural",
                "Danielle-Neural",
                "Gregory-Neural",
                "Ivy-Neural",
                "Joey-Neural",
                "Justin-Neural",
                "Kendra-Neural",
                "Kevin-Neural",
                "Kimberly-Neural",
                "Ruth-Neural",
                "Salli-Neural",
                "Stephen-Neural",
                "Danielle-Generative",
                "Joanna-Generative",
                "Matthew-Generative",
                "Ruth-Generative",
                "Stephen-Generative",
                "Ivy",
                "Joanna",
                "Joey",
                "Justin",
                "Kendra",
                "Kimberly",
                "Matthew",
                "Salli",
            ),
            *_polly("en-IE", "Niamh-Neural"),
            *_polly("en-AU", "Olivia-Neural", "Olivia-Generative", "Nicole", "Russell"),
            *_google("en-GB", Standard="ABCDFNO", Wavenet="ABCDFNO", Neural2="ABCDFNO"),
            *_google("en-US", Standard="ABCDEFGHIJ", Wavenet="ABCDEFGHIJ", Neural2="ACDEFGHIJ"),
            *_google("en-AU", Standard="ABCD", Wavenet="ABCD", Neural2="ABCD"),
        ),
    }
)

# A neural voice of the locale the desk has always spoken: Dutch of the Netherlands,
# British English.
DEFAULT_VOICES: Mapping[str, str] = MappingProxyType(
    {"nl": "Polly.Laura-Neural", "en": "Polly.Amy-Neural"}
)

_BY_NAME: Mapping[str, tuple[str, Voice]] = MappingProxyType(
    {v.name.casefold(): (language, v) for language in LANGUAGES for v in VOICES[language]}
)


def find_voice(name: str) -> tuple[str, Voice] | None:
    """The desk language a voice speaks and the voice, spelled as Twilio does; None if unknown."""
    return _BY_NAME.get(name.strip().casefold())


def default_voice(language: str) -> Voice:
    found = find_voice(DEFAULT_VOICES[base_language(language)])
    assert found is not None
    return found[1]


def desk_voice(desk: Desk, language: str | None = None) -> Voice:
    """The voice `desk` speaks `language` (by default its own) in."""
    chosen = base_language(language or desk.language)
    name = dict(desk.voice.tts_voices).get(chosen, "")
    found = find_voice(name) if name else None
    if found is None or found[0] != chosen:
        return default_voice(chosen)  # the definition checker lets no other voice in
    return found[1]


def fits(text: str, voice: Voice) -> bool:
    """Whether one <Say> with `voice` may hold `text`."""
    return len(text.encode("utf-8")) <= voice.max_bytes and len(quote(text)) <= MAX_SAY_ENCODED


def say_chunks(text: str, voice: Voice) -> list[str]:
    """`text` as pieces that each fit in one <Say>: cut after sentences, else between words."""
    text = " ".join(text.split())
    if fits(text, voice):
        return [text] if text else []
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, voice):
        candidate = f"{current} {piece}" if current else piece
        if fits(candidate, voice):
            current = candidate
        else:
            if current:
                chunks.append(current)
            current = piece
    if current:
        chunks.append(current)
    return chunks


def _pieces(text: str, voice: Voice) -> list[str]:
    """Sentences; a sentence too long for one <Say> as words, a word too long in slices."""
    sentences = re.split(r"(?<=[.?!]) ", text)
    pieces: list[str] = []
    for sentence in sentences:
        if fits(sentence, voice):
            pieces.append(sentence)
            continue
        for word in sentence.split(" "):
            # 300 characters fit whatever they are: at most 1200 bytes, 3600 URL-encoded.
            pieces += [word[i : i + 300] for i in range(0, len(word), 300)]
    return [piece for piece in pieces if piece]
