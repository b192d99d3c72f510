"""The Twilio voice webhooks: a Flask blueprint answering with TwiML (`bp`, signed by
Twilio), and the desk's recordings it plays (`media`, fetched by a token)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("voice", __name__, url_prefix="/voice")

from . import callbacks as callbacks  # noqa: E402  (the callback legs' routes)
from . import queue as queue  # noqa: E402  (the call queue's routes)
from . import views as views  # noqa: E402  (registers the routes on bp)
from .recordings import media as media  # noqa: E402  (the recordings Twilio fetches, unsigned)
