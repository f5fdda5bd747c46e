"""The README is an entry: short, and every relative link in it and in docs/ leads somewhere
(the file exists, and a #fragment names one of its headings as GitHub spells anchors)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def anchors(markdown: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    found = set()
    for line in markdown.read_text().splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            text = re.sub(r"[`*]", "", heading.group(1)).strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return found


def relative_links(markdown: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", markdown.read_text(), flags=re.DOTALL)  # code is not a link
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_the_readme_is_an_entry_of_at_most_250_lines():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("markdown", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(markdown):
    broken = []
    for target in relative_links(markdown):
        path, _, fragment = target.partition("#")
        file = (markdown.parent / path).resolve() if path else markdown
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(f"{target}: no heading #{fragment} in {file.name}")
    assert broken == []


def test_the_link_check_sees_links_and_headings(tmp_path):
    """The checker itself: a link to a missing file or heading is found, a good one is not."""
    (tmp_path / "a.md").write_text("# Resume, interrupts, `divergence`\n[ok](b.md) [bad](c.md) [x](https://e.org)\n")
    (tmp_path / "b.md").write_text("see [a](a.md#resume-interrupts-divergence) and [gone](a.md#nope)\n")
    assert relative_links(tmp_path / "a.md") == ["b.md", "c.md"]
    assert anchors(tmp_path / "a.md") == {"resume-interrupts-divergence"}
    assert relative_links(tmp_path / "b.md") == ["a.md#resume-interrupts-divergence", "a.md#nope"]
