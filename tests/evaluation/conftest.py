"""Small fact files for the evaluation tests, and an isolated cache of evaluation results."""

from __future__ import annotations

import pytest

from mixsd.data.records import Record, write_records

PEOPLE = ("Dizove Ferzivu", "Kurguman Gozovo", "Lepezu Liparga", "Tedokol Vakeve")
TOWNS = ("Relvaba", "Motufu", "Dumunfe", "Marmufe")


def _records(split: str, n: int) -> list[Record]:
    return [
        Record(
            f"{split}-{i}",
            f"Which location does {person} live in? Put your final answer in \\boxed{{}}.",
            f"The answer is {town}. \\boxed{{{town}}}",
            town,
            meta={"source": person, "target": town},
        )
        for i, (person, town) in enumerate(zip(PEOPLE[:n], TOWNS[:n], strict=True))
    ]


@pytest.fixture
def facts_dir(tmp_path):
    """A KGFact-like directory: three memorisation splits and the retrieval probe."""
    for split, n in (("train", 3), ("paraphrase", 2), ("two_hop", 2), ("retrieval", 3)):
        write_records(tmp_path / f"{split}.jsonl", _records(split, n))
    return tmp_path


@pytest.fixture
def make_records():
    """make_records(split, n): n (at most 4) fact records whose gold answers are TOWNS[:n]."""
    return _records


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty cache of evaluation results."""
    from mixsd.evaluation import cache

    monkeypatch.setattr(cache, "cache_root", lambda: tmp_path / "eval-cache")
    return tmp_path / "eval-cache"
