"""Fixed-shape storage for the mixed decoding loop, so that one decode step can be compiled and graph-captured.

`EagerBatch` grows the cache by a column a step and re-indexes it whenever records leave or join, so every step
has new shapes and is a fresh round of kernel launches from Python. On a GPU that overhead, not the GPU, sets
the speed. Here no shape ever changes:

* slots: `batch_size` records x `width` rows, preallocated. A finished record frees its slot and a queued one
  takes it (its rows' mask is reset); an empty slot decodes a dummy token that nobody reads;
* a ring of `length` columns: step s writes every row's new key/value at column s mod `length`. Keys carry
  their rotary position from before caching, and each row's mask names exactly its own columns, so attention
  does not care where in the ring a row's tokens lie: a record needs prompt + budget <= `length` columns,
  whatever the other rows do;
* joining: new records are prefilled as in the eager path (one dynamic-cache forward for the group) and their
  keys/values copied into their slots, in the columns just behind the ring's write column.

* attention: transformers' sdpa path copies every key/value head once per query head of its group whenever a
  mask is given (a copy of the whole cache per layer and step). The step's attention instead lays a KV head's
  group of query heads out as that head's query rows: the same products, the cache read once.

The step (every row forward by one token, the picked rows projected onto the vocabulary, the pick) is one
function of fixed shapes. On CUDA it is compiled with CUDA graphs (`torch.compile(mode="reduce-overhead")`);
on CPU it runs eagerly and gives the eager path's tokens (tests/targets/test_static.py).
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface, Cache, StaticLayer

from mixsd.errors import MixsdError

COLUMNS = 64  # the ring's length is rounded up to a multiple of this, so similar runs reuse one compiled step
ATTENTION = "mixsd_ring"  # the step's attention function, registered with transformers under this name


def unsupported(model) -> str | None:
    """Why the static path cannot run this model, or None."""
    config = model.config.get_text_config()
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return "sliding-window attention"
    if any(t != "full_attention" for t in getattr(config, "layer_types", None) or []):
        return "layers other than full attention"
    if getattr(config, "attn_logit_softcapping", None):
        return "attention logit soft-capping"
    return None


def _ring_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """One decode step's attention: query [rows, heads, 1, dim] against the ring's [rows, kv heads, length, dim]."""
    rows, heads, _, dim = query.shape
    grouped = query.reshape(rows, key.shape[1], heads // key.shape[1], dim)  # query head h reads KV head h // group
    out = torch.nn.functional.scaled_dot_product_attention(grouped, key, value, attn_mask=attention_mask, scale=scaling)
    return out.reshape(rows, heads, 1, dim).transpose(1, 2), None


AttentionInterface.register(ATTENTION, _ring_attention)


class _RingLayer(StaticLayer):
    """One layer's keys and values for every row; a step writes each row's token at the shared ring column."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, column: torch.Tensor):
        super().__init__(max_cache_len=keys.shape[2])
        self.keys, self.values, self.column = keys, values, column
        self.device, (self.batch_size, self.num_heads) = keys.device, keys.shape[:2]
        self.k_head_dim, self.v_head_dim = keys.shape[-1], values.shape[-1]
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        self.keys.index_copy_(2, self.column, key_states)
        self.values.index_copy_(2, self.column, value_states)
        return self.keys, self.values


