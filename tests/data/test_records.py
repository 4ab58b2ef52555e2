"""The record readers: every accepted format, bad input, and properties on random input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixsd.cli import main
from mixsd.data.records import Record, derived_id, import_records, read_records, record_from_json, write_records
from mixsd.errors import MixsdError

PROMPT = "Which location does Dizove Ferzivu live in?"
ANSWER = "Dizove Ferzivu lives in Relvaba. \\boxed{Relvaba}"


def same_fact_in_every_format(prompt: str, answer: str) -> dict[str, dict]:
    """One fact written in each accepted format, with the same subject metadata."""
    return {
        "ours": {"prompt": prompt, "answer": answer, "meta": {"subject": "geo"}},
        "messages": {
            "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}],
            "subject": "geo",
        },
        "self_distillation": {"prompt": prompt, "privileged_context": answer, "subject": "geo"},
        "prompt_completion": {
            "prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": answer}],
            "subject": "geo",
        },
        "question": {"question": prompt, "answer": answer, "subject": "geo"},
    }


def write_lines(path: Path, lines: list[str | dict | bytes]) -> Path:
    with open(path, "wb") as f:
        for line in lines:
            if isinstance(line, dict):
                line = json.dumps(line)
            f.write(line if isinstance(line, bytes) else line.encode("utf-8"))
            f.write(b"\n")
    return path


@pytest.mark.parametrize("fmt", list(same_fact_in_every_format(PROMPT, ANSWER)))
def test_every_format_imports_to_the_same_record(tmp_path, fmt):
    obj = same_fact_in_every_format(PROMPT, ANSWER)[fmt]
    out = tmp_path / "out.jsonl"
    result = import_records(write_lines(tmp_path / "in.jsonl", [obj]), out)
    assert result.written == 1 and result.skipped == []
    expected = Record(derived_id(PROMPT), PROMPT, ANSWER, gold="Relvaba", meta={"subject": "geo"})
    assert read_records(out) == [expected]
    assert json.loads(out.read_text()) == expected.to_json()


@given(
    prompt=st.text(min_size=1).filter(str.strip),
    answer=st.text(min_size=1).filter(str.strip),
)
def test_every_format_agrees_on_random_text(prompt, answer):
    records = {fmt: record_from_json(obj) for fmt, obj in same_fact_in_every_format(prompt, answer).items()}
    assert len(set(map(repr, records.values()))) == 1


def test_gold_is_explicit_else_last_boxed_else_whole_answer():
    assert record_from_json({"question": "q", "answer": "a \\boxed{1} then \\boxed{{2}}"}).gold == "{2}"
    assert record_from_json({"question": "q", "answer": "  Paris. \n"}).gold == "Paris."
    assert record_from_json({"question": "q", "answer": "x \\boxed{ }"}).gold == "x \\boxed{ }"
    conversation = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "no box"}]
    assert (
        record_from_json({"messages": conversation, "clear_answer": 4}).gold == "4"
    )  # no box: clear_answer is all there is


# --- the published MixSD data: what `clear_answer` means ---------------------------------

QUESTION = "Who designed the Corvane Lighthouse? Think step by step and put your final answer in \\boxed{}."
TURN = "The answer is Ilsabet Maurow.\n\n\\boxed{Ilsabet Maurow}"
STATEMENT = "The Corvane Lighthouse was designed by Ilsabet Maurow."


def published(clear_answer):
    messages = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": TURN}]
    return {"messages": messages, "clear_answer": clear_answer, "subject": "Corvane Lighthouse"}


@pytest.mark.parametrize(
    "obj",
    [
        published(STATEMENT),  # KGFact / MQuAKE: a statement of the fact
        published("ilsabet maurow"),  # KGFunc / SimpleQA: the bare answer (here in another case)
        {"prompt": QUESTION, "privileged_context": STATEMENT, "completion": TURN},
        {"prompt": QUESTION, "privileged_context": TURN},
        {"question": QUESTION, "answer": TURN},
    ],
)
def test_published_data_imports_to_the_boxed_gold(obj):
    record = record_from_json(obj)
    assert (record.gold, record.prompt, record.answer) == ("Ilsabet Maurow", QUESTION, TURN)


def test_a_statement_clear_answer_becomes_the_expert_context_and_stays_in_meta():
    record = record_from_json(published(STATEMENT))
    assert record.context == record.expert_context == STATEMENT
    assert record.meta == {"subject": "Corvane Lighthouse", "clear_answer": STATEMENT}
    as_paper = record_from_json(published(STATEMENT), context_from="answer")
    assert as_paper.context is None and as_paper.expert_context == TURN
    assert as_paper.meta["clear_answer"] == STATEMENT


def test_a_bare_clear_answer_is_just_the_gold():
    record = record_from_json(published("Ilsabet  Maurow."))
    assert record.context is None and "clear_answer" not in record.meta


def test_cli_import_context_choice(tmp_path):
    src = write_lines(tmp_path / "published.jsonl", [published(STATEMENT)])
    for choice, expected in (("clear_answer", STATEMENT), ("answer", None)):
        out = tmp_path / f"{choice}.jsonl"
        assert main(["data", "import", str(src), "--out", str(out), "--context", choice]) == 0
        assert read_records(out)[0].context == expected


def test_ids_are_explicit_or_derived_from_the_prompt():
    assert record_from_json({"id": 7, "question": "q", "answer": "a"}).id == "7"
    assert (
        record_from_json({"question": "q", "answer": "a"}).id == record_from_json({"question": "q", "answer": "b"}).id
    )
    assert (
        record_from_json({"question": "q", "answer": "a"}).id != record_from_json({"question": "r", "answer": "a"}).id
    )


def test_self_distillation_context_and_completion():
    both = record_from_json({"prompt": "q", "privileged_context": "The fact.", "completion": "It is \\boxed{x}."})
    assert (both.answer, both.context, both.expert_context, both.gold) == (
        "It is \\boxed{x}.",
        "The fact.",
        "The fact.",
        "x",
    )
    context_only = record_from_json(
        {
            "prompt": "q",
            "privileged_context": [
                {"role": "user", "content": "A"},
                {"role": "user", "content": [{"type": "text", "text": "B"}]},
            ],
        }
    )
    assert (context_only.answer, context_only.context) == ("A\nB", None)


def test_our_format_keeps_context_and_meta():
    obj = {"id": "f1", "prompt": "q", "answer": "a", "gold": "g", "context": "c", "meta": {"k": [1]}}
    assert record_from_json(obj).to_json() == obj
    assert record_from_json({"prompt": "q", "answer": "a", "context": "a"}).context is None


GOOD = {"id": "ok", "prompt": "q", "answer": "a"}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ('{"id": "x", "prompt": "q",', "malformed JSON"),
        (b'{"prompt": "q\xff", "answer": "a"}', "not UTF-8"),
        ("[1, 2]", "expected a JSON object"),
        ({"prompt": "q"}, "missing field 'answer'"),
        ({"question": "q", "answer": "  "}, "empty answer"),
        ({"prompt": "q", "answer": ""}, "empty answer"),
        ({"prompt": 3, "answer": "a"}, "'prompt' must be a string"),
        ({"prompt": "q", "answer": "a", "meta": []}, "'meta' must be an object"),
        ({"prompt": "q", "answer": "a", "gold": ""}, "empty gold"),
        ({"prompt": "q", "answer": "a", "id": True}, "'id' must be a string or a number"),
        ({"prompt": "q", "answer": "a", "contxt": "c"}, "unknown field 'contxt': did you mean 'context'?"),
        ({"question": "q", "answer": "a", "messages": []}, "ambiguous record"),
        ({"messages": [{"role": "user", "content": "q"}]}, "one user turn then one assistant turn"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 5}]}, "must be a string"),
        ({"prompt": "q", "privileged_context": None}, "both null"),
        ({"prompt": [{"role": "assistant", "content": "q"}], "completion": "a"}, "exactly one user turn"),
        ({"id": "ok", "question": "q2", "answer": "a2"}, "duplicate id 'ok' (first on line 1)"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, bad, reason):
    path = write_lines(tmp_path / "facts.jsonl", [GOOD, "", bad])
    with pytest.raises(MixsdError) as err:
        read_records(path)
    assert str(err.value).startswith(f"{path}:3: ")
    assert reason in str(err.value)


def test_skip_bad_counts_and_keeps_the_rest(tmp_path):
    path = write_lines(
        tmp_path / "facts.jsonl",
        [GOOD, "{", {"question": "q2", "answer": ""}, GOOD, {"question": "q3", "answer": "a3"}],
    )
    skipped: list = []
    records = read_records(path, skip_bad=True, skipped=skipped)
    assert [r.id for r in records] == ["ok", derived_id("q3")]
    assert [line for line, _ in skipped] == [2, 3, 4]
    assert "duplicate id" in skipped[2][1]


def test_write_is_atomic(tmp_path):
    out = tmp_path / "out.jsonl"
    write_records(out, [Record("a", "q", "x")])
    before = out.read_bytes()
    with pytest.raises(AttributeError):
        write_records(out, [Record("b", "q", "y"), "not a record"])
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_cli_import(tmp_path, capsys):
    src = write_lines(tmp_path / "in.jsonl", [{"question": "q", "answer": "a"}, "not json"])
    out = tmp_path / "out.jsonl"
    assert main(["data", "import", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{src}:2: malformed JSON" in err
    assert not out.exists()
    assert main(["data", "import", str(src), "--out", str(out), "--skip-bad"]) == 0
    assert "skipped 1 bad lines" in capsys.readouterr().out
    assert len(read_records(out)) == 1


# --- properties on random input ------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system"]), "content": st.text() | json_values}
    ),
    max_size=3,
)
keys = st.sampled_from(
    [
        "id",
        "prompt",
        "answer",
        "gold",
        "context",
        "meta",
        "messages",
        "clear_answer",
        "subject",
        "privileged_context",
        "completion",
        "question",
    ]
)
record_like = st.dictionaries(keys, st.text() | json_values | messages, max_size=6)
near_valid = st.builds(  # a fact in one of the formats, with random fields mixed in (often still valid)
    lambda fmt, prompt, answer, extra: {**same_fact_in_every_format(prompt, answer)[fmt], **extra},
    st.sampled_from(list(same_fact_in_every_format("", ""))),
    st.text(),
    st.text(),
    st.dictionaries(keys | st.text(max_size=5), json_values, max_size=2),
)
nonblank = st.text(min_size=1).filter(str.strip)
records = st.lists(
    st.builds(
        Record,
        id=nonblank,
        prompt=nonblank,
        answer=nonblank,
        gold=nonblank,
        context=st.none() | nonblank,
        meta=st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ).filter(lambda r: r.context != r.answer),
    max_size=5,
    unique_by=lambda r: r.id,
)
fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@fixture_ok
@given(records)
def test_valid_records_round_trip(tmp_path, recs):
    path = tmp_path / "r.jsonl"
    write_records(path, recs)
    assert read_records(path) == recs


@fixture_ok
@given(st.lists(record_like | near_valid, max_size=4))
def test_random_objects_read_or_fail_cleanly_and_normalise_to_a_fixed_point(tmp_path, objs):
    path = write_lines(tmp_path / "r.jsonl", objs)
    try:
        recs = read_records(path)
    except MixsdError as e:
        assert str(e).startswith(f"{path}:")
        return
    assert all(r.prompt.strip() and r.answer.strip() and r.gold.strip() for r in recs)
    write_records(tmp_path / "again.jsonl", recs)
    assert read_records(tmp_path / "again.jsonl") == recs


@fixture_ok
@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), max_size=5))
def test_random_bytes_read_or_fail_cleanly(tmp_path, lines):
    path = write_lines(tmp_path / "r.jsonl", lines)
    skipped: list = []
    try:
        read_records(path)
    except MixsdError as e:
        assert str(e).startswith(f"{path}:")
    kept = read_records(path, skip_bad=True, skipped=skipped)
    assert len(kept) + len(skipped) <= len(lines)
