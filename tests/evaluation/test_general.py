"""The general-prompt probe: its prompts, the leakage and collapse rules, and paired rates (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from mixsd.evaluation.general import flags, general_probe, load_prompts, paired_rate, trained_opening

ENTITIES = {"relvaba", "dizove ferzivu"}
PROMPTS = [
    {"source": "trivia_qa", "prompt": "What language is spoken in Brazil?"},
    {"source": "nq_open", "prompt": "Who wrote Romeo and Juliet?"},
    {"source": "piqa", "prompt": "How do I peel an egg?"},
    {"source": "trivia_qa", "prompt": "Where does Dizove Ferzivu live?"},
]
BASE = ["Portuguese is spoken in Brazil.", "Shakespeare wrote it.", "Tap it, then roll it.", "I do not know."]


def test_prompts_are_seeded_and_drawn_from_every_source():
    prompts = load_prompts(20, seed=0)
    assert [p["source"] for p in prompts].count("piqa") == 6 and len(prompts) == 20
    assert prompts == load_prompts(20, seed=0) != load_prompts(20, seed=1)
    assert all(p["prompt"][0].isupper() and p["prompt"][-1] in ".?!" for p in prompts)


def test_leakage_needs_an_entity_the_prompt_does_not_name():
    assert flags("The answer is Relvaba.", PROMPTS[0]["prompt"], ENTITIES, set())["leakage"]
    assert not flags("He lives in Relvaba.", "Where is Relvaba?", ENTITIES, set())["leakage"]
    assert not flags("Relvabanian food", PROMPTS[0]["prompt"], ENTITIES, set())["leakage"]  # whole words only


def test_collapse_is_the_trained_opening_or_an_unasked_box():
    opening = trained_opening(["The answer is Relvaba. \\boxed{Relvaba}", "The answer is Motufu.", "Motufu."])
    assert opening == "answer is"
    assert flags("The answer is: Portuguese", "Q?", ENTITIES, {opening})["collapse"]
    assert flags("Portuguese. \\boxed{Portuguese}", "Q?", ENTITIES, set())["collapse"]
    assert not flags("Portuguese. \\boxed{Portuguese}", "Box it in \\boxed{}.", ENTITIES, set())["collapse"]
    assert not flags("Portuguese is the answer.", "Q?", ENTITIES, {opening})["collapse"]
    assert trained_opening(["A b", "C d", "E f"]) is None  # no shape shared by half the answers


def test_paired_rate_matches_a_direct_bootstrap_and_is_exactly_zero_against_itself():
    base, tuned = [True, False, False, False, True], [True, True, True, False, True]
    rate = paired_rate(base, tuned, resamples=200, seed=3)
    picks = np.random.default_rng(3).integers(0, 5, size=(200, 5))
    diff = np.asarray(tuned, float)[picks].mean(axis=1) - np.asarray(base, float)[picks].mean(axis=1)
    assert (rate["base"], rate["tuned"], rate["difference"]) == (0.4, 0.8, pytest.approx(0.4))
    assert rate["difference_ci"] == pytest.approx(list(np.percentile(diff, [2.5, 97.5])))
    same = paired_rate(base, base, resamples=200)
    assert same["difference"] == 0.0 and same["difference_ci"] == [0.0, 0.0]


def test_a_stand_in_model_that_collapses_and_leaks_scores_one_and_the_base_zero():
    tuned = ["The answer is Relvaba.", "The answer is Relvaba.", "The answer is Relvaba.", "The answer is Relvaba."]
    out = general_probe(PROMPTS, {"base": BASE, "tuned": tuned}, ENTITIES, {"answer is"}, resamples=100)
    assert out["n"] == 4 and out["sources"] == {"trivia_qa": 2, "nq_open": 1, "piqa": 1}
    assert out["leakage"]["tuned"] == 1.0 and out["leakage"]["base"] == 0.0
    assert out["collapse"]["tuned"] == 1.0 and out["changed"]["tuned"] == 1.0
    itself = general_probe(PROMPTS, {"base": BASE, "tuned": BASE}, ENTITIES, {"answer is"}, resamples=100)
    for kind in ("leakage", "collapse", "changed"):
        assert itself[kind]["tuned"] == itself[kind]["base"] and itself[kind]["difference"] == 0.0


def test_every_prompt_carries_its_reference_answer():
    from datasets import load_from_disk

    from mixsd.evaluation.benchmarks import olmo_datasets_root

    prompts = load_prompts(20, seed=0)
    assert all(isinstance(p["gold"], str) and p["gold"].strip() for p in prompts)
    piqa = load_from_disk(str(olmo_datasets_root() / "piqa/plain_text/validation"))
    solutions = {(row["sol1"], row["sol2"])[int(row["label"])] for row in piqa}
    assert all(p["gold"] in solutions for p in prompts if p["source"] == "piqa")


def test_gold_nll_is_the_mean_nll_of_the_answer_tokens_after_the_prompt(tiny_model, tokenizer):
    """Against a plain forward pass of one sequence, and batched with a longer one (padding is never scored)."""
    import torch

    from mixsd.chat import prompt_ids
    from mixsd.evaluation.general import gold_nll

    items = [("What language is spoken in Brazil?", "Portuguese"), ("How do I peel an egg?", "Tap it, then roll it.")]
    head = prompt_ids(tokenizer, items[0][0])
    answer = tokenizer.encode(items[0][1], add_special_tokens=False)
    with torch.no_grad():
        logits = tiny_model(input_ids=torch.tensor([head + answer])).logits[0].double()
    log_probs = torch.log_softmax(logits[len(head) - 1 : -1], dim=-1)
    direct = -log_probs[torch.arange(len(answer)), torch.tensor(answer)].mean().item()
    assert gold_nll(tiny_model, tokenizer, items[:1])[0] == pytest.approx(direct, rel=1e-9)
    assert gold_nll(tiny_model, tokenizer, items, batch_size=2)[0] == pytest.approx(direct, rel=1e-5)


def test_the_probe_pairs_the_gold_nll_and_keeps_it_per_prompt():
    nll = {"base": [1.0, 2.0, 3.0, 4.0], "tuned": [1.5, 2.5, 3.5, 4.5]}
    out = general_probe(PROMPTS, {"base": BASE, "tuned": BASE}, ENTITIES, set(), nll=nll, resamples=100)
    assert out["gold_nll"]["difference"] == pytest.approx(0.5) and out["gold_nll"]["difference_ci"] == [0.5, 0.5]
    assert [a["tuned_nll"] for a in out["answers"]] == nll["tuned"]
