"""Reading fact splits and scoring answers to them."""

from __future__ import annotations

import json

import pytest

from mixsd.errors import MixsdError
from mixsd.evaluation.facts import accuracy, injected_entities, load_facts, score_answers


def test_directory_gives_known_splits_in_order(facts_dir):
    (facts_dir / "notes.jsonl").write_text("not a split\n")
    facts = load_facts(facts_dir)
    assert list(facts.splits) == ["train", "paraphrase", "two_hop", "retrieval"]
    assert facts.memorisation == ["train", "paraphrase", "two_hop"] and facts.probes == ["retrieval"]
    assert facts.match == "loose"
    assert [len(r) for r in load_facts(facts_dir, limit=2).splits.values()] == [2, 2, 2, 2]


def test_single_file_is_the_train_split(facts_dir):
    facts = load_facts(facts_dir / "paraphrase.jsonl")
    assert list(facts.splits) == ["train"] and facts.splits["train"][0].id == "paraphrase-0"


def test_kgfunc_manifest_means_strict_scoring(facts_dir):
    (facts_dir / "manifest.json").write_text(json.dumps({"corpus": "kgfunc"}))
    assert load_facts(facts_dir).match == "strict"


def test_bad_inputs(tmp_path, facts_dir):
    with pytest.raises(MixsdError, match="no such file"):
        load_facts(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixsdError, match="no split files"):
        load_facts(tmp_path / "empty")
    (facts_dir / "train.jsonl").write_text('{"id": "a", "prompt": "q", "answer": "a"}\n{oops\n')
    with pytest.raises(MixsdError, match=r"train.jsonl:2: malformed JSON"):
        load_facts(facts_dir)
    (facts_dir / "train.jsonl").write_text("")
    with pytest.raises(MixsdError, match=r"train.jsonl: no records"):
        load_facts(facts_dir)


def test_score_answers_loose_and_strict(make_records):
    recs = make_records("train", 3)
    scored = score_answers(recs, ["It is relvaba, I think.", "\\boxed{Motufu}", "\\boxed{Dumun fe}"])
    assert [(p["loose"], p["strict"]) for p in scored] == [(True, False), (True, True), (False, False)]
    assert accuracy(scored, "loose") == pytest.approx(2 / 3) and accuracy(scored, "strict") == pytest.approx(1 / 3)


def test_injected_entities_skip_numbers_and_short_names(facts_dir):
    facts = load_facts(facts_dir)
    assert injected_entities(facts) == {
        "Relvaba",
        "Motufu",
        "Dumunfe",
        "Dizove Ferzivu",
        "Kurguman Gozovo",
        "Lepezu Liparga",
    }
    facts.manifest["entities"] = {"location": ["Relvaba", "Ix"]}
    facts.splits["train"] = [r.__class__(r.id, r.prompt, r.answer, "1234") for r in facts.splits["train"]]
    assert injected_entities(facts) == {"Relvaba"}
