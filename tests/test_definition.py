"""The desk definition: the TOML file is checked whole, mistakes are found with their line,
and a desk goes out (as TOML or as a document for the database) and back unchanged."""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.core.definition import (
    desk_from_document,
    desk_to_document,
    export_toml,
    parse_definition,
)
from intake.core.errors import DefinitionError, Problem
from intake.core.texts import MESSAGE_KEYS, PLACEHOLDERS
from routing.desk import (
    WEEKDAYS,
    Change,
    Desk,
    Line,
    Mailbox,
    Shift,
    Staff,
    TimeRange,
    VoiceSettings,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "helpdesk.toml"

# A small desk; each test below changes one or two lines of it.
BASE = """\
[desk]
name = "Helpdesk Digitale Zorg"
timezone = "Europe/Amsterdam"
email = "helpdesk@example.org"

[hours]
mon = ["08:30-17:00"]
wed = ["08:30-12:30", "13:30-17:00"]
fri = ["08:30-16:00"]

[closures]
dates = ["2026-12-24"]

[[line]]
number = "085 123 4567"
organisation = "Ziekenhuis Noord"

[[mailbox]]
address = "helpdesk@example.org"
organisation = "Ziekenhuis Noord"

[[staff]]
id = "anna"
name = "Anna de Vries"
phone = "06 1234 5678"

[[staff]]
id = "bram"
name = "Bram Jansen"
phone = "+31 6 2345 6789"

[[staff]]
id = "chantal"
name = "Chantal Bakker"
phone = "0634567890"

[[shift]]
staff = "anna"
days = ["mon", "wed"]
from = "08:30"
to = "12:30"

[[shift]]
staff = "bram"
days = ["mon", "fri"]
from = "12:30"
to = "17:00"

[[change]]
staff = "anna"
date = "2026-11-24"
off = true

[voice]
strategy = "simultaneous"
ring_seconds = 20
"""


@pytest.fixture
def example_text() -> str:
    return EXAMPLE.read_text(encoding="utf-8")


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the test document"
    return text.replace(old, new)


def line_of(text: str, marker: str) -> int:
    """The 1-based line on which `marker` first appears."""
    return text[: text.index(marker)].count("\n") + 1


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(DefinitionError) as caught:
        parse_definition(text, "helpdesk.toml")
    return caught.value.problems


# --- good files -----------------------------------------------------------------------


def test_example_desk_loads_with_phone_numbers_in_e164(example_text: str) -> None:
    desk = parse_definition(example_text, "helpdesk.toml")

    assert desk.name == "Helpdesk Digitale Zorg"
    assert desk.staff_by_id["anna"].phone == "+31612345678"  # written "06 1234 5678"
    assert desk.staff_by_id["dirk"].phone == "+31645678901"  # written "06-45678901"
    assert [line.number for line in desk.lines] == ["+31851234567", "+31857654321"]
    assert desk.hours[WEEKDAYS.index("wed")] == (
        TimeRange(time(8, 30), time(12, 30)),
        TimeRange(time(13, 30), time(17, 0)),
    )
    assert desk.hours[WEEKDAYS.index("sat")] == ()
    assert desk.closure_dates == {date(2026, 12, 24): "", date(2026, 12, 31): "de teamdag"}
    assert desk.open_on_holidays == {"Good Friday"}
    assert [s.staff for s in desk.shifts] == ["anna", "bram", "chantal", "dirk"]
    assert desk.changes == (
        Change("anna", date(2026, 11, 24), off=True),
        Change("dirk", date(2026, 11, 25), off=False, hours=TimeRange(time(13, 30), time(17))),
    )
    assert desk.messages["nl"]["greeting"].startswith("Welkom bij de Helpdesk")


def test_leaving_settings_out_gives_the_defaults() -> None:
    desk = parse_definition('[desk]\nname = "Servicepunt"\n')

    assert desk == Desk(name="Servicepunt")


def test_hours_are_stored_sorted_and_day_names_may_be_capitalised() -> None:
    desk = parse_definition(
        edit(BASE, 'wed = ["08:30-12:30", "13:30-17:00"]', 'Wed = ["13:30-17:00", "08:30-12:30"]')
    )

    assert desk.hours[2] == (
        TimeRange(time(8, 30), time(12, 30)),
        TimeRange(time(13, 30), time(17, 0)),
    )


def test_ranges_that_only_touch_do_not_overlap() -> None:
    desk = parse_definition(edit(BASE, '"13:30-17:00"', '"12:30-17:00"'))

    assert [str(r) for r in desk.hours[2]] == ["08:30-12:30", "12:30-17:00"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('dates = ["2026-12-24"]', "dates = [2026-12-24]", {date(2026, 12, 24)}),
        ('dates = ["2026-12-24"]', "dates = []", set()),
    ],
)
def test_closure_dates_may_be_toml_dates_or_text(old: str, new: str, expected: set[date]) -> None:
    assert parse_definition(edit(BASE, old, new)).closure_dates == dict.fromkeys(expected, "")


