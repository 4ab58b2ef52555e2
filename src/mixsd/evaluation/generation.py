"""Padding token rows into batches, and batched greedy answers to chat prompts."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import torch
from tqdm.auto import tqdm

from mixsd.chat import prompt_ids, stop_ids
from mixsd.settings import DEFAULT_MAX_NEW_TOKENS
from mixsd.targets.engine import DecodeConfig, Job, MixedDecoder, Result


def padded(rows: list[list[int]], pad_id: int = 0, *, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) for rows of different lengths.

    Generation needs rows right-aligned (`left=True`) so every row continues
    from its last column; scoring known tokens can pad on the right.
    """
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(row)
        mask[i, span] = 1
    return ids, mask


def greedy(model, jobs: list[Job], stops: set[int], *, batch_size: int, decode: str = "auto") -> Iterator[Result]:
    """Greedy decoding through the targets' loop at lam 1 (one row per job), so it gets the static, compiled path
    on CUDA. Jobs are queued longest prompt first so each prefill group pads little; results come as they finish."""
    budget = max((j.max_new_tokens or 1 for j in jobs), default=1)
    decoder = MixedDecoder(
        model, DecodeConfig(lam=1.0, max_new_tokens=budget, batch_size=batch_size, decode=decode), stops
    )
    return decoder.run(deque(sorted(jobs, key=lambda j: -len(j.naive_ids))))


def greedy_answers(
    model,
    tokenizer,
    prompts: list[str],
    *,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
    batch_size: int = 16,
    desc: str = "answers",
    decode: str = "auto",
) -> list[list[int]]:
    """Greedy assistant-turn token ids for each user prompt, stop token excluded, in input order."""
    rows = [prompt_ids(tokenizer, p) for p in prompts]
    jobs = [Job(str(i), row, row, max_new_tokens=max_new_tokens) for i, row in enumerate(rows)]
    out: list[list[int]] = [[] for _ in rows]
    with tqdm(total=len(rows), desc=desc, unit="q", dynamic_ncols=True) as bar:
        for result in greedy(model, jobs, stop_ids(tokenizer, model), batch_size=batch_size, decode=decode):
            ids = result.token_ids
            out[int(result.job.key)] = ids[:-1] if result.finish_reason == "stop" else ids
            bar.update(1)
    return out


def decode(tokenizer, answers: list[list[int]]) -> list[str]:
    return tokenizer.batch_decode(answers, skip_special_tokens=True)
