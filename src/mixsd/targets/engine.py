"""The MixSD decoding loop: two conditionals of one frozen model, advanced in lockstep.

For every record the engine keeps two rows in one KV cache:

    naive  row:  chat(x)   + y<t      ->  p(. | x,  y<t)
    expert row:  chat(x+)  + y<t      ->  p(. | x+, y<t)

At step t a per-record coin picks one of them (naive with probability `lam`);
the picked row's next token (argmax, or a top-k sample at temperature T) is
appended to *both* rows, so they always share the generated prefix y<t. Every
step is one forward of 2B rows x 1 token; the vocabulary projection runs only
for the B picked rows. Nothing is ever re-encoded:

* prefill: x and x+ share their chat-template head (system turn + question),
  which is encoded once; each row then encodes only its own suffix;
* decode: one token per row per step through the cache;
* continuous batching: finished records leave the batch, queued ones are
  prefilled in groups and merged in (caches are left-padded to a common length,
  attention masks hide the padding, position ids are tracked per row).

At lam 0 or 1 only one conditional is ever picked, so a record keeps one row: greedy decoding (evaluation's
answers and benchmark generations) is this loop at lam 1. The rows live in an `EagerBatch` (a dynamic cache,
below: the reference) or a `StaticBatch` (fixed slots of a ring cache, one compiled step; `static.py`).

A record's coins and sampling noise come from its own generator, seeded by
(seed, record id, attempt), so its target does not depend on batch size,
batch composition, order or resumption.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from typing import Any

import torch
from transformers import DynamicCache

from mixsd.errors import MixsdError
from mixsd.settings import DEFAULT_LAM, DEFAULT_MAX_NEW_TOKENS, Decode


@dataclass(frozen=True)
class DecodeConfig:
    """The loop's settings. `mixsd targets` builds it from its TargetConfig (`of`), which declares each one with
    its flag, help and default; the defaults here are the same constants, for the loop's other callers."""

    lam: float = DEFAULT_LAM  # probability that a step takes the naive conditional
    temperature: float = 0.0  # 0 = argmax of the picked conditional
    top_k: int = 64
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    batch_size: int = 16  # records decoded together (2 cache rows each)
    seed: int = 0
    decode: Decode = "auto"  # eager (dynamic cache) | static (fixed slots, compiled on CUDA) | auto: static on CUDA

    @classmethod
    def of(cls, config: Any, **changes: Any) -> DecodeConfig:
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)} | changes)


@dataclass
class Job:
    """One attempt at one record's target."""

    key: str  # stable record id: seeds the record's randomness
    naive_ids: list[int]
    expert_ids: list[int]
    attempt: int = 0
    max_new_tokens: int | None = None  # per-record cap, e.g. to fit the context window
    payload: object = None  # carried through untouched for the caller
    stop: Callable[[list[int]], bool] | None = None  # a stop rule beyond stop tokens (e.g. stop strings)


@dataclass
class Result:
    job: Job
    token_ids: list[int]
    from_naive: list[bool]  # per token: taken from the naive conditional?
    finish_reason: str  # "stop" (a stop token or the job's stop rule; the last token is included) or "length"


def record_randomness(seed: int, key: str, attempt: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-step coins and sampling uniforms that depend only on (seed, key, attempt)."""
    digest = hashlib.sha256(f"mixsd:{seed}:{key}:{attempt}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))
    draws = torch.rand(2, steps, generator=gen, dtype=torch.float64)
    return draws[0], draws[1]


def pick_tokens(logits: torch.Tensor, uniforms: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """Argmax at T=0, else inverse-CDF sampling from softmax(top-k logits / T) with given uniforms."""
    if temperature == 0:
        return logits.argmax(-1)
    values, indices = logits.float().topk(min(top_k, logits.shape[-1]), dim=-1)
    cdf = torch.softmax(values.double() / temperature, dim=-1).cumsum(-1)
    choice = torch.searchsorted(cdf, (uniforms * cdf[:, -1]).unsqueeze(-1)).clamp_max(values.shape[-1] - 1)
    return indices.gather(-1, choice).squeeze(-1)


def common_prefix_len(a: list[int], b: list[int]) -> int:
    """Length of the shared head of two prompts, leaving at least one token of each to encode separately."""
    n = 0
    limit = min(len(a), len(b)) - 1
    while n < limit and a[n] == b[n]:
        n += 1
    return n


@dataclass
class Rows:
    """A batch of sequences in one KV cache: left-padded, with a mask and each row's next position."""

    cache: DynamicCache
    mask: torch.Tensor  # [rows, cache length], 1 = real token
    next_pos: torch.Tensor  # [rows]

    def select(self, index: torch.Tensor) -> None:
        self.cache.batch_select_indices(index)
        self.mask, self.next_pos = self.mask[index], self.next_pos[index]
        self._trim()

    def pad_left(self, length: int) -> None:
        extra = length - self.mask.shape[1]
        if extra <= 0:
            return
        for layer in self.cache.layers:
            layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, extra, 0))
            layer.values = torch.nn.functional.pad(layer.values, (0, 0, extra, 0))
        self.mask = torch.nn.functional.pad(self.mask, (extra, 0))

    def _trim(self) -> None:
        """Drop leading columns that no row attends to (they only grow the cache)."""
        used = self.mask.any(0).nonzero()
        start = int(used[0]) if len(used) else self.mask.shape[1]
        if start:
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., start:, :], layer.values[..., start:, :]
            self.mask = self.mask[:, start:]

    @staticmethod
    def concat(parts: list[Rows]) -> Rows:
        length = max(p.mask.shape[1] for p in parts)
        for p in parts:
            p.pad_left(length)
        cache = DynamicCache()
        for i in range(len(parts[0].cache.layers)):
            keys = torch.cat([p.cache.layers[i].keys for p in parts])
            values = torch.cat([p.cache.layers[i].values for p in parts])
            cache.update(keys, values, i)
        return Rows(cache, torch.cat([p.mask for p in parts]), torch.cat([p.next_pos for p in parts]))