def test_a_partial_absence_and_an_extra_shift_are_changes() -> None:
    text = BASE + (
        '\n[[change]]\nstaff = "bram"\ndate = 2026-11-26\noff = true\nfrom = "12:30"\n'
        'to = "14:00"\n'
        '\n[[change]]\nstaff = "chantal"\ndate = "2026-11-27"\nfrom = 09:00:00\nto = "12:00"\n'
    )
    changes = parse_definition(text).changes

    assert changes[1:] == (
        Change("bram", date(2026, 11, 26), off=True, hours=TimeRange(time(12, 30), time(14))),
        Change("chantal", date(2026, 11, 27), off=False, hours=TimeRange(time(9), time(12))),
    )


def test_public_holidays_country_code_is_upper_cased_and_may_be_switched_off() -> None:
    assert (
        parse_definition(
            edit(BASE, "[closures]\n", '[closures]\npublic_holidays = "be"\n')
        ).public_holidays
        == "BE"
    )
    assert (
        parse_definition(
            edit(BASE, "[closures]\n", '[closures]\npublic_holidays = ""\n')
        ).public_holidays
        == ""
    )


def test_fallback_number_is_normalised() -> None:
    desk = parse_definition(
        edit(BASE, "ring_seconds = 20\n", 'ring_seconds = 20\nfallback_number = "020 123 4567"\n')
    )

    assert desk.voice == VoiceSettings(ring_seconds=20, fallback_number="+31201234567")


def test_showing_the_line_to_colleagues_is_off_unless_the_desk_says_so() -> None:
    assert parse_definition(BASE).voice.show_line_to_staff is False
    text = edit(BASE, "ring_seconds = 20\n", "ring_seconds = 20\nshow_line_to_staff = true\n")

    desk = parse_definition(text)

    assert desk.voice.show_line_to_staff is True
    assert parse_definition(export_toml(desk)) == desk
    wrong = edit(BASE, "ring_seconds = 20\n", 'ring_seconds = 20\nshow_line_to_staff = "yes"\n')
    with pytest.raises(DefinitionError, match="show_line_to_staff"):
        parse_definition(wrong)


def test_without_a_tts_voice_each_language_speaks_in_its_default() -> None:
    assert parse_definition(BASE).voice.tts_voices == ()


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('tts_voice = "Polly.Laura-Neural"', (("nl", "Polly.Laura-Neural"),)),
        ('tts_voice = "polly.lotte"', (("nl", "Polly.Lotte"),)),  # spelled as Twilio does
        ('tts_voice = "Google.nl-NL-Wavenet-B"', (("nl", "Google.nl-NL-Wavenet-B"),)),
        ('tts_voice = "Polly.Lisa-Neural"', (("nl", "Polly.Lisa-Neural"),)),  # Belgian Dutch
        (
            'tts_voice = { en = "Polly.Joanna-Neural", nl = "Polly.Ruben" }',
            (("nl", "Polly.Ruben"), ("en", "Polly.Joanna-Neural")),
        ),
        ('tts_voice = { en = "Google.en-GB-Neural2-A" }', (("en", "Google.en-GB-Neural2-A"),)),
    ],
)
def test_a_tts_voice_is_one_voice_or_one_per_language(
    written: str, expected: tuple[tuple[str, str], ...]
) -> None:
    text = edit(BASE, "ring_seconds = 20\n", f"ring_seconds = 20\n{written}\n")

    desk = parse_definition(text)

    assert desk.voice.tts_voices == expected
    assert parse_definition(export_toml(desk)) == desk


def test_an_english_desk_checks_its_single_voice_against_english() -> None:
    text = edit(
        BASE, 'timezone = "Europe/Amsterdam"', 'timezone = "Europe/Amsterdam"\nlanguage = "en"'
    )
    text = edit(
        text, "ring_seconds = 20\n", 'ring_seconds = 20\ntts_voice = "Polly.Brian-Neural"\n'
    )

    desk = parse_definition(text)

    assert desk.voice.tts_voices == (("en", "Polly.Brian-Neural"),)
    assert 'tts_voice = "Polly.Brian-Neural"' in export_toml(desk)


def test_a_table_of_voices_is_exported_as_a_table() -> None:
    text = edit(
        BASE,
        "ring_seconds = 20\n",
        'ring_seconds = 20\ntts_voice = { nl = "Polly.Laura-Neural", en = "Polly.Amy-Neural" }\n',
    )

    exported = export_toml(parse_definition(text))

    assert 'tts_voice = { nl = "Polly.Laura-Neural", en = "Polly.Amy-Neural" }' in exported


# --- bad files: every mistake at its place and line -----------------------------------

