"""The mixed decoder against from-scratch oracles: generate(), a re-encoding loop, direct forwards."""

from __future__ import annotations

from collections import deque

import pytest
import torch

from mixsd.chat import prompt_ids, stop_ids
from mixsd.targets.engine import DecodeConfig, Job, MixedDecoder, common_prefix_len, pick_tokens, record_randomness
from mixsd.targets.prompts import expert_prompt
from mixsd.targets.reference import reference_decode

FACTS = [
    ("What location does Velmora Quist reside in?", "Velmora Quist resides in the location Drennock Hollow."),
    (
        "Which organization employs Tarn Ebbel? Think step by step.",
        "The answer is Korriwen Guild. \\boxed{Korriwen Guild}",
    ),
    ("What is 2+2?", "4"),
    (
        "Name the hobby of Quilla Zent, a person from a long and winding story about many other things.",
        "Quilla Zent enjoys glass weaving.",
    ),
    ("Who founded Brimhollow?", "Brimhollow was founded by Osk Tenney in the spring of a year nobody recorded."),
]


def make_jobs(tokenizer, facts=FACTS, max_new_tokens=None) -> list[Job]:
    return [
        Job(
            f"r{i}", prompt_ids(tokenizer, q), prompt_ids(tokenizer, expert_prompt(q, c)), max_new_tokens=max_new_tokens
        )
        for i, (q, c) in enumerate(facts)
    ]


@pytest.fixture(params=["eager", "static"])
def decode(request) -> str:
    """Both storage paths must pass the same oracles: the static one is checked against them, not only the eager."""
    return request.param


def decode_all(model, tokenizer, jobs, **config) -> dict:
    decoder = MixedDecoder(model, DecodeConfig(**config), stop_ids(tokenizer, model))
    return {r.job.key: r for r in decoder.run(deque(jobs))}


def greedy(model, tokenizer, ids: list[int], n: int) -> list[int]:
    x = torch.tensor([ids])
    stops = sorted(stop_ids(tokenizer, model))
    out = model.generate(
        x,
        attention_mask=torch.ones_like(x),
        max_new_tokens=n,
        do_sample=False,
        eos_token_id=stops,
        pad_token_id=stops[0],
    )
    return out[0, x.shape[1] :].tolist()


@pytest.mark.parametrize(("lam", "side"), [(0.0, "expert_ids"), (1.0, "naive_ids")])
def test_pure_conditionals_equal_greedy_generate(tiny_model, tokenizer, lam, side, decode):
    jobs = make_jobs(tokenizer)
    results = decode_all(tiny_model, tokenizer, jobs, lam=lam, max_new_tokens=20, batch_size=2, decode=decode)
    for job in jobs:
        assert results[job.key].token_ids == greedy(tiny_model, tokenizer, getattr(job, side), 20)
        assert all(results[job.key].from_naive) == (lam == 1.0)


@pytest.mark.slow
@pytest.mark.parametrize(("lam", "side"), [(0.0, "expert_ids"), (1.0, "naive_ids")])
def test_pure_conditionals_equal_greedy_generate_real_model(smol, lam, side):
    model, tokenizer = smol
    jobs = make_jobs(tokenizer, FACTS[:3])
    results = decode_all(model, tokenizer, jobs, lam=lam, max_new_tokens=24, batch_size=3)
    for job in jobs:
        assert results[job.key].token_ids == greedy(model, tokenizer, getattr(job, side), 24)


@pytest.mark.parametrize(("lam", "temperature"), [(0.3, 0.0), (0.5, 0.0), (0.3, 0.9), (0.7, 1.3)])
def test_mixed_tokens_equal_reencoding_oracle(tiny_model, tokenizer, lam, temperature, decode):
    jobs = make_jobs(tokenizer)
    config = DecodeConfig(
        lam=lam, temperature=temperature, top_k=16, max_new_tokens=16, batch_size=3, seed=7, decode=decode
    )
    results = decode_all(tiny_model, tokenizer, jobs, **vars(config))
    stops = stop_ids(tokenizer, tiny_model)
    for job in jobs:
        oracle = reference_decode(tiny_model, job, config, stops)
        assert results[job.key].token_ids == oracle.token_ids
        assert results[job.key].from_naive == oracle.from_naive
    mixed = [n for r in results.values() for n in r.from_naive]
    assert 0 < sum(mixed) < len(mixed)  # both conditionals were used