@dataclass
class _Live:
    """A record being decoded: its job, its precomputed randomness and what it has emitted so far."""

    job: Job
    steps: int
    take_naive: list[bool]
    uniforms: torch.Tensor
    tokens: list[int]
    from_naive: list[bool]

    @property
    def t(self) -> int:
        return len(self.tokens)


class MixedDecoder:
    """Runs `Job`s through the mixed decoding loop; see the module docstring."""

    def __init__(self, model, config: DecodeConfig, stop_ids: set[int]):
        self.config, self.stop_ids = config, stop_ids
        self.body = model.base_model  # the transformer without the vocabulary projection
        self.head = model.get_output_embeddings()
        self.device = next(model.parameters()).device
        self.width = 1 if config.lam in (0.0, 1.0) else 2
        self.static = config.decode == "static" or (config.decode == "auto" and self.device.type == "cuda")
        if self.static:
            from mixsd.targets.static import unsupported

            reason = unsupported(model)
            if reason and config.decode == "static":
                raise MixsdError(f"--decode static cannot run this model: {reason}")
            self.static = reason is None

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, rows: Rows | None):
        """Encode `ids` after `rows` (or from scratch); returns the grown rows and each row's last hidden state."""
        cache = rows.cache if rows is not None else DynamicCache()
        full_mask = mask if rows is None else torch.cat([rows.mask, mask], 1)
        out = self.body(input_ids=ids, attention_mask=full_mask, position_ids=positions, cache=cache, use_cache=True)
        return Rows(cache, full_mask, positions[:, -1] + 1), out.last_hidden_state[:, -1]

    def _encode(self, seqs: list[list[int]], rows: Rows | None = None):
        """Left-pad `seqs` into one block and encode it after `rows`, continuing each row's positions."""
        width = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), width), dtype=torch.long)  # the pad id is irrelevant: it is masked
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s) :] = torch.tensor(s)
            mask[i, width - len(s) :] = 1
        start = rows.next_pos.cpu() if rows is not None else torch.zeros(len(seqs), dtype=torch.long)
        positions = (start[:, None] + mask.cumsum(1) - 1).clamp_min(0)
        return self.forward(ids.to(self.device), mask.to(self.device), positions.to(self.device), rows)

    def prompts(self, job: Job) -> list[list[int]]:
        """The prompt of each of the record's rows."""
        if self.width == 2:
            return [job.naive_ids, job.expert_ids]
        return [job.naive_ids if self.config.lam == 1.0 else job.expert_ids]

    def prefill(self, jobs: list[Job]) -> tuple[Rows, torch.Tensor]:
        """Encode new records' prompts; rows come out record by record (naive 0, expert 0, naive 1, ...)."""
        if self.width == 1:
            return self._encode([self.prompts(j)[0] for j in jobs])
        heads = [common_prefix_len(j.naive_ids, j.expert_ids) for j in jobs]
        shared, _ = self._encode([j.naive_ids[:h] for j, h in zip(jobs, heads, strict=True)])
        parts, hidden = [], []
        for side in ("naive_ids", "expert_ids"):
            copy = DynamicCache()
            for i, layer in enumerate(shared.cache.layers):
                copy.update(layer.keys.clone(), layer.values.clone(), i)
            tails = [getattr(j, side)[h:] for j, h in zip(jobs, heads, strict=True)]
            rows, last = self._encode(tails, Rows(copy, shared.mask, shared.next_pos))
            parts.append(rows)
            hidden.append(last)
        rows = Rows.concat(parts)
        n = len(jobs)
        rows.select(torch.arange(2 * n, device=self.device).view(2, n).t().reshape(-1))
        return rows, torch.stack(hidden, 1).reshape(2 * n, -1)

    def pick(self, hidden: torch.Tensor, rows: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """Project only the picked rows onto the vocabulary and choose each one's next token."""
        return pick_tokens(self.head(hidden[rows]), uniforms, self.config.temperature, self.config.top_k)

    def picked_rows(self, live: list[_Live], slots: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each live record's picked cache row (by its coin) and its sampling uniform for this step."""
        where = slots if slots is not None else range(len(live))
        side = [0 if self.width == 1 or r.take_naive[r.t] else 1 for r in live]
        rows = torch.tensor([self.width * w + s for w, s in zip(where, side, strict=True)])
        uniforms = torch.stack([r.uniforms[r.t] for r in live])
        return rows.to(self.device), uniforms.to(self.device)

    def _start(self, job: Job) -> _Live:
        steps = job.max_new_tokens or self.config.max_new_tokens
        coins, uniforms = record_randomness(self.config.seed, job.key, job.attempt, steps)
        return _Live(job, steps, (coins < self.config.lam).tolist(), uniforms, [], [])

    def run(self, queue: deque[Job]) -> Iterator[Result]:
        """Decode every job in `queue`; the caller may append to it while iterating (retries)."""
        cfg = self.config
        if not queue:
            return
        if self.static:
            from mixsd.targets.static import StaticBatch

            longest = max(len(p) for j in queue for p in self.prompts(j))
            batch = StaticBatch(self, longest + max(j.max_new_tokens or cfg.max_new_tokens for j in queue))
        else:
            batch = EagerBatch(self)
        live: list[_Live] = []
        tokens: list[int] = []  # each live record's next token
        refill_at = max(1, cfg.batch_size // 4)  # prefill new records in groups, not one by one
        with torch.inference_mode():
            while queue or live:
                # Refill: queued records join in groups, each prefilled as its rows; their first token is picked.
                free = cfg.batch_size - len(live)
                if queue and (free >= refill_at or not live):
                    new = [self._start(queue.popleft()) for _ in range(min(free, len(queue)))]
                    tokens += batch.join(new)
                    live += new

                # Retire: records that stopped or ran out of budget leave, and their rows with them.
                keep = []
                for i, (r, token) in enumerate(zip(live, tokens, strict=True)):
                    r.from_naive.append(r.take_naive[r.t])
                    r.tokens.append(token)
                    if token in self.stop_ids or (r.job.stop is not None and r.job.stop(r.tokens)):
                        yield Result(r.job, r.tokens, r.from_naive, "stop")
                    elif r.t >= r.steps:
                        yield Result(r.job, r.tokens, r.from_naive, "length")
                    else:
                        keep.append(i)
                if len(keep) < len(live):
                    live, tokens = [live[i] for i in keep], [tokens[i] for i in keep]
                    batch.leave(keep)
                if not live:
                    continue

                # Advance and pick: every row consumes its record's token (the shared prefix grows by one), then
                # each record's coin picks the row whose next-token distribution it takes.
                tokens = batch.step(tokens, live)


class EagerBatch:
    """The records' rows in one dynamic cache: merged on joining, re-indexed on leaving (the reference path)."""

    def __init__(self, decoder: MixedDecoder):
        self.decoder, self.rows = decoder, None

    def join(self, new: list[_Live]) -> list[int]:
        rows, hidden = self.decoder.prefill([r.job for r in new])
        self.rows = rows if self.rows is None else Rows.concat([self.rows, rows])
        return self.decoder.pick(hidden, *self.decoder.picked_rows(new)).tolist()

    def leave(self, keep: list[int]) -> None:
        w = self.decoder.width
        if not keep:
            self.rows = None
            return
        self.rows.select(torch.tensor([w * i + j for i in keep for j in range(w)], device=self.decoder.device))

    def step(self, tokens: list[int], live: list[_Live]) -> list[int]:
        d = self.decoder
        step = torch.tensor(tokens, device=d.device).repeat_interleave(d.width)[:, None]
        self.rows, hidden = d.forward(step, torch.ones_like(step), self.rows.next_pos[:, None], self.rows)
        return d.pick(hidden, *d.picked_rows(live)).tolist()
