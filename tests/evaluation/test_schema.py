"""The typed view of eval.json: every committed file reads, and newer schemas are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixsd.errors import MixsdError
from mixsd.evaluation.schema import SCHEMA_VERSION, EvalResult, as_json

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "results"
BEFORE_SCHEMA = sorted((RESULTS / "kgfact-small-smollm2").rglob("eval.json"))[:3]  # written before the key existed
WITH_SCHEMA = sorted((RESULTS / "general-probe-kgfact-small").rglob("eval.json"))


@pytest.mark.parametrize("path", BEFORE_SCHEMA + WITH_SCHEMA, ids=lambda p: f"{p.parents[2].name}/{p.parent.name}")
def test_committed_results_read_as_version_1(path):
    obj = json.loads(path.read_text())
    view = EvalResult.from_json(obj)
    assert view.schema == 1 and obj.get("schema", 1) == 1
    assert view.memorisation["train"].tuned == obj["memorisation"]["train"]["tuned"]
    assert view.mean_retention.retention == obj.get("retention", {}).get("mean", {}).get("retention")
    assert set(view.benchmarks) == set(view.retention) == set(obj.get("benchmarks", {}))
    assert view.general.get("n") == obj.get("general", {}).get("n")


def test_a_newer_schema_is_refused_with_the_file():
    with pytest.raises(MixsdError, match=f"x/eval.json: eval.json schema {SCHEMA_VERSION + 1} is newer"):
        EvalResult.from_json({"schema": SCHEMA_VERSION + 1}, "x/eval.json")
    assert EvalResult.from_json({}) == EvalResult()


GENERATIVE = sorted((RESULTS / "generative-retention-kgfact-small").glob("*.json"))


@pytest.mark.parametrize("path", GENERATIVE, ids=lambda p: p.stem)
def test_committed_generative_results_keep_their_error_categories(path):
    obj = json.loads(path.read_text())
    view = EvalResult.from_json(obj)
    assert view.benchmark_errors == obj["benchmark_errors"] and set(view.benchmark_errors) <= set(view.benchmarks)
    assert all(view.benchmarks[task].answered is not None for task in view.benchmark_errors)


def test_the_typed_sections_write_back_every_committed_eval_json_exactly():
    """eval.json's fact splits and benchmarks are written through the schema's types (`as_json`): read back as those
    types, every committed file's sections come out byte-identical, so writer and readers share one layout."""
    files = sorted(Path(__file__).parents[2].glob("docs/results/**/eval.json"))
    assert files
    for path in files:
        obj = json.loads(path.read_text())
        view = EvalResult.from_json(obj, path)
        for section in ("memorisation", "probes", "benchmarks"):
            written = {k: as_json(v) for k, v in getattr(view, section).items()}
            assert json.dumps(written) == json.dumps(obj.get(section, {})), (path, section)
