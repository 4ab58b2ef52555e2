"""The slow, obviously-correct MixSD loop: re-encode the picked conditional from scratch every step.

This is how the public implementation works (one engine call per token per
sequence, prompt + prefix re-sent each time). mixsd uses it only as the
oracle in tests and as the baseline in `benchmarks/targets_speed.py`; it draws
the same per-record randomness as the engine, so both must emit the same tokens.
"""

from __future__ import annotations

import torch

from mixsd.targets.engine import DecodeConfig, Job, Result, pick_tokens, record_randomness


@torch.inference_mode()
def reference_decode(model, job: Job, config: DecodeConfig, stop_ids: set[int]) -> Result:
    steps = job.max_new_tokens or config.max_new_tokens
    coins, uniforms = record_randomness(config.seed, job.key, job.attempt, steps)
    device = next(model.parameters()).device
    tokens: list[int] = []
    from_naive: list[bool] = []
    for t in range(steps):
        naive = bool(coins[t] < config.lam)
        ids = torch.tensor([(job.naive_ids if naive else job.expert_ids) + tokens], device=device)
        logits = model(input_ids=ids).logits[:, -1]
        token = int(pick_tokens(logits, uniforms[t : t + 1].to(device), config.temperature, config.top_k))
        tokens.append(token)
        from_naive.append(naive)
        if token in stop_ids:
            return Result(job, tokens, from_naive, "stop")
    return Result(job, tokens, from_naive, "length")
