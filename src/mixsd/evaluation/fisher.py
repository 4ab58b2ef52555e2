"""Fisher-weighted displacement: how far training moved the weights along directions the base model relies on.

sum_i F_i (theta_i - theta*_i)^2, with F the diagonal empirical Fisher of the base model theta* on held-out benchmark
items (the mean squared gradient of log p(gold answer | question), one item at a time). The paper's finding is that
MixSD moves parameters less along such directions than SFT does. Also reported per module type (q_proj, ..., mlp
projections, embed_tokens, norms) and without the weighting (plain squared distance) for comparison.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def module_type(parameter_name: str) -> str:
    """The kind of module that owns a parameter: `model.layers.3.self_attn.q_proj.weight` -> `q_proj`."""
    parts = parameter_name.split(".")
    return parts[-2] if len(parts) > 1 else parts[0]


def diagonal_fisher(model, tokenizer, items: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    """Mean over (context, gold continuation) items of the squared gradient of log p(continuation | context)."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    fisher = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}
    with torch.enable_grad():
        for context, continuation in tqdm(items, desc="Fisher", unit="item", dynamic_ncols=True):
            head = tokenizer.encode(context, add_special_tokens=False)
            tail = tokenizer.encode(continuation, add_special_tokens=False)
            ids = torch.tensor([head + tail], device=model.device)
            model.zero_grad(set_to_none=True)
            logits = model(input_ids=ids).logits[0, len(head) - 1 : -1].float()
            F.log_softmax(logits, dim=-1).gather(-1, ids[0, len(head) :, None]).sum().backward()
            for name, p in params.items():
                fisher[name] += p.grad.float() ** 2
    model.zero_grad(set_to_none=True)
    return {name: f / len(items) for name, f in fisher.items()}


@torch.no_grad()
def displacement(fisher: dict[str, torch.Tensor], base, tuned) -> dict:
    """Fisher-weighted and plain squared distance between the two models' weights, total and per module type.

    The models must have the same parameter names and shapes (a merged
    LoRA model has); otherwise the figures are skipped with the reason.
    """
    base_params, tuned_params = dict(base.named_parameters()), dict(tuned.named_parameters())
    if base_params.keys() != tuned_params.keys() or any(
        base_params[n].shape != tuned_params[n].shape for n in base_params
    ):
        return {"skipped": "the tuned and base models have different parameters"}
    weighted: dict[str, float] = defaultdict(float)
    plain: dict[str, float] = defaultdict(float)
    for name, f in fisher.items():
        delta = tuned_params[name].to(f.device, torch.float64) - base_params[name].to(f.device, torch.float64)
        weighted[module_type(name)] += (f.double() * delta**2).sum().item()
        plain[module_type(name)] += (delta**2).sum().item()
    return {
        "fisher_weighted": sum(weighted.values()),
        "squared_distance": sum(plain.values()),
        "fisher_weighted_by_module": dict(sorted(weighted.items())),
        "squared_distance_by_module": dict(sorted(plain.items())),
    }
