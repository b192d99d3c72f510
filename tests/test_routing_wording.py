"""What a caller hears and a mail reader reads: moments, opening hours and the texts."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from intake.core.texts import (
    MESSAGE_KEYS,
    PLACEHOLDERS,
    SAY_LANGUAGE,
    TEXTS,
    placeholders_in,
    render,
)
from routing.wording import describe_hours, describe_moment
from tests.factories import local, make_desk, utc

NOW = local("2026-11-27 18:00")  # a Friday evening


@pytest.mark.parametrize(
    ("moment", "dutch", "english"),
    [
        ("2026-11-27 19:00", "vandaag om 19.00 uur", "today at 7:00 pm"),
        ("2026-11-27 13:30", "vandaag om 13.30 uur", "today at 1:30 pm"),
        ("2026-11-28 08:30", "morgen om 8.30 uur", "tomorrow at 8:30 am"),
        (
            "2026-11-30 08:30",
            "maandag 30 november om 8.30 uur",
            "on Monday 30 November at 8:30 am",
        ),
        (
            "2026-12-02 12:00",
            "woensdag 2 december om 12.00 uur",
            "on Wednesday 2 December at 12 noon",
        ),
        (
            "2027-01-04 08:30",
            "maandag 4 januari 2027 om 8.30 uur",
            "on Monday 4 January 2027 at 8:30 am",
        ),
    ],
)
def test_describe_moment_in_both_languages(moment: str, dutch: str, english: str) -> None:
    assert describe_moment(local(moment), NOW, "nl") == dutch
    assert describe_moment(local(moment), NOW, "en") == english


def test_tomorrow_in_the_new_year_needs_no_year() -> None:
    now = local("2026-12-31 20:00")
    assert describe_moment(local("2027-01-01 09:00"), now, "nl") == "morgen om 9.00 uur"
    assert describe_moment(local("2027-01-01 00:00"), now, "en") == "tomorrow at 12 midnight"


def test_describe_moment_counts_days_in_the_moments_time_zone() -> None:
    # 23:30 UTC on the 27th is already the 28th in Amsterdam: 08:30 that day is "today".
    now = utc("2026-11-27 23:30")
    assert describe_moment(local("2026-11-28 08:30"), now, "nl") == "vandaag om 8.30 uur"
    tokyo = local("2026-11-28 08:30").astimezone(ZoneInfo("Asia/Tokyo"))
    assert describe_moment(tokyo, now, "en") == "today at 4:30 pm"


def test_describe_moment_says_the_wall_time_after_a_daylight_saving_change() -> None:
    saturday = local("2026-03-28 12:00")
    monday = saturday + timedelta(days=2, hours=-3, minutes=-30)  # wall-clock arithmetic
    assert describe_moment(monday, saturday, "nl") == "maandag 30 maart om 8.30 uur"


def test_describe_hours_in_dutch_groups_days_with_equal_hours() -> None:
    assert describe_hours(make_desk(), "nl") == (
        "maandag en dinsdag van 8.30 tot 17.00 uur; "
        "woensdag van 8.30 tot 12.30 uur en van 13.30 tot 17.00 uur; "
        "donderdag van 8.30 tot 17.00 uur; "
        "vrijdag van 8.30 tot 16.00 uur"
    )


def test_describe_hours_in_english() -> None:
    assert describe_hours(make_desk(), "en") == (
        "Monday and Tuesday from 8:30 am to 5:00 pm; "
        "Wednesday from 8:30 am to 12:30 pm and from 1:30 pm to 5:00 pm; "
        "Thursday from 8:30 am to 5:00 pm; "
        "Friday from 8:30 am to 4:00 pm"
    )


def test_describe_hours_joins_three_or_more_days_and_leaves_out_closed_days() -> None:
    hours = {d: ["09:00-17:00"] for d in ("mon", "tue", "wed", "thu")} | {"sat": ["10:00-12:00"]}
    desk = make_desk(hours=hours)
    assert describe_hours(desk, "nl") == (
        "maandag tot en met donderdag van 9.00 tot 17.00 uur; zaterdag van 10.00 tot 12.00 uur"
    )
    assert describe_hours(desk, "en") == (
        "Monday to Thursday from 9:00 am to 5:00 pm; Saturday from 10:00 am to 12 noon"
    )


def test_describe_hours_without_hours() -> None:
    assert describe_hours(make_desk(hours={}), "nl") == "geen vaste openingstijden"
    assert describe_hours(make_desk(hours={}), "en") == "no fixed opening hours"


# --- texts ---------------------------------------------------------------------------


def test_every_key_has_a_built_in_text_in_both_languages() -> None:
    assert set(PLACEHOLDERS) == set(MESSAGE_KEYS)
    for language in ("nl", "en"):
        assert set(TEXTS[language]) == set(MESSAGE_KEYS)


@pytest.mark.parametrize("language", ["nl", "en"])
@pytest.mark.parametrize("key", MESSAGE_KEYS)
def test_built_in_texts_use_only_their_own_placeholders(language: str, key: str) -> None:
    assert placeholders_in(TEXTS[language][key]) <= PLACEHOLDERS[key]


def test_render_fills_the_built_in_text_with_desk_details() -> None:
    desk = make_desk()
    text = render(desk, "closed", next_opening="maandag 30 november om 8.30 uur")
    assert text.startswith("Welkom bij Helpdesk Digitale Zorg. Wij zijn nu gesloten.")
    assert "Wij zijn maandag 30 november om 8.30 uur weer bereikbaar." in text
    assert "helpdesk@example.org" in text


def test_render_takes_desk_as_a_placeholder_value() -> None:
    text = render(make_desk(), "screen_prompt", organisation="Ziekenhuis Noord", desk="X")
    assert text == "Helpdeskgesprek voor Ziekenhuis Noord. Druk op 1 om het gesprek aan te nemen."


def test_render_in_another_language_than_the_desks() -> None:
    text = render(make_desk(), "closure", "en", closure_name="King's Day", next_opening="x")
    assert text.startswith("Welcome to Helpdesk Digitale Zorg. Because of King's Day, the help")
    assert render(make_desk(), "greeting", language="en").startswith("Welcome to")


def test_render_prefers_the_desks_override() -> None:
    desk = make_desk(messages={"nl": {"greeting": "Goedemorgen, {desk} hier. {onbekend}Even."}})
    assert render(desk, "greeting") == "Goedemorgen, Helpdesk Digitale Zorg hier. Even."
    # Only that language and that key are overridden.
    assert render(desk, "greeting", "en").startswith("Welcome to")
    assert render(desk, "voicemail_thanks").startswith("Dank u wel.")


def test_missing_placeholder_values_render_empty() -> None:
    text = render(make_desk(), "closure")
    assert "Vanwege  is de helpdesk vandaag gesloten." in text


@pytest.mark.parametrize("broken", ["Welkom {", "Welkom }", "Welkom {0}", "{desk.__class__}"])
def test_a_broken_override_falls_back_to_the_built_in_text(broken: str) -> None:
    desk = make_desk(messages={"nl": {"greeting": broken}})
    assert render(desk, "greeting") == render(make_desk(), "greeting")


@pytest.mark.parametrize("text", ["{0}", "{desk.name}", "{desk[0]}", "open {"])
def test_placeholders_in_rejects_what_the_validator_must_refuse(text: str) -> None:
    with pytest.raises(ValueError):
        placeholders_in(text)


def test_placeholders_in_ignores_escaped_braces() -> None:
    assert placeholders_in("{{letterlijk}} {desk}") == frozenset({"desk"})


def test_unknown_message_key_is_a_programming_error() -> None:
    with pytest.raises(KeyError):
        render(make_desk(), "goodbye")


def test_say_language_for_twilio() -> None:
    assert dict(SAY_LANGUAGE) == {"nl": "nl-NL", "en": "en-GB"}
