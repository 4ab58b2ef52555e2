"""Reading targets / corpus files and building the trainers' datasets (tokenizer only, no model)."""

from __future__ import annotations

import pytest
from train_testdata import make_records, target_row

from mixsd.chat import prompt_ids
from mixsd.errors import MixsdError
from mixsd.io import write_jsonl
from mixsd.targets.prompts import DEFAULT_EXPERT_TEMPLATE, expert_prompt
from mixsd.train import data


def test_targets_keep_the_stored_ids_and_drop_unverified(tmp_path, tokenizer):
    records = make_records(3)
    rows = [target_row(r, tokenizer, verified=(i != 1)) for i, r in enumerate(records)]
    rows[2]["mixsd"]["token_ids"] = [42, 7, tokenizer.eos_token_id]  # not what the text would re-tokenise to
    write_jsonl(tmp_path / "t.jsonl", rows)
    completions, report = data.read_targets(tmp_path / "t.jsonl")
    assert [c.id for c in completions] == ["f0", "f2"]
    assert completions[1].ids == [42, 7, tokenizer.eos_token_id]
    assert (report.read, report.unverified, report.lams) == (3, 1, [0.3])
    assert len(report.sha256) == 64


def test_supervised_rows_mask_exactly_the_completion(tokenizer):
    completion = data.Completion(id="a", prompt="Where?", ids=[42, 7, tokenizer.eos_token_id])
    report = data.DataReport(path="x", sha256="")
    row = data.supervised_dataset([completion], tokenizer, 1024, report)[0]
    prompt = prompt_ids(tokenizer, "Where?")
    assert row["input_ids"] == prompt + [42, 7, tokenizer.eos_token_id]
    assert row["completion_mask"] == [0] * len(prompt) + [1, 1, 1]
    assert report.used == 1


def test_long_prompts_lose_their_start_and_too_long_answers_are_skipped(tokenizer):
    fits = data.Completion(id="a", prompt="Where? " * 50, ids=[5] * 10)
    too_long = data.Completion(id="b", prompt="Where?", ids=[5] * 40)
    report = data.DataReport(path="x", sha256="")
    rows = data.supervised_dataset([fits, too_long], tokenizer, 40, report)
    assert len(rows) == 1
    assert rows[0]["input_ids"] == prompt_ids(tokenizer, "Where? " * 50)[-30:] + [5] * 10
    assert rows[0]["completion_mask"] == [0] * 30 + [1] * 10
    assert (report.truncated, report.too_long, report.used) == (1, 1, 1)
    assert "1 too long skipped" in report.summary()


def test_sft_completion_is_the_answer_then_eos(tokenizer):
    record = make_records(1)[0]
    (completion,) = data.answer_completions([record], tokenizer)
    assert completion.ids[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(completion.ids[:-1]) == record.answer


def test_teacher_template_reproduces_the_expert_prompt():
    template = data.teacher_prompt_template(DEFAULT_EXPERT_TEMPLATE)
    question, fact = "Where does {x} live? Box it in \\boxed{}.", "Xyz lives in Qorvath."
    assert template.format(prompt=question, privileged_context=fact) == expert_prompt(question, fact)


def test_opsd_rows_skip_records_whose_expert_prompt_is_too_long(tokenizer):
    short, long = make_records(2)
    long = type(long)(id="long", prompt=long.prompt, answer=long.answer, context="fact " * 200)
    report = data.DataReport(path="x", sha256="")
    rows = data.opsd_dataset([short, long], tokenizer, DEFAULT_EXPERT_TEMPLATE, 200, report)
    assert rows.to_list() == [
        {"prompt": [{"role": "user", "content": short.prompt}], "privileged_context": short.answer}
    ]
    assert report.too_long == 1


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "a", "prompt": "q", "answer": "a"}, "corpus record"),
        ({"messages": [], "mixsd": {}}, "not a MixSD target"),
        ({"messages": [{"role": "user", "content": "q"}], "mixsd": {"token_ids": [], "verified": True}}, "non-empty"),
        (
            {"messages": [{"role": "user", "content": "q"}], "mixsd": {"token_ids": ["x"], "verified": True}},
            "token ids",
        ),
    ],
)
def test_bad_targets_name_file_and_line(tmp_path, tokenizer, row, message):
    path = tmp_path / "t.jsonl"
    write_jsonl(path, [target_row(make_records(1)[0], tokenizer), row])
    with pytest.raises(MixsdError, match=f"t.jsonl:2: .*{message}"):
        data.read_targets(path)


def test_all_unverified_is_an_error(tmp_path, tokenizer):
    write_jsonl(tmp_path / "t.jsonl", [target_row(r, tokenizer, verified=False) for r in make_records(2)])
    with pytest.raises(MixsdError, match=r"no verified targets \(2 read, 2 unverified\)"):
        data.read_targets(tmp_path / "t.jsonl")


def test_corpus_reader_points_targets_files_to_method_mixsd(targets_file, corpus_file):
    with pytest.raises(MixsdError, match="targets.jsonl:1: .*--method mixsd"):
        data.read_corpus(targets_file)
    records, report = data.read_corpus(corpus_file)
    assert [r.id for r in records] == ["f0", "f1", "f2", "f3"] and report.read == 4


def test_vocabulary_mismatch_is_reported(tokenizer):
    completion = data.Completion(id="a", prompt="q", ids=[len(tokenizer) + 5])
    with pytest.raises(MixsdError, match="outside the model's vocabulary"):
        data.supervised_dataset([completion], tokenizer, 64, data.DataReport(path="t.jsonl", sha256=""))
