"""The Twilio voice webhooks: a Flask blueprint answering with TwiML."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("voice", __name__, url_prefix="/voice")

from . import callbacks as callbacks  # noqa: E402  (the callback legs' routes)
from . import queue as queue  # noqa: E402  (the call queue's routes)
from . import views as views  # noqa: E402  (registers the routes on bp)
