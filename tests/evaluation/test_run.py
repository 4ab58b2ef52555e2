"""`mixsd eval` end to end with the tiny model: base against itself, the cache, bad inputs, the CLI."""

from __future__ import annotations

import json
import shutil

import pytest

from mixsd.cli import main
from mixsd.errors import MixsdError
from mixsd.evaluation import EvalConfig, evaluate
from mixsd.report.table import format_table

SMALL = {
    "suite": "mixsd_arc_easy,mixsd_piqa",
    "limit": 3,
    "max_new_tokens": 4,
    "drift_items": 2,
    "drift_max_new_tokens": 4,
    "fisher_items": 2,
    "bootstrap": 50,
    "batch_size": 4,
}


def assert_no_change(result: dict) -> None:
    for group in ("memorisation", "probes"):
        for row in result[group].values():
            assert row["tuned"] == row.get("base", row["tuned"])
    probes = result.get("probe_retention", {"tasks": {}})
    for row in [*result["retention"]["tasks"].values(), *probes["tasks"].values()]:
        assert row["tuned"] == row["base"]
        assert row["retention"] in (1.0, None)  # None only where the base scores 0
    mean = result["retention"]["mean"]
    assert mean["retention"] in (1.0, None) and mean["chance_corrected"] in (1.0, None)
    analyses = result["analyses"]
    assert analyses["drift"]["mean_kl"] == 0.0 and analyses["drift"]["changed_fraction"] == 0.0
    assert analyses["fisher"]["fisher_weighted"] == 0.0 and analyses["fisher"]["squared_distance"] == 0.0
    for kind in ("leakage", "collapse", "changed", "gold_nll"):  # the general-prompt probe
        assert result["general"][kind]["difference"] == 0.0 and result["general"][kind]["difference_ci"] == [0.0, 0.0]


def test_base_against_itself(tiny_model_dir, facts_dir, tmp_path):
    out = tmp_path / "eval.json"
    result = evaluate(
        EvalConfig(
            model=tiny_model_dir,
            base=tiny_model_dir,
            facts=str(facts_dir),
            out=str(out),
            base_memorisation=True,
            **SMALL,
        )
    )
    assert json.loads(out.read_text()) == result
    assert_no_change(result)
    assert all("base" in row for row in result["memorisation"].values())
    assert result["facts"]["splits"] == {"train": 3, "paraphrase": 2, "two_hop": 2, "retrieval": 3}
    assert list(result["memorisation"]) == ["train", "paraphrase", "two_hop"] and list(result["probes"]) == [
        "retrieval"
    ]
    assert [p["id"] for p in result["predictions"]["train"]] == ["train-0", "train-1", "train-2"]
    assert {r["n"] for r in result["benchmarks"].values()} == {3}
    assert result["items"]["mixsd_piqa"]["base"] == result["items"]["mixsd_piqa"]["tuned"]
    assert result["analyses"]["drift"]["prompts"] == 4 and result["analyses"]["fisher"]["items"] == 2
    assert result["analyses"]["errors"]["retrieval"]["tuned"]["wrong"] == 3 - round(
        3 * result["probes"]["retrieval"]["tuned"]["loose"]
    )
    for key in ("command", "config", "versions", "seeds", "models", "timing_s"):
        assert key in result
    table = format_table(result)
    assert "mixsd_piqa" in table and "retrieval (3)" in table and "drift: mean KL(base || tuned) 0 nats" in table


def test_a_copy_of_the_base_scores_identically_and_the_base_is_cached(tiny_model_dir, facts_dir, tmp_path):
    """A copy has another fingerprint, so both models are loaded and scored separately."""
    copy = shutil.copytree(tiny_model_dir, tmp_path / "tuned")
    config = EvalConfig(
        model=str(copy),
        base=tiny_model_dir,
        facts=str(facts_dir / "train.jsonl"),
        out=str(tmp_path / "a.json"),
        **SMALL,
    )
    first = evaluate(config)
    assert first["models"]["tuned"]["fingerprint"] != first["models"]["base"]["fingerprint"]
    assert first["probes"] == {} and "probe_retention" not in first
    assert "base" not in first["memorisation"]["train"] and "base" not in first["predictions"]["train"][0]
    assert not any(first["cached"].values())
    assert_no_change(first)
    config.out = str(tmp_path / "b.json")
    second = evaluate(config)
    assert all(second["cached"].values())
    for key in ("memorisation", "benchmarks", "retention", "items", "predictions"):
        assert second[key] == first[key]