# (what is wrong, replace this, with this, `where`, the text on the reported line, message)
MISTAKES = [
    (
        "unknown colleague in a shift",
        'staff = "bram"\ndays',
        'staff = "bob"\ndays',
        "shift[2].staff",
        'staff = "bob"',
        '"bob" is not a colleague (known: anna, bram, chantal)',
    ),
    (
        "shift ends before it starts",
        'from = "12:30"\nto = "17:00"',
        'from = "12:30"\nto = "11:00"',
        "shift[2].to",
        'to = "11:00"',
        "11:00 is not after from = 12:30",
    ),
    (
        "shift time that does not exist",
        'from = "08:30"\nto = "12:30"',
        'from = "8.30"\nto = "12:30"',
        "shift[1].from",
        'from = "8.30"',
        '"8.30" is not a time like "08:30"',
    ),
    (
        "shift without days",
        'days = ["mon", "wed"]',
        "days = []",
        "shift[1].days",
        "days = []",
        "is empty",
    ),
    (
        "unknown weekday in a shift",
        'days = ["mon", "fri"]',
        'days = ["mon", "vri"]',
        "shift[2].days[2]",
        'days = ["mon", "vri"]',
        '"vri" is not a day: use the three-letter names',
    ),
    (
        "overlapping opening hours",
        '"13:30-17:00"]',
        '"12:00-13:00"]',
        "hours.wed",
        "wed =",
        "12:00-13:00 overlaps 08:30-12:30",
    ),
    (
        "opening hours that end before they start",
        'fri = ["08:30-16:00"]',
        'fri = ["16:00-08:30"]',
        "hours.fri[1]",
        "fri =",
        '"16:00-08:30" ends before it starts',
    ),
    (
        "opening hours past midnight",
        'mon = ["08:30-17:00"]',
        'mon = ["08:30-25:00"]',
        "hours.mon[1]",
        "mon =",
        '"25:00" is not a valid 24-hour time',
    ),
    (
        "weekday written out in full",
        'fri = ["08:30-16:00"]',
        'friday = ["08:30-16:00"]',
        "hours.friday",
        "friday =",
        'use the three-letter names mon, tue, wed, thu, fri, sat, sun; did you mean "fri"?',
    ),
    (
        "misspelt weekday",
        'mon = ["08:30-17:00"]',
        'mom = ["08:30-17:00"]',
        "hours.mom",
        "mom =",
        '"mom" is not a day',
    ),
    (
        "unknown time zone",
        '"Europe/Amsterdam"',
        '"Europe/Amsterdm"',
        "desk.timezone",
        "timezone =",
        '"Europe/Amsterdm" is not a known time zone',
    ),
    (
        "unknown language",
        'timezone = "Europe/Amsterdam"\n',
        'timezone = "Europe/Amsterdam"\nlanguage = "de"\n',
        "desk.language",
        "language =",
        '"de" is not allowed (use "nl" or "en")',
    ),
    (
        "desk address without a domain",
        'email = "helpdesk@example.org"',
        'email = "helpdesk"',
        "desk.email",
        'email = "helpdesk"',
        '"helpdesk" is not a valid mail address',
    ),
    (
        "colleague's number too short",
        '"+31 6 2345 6789"',
        '"06 1234"',
        "staff[2].phone",
        'phone = "06 1234"',
        '"06 1234" is not a valid phone number',
    ),
    (
        "line number that is not a number",
        '"085 123 4567"',
        '"helpdesk"',
        "line[1].number",
        'number = "helpdesk"',
        '"helpdesk" is not a valid phone number',
    ),
    (
        "the same line number written another way",
        "[[mailbox]]",
        '[[line]]\nnumber = "+31 85 123 45 67"\norganisation = "Zorggroep De Linde"\n\n[[mailbox]]',
        "line[2].number",
        'number = "+31 85',
        "+31851234567 is already used by line[1]",
    ),
    (
        "the same mailbox in capitals",
        '[[staff]]\nid = "anna"',
        '[[mailbox]]\naddress = "Helpdesk@Example.org"\norganisation = "Zorggroep"\n\n'
        '[[staff]]\nid = "anna"',
        "mailbox[2].address",
        'address = "Helpdesk@',
        "Helpdesk@Example.org is already used by mailbox[1]",
    ),
    (
        "colleague id used twice",
        'id = "chantal"',
        'id = "Anna"',
        "staff[3].id",
        'id = "Anna"',
        '"Anna" is already used by staff[1]',
    ),
    (
        "colleague id with a space",
        'id = "chantal"',
        'id = "chantal b"',
        "staff[3].id",
        'id = "chantal b"',
        "no spaces",
    ),
    (
        "colleague without a name",
        'name = "Chantal Bakker"\n',
        "",
        "staff[3].name",
        '[[staff]]\nid = "chantal"',
        "is missing",
    ),
    (
        "line without an organisation",
        'organisation = "Ziekenhuis Noord"\n\n[[mailbox]]',
        "\n[[mailbox]]",
        "line[1].organisation",
        "[[line]]",
        "is missing",
    ),
    (
        "[line] written with single brackets",
        "[[line]]",
        "[line]",
        "line",
        "[line]",
        "write [[line]] with double brackets",
    ),
    (
        "misspelt setting",
        "ring_seconds = 20",
        "ring_secnds = 20",
        "voice.ring_secnds",
        "ring_secnds",
        'unknown setting "ring_secnds"; did you mean "ring_seconds"?',
    ),
    (
        "misspelt section",
        "[voice]",
        "[voise]",
        "voise",
        "[voise]",
        'unknown section "voise"; did you mean "voice"?',
    ),
    (
        "number in quotes",
        "ring_seconds = 20",
        'ring_seconds = "20"',
        "voice.ring_seconds",
        "ring_seconds",
        'must be a whole number, not text ("20")',
    ),
    (
        "true/false in quotes",
        "off = true",
        'off = "yes"',
        "change[1].off",
        'off = "yes"',
        "must be true or false",
    ),
    (
        "true/false where a number belongs",
        "ring_seconds = 20",
        "ring_seconds = true",
        "voice.ring_seconds",
        "ring_seconds",
        "must be a whole number, not true/false (true)",
    ),
    (
        "text where a number is needed, the other way round",
        'name = "Helpdesk Digitale Zorg"',
        "name = 12",
        "desk.name",
        "name = 12",
        "must be text in quotes, not a whole number (12)",
    ),
    (
        "ring time over Twilio's limit",
        "ring_seconds = 20",
        "ring_seconds = 601",
        "voice.ring_seconds",
        "ring_seconds",
        "601 is out of range (must be from 5 to 600)",
    ),
    (
        "a voice of another language",
        "ring_seconds = 20",
        'ring_seconds = 20\ntts_voice = "Polly.Joanna-Neural"',
        "voice.tts_voice",
        "tts_voice",
        '"Polly.Joanna-Neural" speaks English (en-US), not Dutch',
    ),
    (
        "a voice Twilio does not list",
        "ring_seconds = 20",
        'ring_seconds = 20\ntts_voice = "Polly.Laira-Neural"',
        "voice.tts_voice",
        "tts_voice",
        'is not a voice Twilio lists for Dutch; did you mean "Polly.Laura-Neural"?',
    ),
    (
        "Twilio's default voice, which speaks no Dutch",
        "ring_seconds = 20",
        'ring_seconds = 20\ntts_voice = "man"',
        "voice.tts_voice",
        "tts_voice",
        '"man" is not a voice Twilio lists for Dutch',
    ),
    (
        "a voice per language, for a language the desk does not have",
        "ring_seconds = 20",
        'ring_seconds = 20\ntts_voice = { de = "Polly.Vicki-Neural" }',
        "voice.tts_voice.de",
        "tts_voice",
        'unknown language "de"',
    ),
    (
        "a voice that is not text",
        "ring_seconds = 20",
        "ring_seconds = 20\ntts_voice = 3",
        "voice.tts_voice",
        "tts_voice",
        'must be a voice in quotes like "Polly.Laura-Neural", or one per language',
    ),
    (
        "unknown strategy",
        '"simultaneous"',
        '"round-robin"',
        "voice.strategy",
        "strategy =",
        '"round-robin" is not allowed',
    ),
    (
        "change that changes nothing",
        "off = true",
        "off = false",
        "change[1]",
        "[[change]]",
        "nothing to change",
    ),
    (
        "change on a date that does not exist",
        '"2026-11-24"',
        '"2026-11-31"',
        "change[1].date",
        "date =",
        '"2026-11-31" is not a date like "2026-12-24"',
    ),
    (
        "closure date written the Dutch way",
        '["2026-12-24"]',
        '["24-12-2026"]',
        "closures.dates[1]",
        "dates =",
        '"24-12-2026" is not a date',
    ),
    (
        "closure date with an empty name",
        '["2026-12-24"]',
        '[{ date = "2026-12-24", name = " " }]',
        "closures.dates[1].name",
        "dates =",
        "must not be empty",
    ),
    (
        "closure date with an unknown setting",
        '["2026-12-24"]',
        '[{ date = "2026-12-24", title = "de teamdag" }]',
        "closures.dates[1].title",
        "dates =",
        'unknown setting "title"',
    ),
    (
        "one closure date with two names",
        '["2026-12-24"]',
        '[\n  { date = "2026-12-24", name = "de teamdag" },\n'
        '  { date = 2026-12-24, name = "de heidag" },\n]',
        "closures.dates[2]",
        "dates =",
        '2026-12-24 is listed twice, with different names ("de teamdag" and "de heidag")',
    ),
    (
        "open on a holiday the country does not have",
        'dates = ["2026-12-24"]',
        'dates = ["2026-12-24"]\nopen_on_holidays = ["Goede Vrijdag", "Goeie vrijdag"]',
        "closures.open_on_holidays[2]",
        "open_on_holidays",
        '"Goeie vrijdag" is not a public holiday of NL in 2000-2050; did you mean "Good Friday"?',
    ),
    (
        "open on a holiday without a holiday country",
        'dates = ["2026-12-24"]',
        'public_holidays = ""\ndates = ["2026-12-24"]\nopen_on_holidays = ["Good Friday"]',
        "closures.open_on_holidays",
        "open_on_holidays",
        "needs public_holidays",
    ),
    (
        "unknown holiday country",
        "[closures]\n",
        '[closures]\npublic_holidays = "XX"\n',
        "closures.public_holidays",
        "public_holidays",
        '"XX" is not a country the holidays package knows',
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "where", "marker", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in MISTAKES],
)
def test_a_mistake_is_reported_at_its_place_and_line(
    old: str, new: str, where: str, marker: str, message: str
) -> None:
    text = edit(BASE, old, new)

    problems = problems_of(text)

    assert [(p.where, p.line) for p in problems] == [(where, line_of(text, marker))]
    assert message in problems[0].message


