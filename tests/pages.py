"""Reading the dashboard's pages as a person would: a table's cells, a CSV download's rows."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

# The week as the English dashboard heads its grids and CSV rows, Monday first.
WEEKDAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


class TableReader(HTMLParser):
    """The cells of one <table id=...> of a page, row by row, as text."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.inside = False
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("id", self.table_id) in attrs:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def html_table(page: str, name: str) -> list[list[str]]:
    """The rows of the page's <table id="table-NAME">; fails when there is none."""
    reader = TableReader(f"table-{name}")
    reader.feed(page)
    assert reader.rows, f"no table-{name} on the page"
    return reader.rows


def csv_rows(body: bytes) -> list[list[str]]:
    """A CSV download's rows, as a spreadsheet reads them (the BOM dropped)."""
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