def test_target_nll_of_the_training_file(tiny_model_dir, facts_dir, tmp_path):
    result = evaluate(
        EvalConfig(
            model=tiny_model_dir,
            base=tiny_model_dir,
            suite="none",
            facts=str(facts_dir / "train.jsonl"),
            targets=str(facts_dir / "train.jsonl"),
            out=str(tmp_path / "e.json"),
            max_new_tokens=2,
        )
    )
    assert result["analyses"]["target_nll"]["records"] == 3 and result["analyses"]["target_nll"]["mean_nll"] > 0
    assert "benchmarks" not in result and "drift" not in result["analyses"]


def test_bad_inputs_fail_before_loading_a_model(tmp_path, facts_dir):
    never = "/no/such/model"  # loading it would fail with another message
    with pytest.raises(MixsdError, match="nothing to evaluate"):
        evaluate(EvalConfig(model=never, suite="none"))
    with pytest.raises(MixsdError, match="no such file or directory"):
        evaluate(EvalConfig(model=never, facts=str(tmp_path / "missing"), suite="none"))
    with pytest.raises(MixsdError, match="unknown benchmark task"):
        evaluate(EvalConfig(model=never, suite="mixsd_piqa,not_a_task_at_all"))
    with pytest.raises(MixsdError, match="no such file"):
        evaluate(EvalConfig(model=never, facts=str(facts_dir), suite="none", targets=str(tmp_path / "t.jsonl")))


def test_cli(tiny_model_dir, facts_dir, tmp_path, capsys):
    (facts_dir / "two_hop.jsonl").write_text('{"prompt": "q", "answer": "a"}\n{"prompt": 3, "answer": "a"}\n')
    assert main(["eval", "--model", tiny_model_dir, "--facts", str(facts_dir), "--suite", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mixsd: error: ") and "two_hop.jsonl:2: " in err and "\n" not in err

    (facts_dir / "two_hop.jsonl").unlink()
    out = tmp_path / "cli.json"
    assert (
        main(
            [
                "eval",
                "--model",
                tiny_model_dir,
                "--base",
                tiny_model_dir,
                "--facts",
                str(facts_dir),
                "--suite",
                "none",
                "--max-new-tokens",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "train (3)" in printed and str(out) in printed
    assert json.loads(out.read_text())["config"]["max_new_tokens"] == 2


def test_paper_suite_base_against_itself(tiny_model_dir, tmp_path, capsys):
    """Generative tasks through the chat template: an identical base and tuned model lose no item, so there
    are no errors, and retention is exactly 1 wherever the base scores at all. Without the opt-in, the
    suite skips HumanEval and says so."""
    config = {**SMALL, "suite": "paper", "limit": 2, "general_prompts": 0, "fisher_items": 0, "drift_items": 1}
    config["batch_size"] = 8
    result = evaluate(EvalConfig(model=tiny_model_dir, base=tiny_model_dir, out=str(tmp_path / "e.json"), **config))
    assert "mixsd_humaneval" in result["skipped_tasks"] and "--allow-code-execution" in capsys.readouterr().err
    assert set(result["benchmarks"]) == {"mixsd_gsm8k", "mixsd_math500", "mixsd_mmlu_boxed", "mixsd_mmlu"} | {
        "mixsd_triviaqa",
        "mixsd_nq_open",
    }
    for name, row in result["retention"]["tasks"].items():
        assert row["tuned"] == row["base"] and row["retention"] in (1.0, None), name
    for name, errors in result["benchmark_errors"].items():
        assert errors["wrong"] == 0, name
    assert all(len(result["items"][name]["answers"]) == 2 for name in result["benchmark_errors"])
    assert "skipped, runs model-written code" in format_table(result)
    assert result["analyses"]["drift"]["prompts"] == 1  # drift reads multiple-choice contexts only (MMLU's)


def test_naming_a_code_task_needs_the_opt_in(tiny_model_dir, tmp_path):
    with pytest.raises(MixsdError, match="mixsd_mbpp run.* the model's code: add --allow-code-execution"):
        evaluate(EvalConfig(model=tiny_model_dir, base=tiny_model_dir, suite="mixsd_mbpp", out=str(tmp_path / "e")))
