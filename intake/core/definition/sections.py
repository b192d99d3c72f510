"""What a desk definition may hold: its sections, their keys, and the limits of numbers.

The checker reads against this and the export writes in this order, so that a file we
write is laid out as a coordinator reading the documentation expects.
"""

from __future__ import annotations

from dataclasses import fields

from routing.desk import LANGUAGES, WEEKDAYS, Signin

DEFAULT_SOURCE = "<desk definition>"

# A place in the document: table and key names, and 0-based indices into lists.
Path = tuple[str | int, ...]

# How a mailbox signs in, beside `signin` itself: the fields of routing.desk.Signin, in order.
SIGNIN_FIELDS = tuple(f.name for f in fields(Signin) if f.name != "method")

# The tables a definition may hold and the keys each may hold, in the order we export them.
SECTIONS: dict[str, tuple[str, ...]] = {
    "desk": ("name", "timezone", "language", "email", "website"),
    "hours": WEEKDAYS,
    "closures": ("public_holidays", "dates", "open_on_holidays"),
    "line": ("number", "organisation"),
    "mailbox": ("address", "organisation", "signin", *SIGNIN_FIELDS, "imap", "smtp"),
    "staff": ("id", "name", "phone", "email"),
    "shift": ("staff", "days", "from", "to"),
    "change": ("staff", "date", "off", "from", "to"),
    "voice": (
        "strategy",
        "ring_seconds",
        "screening",
        "fallback_number",
        "max_voicemail_seconds",
        "tts_voice",
        "show_line_to_staff",
        "queue",
        "max_wait_seconds",
        "queue_size",
        "queue_music",
    ),
    "messages": LANGUAGES,
    "retention": ("days",),
}

# The keys of a named closure date, `{ date = "2026-12-24", name = "de teamdag" }`.
CLOSURE_KEYS: tuple[str, ...] = ("date", "name")
# The keys of a mailbox's `imap = { ... }` and `smtp = { ... }`.
IMAP_KEYS: tuple[str, ...] = ("host", "port", "tls", "folder", "processed_folder", "cafile")
SMTP_KEYS: tuple[str, ...] = ("host", "port", "tls", "cafile")
# The port each kind of connection usually has, when none is given.
IMAP_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
SMTP_PORTS = {"ssl": 465, "starttls": 587, "none": 25}
# The sign-in settings each method needs or may have, besides `signin` itself.
SIGNIN_KEYS: dict[str, tuple[str, ...]] = {
    "password": ("user", "password_env", "password_file"),
    "microsoft": (
        "user",
        "tenant_id",
        "client_id",
        "client_secret_env",
        "client_secret_file",
        "certificate_path",
    ),
    "google": ("user", "service_account_file"),
}

RING_SECONDS = (5, 600)  # Twilio's <Dial timeout> allows at most 600
VOICEMAIL_SECONDS = (5, 3600)
WAIT_SECONDS = (30, 3600)  # how long a caller may wait in the queue before voicemail
QUEUE_SIZE = (1, 100)
