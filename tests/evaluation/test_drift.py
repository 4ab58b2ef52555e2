"""Drift between two models: KL of next-token distributions and changed greedy answers."""

from __future__ import annotations

import copy

import pytest
import torch

from mixsd.evaluation.drift import drift, kl_terms

PROMPTS = [
    "Question: Which gas do plants take in?\nAnswer:",
    "Question: What is the boiling point of water?\nAnswer:",
    "Hello there",
]


def test_kl_terms():
    logits = torch.randn(3, 50)
    logits[0, 7] = -torch.inf
    assert torch.equal(kl_terms(logits, logits.clone()), torch.zeros(3, dtype=torch.float64))
    other = torch.randn(3, 50)
    p, q = torch.softmax(logits.double(), -1), torch.softmax(other.double(), -1)
    expected = torch.where(p > 0, p * (p.log() - q.log()), 0.0).sum(-1)
    assert torch.allclose(kl_terms(logits, other), expected)
    assert (kl_terms(logits, other) > 0).all()


def test_identical_models_give_exactly_zero(tiny_model, tokenizer):
    out = drift(tiny_model, copy.deepcopy(tiny_model), tokenizer, PROMPTS, max_new_tokens=5, batch_size=2)
    assert out["mean_kl"] == 0.0 and out["changed_fraction"] == 0.0
    assert out["prompts"] == 3 and out["kl_positions"] >= 3


def test_a_perturbed_model_drifts(tiny_model, tokenizer):
    moved = copy.deepcopy(tiny_model)
    with torch.no_grad():
        for p in moved.parameters():
            p.add_(0.05 * torch.randn_like(p))
    out = drift(tiny_model, moved, tokenizer, PROMPTS, max_new_tokens=5, batch_size=2)
    assert out["mean_kl"] > 0
    assert out["changed_fraction"] == pytest.approx(1.0)
