"""The static (fixed-slot, ring-cache) batch against the eager one, where their storage differs most."""

from __future__ import annotations

from collections import deque

import pytest
import torch
from tests.targets.test_engine import decode_all, make_jobs

from mixsd.errors import MixsdError
from mixsd.targets import static
from mixsd.targets.engine import DecodeConfig, Job, MixedDecoder


def test_ring_wraps_and_slots_are_reused_without_changing_tokens(tiny_model, tokenizer, monkeypatch):
    """A ring exactly as long as the longest record needs: later records' columns wrap around the end."""
    monkeypatch.setattr(static, "COLUMNS", 1)
    jobs = [Job(j.key, j.naive_ids, j.expert_ids, max_new_tokens=4 + 5 * i) for i, j in enumerate(make_jobs(tokenizer))]
    config = dict(lam=0.4, temperature=0.7, top_k=20, batch_size=2, seed=11)
    eager = decode_all(tiny_model, tokenizer, jobs, decode="eager", **config)
    ring = decode_all(tiny_model, tokenizer, jobs, decode="static", **config)
    assert {k: r.token_ids for k, r in ring.items()} == {k: r.token_ids for k, r in eager.items()}
    assert {k: r.from_naive for k, r in ring.items()} == {k: r.from_naive for k, r in eager.items()}


@pytest.mark.slow
def test_static_equals_eager_on_the_embedded_model(smol):
    model, tokenizer = smol
    jobs = make_jobs(tokenizer)
    config = dict(lam=0.3, temperature=0.0, max_new_tokens=40, batch_size=3)
    eager = decode_all(model, tokenizer, jobs, decode="eager", **config)
    ring = decode_all(model, tokenizer, jobs, decode="static", **config)
    assert {k: r.token_ids for k, r in ring.items()} == {k: r.token_ids for k, r in eager.items()}


def test_step_logits_match_the_eager_path(tiny_model, tokenizer):
    """Not just the argmax: every projected row agrees with the eager path to float32 rounding."""
    jobs = make_jobs(tokenizer)[:4]
    seen: dict[str, list[torch.Tensor]] = {}
    for decode in ("eager", "static"):
        decoder = MixedDecoder(tiny_model, DecodeConfig(lam=0.4, max_new_tokens=10, batch_size=3, decode=decode), set())
        head = decoder.head
        logits = seen[decode] = []
        decoder.head = lambda h, head=head, logits=logits: logits.append(head(h)) or logits[-1]
        list(decoder.run(deque(jobs)))
    assert len(seen["eager"]) == len(seen["static"])
    for a, b in zip(seen["eager"], seen["static"], strict=True):
        rows = min(len(a), len(b))  # static steps project every slot, eager only the live records
        torch.testing.assert_close(a[:rows], b[:rows], atol=1e-5, rtol=1e-5)


def test_a_record_longer_than_the_ring_is_refused(tiny_model, tokenizer):
    jobs = make_jobs(tokenizer)[:2]
    decoder = MixedDecoder(tiny_model, DecodeConfig(lam=0.5, max_new_tokens=4, batch_size=2, decode="static"), set())
    queue = deque(jobs[:1])
    results = decoder.run(queue)
    next(results)  # the ring is sized for the first record; a longer one joins later
    queue.append(Job("long", jobs[1].naive_ids * 40, jobs[1].expert_ids * 40))
    with pytest.raises(MixsdError, match="static cache"):
        list(results)


def test_static_is_refused_for_sliding_window_attention(tiny_model, monkeypatch):
    """The ring's mask spans a record's whole history: a model that attends to a window would be computed wrong."""
    monkeypatch.setattr(tiny_model.config, "sliding_window", 16, raising=False)
    with pytest.raises(MixsdError, match="sliding-window"):
        MixedDecoder(tiny_model, DecodeConfig(decode="static"), set())
    assert not MixedDecoder(tiny_model, DecodeConfig(decode="auto"), set()).static


def test_the_model_keeps_its_attention_after_a_static_run(tiny_model, tokenizer):
    before = tiny_model.config._attn_implementation
    decode_all(tiny_model, tokenizer, make_jobs(tokenizer)[:2], lam=0.5, max_new_tokens=3, decode="static")
    assert tiny_model.config._attn_implementation == before
