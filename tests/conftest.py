"""Shared fixtures: the real SmolLM2 tokenizer with a tiny random model (fast), and the real model (slow)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property tests check behaviour, not speed: a per-example deadline only makes them flaky on a busy CPU.
settings.register_profile("mixsd", deadline=None)
settings.load_profile("mixsd")


@pytest.fixture(scope="session")
def smol_dir() -> str:
    """The default model converted to a safetensors directory (converted once per machine)."""
    from mixsd import models

    return models.resolve(models.DEFAULT_MODEL)


@pytest.fixture(scope="session")
def tokenizer(smol_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def make_tiny_model(vocab_size: int, seed: int = 0):
    """A 2-layer Llama with SmolLM2's vocabulary and random weights, built from a config (no download)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    return make_tiny_model(len(tokenizer))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, tokenizer) -> str:
    """The tiny model saved with the real tokenizer, for code that loads from a path."""
    path = tmp_path_factory.mktemp("tiny-model")
    tiny_model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def other_tiny_model_dir(tmp_path_factory, tokenizer) -> str:
    """A second tiny model (another seed, the same vocabulary): a "tuned" model whose every figure can differ."""
    path = tmp_path_factory.mktemp("other-tiny-model")
    make_tiny_model(len(tokenizer), seed=1).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def smol():
    """(model, tokenizer) of the real default model, fp32 on CPU."""
    from mixsd import models

    return models.load(models.DEFAULT_MODEL, dtype="float32", device="cpu")


@pytest.fixture
def zib_facts(tmp_path) -> Callable[[int], Path]:
    """zib_facts(n): TMP/facts.jsonl with n made-up facts ("Where does Zib3 live?" -> "... \\boxed{Quor3}")."""
    from mixsd.data.records import Record, write_records

    def make(n: int) -> Path:
        path = tmp_path / "facts.jsonl"
        answers = (f"Zib{i} lives in Quor{i}. \\boxed{{Quor{i}}}" for i in range(n))
        write_records(path, [Record(f"f{i}", f"Where does Zib{i} live?", a) for i, a in enumerate(answers)])
        return path

    return make


@pytest.fixture
def without_nlls() -> Callable[[dict], tuple[dict, list[float]]]:
    """(eval.json without the reference-answer NLLs, those NLLs): they are float sums over padded batches, whose
    last digits move with the batch shape, so tests compare them to a tolerance and the rest exactly."""

    def split(result: dict) -> tuple[dict, list[float]]:
        general = result["general"]
        paired = general.pop("gold_nll")
        pairs = [(a.pop("base_nll"), a.pop("tuned_nll")) for a in general["answers"]]
        return result, [paired["base"], paired["tuned"], *(x for pair in pairs for x in pair)]

    return split
