"""Long base64 runs are fed to the parser as one line each: the reading must not change.

`mail.mimeparts` replaces each long run of base64 lines with a marker line before the
standard library parses the message, and gives the original bytes back wherever a payload is
decoded. These tests read every message twice, with runs elided from a few hundred bytes on
and without, and compare everything the desk keeps of it.
"""

from __future__ import annotations

import base64
import random
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

import pytest

from mail import mimeparts
from mail.message import Attachment
from mail.parsing import parse_message

CORPUS = Path(__file__).resolve().parent / "mail_corpus"


def built(rng: random.Random) -> list[bytes]:
    """Messages with long base64 runs where they matter: bodies, attachments, nested mail."""
    found: list[bytes] = []
    text = "Beste helpdesk, ik kan niet inloggen. Groet, Jan Smit é €\n" * 2000
    plain = EmailMessage()
    plain["From"] = "Jan Smit <jan@example.nl>"
    plain["To"] = "helpdesk@example.org"
    plain["Subject"] = "Inloggen"
    plain.set_content(text, cte="base64")  # the body itself is one long run
    found.append(plain.as_bytes(policy=SMTP))
    mixed = EmailMessage()
    mixed["From"] = "Jan Smit <jan@example.nl>"
    mixed["Subject"] = "Met bijlage"
    mixed.set_content("Zie de bijlage.\n")
    mixed.add_alternative("<p>Zie de <b>bijlage</b>.</p>", subtype="html")
    mixed.add_attachment(rng.randbytes(300_000), maintype="video", subtype="mp4", filename="a.mp4")
    mixed.add_attachment(rng.randbytes(5_000), maintype="image", subtype="png", filename="b.png")
    found.append(mixed.as_bytes(policy=SMTP))
    found.append(mixed.as_bytes(policy=SMTP).replace(b"\r\n", b"\n"))  # LF only
    outer = EmailMessage()
    outer["From"] = "Jan Smit <jan@example.nl>"
    outer["Subject"] = "Fwd: Met bijlage"
    outer.set_content("Doorgestuurd.\n")
    outer.add_attachment(mixed)  # an attached message with a long run inside
    found.append(outer.as_bytes(policy=SMTP))
    # A run right after a part's headers, without the blank line, and as a broken structure.
    data = base64.encodebytes(rng.randbytes(200_000))
    found.append(
        b"From: a@example.nl\nContent-Type: multipart/mixed; boundary=b\n\n--b\n"
        b"Content-Type: text/plain\n\nHallo.\n--b\nContent-Type: application/pdf\n"
        b"Content-Transfer-Encoding: base64\n" + data + b"--b--\n"
    )
    found.append(
        b"From: a@example.nl\nContent-Type: multipart/mixed; boundary=gone\n\n--other\n"
        b"Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(text.encode())
        + b"--other--\n"
    )
    found.append(
        b"From: a@example.nl\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
        + data.replace(b"\n", b"\r\n")[:-2]  # no line end at the very end
    )
    return found


def messages() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))] + built(random.Random(8))


def test_runs_elided_read_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    raws = messages()
    monkeypatch.setattr(mimeparts, "ELIDE_MIN", 1 << 40)  # never
    plain = [parse_message(raw) for raw in raws]
    elided = []
    real = mimeparts._Elision.of

    def counted(raw: bytes) -> mimeparts._Elision | None:
        found = real(raw)
        elided.append(found is not None)
        return found

    monkeypatch.setattr(mimeparts, "_RUN_WINDOW", 64)
    monkeypatch.setattr(mimeparts, "ELIDE_MIN", 256)
    monkeypatch.setattr(mimeparts._Elision, "of", staticmethod(counted))
    again = [parse_message(raw) for raw in raws]
    assert again == plain
    assert sum(elided) >= 8  # the built messages and corpus mail with base64 in them


def test_a_large_attachment_is_not_decoded_but_counted() -> None:
    rng = random.Random(3)
    message = EmailMessage()
    message["From"] = "Jan Smit <jan@example.nl>"
    message["Subject"] = "Filmpje"
    message.set_content("Zie het filmpje.\n")
    message.add_attachment(
        rng.randbytes(3_000_001), maintype="video", subtype="mp4", filename="fout.mp4"
    )
    raw = message.as_bytes(policy=SMTP)
    assert mimeparts._Elision.of(raw) is not None
    mail = parse_message(raw)
    assert mail.text == "Zie het filmpje."
    assert mail.attachments == (
        Attachment(filename="fout.mp4", content_type="video/mp4", size=3_000_001),
    )
    assert not mail.problems
