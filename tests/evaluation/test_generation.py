"""Padding and batched greedy answers."""

from __future__ import annotations

import torch

from mixsd.chat import prompt_ids
from mixsd.evaluation.generation import greedy_answers, padded


def test_padding_sides():
    ids, mask = padded([[5, 6, 7], [8]], pad_id=2, left=True)
    assert ids.tolist() == [[5, 6, 7], [2, 2, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    ids, mask = padded([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_batched_answers_equal_one_at_a_time(tiny_model, tokenizer):
    prompts = ["Which location does Dizove Ferzivu live in?", "Hi", "What is 2 + 2? Answer with a number only, please."]
    batched = greedy_answers(tiny_model, tokenizer, prompts, max_new_tokens=6, batch_size=3)
    for prompt, answer in zip(prompts, batched, strict=True):
        ids = torch.tensor([prompt_ids(tokenizer, prompt)])
        alone = tiny_model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
        expected = alone[0, ids.shape[1] :].tolist()
        if tokenizer.eos_token_id in expected:
            expected = expected[: expected.index(tokenizer.eos_token_id)]
        assert answer == expected