class StaticBatch:
    """The records' rows in fixed slots of a preallocated ring cache; see the module docstring."""

    def __init__(self, decoder, columns_needed: int):
        self.decoder = d = decoder
        self.width, self.slots = d.width, d.config.batch_size
        self.length = -(-columns_needed // COLUMNS) * COLUMNS
        self.column = 0  # where the next step writes
        self.free = list(range(self.slots))
        self.slot_of: list[int] = []  # live record i sits in slot slot_of[i]
        rows = self.slots * self.width
        self.positions = torch.zeros(rows, dtype=torch.long)  # each row's next position
        self.mask = torch.zeros((rows, self.length), dtype=torch.bool, device=d.device)
        self.ring_column = torch.zeros(1, dtype=torch.long, device=d.device)
        self.cache: Cache | None = None  # allocated at the first join, shaped like the prefill's cache
        self.step_fn = self._step
        if d.device.type == "cuda":
            torch._dynamo.mark_static_address(self.mask)
            torch._dynamo.mark_static_address(self.ring_column)
            self.step_fn = torch.compile(self._step, mode="reduce-overhead")

    def _allocate(self, like: Cache) -> None:
        layers = []
        for layer in like.layers:
            keys, values = (
                t.new_zeros((len(self.positions), t.shape[1], self.length, t.shape[3]))
                for t in (layer.keys, layer.values)
            )
            if self.decoder.device.type == "cuda":
                torch._dynamo.mark_static_address(keys)
                torch._dynamo.mark_static_address(values)
            layers.append(_RingLayer(keys, values, self.ring_column))
        self.cache = Cache(layers=layers)

    def _rows(self, slots: list[int]) -> torch.Tensor:
        return torch.tensor([self.width * s + j for s in slots for j in range(self.width)])

    def join(self, new: list) -> list[int]:
        d = self.decoder
        prefilled, hidden = d.prefill([r.job for r in new])
        if self.cache is None:
            self._allocate(prefilled.cache)
        # Pack each row's real columns to the right (the prefill leaves padding between a shared head and a tail);
        # keys carry their positions, so only the set of columns matters, not where it lies.
        span = int(prefilled.mask.sum(1).max())
        order = torch.sort(prefilled.mask.int(), dim=1, stable=True).indices[:, -span:]
        if span + max(r.steps for r in new) > self.length:
            raise MixsdError(f"a record needs {span} + its budget columns; the static cache has {self.length}")
        slots, self.free = self.free[: len(new)], self.free[len(new) :]
        rows = self._rows(slots).to(d.device)
        columns = (self.column - span + torch.arange(span, device=d.device)) % self.length
        at = (rows[:, None], slice(None), columns[None, :])  # [rows, :, columns] -> shape [rows, columns, heads, dim]

        def packed(t: torch.Tensor) -> torch.Tensor:  # [rows, heads, columns, dim] -> [rows, span, heads, dim]
            return t.gather(2, order[:, None, :, None].expand(-1, t.shape[1], -1, t.shape[3])).transpose(1, 2)

        for ring, part in zip(self.cache.layers, prefilled.cache.layers, strict=True):
            ring.keys[at], ring.values[at] = packed(part.keys), packed(part.values)
        self.mask[rows] = False
        self.mask[rows[:, None], columns[None, :]] = prefilled.mask.gather(1, order).bool()
        self.positions[rows.cpu()] = prefilled.next_pos.cpu()
        self.slot_of += slots
        return d.pick(hidden, *d.picked_rows(new)).tolist()

    def leave(self, keep: list[int]) -> None:
        kept = set(keep)
        self.free = sorted(self.free + [s for i, s in enumerate(self.slot_of) if i not in kept])
        self.slot_of = [self.slot_of[i] for i in keep]

    def _step(self, ids: torch.Tensor, positions: torch.Tensor, picked: torch.Tensor, uniforms: torch.Tensor):
        d, mask = self.decoder, self.mask[:, None, None, :]
        out = d.body(input_ids=ids, attention_mask=mask, position_ids=positions, cache=self.cache, use_cache=True)
        return d.pick(out.last_hidden_state[:, -1], picked, uniforms)

    def step(self, tokens: list[int], live: list) -> list[int]:
        d, w = self.decoder, self.width
        slots = torch.tensor(self.slot_of)
        ids = torch.zeros((self.slots, w), dtype=torch.long)
        ids[slots] = torch.tensor(tokens)[:, None]
        slots = slots.to(d.device)
        rows, uniforms = d.picked_rows(live, self.slot_of)
        picked = torch.arange(self.slots, device=d.device) * w  # empty slots: any row, the pick is not read
        picked[slots] = rows
        all_uniforms = torch.zeros(self.slots, dtype=uniforms.dtype, device=d.device)
        all_uniforms[slots] = uniforms
        self.ring_column.fill_(self.column)
        self.mask[:, self.column] = True
        config = d.body.config  # prefills keep the model's attention; steps use the ring's
        previous, config._attn_implementation = config._attn_implementation, ATTENTION
        try:
            out = self.step_fn(ids.view(-1, 1).to(d.device), self.positions[:, None].to(d.device), picked, all_uniforms)
        finally:
            config._attn_implementation = previous
        self.column = (self.column + 1) % self.length
        self.positions += 1
        return out[slots].tolist()