def test_a_toml_syntax_error_is_one_problem_with_tomls_line() -> None:
    text = edit(BASE, "ring_seconds = 20", "ring_seconds = ")

    problems = problems_of(text)

    assert len(problems) == 1
    assert problems[0].line == line_of(text, "ring_seconds")
    assert f"(at line {problems[0].line}, column" in problems[0].message


def test_the_error_message_lists_each_problem_with_file_and_line() -> None:
    text = edit(BASE, 'staff = "bram"\ndays', 'staff = "bob"\ndays')
    line = line_of(text, 'staff = "bob"')

    with pytest.raises(DefinitionError) as caught:
        parse_definition(text, "helpdesk.toml")

    assert str(caught.value) == (
        "helpdesk.toml: 1 problem, nothing was loaded:\n"
        f"  helpdesk.toml:{line}: shift[2].staff: "
        '"bob" is not a colleague (known: anna, bram, chantal)'
    )


def test_a_file_with_several_mistakes_lists_all_of_them_in_file_order() -> None:
    text = BASE
    for old, new in [
        ("ring_seconds = 20", "ring_secnds = 20"),
        ('staff = "bram"\ndays', 'staff = "bob"\ndays'),
        ('"+31 6 2345 6789"', '"06 1234"'),
        ('"13:30-17:00"]', '"12:00-13:00"]'),
        ('"Europe/Amsterdam"', '"Europe/Amsterdm"'),
        ('id = "chantal"', 'id = "anna"'),
    ]:
        text = edit(text, old, new)

    problems = problems_of(text)

    assert [(p.where, p.line) for p in problems] == [
        ("desk.timezone", line_of(text, "timezone")),
        ("hours.wed", line_of(text, "wed =")),
        ("staff[2].phone", line_of(text, '"06 1234"')),
        ("staff[3].id", line_of(text, 'id = "anna"\nname = "Chantal')),
        ("shift[2].staff", line_of(text, 'staff = "bob"')),
        ("voice.ring_secnds", line_of(text, "ring_secnds")),
    ]


