"""A report page parsed with the standard library's html.parser, and checks of the numbers it shows.

Shared by tests/test_report.py (the renderer) and tests/test_report_cli.py (the command).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser


class Page(HTMLParser):
    """Tables (class → rows of cells with attributes and text) and every start tag seen."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[dict]]] = {}
        self.row_attrs: dict[str, list[dict]] = {}
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._table: str | None = None
        self._cell: dict | None = None
        self._in_body = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self._table = attrs.get("class", "")
            self.tables.setdefault(self._table, [])
            self.row_attrs.setdefault(self._table, [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.tables[self._table].append([])
            self.row_attrs[self._table].append(attrs)
        elif tag in ("td", "th") and self._in_body:
            self._cell = {"attrs": attrs, "text": "", "tags": []}
            self.tables[self._table][-1].append(self._cell)
        elif self._cell is not None:
            self._cell["tags"].append((tag, attrs))

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell["text"] += data

    def rows(self, table: str) -> list[dict[str, dict]]:
        """Each body row of the table as {data-field: cell}."""
        return [{c["attrs"]["data-field"]: c for c in row if "data-field" in c["attrs"]} for row in self.tables[table]]


def exact(cell: dict, attr: str = "data-value"):
    """The number an attribute holds, None for an empty one."""
    raw = cell["attrs"][attr]
    return None if raw == "" else float(raw)


def shown(text: str) -> float | None:
    """The number a reader sees: '+0.0123', '-8,500', '6.5e-04', '< 0.0001' (read as its bound), '—'."""
    text = text.strip().replace(",", "").replace("−", "-").removeprefix("< ")
    return None if text == "—" else float(text)


def assert_shown(text: str, value) -> None:
    """The text is the value rounded to the digits it shows."""
    number = shown(text)
    if value is None:
        assert number is None
        return
    if text.strip().startswith("<"):  # a p-value below the formatter's floor
        assert value < number, (text, value)
        return
    mantissa = re.sub(r"e.*", "", text.strip())
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    exponent = int(text.split("e")[1]) if "e" in text else 0
    assert abs(number - value) <= 0.5 * 10 ** (exponent - decimals) * (1 + 1e-9), (text, value)


def assert_number(cell: dict, value) -> None:
    assert exact(cell) == value
    assert_shown(cell["text"], value)


def assert_ci(cell: dict, low, high) -> None:
    assert exact(cell, "data-low") == low and exact(cell, "data-high") == high
    if low is None:
        assert cell["text"].strip() == "—"
        return
    shown_low, shown_high = cell["text"].strip("[] ").split(", ")
    assert_shown(shown_low, low)
    assert_shown(shown_high, high)
