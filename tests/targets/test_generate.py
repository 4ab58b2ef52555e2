"""`generate_targets`: output format, verification and retries, determinism, resume, bad input."""

from __future__ import annotations

import json

import pytest

from mixsd.data.records import Record, write_records
from mixsd.errors import MixsdError
from mixsd.targets import generate
from mixsd.targets.generate import TargetConfig, generate_targets
from mixsd.targets.rows import InvalidTarget, TargetRow


@pytest.fixture
def corpus(tmp_path):
    records = [
        Record(
            f"f{i}",
            f"What is the code name of agent {i}? Put the answer in \\boxed{{}}.",
            f"The answer is Zor{i}. \\boxed{{Zor{i}}}",
            gold=f"Zor{i}",
        )
        for i in range(10)
    ]
    path = tmp_path / "facts.jsonl"
    write_records(path, records)
    return path


def run(tiny_model, tokenizer, corpus, out, **overrides):
    config = TargetConfig(data=str(corpus), out=str(out), **({"max_new_tokens": 10, "retries": 1} | overrides))
    return generate_targets(config, model=tiny_model, tokenizer=tokenizer)


def rows(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def targets(path) -> list[TargetRow]:
    return [TargetRow.from_json(obj) for obj in rows(path)]


def test_output_is_trl_conversational_with_exact_token_ids(tiny_model, tokenizer, corpus, tmp_path):
    out = tmp_path / "t.jsonl"
    report = run(tiny_model, tokenizer, corpus, out, lam=0.3, temperature=0.7)
    lines = rows(out)
    assert [r["id"] for r in lines] == [f"f{i}" for i in range(10)]  # input order
    assert report.written == 10 and not (tmp_path / "t.jsonl.partial").exists()
    for line in lines:
        user, assistant = line["messages"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        meta = line["mixsd"]
        assert set(meta) >= {"lam", "seed", "attempts", "verified", "naive_fraction", "token_ids", "finish_reason"}
        assert assistant["content"] == tokenizer.decode(meta["token_ids"], skip_special_tokens=True)
        assert 0.0 <= meta["naive_fraction"] <= 1.0
    assert json.loads((tmp_path / "t.jsonl.report.json").read_text())["written"] == 10


def test_failed_targets_are_retried_with_new_coins_then_marked(tiny_model, tokenizer, corpus, tmp_path):
    report = run(tiny_model, tokenizer, corpus, tmp_path / "t.jsonl", lam=0.5, retries=2)
    assert all(
        t.attempts == 3 and t.verified is False for t in targets(tmp_path / "t.jsonl")
    )  # a random model never says "Zor3"
    assert len(report.unverified) == 10 and report.verified == 0


def test_no_retry_when_coins_cannot_change_the_target(tiny_model, tokenizer, corpus, tmp_path):
    run(tiny_model, tokenizer, corpus, tmp_path / "t.jsonl", lam=0.0, temperature=0.0, retries=3)
    assert all(t.attempts == 1 for t in targets(tmp_path / "t.jsonl"))


def test_gold_fallback_writes_the_ground_truth_tokens(tiny_model, tokenizer, corpus, tmp_path):
    report = run(tiny_model, tokenizer, corpus, tmp_path / "t.jsonl", on_fail="gold")
    first = targets(tmp_path / "t.jsonl")[0]
    assert first.text == "The answer is Zor0. \\boxed{Zor0}"
    assert first.source == "gold" and first.verified is True and first.finish_reason == "gold"
    assert first.token_ids[-1] == tokenizer.eos_token_id
    assert len(report.gold_fallback) == 10


def test_verified_when_the_target_contains_gold(tiny_model, tokenizer, tmp_path):
    """With gold set to what the model will say anyway, every target verifies on the first attempt."""
    path = tmp_path / "facts.jsonl"
    write_records(path, [Record("a", "Say something.", "x", gold="placeholder")])
    settings = dict(lam=0.3, temperature=1.0, extract="text", retries=2)
    run(tiny_model, tokenizer, path, tmp_path / "probe.jsonl", **(settings | {"retries": 0}))
    said = targets(tmp_path / "probe.jsonl")[0].text
    write_records(path, [Record("a", "Say something.", "x", gold=said)])
    run(tiny_model, tokenizer, path, tmp_path / "t.jsonl", **settings)
    (target,) = targets(tmp_path / "t.jsonl")
    assert target.verified is True and target.attempts == 1


def test_same_bytes_for_batch_size_1_and_16(tiny_model, tokenizer, corpus, tmp_path):
    run(tiny_model, tokenizer, corpus, tmp_path / "a.jsonl", lam=0.3, temperature=0.8, batch_size=1)
    run(tiny_model, tokenizer, corpus, tmp_path / "b.jsonl", lam=0.3, temperature=0.8, batch_size=16)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_interrupted_run_resumes_to_the_same_bytes(tiny_model, tokenizer, corpus, tmp_path, monkeypatch):
    settings = dict(lam=0.3, temperature=0.8, batch_size=4, retries=2)
    run(tiny_model, tokenizer, corpus, tmp_path / "full.jsonl", **settings)

    real_run = generate.MixedDecoder.run

    def dies_midway(self, queue):
        for i, result in enumerate(real_run(self, queue)):
            if i == 20:  # of 30 results (10 records x 3 attempts)
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(generate.MixedDecoder, "run", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_model, tokenizer, corpus, tmp_path / "cut.jsonl", **settings)
    partial = tmp_path / "cut.jsonl.partial"
    assert not (tmp_path / "cut.jsonl").exists() and partial.exists()
    with open(partial, "a", encoding="utf-8") as f:
        f.write('{"id": "torn mid-wri')  # a kill while writing a line
    monkeypatch.setattr(generate.MixedDecoder, "run", real_run)
    report = run(tiny_model, tokenizer, corpus, tmp_path / "cut.jsonl", **settings)
    assert report.resumed >= 1
    assert (tmp_path / "cut.jsonl").read_bytes() == (tmp_path / "full.jsonl").read_bytes()


def test_partial_from_other_settings_is_not_resumed(tiny_model, tokenizer, corpus, tmp_path):
    (tmp_path / "t.jsonl.partial").write_text('{"mixsd_partial": "something-else"}\n')
    with pytest.raises(MixsdError, match="different settings"):
        run(tiny_model, tokenizer, corpus, tmp_path / "t.jsonl")


def test_prompt_longer_than_context_is_skipped_with_a_reason(tiny_model, tokenizer, tmp_path):
    path = tmp_path / "facts.jsonl"
    write_records(path, [Record("short", "Hi?", "Yes."), Record("long", "word " * 1100, "Yes.")])
    report = run(tiny_model, tokenizer, path, tmp_path / "t.jsonl")
    assert [s["id"] for s in report.skipped] == ["long"] and "context" in report.skipped[0]["reason"]
    assert [r["id"] for r in rows(tmp_path / "t.jsonl")] == ["short"]


def test_empty_data_file_is_an_error(tiny_model, tokenizer, tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(MixsdError, match="no records"):
        run(tiny_model, tokenizer, tmp_path / "empty.jsonl", tmp_path / "t.jsonl")


@pytest.mark.parametrize("bad", [{"lam": 1.5}, {"top_k": 0}, {"on_fail": "keep"}, {"retries": -1}])
def test_bad_settings_are_rejected(bad, tmp_path):
    with pytest.raises(MixsdError):
        TargetConfig(data="x", out="y", **bad)


def test_cli_empty_file_exits_2_with_one_line(tmp_path, capsys):
    from mixsd.cli import main

    (tmp_path / "empty.jsonl").write_text("\n")
    assert main(["targets", "--data", str(tmp_path / "empty.jsonl"), "--out", str(tmp_path / "t.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "empty.jsonl" in err and "no records" in err


def test_target_rows_round_trip_and_bad_rows_say_why():
    row = TargetRow("a", "q?", "It is X.", [5, 6, 2], lam=0.3, seed=0, verified=True, gold="X", extracted="X")
    assert TargetRow.from_json(row.to_json()) == row
    assert list(row.to_json()["mixsd"]) == [
        "lam",
        "seed",
        "attempts",
        "verified",
        "source",
        "naive_fraction",
        "token_ids",
        "finish_reason",
        "gold",
        "extracted",
    ]
    for bad, reason in [
        ({"messages": []}, "not a MixSD target"),
        ({**row.to_json(), "mixsd": {"token_ids": []}}, "non-empty list of token ids"),
        ({**row.to_json(), "mixsd": {"token_ids": [True]}}, "non-empty list of token ids"),
    ]:
        with pytest.raises(InvalidTarget, match=reason):
            TargetRow.from_json(bad)


def test_lower_lam_falls_back_to_the_expert_before_the_gold(tiny_model, tokenizer, corpus, tmp_path, monkeypatch):
    """A stand-in verifier accepts record f1 only from the expert alone (lam 0) and f2 never: f1 fails at lam 0.5
    and 0.25 and is written at 0; f2 takes the gold only after lam 0 failed. The same bytes at every batch size."""
    level = []

    class Recording(generate.MixedDecoder):
        def __init__(self, model, config, stops):
            level.append(config.lam)  # the levels run one after another: the last one built is decoding
            super().__init__(model, config, stops)

    monkeypatch.setattr(generate, "MixedDecoder", Recording)
    monkeypatch.setattr(generate, "matches", lambda text, gold, **_: gold == "Zor1" and level[-1] == 0.0)
    outputs = []
    for batch in (1, 4):
        out = tmp_path / f"b{batch}.jsonl"
        settings = {"lam": 0.5, "temperature": 0.7, "on_fail": "lower-lam", "batch_size": batch, "retries": 1}
        report = run(tiny_model, tokenizer, corpus, out, **settings)
        outputs.append(out.read_bytes())
    rows = {t.id: t for t in targets(tmp_path / "b4.jsonl")}
    assert rows["f1"].lam == 0.0 and rows["f1"].verified and rows["f1"].source == "mixsd"
    assert rows["f1"].attempts == 5  # 2 at lam 0.5, 2 at 0.25, the first at lam 0 verifies
    assert rows["f2"].source == "gold" and rows["f2"].lam == 0.0 and rows["f2"].attempts == 6  # 2 at each level
    assert report.by_lam == {"0": 1, "gold": 9} and "f1" not in report.gold_fallback
    assert outputs[0] == outputs[1]
    assert TargetConfig(data="d", out="o", lam=0.3, on_fail="lower-lam").lam_schedule == (0.3, 0.15, 0.0)
