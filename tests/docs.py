"""Where the manual's text lives, for the tests that keep it and the code equal.

README.md is the front page; the manual is one page per area under ``docs/``. The tests read
a page through :func:`doc_text` or a section of one through :func:`doc_section`, so a page's
name is written here once: when text moves to another page, only this table changes.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
DOCS = REPO_ROOT / "docs"
MKDOCS = REPO_ROOT / "mkdocs.yml"

# What each area's page is called; the tests name areas, never files.
PAGES = {
    "start": "index.md",
    "api": "api.md",
    "soundness": "soundness.md",
    "sandbox": "sandbox-and-docker.md",
    "docker": "sandbox-and-docker.md",
    "settings": "settings.md",
    "scale-out": "scale-out.md",
    "trainer": "trainer.md",
    "evaluation": "evaluation.md",
    "benchmarks": "benchmarks.md",
    "development": "development.md",
}


def doc_pages() -> list[Path]:
    """Every Markdown page of the manual."""
    return sorted(DOCS.rglob("*.md"))


def doc_text(area: str) -> str:
    """The text of the page that holds ``area`` (a key of :data:`PAGES`)."""
    return (DOCS / PAGES[area]).read_text("utf-8")


def manual_text() -> str:
    """Every page of the manual, one after another (for text whose page does not matter)."""
    return "\n\n".join(page.read_text("utf-8") for page in doc_pages())


def doc_section(area: str, heading: str) -> str:
    """The section of ``area``'s page that starts at the line ``heading`` (``## Title``).

    It runs up to the next heading of the same or a higher level, so a section's own
    subsections stay in it. Headings inside fenced code blocks are not headings.
    """
    lines = doc_text(area).split("\n")
    level = len(heading) - len(heading.lstrip("#"))
    assert heading in lines, f"{PAGES[area]} has no heading {heading!r}"
    start = lines.index(heading)
    fenced = False
    for end in range(start + 1, len(lines)):
        line = lines[end]
        if line.startswith("```"):
            fenced = not fenced
        match = re.match(r"(#+) ", line)
        if not fenced and match and len(match.group(1)) <= level:
            return "\n".join(lines[start:end])
    return "\n".join(lines[start:])
