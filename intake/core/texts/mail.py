"""What the desk's own mail says: the acknowledgement patients read, and the forward note
and voicemail notice colleagues read; built in, in Dutch and English, with placeholders.

A desk overrides any of them per language in `[messages.nl]` / `[messages.en]`, as it does
the spoken texts. The acknowledgement speaks to a patient (the polite "u"), the notes to a
colleague ("je"). Composing the MIME message stays in `mail.compose`, which asks for these.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

BUILT_IN: Mapping[str, Mapping[str, str]] = {
    "nl": {
        # -- the acknowledgement: a patient wrote while the desk is closed -------------
        "ack_subject": "Ontvangen: {subject}",
        "ack_greeting": "Goedendag,",
        "ack_thanks": "Dank u wel voor uw e-mail aan {desk}. Wij hebben uw bericht goed ontvangen.",
        "ack_reference": (
            "Uw bericht heeft het nummer {reference}. Schrijft u ons nog een keer over deze "
            "vraag? Laat dit nummer dan in het onderwerp staan. Dan vinden wij uw bericht "
            "snel terug."
        ),
        "ack_next": (
            "Wij zijn nu gesloten. Wij zijn {next_opening} weer open. Dan leest een medewerker "
            "uw bericht. Wij antwoorden u zo snel mogelijk."
        ),
        "ack_no_next": (
            "Op dit moment kan niemand uw bericht lezen. Een medewerker leest het zo snel "
            "mogelijk. Wij antwoorden u dan."
        ),
        "ack_hours": "Onze openingstijden: {opening_hours}.",
        "ack_website": "Op {website} vindt u hulp bij veelgestelde vragen.",
        "ack_medical": (
            "Heeft u een medische vraag? Neem dan contact op met uw huisarts of met de "
            "afdeling waar u onder behandeling bent. Bij levensgevaar belt u 112."
        ),
        "ack_regards": "Met vriendelijke groet,\n{desk}",
        "ack_automatic": (
            "Dit is een automatisch antwoord op uw e-mail. U hoeft hier niet op te antwoorden."
        ),
        # -- the forward note: a patient's mail, for the colleague on shift ------------
        "forward_intro": "Een patiënt heeft de helpdesk gemaild. Deze mail is voor jou.",
        "forward_no_address": "het adres van de afzender is niet eenduidig te lezen",
        "forward_attention": "Let op: een medewerker moet deze mail zelf bekijken.",
        "forward_remarks": "Opmerkingen bij het lezen van de mail:",
        "forward_reply_hint": (
            "Met Beantwoorden gaat je antwoord naar de patiënt. "
            "Laat [{reference}] in het onderwerp staan."
        ),
        "forward_no_reply_hint": (
            "Beantwoorden gaat niet vanzelf naar de patiënt: het afzenderadres is niet "
            "eenduidig te lezen. Kijk in de bijgevoegde originele mail."
        ),
        "forward_original": "De originele mail zit als bijlage bij dit bericht.",
        "forward_quoted": "De tekst van de patiënt:",
        "forward_no_text": "(geen tekst)",
        "forward_cut": "[… de rest staat in de bijgevoegde originele mail]",
        # -- the voicemail notice: a caller left a message ------------------------------
        "voicemail_subject": "Voicemail {reference} van {caller} voor {organisation}",
        "voicemail_intro": "Er is een voicemail ingesproken op de helpdesklijn.",
        "voicemail_listen": (
            "Je kunt de voicemail beluisteren in het dashboard van de helpdesk. "
            "Bel de patiënt terug en markeer het contact daarna als afgehandeld."
        ),
        # -- words the notes share ---------------------------------------------------------
        "no_subject": "(geen onderwerp)",
        "no_attachments": "geen",
        "unknown": "onbekend",
        "unknown_number": "onbekend nummer",
        "label_reference": "Referentie",
        "label_organisation": "Organisatie",
        "label_from": "Van",
        "label_received": "Ontvangen",
        "label_subject": "Onderwerp",
        "label_attachments": "Bijlagen",
        "label_caller": "Beller",
        "label_when": "Wanneer",
        "label_length": "Lengte",
    },
    "en": {
        "ack_subject": "Received: {subject}",
        "ack_greeting": "Hello,",
        "ack_thanks": "Thank you for your email to {desk}. We have received your message.",
        "ack_reference": (
            "Your message has the reference number {reference}. If you write to us again about "
            "this question, please keep this number in the subject line. That helps us find "
            "your message quickly."
        ),
        "ack_next": (
            "We are closed at the moment. We are open again {next_opening}. A member of our "
            "team will then read your message, and we will reply as soon as we can."
        ),
        "ack_no_next": (
            "No one can read your message right now. A member of our team will read it as "
            "soon as possible, and we will reply to you then."
        ),
        "ack_hours": "Our opening hours: {opening_hours}.",
        "ack_website": "You can find help with common questions at {website}.",
        "ack_medical": (
            "Do you have a medical question? Please contact your GP or the department that "
            "is treating you. In an emergency, call 112."
        ),
        "ack_regards": "Kind regards,\n{desk}",
        "ack_automatic": (
            "This is an automatic reply to your email. You do not need to reply to it."
        ),
        "forward_intro": "A patient has emailed the helpdesk. This mail is for you.",
        "forward_no_address": "the sender's address cannot be read unambiguously",
        "forward_attention": "Please note: someone needs to look at this mail in person.",
        "forward_remarks": "Remarks from reading the mail:",
        "forward_reply_hint": (
            "Reply, and your answer goes to the patient. Keep [{reference}] in the subject."
        ),
        "forward_no_reply_hint": (
            "Replying does not reach the patient by itself: the sender's address cannot be "
            "read unambiguously. See the original mail attached."
        ),
        "forward_original": "The original mail is attached to this message.",
        "forward_quoted": "The patient's text:",
        "forward_no_text": "(no text)",
        "forward_cut": "[… the rest is in the original mail attached]",
        "voicemail_subject": "Voicemail {reference} from {caller} for {organisation}",
        "voicemail_intro": "A voicemail has been left on the helpdesk line.",
        "voicemail_listen": (
            "You can listen to it in the helpdesk dashboard. Call the patient back, then "
            "mark the contact as handled."
        ),
        "no_subject": "(no subject)",
        "no_attachments": "none",
        "unknown": "unknown",
        "unknown_number": "unknown number",
        "label_reference": "Reference",
        "label_organisation": "Organisation",
        "label_from": "From",
        "label_received": "Received",
        "label_subject": "Subject",
        "label_attachments": "Attachments",
        "label_caller": "Caller",
        "label_when": "When",
        "label_length": "Length",
    },
}

MAIL_KEYS: tuple[str, ...] = tuple(BUILT_IN["nl"])

# Every mail text may name the desk, its address and website (the texts of the core fill
# those in themselves); the keys below add what only they know.
_DESK = frozenset({"desk", "email", "website"})
_OWN: Mapping[str, frozenset[str]] = {
    "ack_subject": frozenset({"subject", "reference"}),
    "ack_reference": frozenset({"reference"}),
    "ack_next": frozenset({"next_opening", "opening_hours"}),
    "ack_no_next": frozenset({"opening_hours"}),
    "ack_hours": frozenset({"opening_hours"}),
    "forward_reply_hint": frozenset({"reference"}),
    "forward_no_reply_hint": frozenset({"reference"}),
    "voicemail_subject": frozenset({"reference", "caller", "organisation"}),
    "voicemail_intro": frozenset({"reference", "caller", "organisation"}),
}

PLACEHOLDERS: Mapping[str, frozenset[str]] = MappingProxyType(
    {key: _DESK | _OWN.get(key, frozenset()) for key in MAIL_KEYS}
)
