"""SimpleQA and MQuAKE converters on small hand-written files (tests/data/files), and their bad rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixsd.cli import main
from mixsd.data.convert import convert_mquake, convert_simpleqa
from mixsd.data.kgfact import INSTRUCTION
from mixsd.data.records import read_records
from mixsd.errors import MixsdError
from mixsd.evaluation.facts import load_facts

FILES = Path(__file__).parent / "files"


def test_simpleqa_csv_to_boxed_facts(tmp_path):
    out = tmp_path / "simpleqa.jsonl"
    result = convert_simpleqa(FILES / "simpleqa.csv", out)
    assert result.written == {"train": 3} and result.skipped == []
    records = read_records(out)
    assert [r.id for r in records] == ["simpleqa-0000", "simpleqa-0001", "simpleqa-0002"]
    first, second, third = records
    assert first.prompt == f"In which town was the Corvane Lighthouse first lit? {INSTRUCTION}"
    assert (first.answer, first.gold, first.context) == ("\\boxed{Port Elsary}", "Port Elsary", None)
    assert first.meta["metadata"]["topic"] == "Geography"  # the CSV's Python dict literal, parsed
    assert second.prompt.startswith('Who painted "The Grey Harbour"')
    assert third.prompt.startswith("How many\nlenses") and third.gold == "12"
    assert [r.meta["source_line"] for r in records] == [2, 3, 4]


def test_simpleqa_jsonl_gives_the_same_facts(tmp_path):
    convert_simpleqa(FILES / "simpleqa.csv", tmp_path / "a.jsonl")
    convert_simpleqa(FILES / "simpleqa.jsonl", tmp_path / "b.jsonl")
    a, b = read_records(tmp_path / "a.jsonl")[:2], read_records(tmp_path / "b.jsonl")
    assert [(r.id, r.prompt, r.answer, r.gold) for r in a] == [(r.id, r.prompt, r.answer, r.gold) for r in b]


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        ("bad.csv", "problem,answer\nQ1?,A1\nQ2?,\n", ":3: empty 'answer'"),
        (
            "bad.jsonl",
            '{"problem": "Q1?", "answer": "A1"}\n{"question": "Q2?", "answer": "A2"}\n',
            ":2: missing field 'problem'",
        ),
        (
            "bad.jsonl",
            '{"problem": "Q1?", "answer": "A1"}\n{"problem": "Q2?", "answer": ["A2"]}\n',
            ":2: 'answer' must be a string",
        ),
        ("bad.jsonl", '{"problem": "Q1?", "answer": "A1"}\n{"problem": "Q2?",\n', ":2: malformed JSON"),
    ],
)
def test_simpleqa_bad_rows_name_file_and_line(tmp_path, name, text, where):
    src = tmp_path / name
    src.write_text(text)
    with pytest.raises(MixsdError) as err:
        convert_simpleqa(src, tmp_path / "out.jsonl")
    assert str(err.value).startswith(f"{src}{where}")
    assert not (tmp_path / "out.jsonl").exists()
    if "malformed" not in where:
        result = convert_simpleqa(src, tmp_path / "out.jsonl", skip_bad=True)
        assert result.written == {"train": 1} and len(result.skipped) == 1


def test_mquake_edits_become_facts_with_the_statement_as_context(tmp_path):
    result = convert_mquake(FILES / "mquake.json", tmp_path / "mquake")
    assert result.written == {"train": 2, "multi_hop": 3}  # case 2 repeats case 1's edit: kept once
    train = read_records(tmp_path / "mquake" / "train.jsonl")
    citizen, head = train
    assert citizen.prompt == f"What is the country of citizenship of Tomas Arkwell? {INSTRUCTION}"
    assert citizen.answer == "The answer is Velaria. \\boxed{Velaria}" and citizen.gold == "Velaria"
    assert citizen.context == "Tomas Arkwell is a citizen of Velaria."
    assert head.context == "The head of state of Velaria is Ilse Dorran." and head.meta["target_true"] == "Karl Weiss"
    manifest = json.loads((tmp_path / "mquake" / "manifest.json").read_text())
    assert manifest["corpus"] == "mquake" and manifest["duplicate_edits"] == 1


def test_mquake_multi_hop_is_a_scored_memorisation_split(tmp_path):
    convert_mquake(FILES / "mquake.json", tmp_path / "mquake")
    facts = load_facts(tmp_path / "mquake")
    assert facts.memorisation == ["train", "multi_hop"] and facts.match == "loose"
    hops = facts.splits["multi_hop"]
    assert [r.gold for r in hops] == ["Velar City", "Velar City", "Ilse Dorran"]
    assert hops[0].meta["new_answer_alias"] == ["Velar"]


def test_mquake_bad_case_names_its_line(tmp_path):
    with pytest.raises(MixsdError) as err:
        convert_mquake(FILES / "mquake_bad.json", tmp_path / "out")
    assert str(err.value).startswith(f"{FILES / 'mquake_bad.json'}:11: requested_rewrite[0]: 'target_new'")
    assert not (tmp_path / "out").exists()
    result = convert_mquake(FILES / "mquake_bad.json", tmp_path / "out", skip_bad=True)
    assert result.written == {"train": 1, "multi_hop": 1} and [line for line, _ in result.skipped] == [11]


def test_cli_converters(tmp_path, capsys):
    assert main(["data", "simpleqa", str(FILES / "simpleqa.csv"), "--out", str(tmp_path / "s.jsonl")]) == 0
    assert "train 3" in capsys.readouterr().out
    assert main(["data", "mquake", str(FILES / "mquake.json"), "--out", str(tmp_path / "m")]) == 0
    assert "train 2, multi_hop 3" in capsys.readouterr().out
    assert main(["data", "mquake", str(FILES / "mquake_bad.json"), "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mquake_bad.json:11:" in err
