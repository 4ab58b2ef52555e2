"""The README is a short guide, and no link or file reference in it or in docs/ is broken."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
PATH = re.compile(r"`((?:src|docs|tests|benchmarks)/[\w./-]+)`")  # a file or folder of this repository, in backticks


def test_readme_is_a_short_guide_that_links_every_moved_section():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    linked = {(ROOT / m).resolve() for m in LINK.findall(readme)}
    pages = [p for p in PAGES[1:] if p.name != "report.md" and "runs" not in p.parts]
    assert {p.resolve() for p in pages} <= linked, "a page under docs/ that the README does not link"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_file_references_resolve(page):
    text = page.read_text(encoding="utf-8")
    broken = [m for m in LINK.findall(text) if "://" not in m and not (page.parent / m).exists()]
    broken += [m for m in PATH.findall(text) if not (ROOT / m.rstrip(".")).exists() and "<" not in m]
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"
