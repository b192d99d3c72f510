"""Reading the TwiML our webhooks answer with, parsed by ElementTree as Twilio would read it."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def tags(document: ET.Element) -> list[str]:
    """The verbs of the answer, in order: ["Say", "Dial"]."""
    return [verb.tag for verb in document]


def said(document: ET.Element) -> str:
    return " ".join((say.text or "") for say in document.iter("Say"))


def dialled(document: ET.Element) -> list[str]:
    """The numbers Twilio is told to ring, in order."""
    return [(n.text or "").strip() for n in document.iter("Number")]


def only(document: ET.Element, tag: str) -> ET.Element:
    found = list(document.iter(tag))
    assert len(found) == 1, f"expected one <{tag}> in {ET.tostring(document, 'unicode')}"
    return found[0]
