"""Target NLL: how improbable a set of training targets is under the base model.

The paper's explanation of forgetting: SFT targets are far from what the model would write (high NLL under it), MixSD
targets are close. We measure the mean per-token NLL of the assistant turn given the naive prompt, for a MixSD targets
file (its stored token ids, exactly as sampled) or a corpus file (its ground-truth answers, tokenized). End-of-turn
tokens are not counted, so files that stored them and files that did not compare fairly.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from mixsd import models
from mixsd.chat import DEFAULT_FORMAT, PromptFormat, format_of, prompt_ids, rendering, stop_ids, use_format
from mixsd.errors import MixsdError
from mixsd.evaluation.generation import padded
from mixsd.io import write_json
from mixsd.targets.rows import TargetRow, read_trained


def read_targets(path: str | Path) -> list[tuple[str, str, list[int] | str, str, dict | None]]:
    """(id, naive prompt, assistant token ids or text, source, prompt format) per line of a targets file or a corpus
    file.

    A targets line (`messages` + `mixsd.token_ids`) gives its stored ids, its source ("mixsd", or "gold" for a target
    replaced by the ground truth) and the prompt format it was made in (chat.PromptFormat; the default when it records
    none); any record format that `mixsd data import` accepts gives its answer text ("corpus", tokenized by
    `target_nll`) and no format. Needs no model, so files are checked before one loads.
    """
    return [
        (r.id, r.prompt, r.token_ids, r.source, r.prompt_format or DEFAULT_FORMAT.to_json())
        if isinstance(r, TargetRow)
        else (r.id, r.prompt, r.answer, "corpus", None)
        for _, r in read_trained(path)
    ]


@torch.inference_mode()
def sequence_nll(
    model, sequences: list[tuple[list[int], int]], batch_size: int = 8, desc: str = "NLL"
) -> list[tuple[float, int]]:
    """(summed NLL in nats, token count) of tokens start.. of each (ids, start), in input order; longest first
    in batches, right-padded (padded positions are never scored)."""
    out: list[tuple[float, int]] = [(0.0, 0)] * len(sequences)
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i][0]))
    for first in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", dynamic_ncols=True):
        picked = order[first : first + batch_size]
        ids, mask = padded([sequences[i][0] for i in picked])
        logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        for row, i in enumerate(picked):
            length, start = len(sequences[i][0]), sequences[i][1]
            log_probs = F.log_softmax(logits[row, start - 1 : length - 1].double(), dim=-1)
            targets = ids[row, start:length].to(log_probs.device)
            out[i] = (-log_probs.gather(-1, targets[:, None]).sum().item(), length - start)
    return out


@torch.inference_mode()
def target_nll(model, tokenizer, path: str | Path, *, batch_size: int = 8) -> dict:
    """Mean per-token NLL (nats) of each record's assistant tokens given its naive prompt.

    `mean_nll` weighs every token equally; `mean_record_nll` every record.
    Records whose target is empty once end-of-turn tokens are dropped are skipped and counted. A targets file's
    prompts are rendered in the format it was made in, a corpus file's in the tokenizer's (`chat.use_format`).
    """
    stops = stop_ids(tokenizer, model)
    sequences, skipped, gold = [], 0, 0
    rows = read_targets(path)
    recorded = next((PromptFormat.from_json(fmt, path) for *_, fmt in rows if fmt is not None), format_of(tokenizer))
    with rendering(tokenizer, recorded):
        heads = [prompt_ids(tokenizer, prompt) for _, prompt, *_ in rows]
    for (record_id, _, ids, source, _), head in zip(rows, heads, strict=True):
        if isinstance(ids, str):
            ids = tokenizer.encode(ids, add_special_tokens=False)
        gold += source == "gold"
        while ids and ids[-1] in stops:
            ids = ids[:-1]
        if not ids:
            skipped += 1
            continue
        sequences.append((record_id, head + ids, len(head)))
    sums = sequence_nll(model, [(row, start) for _, row, start in sequences], batch_size, f"NLL {Path(path).name}")
    per_record = {record_id: result for (record_id, _, _), result in zip(sequences, sums, strict=True)}
    if not per_record:
        raise MixsdError("no record has a non-empty target", path=path)
    total = sum(nll for nll, _ in per_record.values())
    tokens = sum(n for _, n in per_record.values())
    return {
        "file": str(path),
        "records": len(per_record),
        "skipped_empty": skipped,
        "gold_fallback": gold,  # MixSD targets that never verified and were replaced by the gold answer
        "tokens": tokens,
        "mean_nll": total / tokens,
        "mean_record_nll": sum(nll / n for nll, n in per_record.values()) / len(per_record),
    }


def files_nll(files: list[str], model_name: str, *, out: str | None, batch_size: int, dtype: str, device: str | None):
    """`mixsd nll`: each file's NLL under one model, printed (and written to `out`). Corpus files are rendered in
    the targets files' format, so that the NLLs compare like for like."""
    formats = set()
    for path in files:  # every file is checked before the model loads
        formats |= {json.dumps(fmt, sort_keys=True) for *_, fmt in read_targets(path) if fmt is not None}
    model, tokenizer = models.load(model_name, dtype=dtype, device=device)
    if len(formats) == 1:
        use_format(tokenizer, PromptFormat.from_json(json.loads(formats.pop())))
    rows = [target_nll(model, tokenizer, path, batch_size=batch_size) for path in files]
    for row in rows:
        print(f"{row['mean_nll']:.4f} nats/token  {row['records']:>5} records {row['tokens']:>7} tokens  {row['file']}")
    if out:
        write_json(out, {"model": model_name, "files": rows})