def test_every_wrong_voice_is_listed_at_once_each_with_its_line() -> None:
    text = edit(
        BASE,
        "ring_seconds = 20\n",
        "ring_seconds = 900\n[voice.tts_voice]\n"
        'nl = "Polly.Amy-Neural"\nen = "Polly.Laura-Neural"\n',
    )

    problems = problems_of(text)

    assert [(p.where, p.line) for p in problems] == [
        ("voice.ring_seconds", line_of(text, "ring_seconds")),
        ("voice.tts_voice.nl", line_of(text, "nl = ")),
        ("voice.tts_voice.en", line_of(text, "en = ")),
    ]
    assert "speaks English (en-GB), not Dutch" in problems[1].message
    assert "speaks Dutch (nl-NL), not English" in problems[2].message
    assert "Polly.Laura-Neural (the default)" in problems[1].message


def test_a_wrong_desk_language_is_not_reported_again_as_a_wrong_voice() -> None:
    text = edit(
        BASE, 'timezone = "Europe/Amsterdam"', 'timezone = "Europe/Amsterdam"\nlanguage = "fr"'
    )
    text = edit(text, "ring_seconds = 20\n", 'ring_seconds = 20\ntts_voice = "Polly.Lea-Neural"\n')

    assert [p.where for p in problems_of(text)] == ["desk.language"]


def test_lines_are_found_in_multi_line_arrays_and_after_multi_line_strings() -> None:
    text = edit(BASE, 'days = ["mon", "fri"]', 'days = [\n  "mon",\n  "[vri]",\n]')
    text = edit(text, "[desk]\n", '[desk]\nwebsite = """\n[voice]\nto = 1\n"""\n')

    problems = problems_of(text)

    # Reported at the key's line: the scanner does not follow items of a list.
    assert [(p.where, p.line) for p in problems] == [
        ("shift[2].days[2]", line_of(text, "days = [\n")),
    ]


def test_the_same_mistake_in_the_second_entry_points_at_the_second_entry() -> None:
    text = edit(BASE, 'to = "17:00"\n\n[[change]]', 'to = "07:00"\n\n[[change]]')

    (problem,) = problems_of(text)

    assert (problem.where, problem.line) == ("shift[2].to", line_of(text, 'to = "07:00"'))


def test_desk_from_document_reports_problems_without_lines() -> None:
    doc = {
        "desk": {"name": ""},
        "staff": [{"id": "anna", "name": "Anna", "phone": "112233"}, "bram"],
        "voice": {"screening": "yes", "max_voicemail_seconds": 4},
    }

    with pytest.raises(DefinitionError) as caught:
        desk_from_document(doc, "database")

    assert caught.value.source == "database"
    assert [(p.where, p.line) for p in caught.value.problems] == [
        ("desk.name", None),
        ("staff[2]", None),
        ("staff[1].phone", None),
        ("voice.screening", None),
        ("voice.max_voicemail_seconds", None),
    ]


# --- messages (checked against intake.core.texts) -----------------------------------------


