"""HTML mail turned into the text a person would read, with the standard library's parser.

Only what a helpdesk colleague needs: paragraphs and line breaks kept, lists as "- " bullets,
table rows on their own lines, link targets in parentheses when the link text does not
already show them, entities decoded; scripts, styles, the head and hidden elements dropped.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is never shown to the reader.
_DROPPED = frozenset({"script", "style", "head", "title", "template", "noscript", "object"})
# Void elements: they have no end tag, so they never open a dropped or hidden stretch.
_VOID = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
# Elements that start and end on their own line.
_BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "tfoot",
        "thead",
        "tr",
        "ul",
        "caption",
    }
)
# Paragraph-like elements get a blank line around them.
_PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "table", "pre"})
_CELLS = frozenset({"td", "th"})
_SPACES = re.compile(r"[ \t\r\n\f\v]+")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_BLANK_RUNS = re.compile(r"\n{3,}")
_LINE_END = "\n"
_PARAGRAPH_END = "\n\n"


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip_depth = 0  # > 0 inside a dropped or hidden element
        self._skip_stack: list[str] = []
        self._pre_depth = 0
        self._links: list[tuple[str, int]] = []  # (href, index in out where its text starts)
        self._cell_in_row = 0

    # --- output -------------------------------------------------------------------------

    def _text(self, text: str) -> None:
        if not text:
            return
        if self._pre_depth == 0:
            text = _SPACES.sub(" ", text)
            if text == " " and (not self.out or self.out[-1].endswith((" ", "\n"))):
                return
            if self.out and self.out[-1].endswith(("\n", " ")):
                text = text.lstrip(" ")
        self.out.append(text)

    def _break(self, kind: str) -> None:
        """End the current line (kind "\\n") or paragraph (kind "\\n\\n")."""
        tail = "".join(self.out[-2:])
        if not self.out or tail.endswith(kind):
            return
        if self.out[-1].endswith(" "):
            self.out[-1] = self.out[-1].rstrip(" ")
        if kind == _PARAGRAPH_END and tail.endswith(_LINE_END):
            self.out.append(_LINE_END)
        else:
            self.out.append(kind)

    # --- parser callbacks -----------------------------------------------------------------

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_depth:
            if tag not in _VOID:
                self._skip_stack.append(tag)
                self._skip_depth += 1
            return
        attributes = {name: value or "" for name, value in attrs}
        hidden = "hidden" in attributes or bool(_HIDDEN_STYLE.search(attributes.get("style", "")))
        if tag in _DROPPED or (hidden and tag not in _VOID):
            self._skip_stack.append(tag)
            self._skip_depth = 1
            return
        if tag == "br":
            self._break_line_hard()
        elif tag == "li":
            self._break(_LINE_END)
            self.out.append("- ")
        elif tag == "tr":
            self._break(_LINE_END)
            self._cell_in_row = 0
        elif tag in _CELLS:
            if self._cell_in_row:
                self._text(" ")
            self._cell_in_row += 1
        elif tag in _PARAGRAPHS:
            self._break(_PARAGRAPH_END)
        elif tag in _BLOCKS:
            self._break(_LINE_END)
        if tag == "pre":
            self._pre_depth += 1
        elif tag == "a":
            self._links.append((attributes.get("href", "").strip(), len(self.out)))
        elif tag == "img":
            alt = attributes.get("alt", "").strip()
            if alt:
                self._text(f"[{alt}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/>, <img/>; a self-closed <div/> has no content, so only its break matters.
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._skip_depth:
            # Close up to the matching open tag; unmatched end tags inside are ignored.
            if tag in self._skip_stack:
                while self._skip_stack:
                    self._skip_depth -= 1
                    if self._skip_stack.pop() == tag:
                        break
            return
        if tag == "a" and self._links:
            href, start = self._links.pop()
            self._close_link(href, start)
        elif tag == "pre" and self._pre_depth:
            self._pre_depth -= 1
        if tag in _PARAGRAPHS:
            self._break(_PARAGRAPH_END)
        elif tag in _BLOCKS or tag == "li":
            self._break(_LINE_END)

    def handle_data(self, data: str) -> None:
        if not self._skip_depth:
            self._text(data)

    # --- helpers --------------------------------------------------------------------------

    def _break_line_hard(self) -> None:
        # Unlike block ends, consecutive <br> make consecutive (blank) lines.
        if self.out and self.out[-1].endswith(" "):
            self.out[-1] = self.out[-1].rstrip(" ")
        self.out.append(_LINE_END)

    def _close_link(self, href: str, start: int) -> None:
        text = "".join(self.out[start:]).strip()
        target = href
        if target.lower().startswith("mailto:"):
            target = target[len("mailto:") :].split("?", 1)[0]
        if not target or target.startswith("#") or target.lower().startswith("javascript:"):
            return
        shown = text.rstrip("/").lower()
        if shown in (target.rstrip("/").lower(), href.rstrip("/").lower()):
            return
        if not text:
            self._text(target)
        else:
            self._text(f" ({target})")


def html_to_text(html: str) -> str:
    """The readable text of an HTML document or fragment; never raises on bad markup."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    lines = [line.rstrip() for line in "".join(extractor.out).replace("\xa0", " ").split("\n")]
    text = "\n".join(lines)
    return _BLANK_RUNS.sub("\n\n", text).strip("\n")
