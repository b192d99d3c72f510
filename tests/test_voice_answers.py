"""Calls in the same situation get the same answer, each with its own contact in every URL."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

from flask import Flask

from routing.desk import Desk

from .conftest import Twilio, contacts, new_call


def urls(document: ET.Element) -> list[str]:
    dial = document.find("Dial")
    assert dial is not None
    return [dial.attrib["action"], *(number.attrib["url"] for number in dial.iter("Number"))]


def contact_ids(document: ET.Element) -> set[str]:
    return {parse_qs(urlsplit(url).query)["contact"][0] for url in urls(document)}


def test_each_call_names_its_own_contact_in_every_url(
    app: Flask, desk: Desk, twilio: Twilio
) -> None:
    calls = [twilio, new_call(twilio), new_call(twilio, caller="+31698765432")]
    answers = [call.call() for call in calls]

    logged = [str(contact.id) for contact in contacts(app)]
    assert len(set(logged)) == 3
    assert [contact_ids(answer) for answer in answers] == [{id_} for id_ in logged]
    # Apart from that id, the answers are the same document.
    first = ET.tostring(answers[0]).replace(f"contact={logged[0]}".encode(), b"contact=ID")
    for answer, id_ in zip(answers[1:], logged[1:], strict=True):
        assert ET.tostring(answer).replace(f"contact={id_}".encode(), b"contact=ID") == first