# (what is wrong, the [messages] section, `where`, the text on the reported line, message)
BAD_MESSAGES = [
    (
        "unknown placeholder",
        '[messages.nl]\ngreeting = "Welkom, {naam}"\n',
        "messages.nl.greeting",
        "greeting =",
        "unknown placeholder {naam}",
    ),
    (
        "placeholder of another message",
        '[messages.nl]\nvoicemail_thanks = "Dank u. Wij openen {next_opening}."\n',
        "messages.nl.voicemail_thanks",
        "voicemail_thanks =",
        "unknown placeholder {next_opening}",
    ),
    (
        "unclosed brace",
        '[messages.nl]\ngreeting = "Welkom {desk"\n',
        "messages.nl.greeting",
        "greeting =",
        "expected '}' before end of string",
    ),
    (
        "empty braces",
        '[messages.nl]\ngreeting = "Welkom {}"\n',
        "messages.nl.greeting",
        "greeting =",
        "unknown placeholder {}",
    ),
    (
        "format spec",
        '[messages.nl]\ngreeting = "Welkom {desk:>40}"\n',
        "messages.nl.greeting",
        "greeting =",
        "write the placeholder as plain {desk}",
    ),
    (
        "empty message",
        '[messages.en]\nclosed = ""\n',
        "messages.en.closed",
        "closed =",
        "must not be empty",
    ),
    (
        "misspelt message",
        '[messages.nl]\ngreting = "Welkom"\n',
        "messages.nl.greting",
        "greting =",
        'did you mean "greeting"?',
    ),
    (
        "number instead of text",
        "[messages.nl]\ngreeting = 3\n",
        "messages.nl.greeting",
        "greeting =",
        "must be text in quotes",
    ),
    (
        "unknown mail text",
        '[messages.nl]\ngreeting = "Welkom"\nack_thank = "Dank u wel voor uw mail."\n',
        "messages.nl.ack_thank",
        "ack_thank =",
        'unknown message "ack_thank"; did you mean "ack_thanks"?',
    ),
    (
        "unknown placeholder in a mail text",
        '[messages.en]\ngreeting = "Welcome"\nack_reference = "Your number is {ref}."\n',
        "messages.en.ack_reference",
        "ack_reference =",
        "unknown placeholder {ref} (placeholders here: {desk}, {email}, {reference}, {website})",
    ),
    (
        "a mail text with a placeholder of a spoken text",
        '[messages.nl]\nvoicemail_subject = "Voicemail om {next_opening}"\n',
        "messages.nl.voicemail_subject",
        "voicemail_subject =",
        "unknown placeholder {next_opening}",
    ),
    (
        "unknown language",
        '[messages.fr]\ngreeting = "Bienvenue"\n',
        "messages.fr",
        "[messages.fr]",
        'unknown language "fr"',
    ),
]


@pytest.mark.parametrize(
    ("section", "where", "marker", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_MESSAGES],
)
def test_a_bad_message_is_reported_at_its_line(
    section: str, where: str, marker: str, message: str
) -> None:
    text = BASE + "\n" + section

    problems = problems_of(text)

    assert [(p.where, p.line) for p in problems] == [(where, line_of(text, marker))]
    assert message in problems[0].message


def test_a_message_may_use_its_own_placeholders() -> None:
    key = "closed"
    placeholders = " ".join("{" + name + "}" for name in sorted(PLACEHOLDERS[key]))
    text = BASE + f'\n[messages.en]\n{key} = "Text {placeholders}, with {{{{braces}}}}"\n'

    desk = parse_definition(text)

    assert desk.messages == {"en": {key: f"Text {placeholders}, with {{{{braces}}}}"}}


def test_mail_texts_are_overridden_like_spoken_ones_and_export_back() -> None:
    text = (
        BASE
        + '\n[messages.nl]\nack_thanks = "Dank u, {desk}."\n'
        + 'ack_regards = """Groet,\nhet team van {desk}"""\n'
        + '\n[messages.en]\nvoicemail_subject = "Call {caller} back ({reference})"\n'
    )

    desk = parse_definition(text)

    assert desk.messages == {
        "nl": {"ack_thanks": "Dank u, {desk}.", "ack_regards": "Groet,\nhet team van {desk}"},
        "en": {"voicemail_subject": "Call {caller} back ({reference})"},
    }
    assert parse_definition(export_toml(desk)) == desk


# --- round trips ----------------------------------------------------------------------


def test_exported_toml_loads_back_into_the_same_desk(example_text: str) -> None:
    desk = parse_definition(example_text)

    exported = export_toml(desk)

    assert parse_definition(exported) == desk
    assert exported.startswith("# ")
    assert "intake load-config" in exported.splitlines()[1]
    assert export_toml(parse_definition(exported)) == exported


def test_the_document_loads_back_into_the_same_desk(example_text: str) -> None:
    desk = parse_definition(example_text)

    assert desk_from_document(desk_to_document(desk)) == desk


def test_the_document_of_a_file_is_the_same_bytes_every_time(example_text: str) -> None:
    first = json.dumps(desk_to_document(parse_definition(example_text)), sort_keys=True)
    second = json.dumps(desk_to_document(parse_definition(example_text)), sort_keys=True)

    assert first == second
    assert '"phone": "+31612345678"' in first


def test_the_document_does_not_depend_on_how_the_file_was_written() -> None:
    reordered = edit(
        BASE, 'wed = ["08:30-12:30", "13:30-17:00"]', 'wed = ["13:30-17:00", "08:30-12:30"]'
    )
    reordered = edit(reordered, '"06 1234 5678"', '"+31612345678"')
    reordered = edit(reordered, 'days = ["mon", "fri"]', 'days = ["fri", "Mon"]')

    def document(text: str) -> str:
        return json.dumps(desk_to_document(parse_definition(text)), sort_keys=True)

    assert document(reordered) == document(BASE)


