"""Diagonal empirical Fisher and Fisher-weighted displacement."""

from __future__ import annotations

import copy

import pytest
import torch

from mixsd.evaluation.fisher import diagonal_fisher, displacement, module_type

ITEMS = [("Question: Which gas do plants take in?\nAnswer:", " carbon dioxide"), ("Question: 2 + 2 =\nAnswer:", " 4")]


def test_module_type():
    assert module_type("model.layers.3.self_attn.q_proj.weight") == "q_proj"
    assert module_type("model.embed_tokens.weight") == "embed_tokens"
    assert module_type("lm_head") == "lm_head"


def test_fisher_is_the_mean_squared_gradient(tiny_model, tokenizer):
    fisher = diagonal_fisher(tiny_model, tokenizer, ITEMS)
    name = "model.layers.0.mlp.down_proj.weight"
    param = dict(tiny_model.named_parameters())[name]
    squares = []
    for context, continuation in ITEMS:
        head = tokenizer.encode(context, add_special_tokens=False)
        ids = torch.tensor([head + tokenizer.encode(continuation, add_special_tokens=False)])
        log_probs = torch.log_softmax(tiny_model(ids).logits[0, len(head) - 1 : -1], dim=-1)
        (grad,) = torch.autograd.grad(log_probs.gather(-1, ids[0, len(head) :, None]).sum(), param)
        squares.append(grad**2)
    assert torch.allclose(fisher[name], sum(squares) / 2, rtol=1e-4, atol=1e-12)
    assert all(p.grad is None for p in tiny_model.parameters())


def test_displacement(tiny_model, tokenizer):
    fisher = diagonal_fisher(tiny_model, tokenizer, ITEMS)
    same = displacement(fisher, tiny_model, copy.deepcopy(tiny_model))
    assert same["fisher_weighted"] == 0.0 and same["squared_distance"] == 0.0

    moved = copy.deepcopy(tiny_model)
    name = "model.layers.1.self_attn.v_proj.weight"
    with torch.no_grad():
        dict(moved.named_parameters())[name].add_(0.01)
    out = displacement(fisher, tiny_model, moved)
    assert out["squared_distance"] == pytest.approx(0.01**2 * fisher[name].numel(), rel=1e-3)
    assert out["fisher_weighted"] == pytest.approx(0.01**2 * fisher[name].double().sum().item(), rel=1e-3)
    assert out["fisher_weighted_by_module"]["v_proj"] == out["fisher_weighted"]
    assert out["fisher_weighted_by_module"]["q_proj"] == 0.0


def test_different_shapes_are_skipped(tiny_model, tokenizer):
    fisher = diagonal_fisher(tiny_model, tokenizer, ITEMS[:1])
    other = copy.deepcopy(tiny_model)
    other.resize_token_embeddings(len(tokenizer) + 8)
    assert "skipped" in displacement(fisher, tiny_model, other)
