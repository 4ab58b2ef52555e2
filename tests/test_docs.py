"""The README is a short guide, and no link or file reference in it or in docs/ is broken."""

from __future__ import annotations

import json
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


STUDIES = sorted(p.parent for p in (ROOT / "docs" / "results").glob("*/README.md"))
QUOTED = re.compile(r"([+-]?\d+\.\d+) \[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]")  # "-0.19 [-0.30, -0.08]" in prose
STORED = re.compile(r"([+-]?\d+\.\d+)[\s|]+\[([+-]?\d+\.\d+), ([+-]?\d+\.\d+)\]")  # compare.txt and report.md rows


def _stored_intervals(study: Path) -> list[tuple[float, float, float]]:
    """Every (value, low, high) a study's committed files hold: compare and report rows, and each eval.json's
    paired differences and kept shares with their intervals."""
    found = []
    for path in study.rglob("*"):
        if path.suffix in (".txt", ".md") and path.name != "README.md":
            found += [tuple(map(float, m)) for m in STORED.findall(path.read_text(encoding="utf-8"))]
        elif path.suffix == ".json":
            stack = [json.loads(path.read_text(encoding="utf-8"))]
            while stack:
                node = stack.pop()
                if isinstance(node, dict):
                    for key, ci in (
                        ("difference", "difference_ci"),
                        ("kept", "kept_ci"),
                        ("retention", "retention_ci"),
                    ):
                        if isinstance(node.get(ci), list) and node.get(key) is not None:
                            found.append((node[key], *node[ci]))
                    stack += list(node.values())
                elif isinstance(node, list):
                    stack += node
    return found


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.name)
def test_every_interval_a_study_quotes_is_in_its_committed_files(study):
    """A figure with an interval in a study's README ("-0.19 [-0.30, -0.08]") is one that a committed file of the
    study holds, to the README's rounding: no interval is typed in by hand."""
    stored = _stored_intervals(study)

    def backed(quoted: tuple[str, ...]) -> bool:
        digits = [len(q.split(".")[1]) for q in quoted]
        return any(
            all(abs(float(q) - s) <= 0.5 * 10**-d + 1e-9 for q, s, d in zip(quoted, row, digits, strict=True))
            for row in stored
        )

    missing = [" ".join(q) for q in QUOTED.findall((study / "README.md").read_text(encoding="utf-8")) if not backed(q)]
    assert not missing, f"{study.name}/README.md quotes intervals no committed file holds: {missing}"