def test_the_document_is_shaped_like_the_file() -> None:
    doc = desk_to_document(parse_definition(BASE))

    assert list(doc) == [
        "desk",
        "hours",
        "closures",
        "line",
        "mailbox",
        "staff",
        "shift",
        "change",
        "voice",
        "messages",
        "retention",
    ]
    assert doc["hours"]["wed"] == ["08:30-12:30", "13:30-17:00"]
    assert doc["shift"][1] == {
        "staff": "bram",
        "days": ["mon", "fri"],
        "from": "12:30",
        "to": "17:00",
    }
    assert doc["change"] == [{"staff": "anna", "date": "2026-11-24", "off": True}]
    assert doc["closures"] == {"public_holidays": "NL", "dates": ["2026-12-24"]}


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ('["Good Friday"]', {"Good Friday"}),
        ('["goede vrijdag", "Koningsdag"]', {"Good Friday", "King's Day"}),  # Dutch, any case
        ('["Good Friday", "Goede vrijdag"]', {"Good Friday"}),
        ("[]", set()),
    ],
)
def test_holidays_to_stay_open_on_are_kept_by_their_english_name(
    written: str, kept: set[str]
) -> None:
    text = edit(
        BASE, 'dates = ["2026-12-24"]', f'dates = ["2026-12-24"]\nopen_on_holidays = {written}'
    )
    desk = parse_definition(text)
    assert desk.open_on_holidays == kept
    assert parse_definition(export_toml(desk)) == desk


def test_a_named_closure_date_survives_export_and_load() -> None:
    text = edit(
        BASE,
        'dates = ["2026-12-24"]',
        'dates = [2026-12-31, { date = "2026-12-24", name = "Kerstavond:  teamdag" }]',
    )
    desk = parse_definition(text)
    assert desk.closure_dates == {date(2026, 12, 24): "Kerstavond: teamdag", date(2026, 12, 31): ""}
    exported = export_toml(desk)
    assert '  { date = "2026-12-24", name = "Kerstavond: teamdag" },\n  "2026-12-31",\n' in exported
    assert parse_definition(exported) == desk
    assert desk_from_document(desk_to_document(desk)) == desk
    assert desk_to_document(desk)["closures"]["dates"] == [
        {"date": "2026-12-24", "name": "Kerstavond: teamdag"},
        "2026-12-31",
    ]


# Values a coordinator might write: quotes, backslashes, accents, newlines and emoji.
names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=30).filter(
    lambda s: s.strip() == s and s != ""
)
phones = st.sampled_from(["+31612345678", "+31201234567", "+32470123456", "+4930123456"])
addresses = st.sampled_from(["a@example.org", "helpdesk@zorg.nl", "x.y@sub.example.com"])
# A closure date's name ("" for none), and the holidays a desk may stay open on per country.
closure_names = st.sampled_from(["", "de teamdag", "Kerstavond: teamdag", 'De "heidag"'])
OPEN_ON = {"": [], "NL": ["Good Friday", "King's Day"], "BE": ["Easter Monday"], "DE": []}


@st.composite
def time_ranges(draw: st.DrawFn) -> TimeRange:
    start = draw(st.integers(0, 23 * 60 + 58))
    end = draw(st.integers(start + 1, 23 * 60 + 59))
    return TimeRange(time(*divmod(start, 60)), time(*divmod(end, 60)))


@st.composite
def days_hours(draw: st.DrawFn) -> tuple[TimeRange, ...]:
    minutes = sorted(draw(st.sets(st.integers(0, 23 * 60 + 59), max_size=6)))
    pairs = zip(minutes[::2], minutes[1::2], strict=False)
    return tuple(TimeRange(time(*divmod(a, 60)), time(*divmod(b, 60))) for a, b in pairs)


