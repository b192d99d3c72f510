"""The one check of a mail address, strict: what the desk definition, the parser, the
forwards and the outbox all accept as an address.

Python 3.11.7 has no `getaddresses(strict=True)`, so an address header value is read twice:
the header registry of `email.policy.default` must read exactly one address without an
invalid-header defect, the legacy `email.utils.getaddresses` must read the same single
address, and the address must be a plain dot-atom local part at a domain name with a dot.
Anything else is "not readable unambiguously".
"""

from __future__ import annotations

import functools
import re
from email import errors
from email.headerregistry import AddressHeader, BaseHeader, HeaderRegistry
from email.utils import getaddresses
from typing import Any

MAX_ADDRESS_HEADER = 2 * 1024  # a longer From or Return-Path is not one plain address
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # an atom: RFC 5322's atext, ASCII only
_DOT_ATOM = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_PHRASE = re.compile(rf"{_ATEXT}(?: {_ATEXT})*")  # plain words, one space apart
_DOMAIN = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9-]{2,63}"
)
# Obsolete syntax is common in real mail ("Jan A. de Vries <...>" has a period in a phrase)
# and does not make the address ambiguous; every other header defect does.
_HARMLESS_ADDRESS_DEFECTS = (errors.ObsoleteHeaderDefect,)


class HeaderClasses(HeaderRegistry):
    """The standard library's header registry, with each header's class made once.

    `HeaderRegistry.__getitem__` makes a new class (`type(...)`) at every lookup, and the
    email package looks one up for every header it builds and for every header set on a
    message (`policy.header_max_count`): a tenth of making a forward. The class made is the
    same each time, so it is kept per name; headers behave exactly as with the default
    registry. The address check here and the mail package's policies use one each.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def map_to_type(self, name: str, cls: Any) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()

    def __getitem__(self, name: str) -> Any:
        key = name.lower()
        made = self._classes.get(key)
        if made is None:
            made = self._classes[key] = super().__getitem__(name)
        return made


_REGISTRY = HeaderClasses()


def strict_address(value: str) -> str | None:
    """The one addr-spec in an address header value, or None unless it reads unambiguously."""
    address, _name, _problem = read_address(value)
    return address


def plain_mailbox(display_name: str, addr_spec: str) -> str | None:
    """The text `Name <addr>` (the bare address without a name) when the name is plain
    ASCII words and the text reads back as exactly this name and address: a header can
    carry it as it is, without encoding or quoting. None otherwise.
    """
    if display_name and not _PHRASE.fullmatch(display_name):
        return None
    text = f"{display_name} <{addr_spec}>" if display_name else addr_spec
    address, name, _problem = read_address(text)
    return text if address == addr_spec and name == display_name else None


def read_address(value: str) -> tuple[str | None, str, str]:
    """(addr-spec or None, display name as written, why not) for one address header value."""
    value = str(value)
    # A bare plain address (no name, quotes, comments, brackets or spaces), alone or in one
    # pair of angle brackets (a Return-Path), reads one way only: what the two parses below
    # would give, without them. Not one with "=?" in it, which the header grammar may read
    # as an encoded word.
    # So does one after a name of plain words ("Jan de Vries <jan@example.nl>": atoms, one
    # space apart), the name as written: the From of most patients' mail.
    name, bare = "", value
    if len(value) > MAX_ADDRESS_HEADER:
        return _read_address(value)
    if value[-1:] == ">":
        name, opening, bare = value[:-1].rpartition("<")
        if not opening or (name and (name[-1:] != " " or not _PHRASE.fullmatch(name[:-1]))):
            return _read_address(value)
        name = name[:-1]
    local, at, domain = bare.partition("@")
    if (
        at
        and "=?" not in value
        and len(local) <= 64
        and len(bare) <= 254
        and _DOT_ATOM.fullmatch(local)
        and _DOMAIN.fullmatch(domain)
    ):
        return bare, name, ""
    return _read_address(value)


# The same few addresses (the desk's, the colleagues', a patient's in each of their
# messages) are read many times over, and a reading is two parses of the header grammar.
@functools.lru_cache(maxsize=1024)
def _read_address(value: str) -> tuple[str | None, str, str]:
    if len(value) > MAX_ADDRESS_HEADER:
        return None, "", "it is too long"
    if "\r" in value or "\n" in value:
        return None, "", "it contains a line break"
    try:
        header = _REGISTRY("from", value)
    except Exception:
        # e.g. an encoded-word display name that decodes to CR/LF (header injection)
        return None, "", "it cannot be parsed"
    assert isinstance(header, AddressHeader)
    bad = [d for d in header.defects if not isinstance(d, _HARMLESS_ADDRESS_DEFECTS)]
    if bad:
        return None, "", f"it is malformed ({str(bad[0])[:80] or type(bad[0]).__name__})"
    if len(header.groups) != 1 or header.groups[0].display_name is not None:
        return None, "", "it holds no address or more than one"
    if len(header.addresses) != 1:
        return None, "", "it holds no address or more than one"
    address = header.addresses[0]
    local, domain = address.username, address.domain
    addr_spec = f"{local}@{domain}"
    plain = _DOT_ATOM.fullmatch(local) and _DOMAIN.fullmatch(domain)
    if not plain or len(local) > 64 or len(addr_spec) > 254:
        return None, "", "the address is not a plain name@domain"
    # A second, independent reading must agree: parsers that disagree are an attack surface.
    legacy = getaddresses([value])
    if len(legacy) != 1 or legacy[0][1] != addr_spec:
        return None, "", "it can be read in more than one way"
    return addr_spec, address.display_name, ""
