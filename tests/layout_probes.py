"""What tests/test_browser_layout.py measures in a page, as scripts Chromium runs.

Each constant is a JavaScript function for Playwright's `page.evaluate` (through `measure`)
that returns plain data: boxes, computed styles, contrast ratios. The test module decides
what is wrong with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

# The elements sticking out past the right edge of the window, widest first.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const wide = [];
  // Inside something 1 px wide that hides its overflow: there for screen readers only.
  const forReaders = el => {
    for (let up = el.parentElement; up; up = up.parentElement) {
      const clipped = getComputedStyle(up).overflow === 'hidden';
      if (clipped && up.getBoundingClientRect().width <= 1) return true;
    }
    return false;
  };
  const named = el => [el.tagName.toLowerCase(), ...el.classList].join('.');
  for (const el of document.querySelectorAll('body *')) {
    const box = el.getBoundingClientRect();
    if (box.width && box.right > width + 0.5 && !forReaders(el)) {
      wide.push([Math.round(box.right), named(el)]);
    }
  }
  wide.sort((a, b) => b[0] - a[0]);
  return {scroll: document.documentElement.scrollWidth, window: width, wide: wide.slice(0, 3)};
}"""

# Where each link of the header is (the menu, then the account), against the window and the
# header it sits on.
MENU = """() => {
  const header = document.querySelector('header').getBoundingClientRect();
  return [...document.querySelectorAll('header nav a, header a.account')].map(a => {
    const box = a.getBoundingClientRect();
    return {text: a.textContent.trim(), left: box.left, right: box.right, top: box.top,
            bottom: box.bottom, width: box.width,
            inHeader: box.left >= header.left && box.right <= header.right
                      && box.top >= header.top && box.bottom <= header.bottom};
  });
}"""

# Per visible table row: its display, the left edge and top of each cell, and per data cell
# the label it shows (::before) against its column's heading.
TABLES = """() => {
  const rows = [];
  for (const table of document.querySelectorAll('main table')) {
    if (!table.getClientRects().length) continue;
    const headings = [...table.querySelectorAll('thead th')];
    for (const tr of table.querySelectorAll('tbody tr')) {
      const cells = [...tr.children];
      const full = cells.length === 1 && Number(cells[0].getAttribute('colspan') || 1) > 1;
      rows.push({
        table: table.id || table.className || 'table',
        display: getComputedStyle(tr).display,
        full: full,
        cells: cells.map((cell, i) => {
          const box = cell.getBoundingClientRect();
          const heading = headings[i];
          const hidden = !heading || !heading.textContent.trim()
                         || !!heading.querySelector('.visually-hidden');
          const before = getComputedStyle(cell, '::before');
          // The label needs room: the cell's content starts right of it or below it.
          const range = document.createRange();
          range.selectNodeContents(cell);
          const content = range.getBoundingClientRect();
          return {
            shown: cell.getClientRects().length > 0,
            room: content.width === 0 || content.left - box.left >= 24
                  || content.top - box.top >= 12,
            tag: cell.tagName.toLowerCase(), left: Math.round(box.left), top: Math.round(box.top),
            heading: heading ? heading.textContent.trim() : '', headingHidden: hidden,
            label: before.display === 'none' || before.visibility !== 'visible'
                   ? 'none' : before.content,
            button: !!cell.querySelector('button'),
          };
        }),
      });
    }
  }
  return rows;
}"""

# Everything a finger taps, with its size: buttons, menu links, form controls (a checkbox or
# radio button by the label around it, which takes the tap), links in table rows, <summary>,
# the account link and a link styled as a button (the organisation's sign-in), and the phone
# numbers to call (on shift, a caller's "call back").
TARGETS = """() => {
  const seen = [];
  const selector = ['button', 'header a', 'a.button', 'input:not([type=hidden])', 'select',
                    'textarea', 'summary', 'tbody a', '.on-shift a', 'dd a', '.take-over a',
                    'form a', 'main nav a'].join(', ');
  for (const el of document.querySelectorAll(selector)) {
    if (!el.getClientRects().length || getComputedStyle(el).visibility === 'hidden') continue;
    const ticked = el.type === 'checkbox' || el.type === 'radio';
    const target = ticked ? (el.closest('label') || el) : el;
    const box = target.getBoundingClientRect();
    seen.push({what: el.tagName.toLowerCase() + (el.type ? '[' + el.type + ']' : '') + ' '
                     + (el.getAttribute('name') || el.textContent.trim().slice(0, 30)),
               width: Math.round(box.width * 10) / 10, height: Math.round(box.height * 10) / 10});
  }
  return seen;
}"""


# Text whose colour is too close to what is behind it: under 4.5:1, or 3:1 for large text
# (WCAG 1.4.3). The background is the nearest one painted, up the element's ancestors.
CONTRAST = """() => {
  const rgb = text => {
    const parts = text.match(/[\\d.]+/g).map(Number);
    return {r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1};
  };
  const channel = v => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  const luminance = c => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const behind = el => {
    for (let up = el; up; up = up.parentElement) {
      const colour = rgb(getComputedStyle(up).backgroundColor);
      if (colour.a > 0) return colour;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const poor = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, option')) continue;
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!text || box.width <= 1 || style.visibility !== 'visible') continue;
    const [light, dark] = [luminance(rgb(style.color)), luminance(behind(el))]
      .sort((a, b) => b - a);
    const ratio = (light + 0.05) / (dark + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66);
    if (ratio < (large ? 3 : 4.5)) {
      poor.push([el.tagName.toLowerCase(), el.textContent.trim().slice(0, 30),
                 Math.round(ratio * 10) / 10]);
    }
  }
  return poor;
}"""


def measure(page: Page, script: str) -> Any:
    return page.evaluate(script)
