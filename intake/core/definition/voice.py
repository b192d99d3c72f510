"""Reading the [voice] section: how calls are put through, and the voice callers hear."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from routing.desk import LANGUAGES, STRATEGIES, VoiceSettings

from . import values
from .fields import FieldReader
from .problem_text import kind_of
from .sections import QUEUE_SIZE, RING_SECONDS, VOICEMAIL_SECONDS, WAIT_SECONDS, Path


class VoiceReader(FieldReader):
    def voice(self, table: Mapping[str, Any], language: str | None) -> VoiceSettings:
        """The [voice] section; `language` is the desk's, None when it was written wrong."""
        defaults = VoiceSettings()
        return VoiceSettings(
            strategy=self.choice(table, ("voice", "strategy"), defaults.strategy, STRATEGIES),
            ring_seconds=self.integer(
                table,
                ("voice", "ring_seconds"),
                defaults.ring_seconds,
                minimum=RING_SECONDS[0],
                maximum=RING_SECONDS[1],
            ),
            screening=self.boolean(table, ("voice", "screening"), defaults.screening),
            fallback_number=self.value(
                table, ("voice", "fallback_number"), defaults.fallback_number, values.optional_phone
            ),
            max_voicemail_seconds=self.integer(
                table,
                ("voice", "max_voicemail_seconds"),
                defaults.max_voicemail_seconds,
                minimum=VOICEMAIL_SECONDS[0],
                maximum=VOICEMAIL_SECONDS[1],
            ),
            tts_voices=self.tts_voices(table, language),
            show_line_to_staff=self.boolean(
                table, ("voice", "show_line_to_staff"), defaults.show_line_to_staff
            ),
            queue=self.boolean(table, ("voice", "queue"), defaults.queue),
            max_wait_seconds=self.integer(
                table,
                ("voice", "max_wait_seconds"),
                defaults.max_wait_seconds,
                minimum=WAIT_SECONDS[0],
                maximum=WAIT_SECONDS[1],
            ),
            queue_music=self.value(
                table, ("voice", "queue_music"), defaults.queue_music, values.queue_music
            ),
            queue_size=self.integer(
                table,
                ("voice", "queue_size"),
                defaults.queue_size,
                minimum=QUEUE_SIZE[0],
                maximum=QUEUE_SIZE[1],
            ),
        )

    def tts_voices(
        self, table: Mapping[str, Any], language: str | None
    ) -> tuple[tuple[str, str], ...]:
        """`tts_voice = "Polly.Laura-Neural"` for the desk's language, or one per language:
        `tts_voice = { nl = "Polly.Laura-Neural", en = "Polly.Amy-Neural" }`."""
        path: Path = ("voice", "tts_voice")
        if "tts_voice" not in table:
            return ()
        raw = table["tts_voice"]
        if isinstance(raw, str):
            if language is None:
                return ()  # which language it must speak is unknown: [desk] language is wrong
            name = self.value(table, path, "", partial(values.tts_voice, language=language))
            return ((language, name),) if name else ()
        if not isinstance(raw, Mapping):
            self.problem(
                path,
                'must be a voice in quotes like "Polly.Laura-Neural", or one per language like'
                f' {{ nl = "Polly.Laura-Neural", en = "Polly.Amy-Neural" }}, not {kind_of(raw)}',
            )
            return ()
        self.known_keys(raw, path, LANGUAGES, "language")
        chosen: list[tuple[str, str]] = []
        for each in LANGUAGES:
            if each in raw:
                name = self.value(raw, (*path, each), "", partial(values.tts_voice, language=each))
                if name:
                    chosen.append((each, name))
        return tuple(chosen)
