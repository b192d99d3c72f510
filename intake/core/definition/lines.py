"""Where in the TOML text a problem is: line numbers for the places the checker names.

tomllib gives no positions, so this reads just enough TOML to know which table each
`key =` line belongs to; it only runs on text tomllib has already accepted.
"""

from __future__ import annotations

import re

from .sections import Path


def syntax_error_line(message: str, text: str) -> int | None:
    match = re.search(r"at line (\d+)", message)
    if match:
        return int(match.group(1))
    if "end of document" in message:
        return max(1, len(text.splitlines()))
    return None


class LineMap:
    """Line numbers of table headers and keys, found by scanning the TOML text.

    tomllib gives no positions, so this reads just enough TOML to know which table each
    `key =` line belongs to; it only runs on text tomllib has already accepted.
    """

    def __init__(self, text: str) -> None:
        self.headers: dict[tuple[str, int | None], int] = {}
        self.keys: dict[tuple[str, int | None, str], int] = {}
        counts: dict[str, int] = {}
        table: tuple[str, int | None] = ("", None)
        pending: str | None = None  # the closing quotes of a multi-line string
        depth = 0  # open brackets of a multi-line array or inline table
        for number, line in enumerate(text.splitlines(), start=1):
            if pending is not None or depth > 0:
                pending, depth = _scan_value(line, pending, depth)
                continue
            stripped = line.strip()
            if stripped.startswith("[["):
                name = _key_name(stripped[2 : stripped.find("]]")])
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (name, index)
                self.headers.setdefault(table, number)
            elif stripped.startswith("["):
                table = (_key_name(stripped[1 : stripped.find("]")]), None)
                self.headers.setdefault(table, number)
            elif "=" in stripped and not stripped.startswith("#"):
                key, value = _split_key(stripped)
                self.keys.setdefault((*table, key), number)
                # `nl.greeting = "..."` under [messages]: at least point at the line for "nl".
                self.keys.setdefault((*table, key.split(".")[0]), number)
                pending, depth = _scan_value(value, None, 0)

    def find(self, path: Path) -> int | None:
        """The line of the deepest key or table header along `path` that the text has."""
        for cut in range(len(path), -1, -1):
            head, rest = path[:cut], path[cut:]
            table = _table_of(head)
            if table is None:
                continue
            if rest and isinstance(rest[0], str) and (*table, rest[0]) in self.keys:
                return self.keys[(*table, rest[0])]
            if table in self.headers:
                return self.headers[table]
        return None


def _table_of(head: Path) -> tuple[str, int | None] | None:
    index = head[-1] if head and isinstance(head[-1], int) else None
    names = head[:-1] if index is not None else head
    if not all(isinstance(n, str) for n in names):
        return None
    return ".".join(str(n) for n in names), index


def _key_name(raw: str) -> str:
    """`messages . "nl"` -> "messages.nl"."""
    parts = [p.strip().strip("\"'") for p in raw.split(".")]
    return ".".join(parts)


def _split_key(line: str) -> tuple[str, str]:
    """Split `key = value` at the first `=` outside quotes."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return _key_name(line[:i]), line[i + 1 :]
    return _key_name(line), ""


def _scan_value(text: str, pending: str | None, depth: int) -> tuple[str | None, int]:
    """Follow strings and brackets through one line of a value.

    Returns the closing quotes of a multi-line string still open at the end of the line
    (or None) and how many brackets are still open.
    """
    i = 0
    while i < len(text):
        if pending is not None:
            end = text.find(pending, i)
            if end < 0:
                return pending, depth
            i, pending = end + 3, None
            continue
        ch = text[i]
        if text.startswith(('"""', "'''"), i):
            pending = text[i : i + 3]
            i += 3
        elif ch in "\"'":
            end = i + 1
            while end < len(text) and text[end] != ch:
                end += 2 if ch == '"' and text[end] == "\\" else 1
            i = end + 1
        elif ch == "#":
            break
        else:
            if ch in "[{":
                depth += 1
            elif ch in "]}":
                depth -= 1
            i += 1
    return pending, depth
