"""The corpus side of evaluation: which fact files to score, and scoring greedy answers to them.

A facts directory (from `mixsd data kgfact|kgfunc`) holds known split files; a single file is treated as the training
split. Memorisation splits ask about injected knowledge (train, paraphrase, two_hop for KGFact; train, test, chain for
KGFunc; train, multi_hop for MQuAKE). Probe splits measure a held-out capability that fine-tuning can damage (KGFact
retrieval, KGFunc unseen operations) and are scored for the base and the tuned model alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mixsd.answers import matches
from mixsd.data.records import Record, read_records
from mixsd.errors import MixsdError
from mixsd.io import read_json

MEMORISATION_SPLITS = ("train", "paraphrase", "two_hop", "multi_hop", "test", "chain")
PROBE_SPLITS = ("retrieval", "unseen")


@dataclass
class Facts:
    source: str
    files: dict[str, Path]  # split name -> its file, in MEMORISATION_SPLITS + PROBE_SPLITS order
    splits: dict[str, list[Record]]  # split name -> records
    match: str  # headline scoring, as the paper does: "strict" for KGFunc (exact boxed answer), "loose" otherwise
    manifest: dict = field(default_factory=dict)

    @property
    def memorisation(self) -> list[str]:
        return [s for s in self.splits if s in MEMORISATION_SPLITS]

    @property
    def probes(self) -> list[str]:
        return [s for s in self.splits if s in PROBE_SPLITS]


def load_facts(path: str | Path, limit: int | None = None) -> Facts:
    """Read a facts directory (every known split present) or one file (the train split).

    `limit` keeps the first N records of each split. Records without a gold answer cannot be scored and are refused.
    """
    path = Path(path)
    if path.is_dir():
        files = {s: path / f"{s}.jsonl" for s in MEMORISATION_SPLITS + PROBE_SPLITS if (path / f"{s}.jsonl").is_file()}
        if not files:
            known = ", ".join(f"{s}.jsonl" for s in MEMORISATION_SPLITS + PROBE_SPLITS)
            raise MixsdError(f"no split files here (expected some of {known})", path=path)
        manifest_path = path / "manifest.json"
        manifest = read_json(manifest_path) if manifest_path.is_file() else {}
    elif path.is_file():
        files, manifest = {"train": path}, {}
    else:
        raise MixsdError("no such file or directory", path=path)
    splits = {}
    for split, file in files.items():
        records = read_records(file)[:limit]
        if not records:
            raise MixsdError("no records", path=file)
        if missing := [r.id for r in records if not r.gold]:
            raise MixsdError(
                f"{len(missing)} record(s) have no gold answer to score against (first: {missing[0]})", path=file
            )
        splits[split] = records
    match = "strict" if manifest.get("corpus") == "kgfunc" else "loose"
    return Facts(str(path), files, splits, match, manifest)


def injected_entities(facts: Facts) -> set[str]:
    """Names the tuned model was taught, for spotting them where they do not belong.

    The KGFact manifest lists the entities of the trained graph; otherwise the gold answers and the `source`/`target` of
    the training records are used. Numbers and very short strings are left out: they occur everywhere.
    """
    names: set[str] = set()
    for domain_names in facts.manifest.get("entities", {}).values():
        names.update(domain_names)
    for record in facts.splits.get("train", []):
        names.update(str(v) for v in (record.gold, record.meta.get("source"), record.meta.get("target")) if v)
    return {n for n in names if len(n) >= 4 and not n.replace(".", "").replace("-", "").isdigit()}


def score_answers(records: list[Record], texts: list[str]) -> list[dict]:
    """Per-record predictions with loose and strict matches against the gold answer."""
    return [
        {
            "id": r.id,
            "gold": r.gold,
            "answer": text,
            "loose": matches(text, r.gold, strict=False),
            "strict": matches(text, r.gold, strict=True),
        }
        for r, text in zip(records, texts, strict=True)
    ]


def accuracy(predictions: list[dict], key: str) -> float:
    return sum(p[key] for p in predictions) / len(predictions)
