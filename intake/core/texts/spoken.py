"""What callers hear: the built-in spoken texts, in Dutch and English, and their placeholders.

Written for patients who are often elderly and often stuck: short sentences, one thing at
a time, and in Dutch the polite "u". A desk overrides any of them per language in its
`[messages.nl]` / `[messages.en]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from routing.desk import LANGUAGES
from routing.voices import default_voice

# The <Say language> of each language's default voice. A <Say> names its voice's own
# locale (a desk with an American voice speaks en-US): routing.voices.desk_voice.
SAY_LANGUAGE: Mapping[str, str] = MappingProxyType(
    {language: default_voice(language).locale for language in LANGUAGES}
)

_LEAVE_MESSAGE_NL = "Spreek na de piep uw naam, uw telefoonnummer en uw vraag in."
_LEAVE_MESSAGE_EN = "After the beep, please say your name, your phone number and your question."

BUILT_IN: Mapping[str, Mapping[str, str]] = {
    "nl": {
        "greeting": (
            "Welkom bij {desk}. U wordt doorverbonden met een medewerker. "
            "Een moment geduld alstublieft."
        ),
        "closed": (
            "Welkom bij {desk}. Wij zijn nu gesloten. Wij zijn {next_opening} weer bereikbaar. "
            "U kunt ons ook mailen: {email}. Of laat een bericht achter. "
            f"{_LEAVE_MESSAGE_NL} Wij bellen u dan terug."
        ),
        "closed_no_next": (
            "Welkom bij {desk}. Wij zijn nu gesloten. U kunt ons mailen: {email}. "
            f"Of laat een bericht achter. {_LEAVE_MESSAGE_NL} Wij bellen u dan terug."
        ),
        "closure": (
            "Welkom bij {desk}. Vanwege {closure_name} is de helpdesk vandaag gesloten. "
            "Wij zijn {next_opening} weer bereikbaar. U kunt ons ook mailen: {email}. "
            f"Of laat een bericht achter. {_LEAVE_MESSAGE_NL} Wij bellen u dan terug."
        ),
        "unavailable": (
            "Op dit moment kan helaas geen medewerker uw gesprek aannemen. "
            f"{_LEAVE_MESSAGE_NL} Wij bellen u zo snel mogelijk terug. "
            "U kunt ons ook mailen: {email}."
        ),
        "voicemail_thanks": (
            "Dank u wel. Wij hebben uw bericht ontvangen. Wij bellen u zo snel mogelijk terug. "
            "Tot ziens."
        ),
        "no_message": (
            "Wij hebben geen bericht ontvangen. Belt u gerust nog een keer, "
            "of mail ons: {email}. Tot ziens."
        ),
        "screen_prompt": (
            "Helpdeskgesprek voor {organisation}. Druk op 1 om het gesprek aan te nemen."
        ),
        "taken": "Een collega heeft dit helpdeskgesprek al aangenomen. Dank u wel.",
        # A caller waiting because every colleague is on a call.
        "queue_intro": (
            "Welkom bij {desk}. Al onze medewerkers zijn in gesprek. "
            "U wordt zo snel mogelijk geholpen. Blijft u aan de lijn."
        ),
        "queue_place": "U bent nummer {position}.",
        "queue_expected": "Het duurt ongeveer {minutes} minuten.",
        "queue_callback_offer": (
            "Wilt u liever teruggebeld worden? Druk dan op 1. U houdt uw plek in de rij."
        ),
        "queue_callback_confirmed": (
            "Wij bellen u terug op nummer {number}. U houdt uw plek in de rij. "
            "U kunt nu ophangen. Tot ziens."
        ),
        "queue_too_long": "Het spijt ons dat u zo lang moet wachten.",
        # What the colleague hears who pressed "bel terug" on a contact's page.
        "callback_prompt": (
            "Terugbellen voor {organisation}. Patiënt met nummer {patient}, kenmerk "
            "{reference}. Druk op 1 om de patiënt nu te bellen."
        ),
        "callback_not_reached": (
            "De patiënt is niet bereikt. Dat staat nu bij het contact. Tot ziens."
        ),
        "technical_trouble": (
            "Het spijt ons. Wij kunnen u op dit moment niet doorverbinden. "
            f"{_LEAVE_MESSAGE_NL} Wij bellen u dan terug."
        ),
    },
    "en": {
        "greeting": (
            "Welcome to {desk}. We are putting you through to one of our team. "
            "Please hold on a moment."
        ),
        "closed": (
            "Welcome to {desk}. We are closed at the moment. "
            "We are available again {next_opening}. You can also email us at {email}. "
            f"Or leave us a message. {_LEAVE_MESSAGE_EN} We will call you back."
        ),
        "closed_no_next": (
            "Welcome to {desk}. We are closed at the moment. You can email us at {email}. "
            f"Or leave us a message. {_LEAVE_MESSAGE_EN} We will call you back."
        ),
        "closure": (
            "Welcome to {desk}. Because of {closure_name}, the helpdesk is closed today. "
            "We are available again {next_opening}. You can also email us at {email}. "
            f"Or leave us a message. {_LEAVE_MESSAGE_EN} We will call you back."
        ),
        "unavailable": (
            "We are sorry, no one can take your call right now. "
            f"{_LEAVE_MESSAGE_EN} We will call you back as soon as we can. "
            "You can also email us at {email}."
        ),
        "voicemail_thanks": (
            "Thank you. We have received your message. We will call you back as soon as we "
            "can. Goodbye."
        ),
        "no_message": (
            "We did not receive a message. Please call again, or email us at {email}. Goodbye."
        ),
        "screen_prompt": "Helpdesk call for {organisation}. Press 1 to take the call.",
        "taken": "A colleague has already taken this helpdesk call. Thank you.",
        "queue_intro": (
            "Welcome to {desk}. All of our team are on a call. "
            "We will help you as soon as we can. Please stay on the line."
        ),
        "queue_place": "You are number {position}.",
        "queue_expected": "It takes about {minutes} minutes.",
        "queue_callback_offer": (
            "Would you rather be called back? Then press 1. You keep your place in the queue."
        ),
        "queue_callback_confirmed": (
            "We will call you back on number {number}. You keep your place in the queue. "
            "You can hang up now. Goodbye."
        ),
        "queue_too_long": "We are sorry that you have to wait this long.",
        "callback_prompt": (
            "Call back for {organisation}. Patient with number {patient}, reference "
            "{reference}. Press 1 to call the patient now."
        ),
        "callback_not_reached": ("The patient was not reached. The contact now says so. Goodbye."),
        "technical_trouble": (
            "We are sorry, we cannot put you through right now. "
            f"{_LEAVE_MESSAGE_EN} We will call you back."
        ),
    },
}

SPOKEN_KEYS: tuple[str, ...] = (
    "greeting",
    "closed",
    "closed_no_next",
    "closure",
    "unavailable",
    "voicemail_thanks",
    "no_message",
    "screen_prompt",
    "taken",
    "queue_intro",
    "queue_place",
    "queue_expected",
    "queue_callback_offer",
    "queue_callback_confirmed",
    "queue_too_long",
    "callback_prompt",
    "callback_not_reached",
    "technical_trouble",
)

_WELCOME = frozenset({"desk", "organisation", "email", "website"})

PLACEHOLDERS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "greeting": frozenset({"desk", "organisation"}),
        "closed": _WELCOME | {"next_opening"},
        "closed_no_next": _WELCOME,
        "closure": _WELCOME | {"closure_name", "next_opening"},
        "unavailable": frozenset({"desk", "organisation", "email"}),
        "voicemail_thanks": frozenset({"desk"}),
        "no_message": frozenset({"email"}),
        "screen_prompt": frozenset({"organisation", "desk"}),
        # What a colleague hears who pressed 1 just after another colleague did.
        "taken": frozenset({"desk"}),
        "queue_intro": frozenset({"desk", "organisation"}),
        "queue_place": frozenset({"position", "desk"}),
        "queue_expected": frozenset({"minutes", "desk"}),
        "queue_callback_offer": frozenset({"desk"}),
        # The caller's own number, said digit by digit.
        "queue_callback_confirmed": frozenset({"number", "desk"}),
        "queue_too_long": frozenset({"desk"}),
        # The patient's number is said digit by digit, the reference as HD-000123.
        "callback_prompt": frozenset({"organisation", "desk", "patient", "reference"}),
        "callback_not_reached": frozenset({"desk"}),
        "technical_trouble": frozenset({"desk"}),
    }
)


# When even the safe answer of a webhook fails (no database, no desk): said in Dutch, fixed,
# never overridden, since nothing of the desk could be read.
LAST_RESORT: Mapping[str, str] = MappingProxyType(
    {
        "nl": "Excuses, er is een storing. Spreek na de piep uw naam, telefoonnummer en vraag in.",
        "en": (
            "We are sorry, something has gone wrong. After the beep, please say your name, "
            "your phone number and your question."
        ),
    }
)
