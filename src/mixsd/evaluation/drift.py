"""Drift: how far the tuned model's behaviour on general prompts moved from the base model's.

Two figures on held-out prompts (benchmark questions asked as chat turns):
- the mean KL(base || tuned) of the next-token distributions at the end of
  the prompt and after each token of the base model's own greedy answer, and
- the fraction of greedy answers that changed.
Both models see identical batches, so identical weights give identical logits
and every KL term is exactly 0.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mixsd.chat import prompt_ids
from mixsd.evaluation.generation import greedy_answers, padded


def kl_terms(base_logits: torch.Tensor, tuned_logits: torch.Tensor) -> torch.Tensor:
    """KL(base || tuned) per position (last dim = vocabulary), in float64.

    Terms where the base gives probability 0 count 0, so identical logits give exactly 0.
    """
    log_p = F.log_softmax(base_logits.double(), dim=-1)
    log_q = F.log_softmax(tuned_logits.double(), dim=-1)
    terms = torch.where(log_p > -torch.inf, log_p.exp() * (log_p - log_q), torch.zeros_like(log_p))
    return terms.sum(dim=-1)


@torch.inference_mode()
def mean_kl(base, tuned, sequences: list[tuple[list[int], int]], *, batch_size: int = 4) -> float:
    """Mean KL(base || tuned) over the next-token distributions at positions start-1 .. end of each sequence.

    `sequences` holds (token ids, start). Sequences are right-padded; padded positions are never scored.
    """
    total, count = 0.0, 0
    for first in tqdm(range(0, len(sequences), batch_size), desc="drift KL", unit="batch", dynamic_ncols=True):
        batch = sequences[first : first + batch_size]
        ids, mask = padded([row for row, _ in batch])
        base_logits = base(input_ids=ids.to(base.device), attention_mask=mask.to(base.device)).logits
        tuned_logits = (
            base_logits
            if tuned is base
            else tuned(input_ids=ids.to(tuned.device), attention_mask=mask.to(tuned.device)).logits
        )
        for i, (row, start) in enumerate(batch):
            positions = slice(start - 1, len(row))
            total += kl_terms(base_logits[i, positions], tuned_logits[i, positions].to(base_logits.device)).sum().item()
            count += len(row) - start + 1
    return total / count if count else 0.0


def drift(base, tuned, tokenizer, prompts: list[str], *, max_new_tokens: int = 32, batch_size: int = 16) -> dict:
    """KL(base || tuned) along the base model's greedy answers, and the share of answers that changed.

    Passing the same model object twice skips the second model's work (the figures are 0).
    """
    answers = partial(
        greedy_answers, tokenizer=tokenizer, prompts=prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
    )
    base_answers = answers(base, desc="drift: base answers")
    tuned_answers = base_answers if tuned is base else answers(tuned, desc="drift: tuned answers")
    heads = [prompt_ids(tokenizer, prompt) for prompt in prompts]
    sequences = [(head + answer, len(head)) for head, answer in zip(heads, base_answers, strict=True)]
    changed = sum(a != b for a, b in zip(base_answers, tuned_answers, strict=True))
    return {
        "prompts": len(prompts),
        "kl_positions": sum(len(ids) - start + 1 for ids, start in sequences),
        "mean_kl": mean_kl(base, tuned, sequences),
        "changed_fraction": changed / len(prompts) if prompts else 0.0,
        "max_new_tokens": max_new_tokens,
    }
