"""The test Dovecot's INBOX filled and read in one IMAP session each (one login, not one per
message), for tests that put many messages through."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported at run time by pytest, as a plugin
    from tests.mailservers import Dovecot


def append_all(dovecot: Dovecot, messages: Sequence[bytes]) -> list[int]:
    """Append the messages over one IMAP session (one login, not one per message)."""
    uids: list[int] = []
    with dovecot.session() as client:
        for raw in messages:
            response = client.append("INBOX", raw)
            found = re.search(rb"\[APPENDUID \d+ (\d+)\]", response)
            assert found is not None, response
            uids.append(int(found.group(1)))
    return uids


def flags_of_all(dovecot: Dovecot) -> dict[int, frozenset[str]]:
    """Every message's flags, in one session."""
    with dovecot.session() as client:
        client.select_folder("INBOX", readonly=True)
        found = client.fetch(client.search("ALL"), ["FLAGS"])
    return {
        uid: frozenset(f.decode() if isinstance(f, bytes) else f for f in data[b"FLAGS"])
        for uid, data in found.items()
    }
