"""The desk definition: the TOML file a coordinator edits, checked and turned into a `Desk`.

`parse_definition` reads the file's text, `desk_from_document` checks an already-parsed
document (what the database keeps), and `desk_to_document` / `export_toml` go back the
other way. A definition with mistakes raises one `DefinitionError` that lists every
problem found, each with its place in the file (`shift[3].staff`) and, when the text is
known, its line number, so the coordinator can fix them all in one go.

The package by job: `check` (the whole document, section by section) on `voice` (the
[voice] section and its text-to-speech voice), `fields` (one setting at a time) and
`values` (one value), `lines` (where in the text a place is),
`wording` (how problems are phrased), `export` (the way back out), `schema` (what may be
written).
"""

from __future__ import annotations

from .check import desk_from_document, parse_definition
from .export import desk_to_document, export_toml
from .sections import DEFAULT_SOURCE

__all__ = [
    "DEFAULT_SOURCE",
    "desk_from_document",
    "desk_to_document",
    "export_toml",
    "parse_definition",
]
