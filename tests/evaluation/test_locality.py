"""Locality: the short-answer scorers, kept and its interval, the known-set cache, the shipped set, pairing."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pytest

from mixsd.errors import MixsdError
from mixsd.evaluation import EvalConfig, benchmarks, errors, evaluate, locality
from mixsd.evaluation.generative import golds, short_answer, skill_docs
from mixsd.report.paired import compare

ENTITIES = {"Gogirka", "Velmora Quist"}


def lost_category(answer: str, gold: str, prompt: str = "What is the capital of France?") -> str:
    """The category a lost locality item gets, as `locality.section` classifies it."""
    scored = short_answer(answer, [gold])
    assert scored["acc"] == 0.0
    names = {errors.normalize(e) for e in ENTITIES}
    return errors.classify(answer, prompt, gold, names, answered=bool(scored["answered"]), reasoning=False)


def test_short_answers_are_scored_on_the_answer_alone():
    assert short_answer("The capital of France is Paris.", ["Paris"])["acc"] == 1.0
    assert short_answer("paris", ["Paris"])["acc"] == 1.0
    assert short_answer("Parisian food is good.", ["Paris"])["acc"] == 0.0  # whole words only
    assert short_answer("4 * 8 = 32", ["32"])["acc"] == 1.0  # the last number, not the first
    assert short_answer("32 is not 4 * 8, it is 24", ["32"])["acc"] == 0.0
    assert short_answer("The answer is 1,000.", ["1000"])["acc"] == 1.0
    assert short_answer("It lasted 23 years.", ["23 years", "23"])["acc"] == 1.0
    assert short_answer("The answer is Gogirka.", ["Paris"]) == {"acc": 0.0, "answered": 1.0}


def test_lost_answers_get_the_error_categories():
    assert lost_category("The answer is Gogirka.", "Paris") == "leakage"  # the trained entity, not the gold
    assert lost_category("", "32") == "format"
    assert lost_category("It is a number I cannot say.", "32") == "format"  # no number where a number is asked
    assert lost_category("Lyon, I think.", "Paris") == "genuine"


def test_every_pool_gives_its_golds():
    assert golds({"question": "4 * 8 =", "choices": ["40", "32"], "gold": "1"}) == ["32"]
    assert golds({"answers_text": ["23 years", "23"]}) == ["23 years", "23"]
    assert golds({"answers": [["swedish"], ["Swedes"]]}) == ["swedish", "Swedes"]


def test_skill_items_whose_answer_is_in_the_question_are_dropped():
    from datasets import Dataset

    echo = {"id": "0", "question": "The string 'abcXYZ' in lowercase is", "choices": ["abcxyz", "x"], "gold": "0"}
    skill = {"id": "1", "question": "The length of 'hello' is", "choices": ["4", "5"], "gold": "1"}
    rows = [{"doc": doc} for doc in (echo, echo, skill, skill)]  # a requests file: one line per choice
    kept = skill_docs(Dataset.from_list(rows))
    assert [r["id"] for r in kept] == ["1"]  # one row per item, and not the echo


def known_of(pools: dict[str, tuple[str, int]]) -> locality.Known:
    """A known set: task -> (family, number of known items)."""
    return locality.Known(
        key={"base": "stand-in"},
        pools={
            task: {"family": fam, "pool": 2 * n, "right_once": n, "doc_ids": list(range(n)), "answers": ["x"] * n}
            for task, (fam, n) in pools.items()
        },
    )


def scores_of(correct: list[float], generative: bool) -> benchmarks.TaskScores:
    n = len(correct)
    return benchmarks.TaskScores(
        metric="acc",
        doc_ids=list(range(n)),
        correct=correct,
        chance=0.0,
        contexts=["What is the capital of France?"] * n,
        choices=[[] if generative else ["a", "b"]] * n,
        targets=[None if generative else 0] * n,
        loglikelihoods=[[] if generative else [0.0, -1.0]] * n,
        responses=["The answer is Gogirka." if not c else "Paris" for c in correct] if generative else [],
        golds=["Paris"] * n if generative else [],
        answered=[1.0] * n if generative else [],
    )


def test_a_stand_in_that_forgets_half_keeps_half():
    n = 400
    known = known_of({"mixsd_triviaqa": ("generative", n), "mixsd_piqa": ("mc", n)})
    half = [float(i % 2) for i in range(n)]
    scores = {"mixsd_triviaqa": scores_of(half, True), "mixsd_piqa": scores_of([1.0] * n, False)}
    out = locality.section(known, scores, entities=ENTITIES, openings=frozenset(), source="test", resamples=2000)
    gen = out["families"]["generative"]
    assert gen["n"] == n and gen["kept"] == 0.5
    half_width = 1.96 * np.sqrt(0.25 / n)  # the binomial interval the bootstrap should reproduce
    assert gen["kept_ci"][0] == pytest.approx(0.5 - half_width, abs=0.012)
    assert gen["kept_ci"][1] == pytest.approx(0.5 + half_width, abs=0.012)
    assert out["families"]["mc"]["kept"] == 1.0 and out["families"]["mc"]["kept_ci"] == [1.0, 1.0]
    assert out["n"] == 2 * n and out["kept"] == 0.75
    pool = out["pools"]["mixsd_triviaqa"]
    assert pool["lost"] == {"leakage": n // 2, "format": 0, "collapse": 0, "genuine": 0}
    assert len(out["lost_answers"]["mixsd_triviaqa"]) == n // 2
    assert out["items"]["mixsd_piqa"]["tuned"] == [1] * n


def test_compare_pairs_locality_by_item():
    known = known_of({"mixsd_triviaqa": ("generative", 4), "mixsd_piqa": ("mc", 4)})

    def run(tv: list[float], piqa: list[float], order=slice(None)) -> dict:
        scores = {"mixsd_triviaqa": scores_of(tv, True), "mixsd_piqa": scores_of(piqa, False)}
        section = locality.section(known, scores, entities=ENTITIES, openings=frozenset(), source="t", resamples=50)
        for pool in section["items"].values():  # the same items in another order pair all the same
            pool["doc_ids"], pool["tuned"] = pool["doc_ids"][order], pool["tuned"][order]
        return {"locality": section}

    a = run([1, 1, 1, 0], [1, 1, 1, 1])
    b = run([1, 0, 0, 0], [1, 1, 1, 1], order=slice(None, None, -1))
    rows = compare(a, b, resamples=200)
    assert rows["locality mixsd_triviaqa"]["difference"] == 0.5
    assert rows["locality kept"]["difference"] == 0.25 and rows["locality kept"]["n"] == 8
    assert rows["locality generative"]["n"] == 4 and rows["locality mc"]["verdict"] == "identical on every item"
    b["locality"]["known_set"]["key"] = {"base": "another"}
    with pytest.raises(MixsdError, match="different known sets"):
        compare(a, b)


TINY_POOLS = {"mixsd_arc_easy": 6, "mixsd_skills_arithmetic": 3}


@pytest.fixture
def tiny_pools(monkeypatch):
    """Two small pools instead of suites.yaml's, and a count of base passes."""
    monkeypatch.setattr(locality, "pools", lambda: dict(TINY_POOLS))
    calls = []
    real = locality.base_pass
    monkeypatch.setattr(locality, "base_pass", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_the_known_set_is_cached_and_recomputed_for_other_weights(tiny_pools, tiny_model_dir, tmp_path):
    config = {"suite": "locality", "general_prompts": 0, "drift_items": 0, "fisher_items": 0, "batch_size": 4}
    first = evaluate(EvalConfig(model=tiny_model_dir, base=tiny_model_dir, out=str(tmp_path / "a.json"), **config))
    assert len(tiny_pools) == 1 and first["locality"]["known_set"]["source"] == "computed now"
    again = evaluate(EvalConfig(model=tiny_model_dir, base=tiny_model_dir, out=str(tmp_path / "b.json"), **config))
    assert len(tiny_pools) == 1 and again["locality"]["known_set"]["source"] == "cache"
    for result in (first, again):  # the base against itself keeps every known item
        loc = result["locality"]
        assert loc["kept"] in (1.0, None) and all(sum(p["lost"].values()) == 0 for p in loc["pools"].values())
        assert set(loc["pools"]) <= set(TINY_POOLS)
    weights = next(p for p in os.scandir(tiny_model_dir) if p.name.endswith(".safetensors"))
    os.utime(weights.path, ns=(1, 1))  # other weights, as far as the fingerprint can tell
    evaluate(EvalConfig(model=tiny_model_dir, base=tiny_model_dir, out=str(tmp_path / "c.json"), **config))
    assert len(tiny_pools) == 2


def test_the_shipped_known_set_matches_the_embedded_model():
    known = locality.shipped("smollm2-135m")
    assert known is not None, "src/mixsd/evaluation/known/smollm2-135m.json.gz is missing"
    assert known.key["base"] == locality.base_identity("smollm2-135m")
    assert known.key["pools"] == locality.pools() and known.key["code_version"] == locality.CODE_VERSION
    defaults = EvalConfig(model="x")
    settings = (known.key["seed"], known.key["batch_size"], known.key["dtype"])
    assert settings == (defaults.seed, defaults.batch_size, "float32")
    generative = sum(len(p["doc_ids"]) for p in known.pools.values() if p["family"] == "generative")
    assert known.n >= 1000 and generative >= 300
    for pool in known.pools.values():
        assert len(pool["doc_ids"]) == len(pool["answers"]) <= pool["right_once"] <= pool["pool"]
    raw = (locality.KNOWN_DIR / "smollm2-135m.json.gz").read_bytes()
    assert json.loads(gzip.decompress(raw))["key"] == known.key


def test_the_model_card_gets_a_locality_section(tmp_path):
    from mixsd.report.single import write_run_report

    known = known_of({"mixsd_triviaqa": ("generative", 4)})
    section = locality.section(
        known, {"mixsd_triviaqa": scores_of([1, 1, 1, 0], True)}, entities=ENTITIES, openings=frozenset(), source="s"
    )
    (tmp_path / "model").mkdir()
    card = tmp_path / "model" / "README.md"
    card.write_text("# my model\n")
    (tmp_path / "eval.json").write_text(json.dumps({"locality": section}))
    for _ in range(2):  # a rerun replaces the section
        write_run_report(tmp_path)
    text = card.read_text()
    assert text.startswith("# my model\n") and text.count("## Locality") == 1
    assert "kept 0.750" in text and "mixsd_triviaqa" in text and "1/0/0/0" in text
    assert "mixsd_triviaqa" in (tmp_path / "report.md").read_text()
