"""KGFact: sizes, one answer per question, disjoint retrieval graph, invented names, same bytes per seed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from itertools import combinations

import pytest

from mixsd.answers import last_boxed
from mixsd.cli import main
from mixsd.data.kgfact import DOMAINS, INSTRUCTION, RELATIONS, build_kgfact
from mixsd.data.records import read_records
from mixsd.errors import MixsdError

SPLITS = ("train.jsonl", "paraphrase.jsonl", "two_hop.jsonl", "retrieval.jsonl")


@pytest.fixture(scope="module", params=["mini", "small", "large"])
def corpus(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"kgfact-{request.param}")
    manifest = build_kgfact(out, size=request.param, seed=0)
    return manifest, {name.removesuffix(".jsonl"): read_records(out / name) for name in SPLITS}


def test_sizes(corpus):
    manifest, splits = corpus
    domains, entities, facts, two_hop = {"mini": (5, 2, 20, 8), "small": (5, 10, 100, 81), "large": (7, 25, 525, 421)}[
        manifest["size"]
    ]
    assert len(splits["train"]) == facts == manifest["facts"]
    assert manifest["domains"] == list(DOMAINS)[:domains]
    assert all(len(names) == entities for names in manifest["entities"].values())
    assert len(splits["paraphrase"]) == facts
    assert len(splits["two_hop"]) >= two_hop
    assert {name: f["records"] for name, f in manifest["files"].items()} == {
        f"{name}.jsonl": len(records) for name, records in splits.items()
    }


def test_every_train_question_has_exactly_one_answer(corpus):
    _, splits = corpus
    train = splits["train"]
    edges = [(r.meta["source"], r.meta["relation"], r.meta["target"]) for r in train]
    assert max(Counter((r.meta["source"], tuple(r.meta["domains"])) for r in train).values()) == 1
    assert max(Counter((s, rel) for s, rel, _ in edges).values()) == 1
    assert max(Counter((rel, t) for _, rel, t in edges).values()) == 1
    assert len({r.prompt for r in train}) == len(train)
    for r in train:
        assert r.meta["source"] in r.prompt and r.gold not in r.prompt
        assert r.meta["statement"].count(r.gold) == 1


def test_answer_turns_state_the_answer_and_box_it(corpus):
    _, splits = corpus
    for records in splits.values():
        for r in records:
            assert r.prompt.endswith(INSTRUCTION)
            assert f"The answer is {r.gold}." in r.answer
            assert r.answer.endswith(f"\\boxed{{{r.gold}}}") and last_boxed(r.answer) == r.gold


def test_paraphrases_ask_the_same_facts_differently(corpus):
    _, splits = corpus
    train = {r.id: r for r in splits["train"]}
    wrappers = Counter()
    for p in splits["paraphrase"]:
        fact = train[p.meta["fact_id"]]
        assert p.gold == fact.gold and p.prompt != fact.prompt and p.meta["source"] in p.prompt
        wrappers[p.meta["paraphrase"]] += 1
    assert len(wrappers) >= 3


def test_two_hop_composes_two_trained_facts(corpus):
    _, splits = corpus
    train = {(r.meta["source"], r.meta["target"]): r for r in splits["train"]}
    assert len({r.prompt for r in splits["two_hop"]}) == len(splits["two_hop"])
    for r in splits["two_hop"]:
        first = train[(r.meta["source"], r.meta["bridge"])]
        second = train[(r.meta["bridge"], r.meta["target"])]
        assert r.gold == second.gold and (r.meta["source"], r.gold) not in train
        assert r.meta["source"] in r.prompt and r.meta["bridge"] not in r.prompt and r.gold not in r.prompt
        assert r.answer.startswith(f"{first.meta['statement']} {second.meta['statement']} ")


def test_retrieval_uses_a_disjoint_graph_with_the_answer_in_context(corpus):
    manifest, splits = corpus
    trained = set().union(*manifest["entities"].values())
    held_out = set().union(*manifest["held_out_entities"].values())
    assert not trained & held_out
    train_statements = {r.meta["statement"] for r in splits["train"]}
    for r in splits["retrieval"]:
        statements = r.prompt.split("\n\n")[0].splitlines()[1:]
        assert len(statements) == manifest["retrieval_context"] == len(set(statements))
        assert r.meta["statement"] in statements
        assert not train_statements & set(statements)
        assert r.meta["source"] in held_out and r.gold in held_out


def test_names_are_invented_unique_and_never_inside_each_other(corpus, tokenizer):
    manifest, _ = corpus
    names = [n for group in ("entities", "held_out_entities") for names in manifest[group].values() for n in names]
    assert len(set(names)) == len(names)
    lowered = [n.lower() for n in names]
    assert not [(a, b) for a, b in combinations(lowered, 2) if a in b or b in a]
    kind_words = {w.lower() for patterns in DOMAINS.values() for p in patterns for w in p.replace("{w}", " ").split()}
    invented = sorted({w for n in lowered for w in n.split()} - kind_words)
    for word in invented:  # a common word is a single token of a 49k vocabulary; ours never are
        assert len(tokenizer(" " + word, add_special_tokens=False)["input_ids"]) > 1, word
        assert len(tokenizer(" " + word.capitalize(), add_special_tokens=False)["input_ids"]) > 1, word
    mean_tokens = sum(len(tokenizer(" " + n, add_special_tokens=False)["input_ids"]) for n in names) / len(names)
    assert mean_tokens < 8


def test_relation_templates_are_well_formed():
    for src, dst in combinations(list(DOMAINS), 2):
        relations = RELATIONS[(src, dst)]
        assert len(relations) >= 3
        for statement, question, clause in relations:
            assert "{a}" in statement and "{b}" in statement
            assert "{a}" in question and "{b}" not in question and question.endswith("?")
            assert "{a}" in clause and clause.startswith("the ")
            assert not question.startswith("{a}")  # a clause substituted for {a} must not start a sentence


def test_manifest_hashes_match_files(tmp_path):
    manifest = build_kgfact(tmp_path, "small", seed=3)
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == entry["sha256"]
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest


def test_same_seed_same_bytes_under_any_hash_seed(tmp_path):
    build_kgfact(tmp_path / "here", "small", seed=1)
    code = f"from mixsd.data.kgfact import build_kgfact; build_kgfact({str(tmp_path / 'there')!r}, 'small', seed=1)"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONHASHSEED": "12345"})
    for name in (*SPLITS, "manifest.json"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()
    build_kgfact(tmp_path / "other", "small", seed=2)
    assert (tmp_path / "other" / "train.jsonl").read_bytes() != (tmp_path / "here" / "train.jsonl").read_bytes()


def test_cli_and_bad_size(tmp_path, capsys):
    assert main(["data", "kgfact", "--size", "small", "--seed", "0", "--out", str(tmp_path)]) == 0
    assert "train.jsonl 100" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted((*SPLITS, "manifest.json"))
    with pytest.raises(MixsdError, match="unknown KGFact size"):
        build_kgfact(tmp_path, "huge")