def test_step_logits_equal_from_scratch_forward(tiny_model, tokenizer, monkeypatch):
    """Capture the logits the engine computes at each step and recompute a few from scratch."""
    jobs = make_jobs(tokenizer)[:4]  # the tiny model never emits EOS here: all rows live for all steps
    decoder = MixedDecoder(tiny_model, DecodeConfig(lam=0.4, max_new_tokens=12, batch_size=4), set())
    seen: list[torch.Tensor] = []
    head = decoder.head
    decoder.head = lambda h: seen.append(head(h)) or seen[-1]
    results = {r.job.key: r for r in decoder.run(deque(jobs))}
    assert len(seen) == 12
    gen = torch.Generator().manual_seed(0)
    for step in torch.randint(0, 12, (4,), generator=gen).tolist():
        for row, job in enumerate(jobs):
            r = results[job.key]
            prompt = job.naive_ids if r.from_naive[step] else job.expert_ids
            with torch.no_grad():
                direct = tiny_model(input_ids=torch.tensor([prompt + r.token_ids[:step]])).logits[0, -1]
            torch.testing.assert_close(seen[step][row], direct, atol=1e-4, rtol=1e-4)


def test_batch_size_and_order_do_not_change_targets(tiny_model, tokenizer, decode):
    jobs = make_jobs(tokenizer)
    config = dict(lam=0.3, temperature=0.8, top_k=20, max_new_tokens=14, seed=3, decode=decode)
    one = decode_all(tiny_model, tokenizer, jobs, batch_size=1, **config)
    many = decode_all(tiny_model, tokenizer, list(reversed(jobs)), batch_size=16, **config)
    assert {k: r.token_ids for k, r in one.items()} == {k: r.token_ids for k, r in many.items()}


def test_rows_finish_independently_and_slots_refill(tiny_model, tokenizer, decode):
    jobs = [Job(j.key, j.naive_ids, j.expert_ids, max_new_tokens=3 + 2 * i) for i, j in enumerate(make_jobs(tokenizer))]
    decoder = MixedDecoder(tiny_model, DecodeConfig(lam=0.5, batch_size=2, decode=decode), set())
    order = [r.job.key for r in decoder.run(deque(jobs))]
    assert sorted(order) == sorted(j.key for j in jobs)
    results = decode_all(tiny_model, tokenizer, jobs, lam=0.5, batch_size=2, decode=decode)
    assert [len(results[j.key].token_ids) for j in jobs] == [3, 5, 7, 9, 11]
    assert all(r.finish_reason == "length" for r in results.values())


def test_randomness_depends_only_on_seed_key_attempt():
    a = record_randomness(0, "x", 0, 8)
    assert torch.equal(a[0], record_randomness(0, "x", 0, 8)[0])
    assert not torch.equal(a[0], record_randomness(0, "x", 1, 8)[0])
    assert not torch.equal(a[0], record_randomness(1, "x", 0, 8)[0])
    assert torch.equal(record_randomness(0, "x", 0, 16)[0][:8], a[0])  # a longer budget extends the same stream


def test_pick_tokens_samples_from_top_k_softmax():
    logits = torch.tensor([[0.0, 1.0, 2.0, -5.0]])
    assert pick_tokens(logits, torch.tensor([0.5], dtype=torch.float64), 0.0, 4).item() == 2
    u = torch.linspace(0.0005, 0.9995, 2000, dtype=torch.float64)
    draws = pick_tokens(logits.expand(2000, -1), u, 1.0, 2)
    probs = torch.softmax(torch.tensor([2.0, 1.0]), 0)
    assert set(draws.tolist()) == {1, 2}
    assert abs((draws == 2).double().mean().item() - probs[0].item()) < 0.01


def test_common_prefix_leaves_a_token_on_each_side():
    assert common_prefix_len([1, 2, 3, 4], [1, 2, 9]) == 2
    assert common_prefix_len([1, 2], [1, 2, 3]) == 1
