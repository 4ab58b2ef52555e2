"""Padding token rows into batches, and batched greedy answers to chat prompts."""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from mixsd.chat import prompt_ids, stop_ids


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


@torch.inference_mode()
def greedy_answers(
    model, tokenizer, prompts: list[str], *, max_new_tokens: int = 128, batch_size: int = 16, desc: str = "answers"
) -> list[list[int]]:
    """Greedy assistant-turn token ids for each user prompt, stop token excluded, in input order.

    Prompts are batched longest first so each batch pads little.
    """
    rows = [prompt_ids(tokenizer, p) for p in prompts]
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    stops = sorted(stop_ids(tokenizer, model))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    out: list[list[int]] = [[] for _ in rows]
    with tqdm(total=len(rows), desc=desc, unit="q", dynamic_ncols=True) as bar:
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            ids, mask = padded([rows[i] for i in batch], pad_id, left=True)
            generated = model.generate(
                input_ids=ids.to(model.device),
                attention_mask=mask.to(model.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                temperature=None,
                top_p=None,
                top_k=None,
                eos_token_id=stops,
                pad_token_id=pad_id,
            )
            for i, new in zip(batch, generated[:, ids.shape[1] :].tolist(), strict=True):
                cut = next((j for j, t in enumerate(new) if t in stops), len(new))
                out[i] = new[:cut]
            bar.update(len(batch))
    return out


def decode(tokenizer, answers: list[list[int]]) -> list[str]:
    return tokenizer.batch_decode(answers, skip_special_tokens=True)
