"""Mail to a colleague about their own login: the one-time link to set a password.

The words come translated from the shell (the dashboard's catalog, in the colleague's
language); this module only builds the message, plain text, from the desk's sender, like
every other message the desk sends (`mail.compose`). It goes through the outbox.
"""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage

from intake.core.addresses import strict_address
from mail.compose import POLICY, new_message_id, set_text
from mail.headertext import header_text
from routing.hours import require_aware

KIND = "password-link"  # the outbox row's kind


def password_link(
    *,
    desk_name: str,
    sender: str,
    recipient: str,
    subject: str,
    body: str,
    at: datetime,
) -> EmailMessage:
    """The message that carries a set-password link; `body` holds the link already."""
    require_aware(at)
    from_address, to_address = strict_address(sender), strict_address(recipient)
    if from_address is None:
        raise ValueError(f"not an address we can send from: {sender!r}")
    if to_address is None:
        raise ValueError(f"not an address we can send to: {recipient!r}")
    message = EmailMessage(policy=POLICY)
    message["From"] = Address(display_name=header_text(desk_name, 100), addr_spec=from_address)
    message["To"] = Address(addr_spec=to_address)
    message["Subject"] = header_text(subject, 200)
    message["Date"] = at
    domain = from_address.rpartition("@")[2]
    message.set_raw("Message-ID", new_message_id(KIND, None, domain))
    # Sent by the service itself: no out-of-office reply should come back to the desk.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    set_text(message, body)
    return message
