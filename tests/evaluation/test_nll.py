"""Target NLL of a corpus file (tokenized answers) and of a targets file (stored token ids)."""

from __future__ import annotations

import json

import pytest
import torch

from mixsd.chat import prompt_ids
from mixsd.cli import main
from mixsd.errors import MixsdError
from mixsd.evaluation.nll import target_nll
from mixsd.io import write_jsonl


def direct_nll(model, tokenizer, prompt: str, answer_ids: list[int]) -> float:
    """Sum of -log p(answer token | prompt, earlier answer tokens), one sequence, no batching."""
    head = prompt_ids(tokenizer, prompt)
    ids = torch.tensor([head + answer_ids])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(ids).logits[0].double(), dim=-1)
    return -sum(log_probs[len(head) + i - 1, t].item() for i, t in enumerate(answer_ids))


def test_corpus_and_targets_files_against_a_direct_computation(
    tiny_model, tokenizer, facts_dir, make_records, tmp_path
):
    recs = make_records("train", 3)
    answers = [tokenizer.encode(r.answer, add_special_tokens=False) for r in recs]
    expected = [direct_nll(tiny_model, tokenizer, r.prompt, ids) for r, ids in zip(recs, answers, strict=True)]
    tokens = sum(map(len, answers))

    corpus = target_nll(tiny_model, tokenizer, facts_dir / "train.jsonl", batch_size=2)
    assert (corpus["records"], corpus["tokens"], corpus["skipped_empty"]) == (3, tokens, 0)
    assert corpus["mean_nll"] == pytest.approx(sum(expected) / tokens, rel=1e-5)
    assert corpus["mean_record_nll"] == pytest.approx(
        sum(e / len(a) for e, a in zip(expected, answers, strict=True)) / 3, rel=1e-5
    )

    # the same answers stored as targets, with an end-of-turn token that must not count
    targets = tmp_path / "targets.jsonl"
    write_jsonl(
        targets,
        [
            {
                "id": r.id,
                "messages": [{"role": "user", "content": r.prompt}, {"role": "assistant", "content": r.answer}],
                "mixsd": {"lam": 0.3, "token_ids": ids + [tokenizer.eos_token_id], "finish_reason": "stop"},
            }
            for r, ids in zip(recs, answers, strict=True)
        ],
    )
    stored = target_nll(tiny_model, tokenizer, targets, batch_size=3)
    assert stored["tokens"] == tokens
    assert stored["mean_nll"] == pytest.approx(corpus["mean_nll"], rel=1e-5)
    assert (corpus["gold_fallback"], stored["gold_fallback"]) == (0, 0)


def test_gold_fallback_targets_are_counted(tiny_model, tokenizer, make_records, tmp_path):
    recs = make_records("train", 3)
    path = tmp_path / "t.jsonl"
    write_jsonl(
        path,
        [
            {
                "id": r.id,
                "messages": [{"role": "user", "content": r.prompt}, {"role": "assistant", "content": r.answer}],
                "mixsd": {"token_ids": tokenizer.encode(r.answer, add_special_tokens=False), "source": source},
            }
            for r, source in zip(recs, ["gold", "mixsd", "gold"], strict=True)
        ],
    )
    assert target_nll(tiny_model, tokenizer, path)["gold_fallback"] == 2


def test_stored_ids_are_used_as_is(tiny_model, tokenizer, make_records, tmp_path):
    (rec,) = make_records("train", 1)
    ids = tokenizer.encode(" something else entirely", add_special_tokens=False)
    path = tmp_path / "t.jsonl"
    write_jsonl(
        path,
        [
            {
                "messages": [{"role": "user", "content": rec.prompt}, {"role": "assistant", "content": rec.answer}],
                "mixsd": {"token_ids": ids},
            }
        ],
    )
    assert target_nll(tiny_model, tokenizer, path)["mean_nll"] == pytest.approx(
        direct_nll(tiny_model, tokenizer, rec.prompt, ids) / len(ids), rel=1e-5
    )


def test_bad_targets(tiny_model, tokenizer, tmp_path):
    path = tmp_path / "t.jsonl"
    line = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    path.write_text(json.dumps(line) + "\n" + json.dumps({**line, "mixsd": {"token_ids": ["x"]}}) + "\n")
    with pytest.raises(MixsdError, match=r"t.jsonl:2: mixsd.token_ids must be a non-empty list of token ids"):
        target_nll(tiny_model, tokenizer, path)
    path.write_text(json.dumps({"prompt": "q"}) + "\n")
    with pytest.raises(MixsdError, match=r"t.jsonl:1: "):
        target_nll(tiny_model, tokenizer, path)
    path.write_text("\n")
    with pytest.raises(MixsdError, match="no records"):
        target_nll(tiny_model, tokenizer, path)
    path.write_text(json.dumps({**line, "mixsd": {"token_ids": [tokenizer.eos_token_id]}}) + "\n")
    with pytest.raises(MixsdError, match="no record has a non-empty target"):
        target_nll(tiny_model, tokenizer, path)


def test_cli(tiny_model_dir, facts_dir, tmp_path, capsys):
    out = tmp_path / "nll.json"
    assert (
        main(
            [
                "nll",
                str(facts_dir / "train.jsonl"),
                str(facts_dir / "paraphrase.jsonl"),
                "--model",
                tiny_model_dir,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 2 and printed[0].endswith("train.jsonl") and "nats/token" in printed[0]
    assert [row["records"] for row in json.loads(out.read_text())["files"]] == [3, 2]
    assert main(["nll", str(tmp_path / "missing.jsonl"), "--model", tiny_model_dir]) == 2