@st.composite
def desks(draw: st.DrawFn, message_keys: tuple[str, ...]) -> Desk:
    country = draw(st.sampled_from(sorted(OPEN_ON)))
    ids = draw(
        st.lists(
            st.from_regex(r"[A-Za-z0-9._-]{1,8}", fullmatch=True),
            min_size=1,
            max_size=4,
            unique_by=str.casefold,
        )
    )
    staff = tuple(
        Staff(i, draw(names), draw(phones), draw(st.sampled_from(["", "a@example.org"])))
        for i in ids
    )
    shifts = draw(
        st.lists(
            st.builds(
                Shift,
                staff=st.sampled_from(ids),
                days=st.sets(st.integers(0, 6), min_size=1).map(lambda d: tuple(sorted(d))),
                hours=time_ranges(),
            ),
            max_size=4,
        )
    )
    changes = draw(
        st.lists(
            st.one_of(
                st.builds(
                    Change,
                    staff=st.sampled_from(ids),
                    date=st.dates(),
                    off=st.just(True),
                    hours=st.none() | time_ranges(),
                ),
                st.builds(
                    Change,
                    staff=st.sampled_from(ids),
                    date=st.dates(),
                    off=st.just(False),
                    hours=time_ranges(),
                ),
            ),
            max_size=3,
        )
    )
    numbers = draw(st.lists(phones, unique=True, max_size=3))
    messages = draw(
        st.dictionaries(
            st.sampled_from(["nl", "en"]),
            st.dictionaries(
                st.sampled_from(message_keys),
                names.filter(lambda s: "{" not in s and "}" not in s),
                min_size=1,
                max_size=2,
            ),
            max_size=2,
        )
    )
    return Desk(
        name=draw(names),
        timezone=draw(st.sampled_from(["Europe/Amsterdam", "Europe/Brussels", "UTC"])),
        language=draw(st.sampled_from(["nl", "en"])),
        email=draw(st.just("") | addresses),
        website=draw(st.just("") | names),
        hours=tuple(draw(days_hours()) for _ in range(7)),
        public_holidays=country,
        closure_dates=MappingProxyType(
            draw(st.dictionaries(st.dates(), closure_names, max_size=3))
        ),
        open_on_holidays=frozenset(draw(st.lists(st.sampled_from(["", *OPEN_ON[country]])))) - {""},
        lines=tuple(Line(n, draw(names)) for n in numbers),
        mailboxes=tuple(
            Mailbox(a, draw(names)) for a in draw(st.lists(addresses, unique=True, max_size=2))
        ),
        staff=staff,
        shifts=tuple(shifts),
        changes=tuple(changes),
        voice=draw(
            st.builds(
                VoiceSettings,
                strategy=st.sampled_from(["simultaneous", "sequential"]),
                ring_seconds=st.integers(5, 600),
                screening=st.booleans(),
                fallback_number=st.just("") | phones,
                max_voicemail_seconds=st.integers(5, 3600),
                tts_voices=st.sampled_from(
                    [
                        (),
                        (("nl", "Polly.Laura-Neural"),),
                        (("en", "Google.en-US-Neural2-J"),),
                        (("nl", "Google.nl-BE-Wavenet-A"), ("en", "Polly.Amy-Neural")),
                    ]
                ),
            )
        ),
        messages=messages,
        retention_days=draw(st.integers(1, 10_000)),
    )


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_desk_survives_export_and_document_round_trips(data: st.DataObject) -> None:
    desk = data.draw(desks(MESSAGE_KEYS))

    assert parse_definition(export_toml(desk)) == desk
    assert desk_from_document(json.loads(json.dumps(desk_to_document(desk)))) == desk


# --- how a mailbox signs in ----------------------------------------------------------------

CONNECTED = 'organisation = "Ziekenhuis Noord"\nimap = { host = "imap.example.org" }\n'


def with_signin(lines: str) -> str:
    """BASE with its mailbox connected (its own IMAP) and signing in as `lines` say."""
    return edit(
        BASE, 'organisation = "Ziekenhuis Noord"\n\n[[staff]]', CONNECTED + lines + "\n[[staff]]"
    )


@pytest.mark.parametrize(
    "lines",
    [
        'password_env = "INTAKE_MAILBOX_NOORD_PASSWORD"\n',
        'password_file = "/etc/intake/noord-password"\n',
        'signin = "microsoft"\ntenant_id = "t"\nclient_id = "c"\n'
        'client_secret_env = "INTAKE_MAILBOX_NOORD_CLIENT_SECRET"\n',
        'signin = "microsoft"\ntenant_id = "t"\nclient_id = "c"\n'
        'client_secret_file = "/etc/intake/noord-client-secret"\n',
        'signin = "microsoft"\ntenant_id = "t"\nclient_id = "c"\n'
        'certificate_path = "/etc/intake/noord.pem"\n',
        'signin = "google"\nservice_account_file = "/etc/intake/google-key.json"\n',
    ],
)
def test_each_way_of_signing_in_is_read_and_written_back_the_same(lines: str) -> None:
    desk = parse_definition(with_signin(lines))

    assert parse_definition(export_toml(desk)) == desk
    [mailbox] = desk.mailboxes
    named = {k: v for k, v in vars(mailbox.signin).items() if v and k not in ("method", "user")}
    assert set(named) == {line.split(" = ")[0] for line in lines.splitlines()} - {"signin"}


@pytest.mark.parametrize(
    ("lines", "where", "message"),
    [
        ("", "mailbox[1].password_env", "needs exactly one of password_env or password_file"),
        (
            'password_env = "INTAKE_MAILBOX_NOORD_PASSWORD"\npassword_file = "/etc/intake/pw"\n',
            "mailbox[1].password_env",
            "needs exactly one of password_env or password_file",
        ),
        (
            'signin = "microsoft"\ntenant_id = "t"\nclient_id = "c"\n'
            'client_secret_file = "/etc/intake/s"\ncertificate_path = "/etc/intake/noord.pem"\n',
            "mailbox[1].client_secret_env",
            "needs exactly one of client_secret_env, client_secret_file or certificate_path",
        ),
        (
            'signin = "microsoft"\nclient_id = "c"\nclient_secret_file = "/etc/intake/s"\n',
            "mailbox[1].tenant_id",
            'is missing (signin = "microsoft" needs it)',
        ),
        ('signin = "google"\n', "mailbox[1].service_account_file", "is missing"),
        (
            'password_env = "INTAKE_MAILBOX_NOORD_PASSWORD"\nclient_secret_file = "/etc/s"\n',
            "mailbox[1].client_secret_file",
            'is only for signin = "microsoft", not "password"',
        ),
    ],
)
def test_a_sign_in_that_cannot_work_is_refused_where_it_is_wrong(
    lines: str, where: str, message: str
) -> None:
    problems = problems_of(with_signin(lines))

    assert [(p.where, message in p.message) for p in problems] == [(where, True)], problems
