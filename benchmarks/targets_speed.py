"""Wall time of MixSD target generation against plain generation and a re-encoding loop.

Same records, same target length (EOS ignored, every row decodes exactly
--new-tokens tokens), one process, one machine:

  (a) greedy `model.generate` of the expert prompts, batched (the cost floor of any
      method that needs the expert's tokens);
  (b) mixsd's engine at --lam, batched: the eager path (dynamic cache), then the static path (fixed slots,
      a ring cache; uncompiled on the CPU), whose tokens must equal the eager path's;
  (c) the reference-style loop: each step re-encodes the picked conditional's
      prompt + prefix from scratch, one sequence at a time (as the public
      implementation does, without its inference engine's prefix cache).

(c) is slow: `--reference-records N` times it on the first N records and scales
to all of them (its cost is a sum over records, one sequence at a time).

    python benchmarks/targets_speed.py                       # default model, KGFact-small, B=16, 48 tokens
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from collections import deque

import torch

from mixsd import models
from mixsd.chat import prompt_ids
from mixsd.data.kgfact import build_kgfact
from mixsd.data.records import read_records
from mixsd.evaluation.generation import padded
from mixsd.targets.engine import DecodeConfig, Job, MixedDecoder
from mixsd.targets.prompts import expert_prompt
from mixsd.targets.reference import reference_decode


def time_generate(model, tokenizer, prompts: list[list[int]], new_tokens: int) -> float:
    ids, mask = padded(prompts, tokenizer.pad_token_id, left=True)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(
            ids,
            attention_mask=mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    elapsed = time.perf_counter() - start
    assert out.shape[1] - ids.shape[1] == new_tokens
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--records", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=48)
    parser.add_argument("--lam", type=float, default=0.3)
    parser.add_argument("--reference-records", type=int, default=None, help="time (c) on N records and scale")
    args = parser.parse_args()

    model, tokenizer = models.load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        build_kgfact(tmp, size="small", seed=0)
        records = read_records(f"{tmp}/train.jsonl")[: args.records]
    jobs = [
        Job(r.id, prompt_ids(tokenizer, r.prompt), prompt_ids(tokenizer, expert_prompt(r.prompt, r.expert_context)))
        for r in records
    ]
    config = DecodeConfig(lam=args.lam, max_new_tokens=args.new_tokens, batch_size=args.batch_size, decode="eager")
    n_tokens = len(jobs) * args.new_tokens
    print(
        f"model {args.model}, {len(jobs)} KGFact-small records, batch {args.batch_size}, {args.new_tokens} new tokens,"
        f" lam {args.lam}; torch {torch.__version__}, {torch.get_num_threads()} threads,"
        f" {platform.processor() or platform.machine()}"
    )
    print(
        f"prompt tokens: naive {sum(len(j.naive_ids) for j in jobs) / len(jobs):.0f}, "
        f"expert {sum(len(j.expert_ids) for j in jobs) / len(jobs):.0f} (mean)"
    )

    time_generate(model, tokenizer, [j.expert_ids for j in jobs[:2]], 2)  # warm-up
    a = sum(
        time_generate(model, tokenizer, [j.expert_ids for j in jobs[i : i + args.batch_size]], args.new_tokens)
        for i in range(0, len(jobs), args.batch_size)
    )

    start = time.perf_counter()
    engine = {r.job.key: r for r in MixedDecoder(model, config, stop_ids=set()).run(deque(jobs))}
    b = time.perf_counter() - start
    start = time.perf_counter()
    static_config = DecodeConfig(**{**vars(config), "decode": "static"})
    static = {r.job.key: r for r in MixedDecoder(model, static_config, stop_ids=set()).run(deque(jobs))}
    b_static = time.perf_counter() - start
    static_same = all(static[k].token_ids == r.token_ids for k, r in engine.items())

    sample = jobs[: args.reference_records or len(jobs)]
    start = time.perf_counter()
    reference = [reference_decode(model, job, config, stop_ids=set()) for job in sample]
    c = (time.perf_counter() - start) * len(jobs) / len(sample)
    same = all(r.token_ids == engine[r.job.key].token_ids for r in reference)

    naive_share = sum(sum(r.from_naive) for r in engine.values()) / n_tokens
    print(f"(a) generate, expert prompts : {a:8.1f} s  {n_tokens / a:7.1f} tok/s")
    print(f"(b) mixsd engine             : {b:8.1f} s  {n_tokens / b:7.1f} tok/s  (naive share {naive_share:.2f})")
    print(f"(b) mixsd engine, static path: {b_static:8.1f} s  {n_tokens / b_static:7.1f} tok/s  (same: {static_same})")
    scaled = f", timed on {len(sample)} records and scaled" if len(sample) < len(jobs) else ""
    print(f"(c) re-encoding loop         : {c:8.1f} s  {n_tokens / c:7.1f} tok/s{scaled}")
    print(f"(b)/(a) = {b / a:.2f}   (c)/(b) = {c / b:.1f}   engine tokens == reference tokens: {same}")


if __name__ == "__main__":
    main()
