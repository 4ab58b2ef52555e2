"""LoopLM against lm-eval's own HFLM: the same greedy texts for the same requests, stop strings included."""

from __future__ import annotations

import pytest
from lm_eval.api.instance import Instance
from lm_eval.models.huggingface import HFLM

from mixsd.evaluation.loop_lm import LoopLM, stop_strings


def requests() -> list[Instance]:
    contexts = [
        "Question: What is the capital of France?\nAnswer:",
        "Write a story about a cat.",
        "1, 2, 3, 4,",
        "The weather today is",
    ]
    kwargs = [
        {"until": ["\n"], "max_gen_toks": 12},
        {"until": [".", "cat"], "max_gen_toks": 20},
        {"max_gen_toks": 9},
        {"until": ["e"], "do_sample": False, "max_gen_toks": 15},
    ]
    return [
        Instance("generate_until", doc={}, arguments=(c, k), idx=i)
        for i, (c, k) in enumerate(zip(contexts, kwargs, strict=True))
    ]


@pytest.mark.parametrize("decode", ["eager", "static"])
def test_greedy_texts_equal_hflm(tiny_model, tokenizer, decode):
    reference = HFLM(pretrained=tiny_model, tokenizer=tokenizer, batch_size=2).generate_until(requests())
    ours = LoopLM(pretrained=tiny_model, tokenizer=tokenizer, batch_size=3, decode=decode)
    assert ours.generate_until(requests()) == reference
    assert any(reference)  # the tiny model writes something, so the comparison is not of empty strings


def test_stop_strings_look_at_the_decoded_tail(tokenizer):
    stop = stop_strings(tokenizer, ["\n\n", "Question:"])
    assert not stop(tokenizer.encode("The answer is 4."))
    assert stop(tokenizer.encode("The answer is 4.\n\nQuestion"))
    assert stop(tokenizer.encode("a long preamble " * 20 + "then Question:"))
