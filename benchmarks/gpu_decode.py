"""Target tokens/s of each decoding path on one model of a real shape, built from a config (no download).

Random weights, random prompts: B records whose naive prompt (about 100 tokens) and expert prompt (about 150)
share a 40-token head, each decoding exactly --new-tokens tokens (no stop token). Paths, in one process:

  generate-dynamic   transformers `generate` of the expert prompts, dynamic cache (one conditional)
  generate-static    the same with `cache_implementation="static"`, which transformers compiles on CUDA
  engine-eager       mixsd's two-conditional loop at --lam, dynamic cache (the reference path)
  engine-static      mixsd's loop with fixed slots and a ring cache, its step compiled with CUDA graphs
  greedy-dynamic     `generate` of the naive prompts, dynamic cache: greedy generation as lm-eval's
                     `HFLM.generate_until` runs it (batched `generate` calls), without its stop-string checks
  greedy-static      the static loop at lam 1 (one row per record) on the same prompts: greedy generation
  lmeval-hflm        lm-eval's `HFLM.generate_until` on B greedy requests (a chat tokenizer's vocabulary, stop
                     strings as benchmark tasks set them), and
  lmeval-loop        the same requests through mixsd's `LoopLM` (what `mixsd eval` uses); --tokenizer DIR

Each path's rate is also given as a share of the memory-bandwidth bound (--bandwidth, or the card's): a decode
step must read every weight once and each row's live cache (prompt plus tokens so far, K and V of every layer),
so at best it takes (weight bytes + mean live cache bytes) / bandwidth, and yields one target token a record.
The engine paths hold two rows a record (naive and expert), the others one.

For compiled paths the first call is the warm-up; its extra time is printed as compile time. Each path's peak
GPU memory is printed too, and how often the static engine's tokens equal the eager engine's (bf16 kernels
differ, so agreement is measured, not assumed).

    python benchmarks/gpu_decode.py                       # CUDA: Qwen3-1.7B shape, bf16, B=64, 256 new tokens
    python benchmarks/gpu_decode.py --shape tiny          # any CPU: a 2-layer model, fp32, B=8, 16 new tokens
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import traceback
from collections import deque

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from mixsd.evaluation.generation import padded
from mixsd.targets.engine import DecodeConfig, Job, MixedDecoder

PATHS = ("generate-dynamic", "generate-static", "engine-eager", "engine-static", "greedy-dynamic", "greedy-static")
LMEVAL = ("lmeval-hflm", "lmeval-loop")
BANDWIDTH_TBS = {"H200": 4.8, "H100": 3.35, "A100": 2.0}  # HBM, as sold (SXM parts)
SHAPES = {
    "qwen3-1.7b": dict(
        hidden_size=2048,
        intermediate_size=6144,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        vocab_size=151936,
    ),
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        vocab_size=4096,
    ),
}


def build(shape: str, device: torch.device, dtype: torch.dtype, vocab: int | None = None):
    config = Qwen3Config(**{**SHAPES[shape], **({"vocab_size": vocab} if vocab else {})}, max_position_embeddings=4096)
    config.tie_word_embeddings = True
    torch.manual_seed(0)
    with device:
        return Qwen3ForCausalLM._from_config(config, dtype=dtype).eval()


def make_jobs(n: int, vocab: int) -> list[Job]:
    gen = torch.Generator().manual_seed(1)
    jobs = []
    for i in range(n):
        head = torch.randint(10, vocab, (40,), generator=gen).tolist()
        naive = head + torch.randint(10, vocab, (55 + i % 11,), generator=gen).tolist()
        expert = head + torch.randint(10, vocab, (105 + i % 11,), generator=gen).tolist()
        jobs.append(Job(f"r{i}", naive, expert))
    return jobs


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def generate(model, prompts: list[list[int]], new_tokens: int, cache: str | None) -> list[list[int]]:
    ids, mask = padded(prompts, 0, left=True)
    with torch.inference_mode():
        out = model.generate(
            ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
            cache_implementation=cache,
        )
    return out[:, ids.shape[1] :].tolist()


def engine(model, jobs: list[Job], new_tokens: int, lam: float, decode: str) -> list[list[int]]:
    config = DecodeConfig(lam=lam, max_new_tokens=new_tokens, batch_size=len(jobs), decode=decode)
    results = {r.job.key: r.token_ids for r in MixedDecoder(model, config, stop_ids=set()).run(deque(jobs))}
    return [results[j.key] for j in jobs]


def lmeval_paths(args, device, dtype) -> dict:
    """HFLM and LoopLM over the same greedy requests, on a model with the tokenizer's vocabulary."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from transformers import AutoTokenizer

    from mixsd.evaluation.loop_lm import LoopLM

    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    model = build(args.shape, device, dtype, vocab=len(tokenizer))
    gen = torch.Generator().manual_seed(2)
    contexts = [
        tokenizer.decode(torch.randint(100, len(tokenizer), (150,), generator=gen)) for _ in range(args.records)
    ]
    kwargs = {"until": ["\n\nQuestion:", "</s>"], "max_gen_toks": args.new_tokens, "do_sample": False}

    def requests():
        return [Instance("generate_until", {}, (c, dict(kwargs)), i) for i, c in enumerate(contexts)]

    hflm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.records)
    loop = LoopLM(pretrained=model, tokenizer=tokenizer, batch_size=args.records, decode="auto")
    return {
        "lmeval-hflm": (lambda: hflm.generate_until(requests(), disable_tqdm=True), False),
        "lmeval-loop": (lambda: loop.generate_until(requests(), disable_tqdm=True), True),
    }


def bound_tokens_per_s(model, jobs: list[Job], new_tokens: int, path: str, bandwidth: float) -> float | None:
    """Target tokens/s if a step only moved the bytes it must: the weights once, each row's live K and V."""
    if path in LMEVAL:
        return None
    config, size = model.config, next(model.parameters()).element_size()
    weights = sum(p.numel() for p in model.parameters()) * size
    per_column = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * size
    rows = {"greedy": ("naive_ids",), "engine": ("expert_ids", "naive_ids")}.get(path.split("-")[0], ("expert_ids",))
    prompts = [getattr(j, row) for row in rows for j in jobs]
    live = sum(len(p) + new_tokens / 2 for p in prompts)  # mean over the steps
    return len(jobs) * bandwidth / (weights + live * per_column)


def timed(device: torch.device, fn, warm: bool) -> tuple[list[list[int]], float, float | None, float]:
    """(tokens, seconds, compile seconds or None, peak GiB): with `warm`, a first call is timed as the warm-up."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    first = None
    if warm:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        first = time.perf_counter() - start
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
    return out, seconds, None if first is None else max(0.0, first - seconds), peak


def agreement(a: list[list[int]], b: list[list[int]]) -> tuple[float, float]:
    """Share of records with identical tokens, and mean share of each record's tokens before the first difference."""
    same = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    prefix = []
    for x, y in zip(a, b, strict=True):
        n = next((i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
        prefix.append(n / max(len(x), 1))
    return same, sum(prefix) / len(prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cuda = torch.cuda.is_available()
    parser.add_argument("--shape", choices=SHAPES, default="qwen3-1.7b" if cuda else "tiny")
    parser.add_argument("--records", type=int, default=64 if cuda else 8)
    parser.add_argument("--new-tokens", type=int, default=256 if cuda else 16)
    parser.add_argument("--lam", type=float, default=0.3)
    parser.add_argument("--paths", help="comma-separated (default: all, the lm-eval pair with --tokenizer)")
    parser.add_argument("--json", help="also write the figures here")
    parser.add_argument("--tokenizer", help="a tokenizer directory: adds the lm-eval paths (lm_eval installed)")
    parser.add_argument("--bandwidth", type=float, help="memory bandwidth in TB/s (default: the card's, if known)")
    args = parser.parse_args()

    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    model = build(args.shape, device, dtype)
    jobs = make_jobs(args.records, SHAPES[args.shape]["vocab_size"])
    expert = [j.expert_ids for j in jobs]
    naive = [j.naive_ids for j in jobs]
    n, new = len(jobs), args.new_tokens
    paths = {
        "generate-dynamic": (lambda: generate(model, expert, new, None), False),
        "generate-static": (lambda: generate(model, expert, new, "static"), True),
        "engine-eager": (lambda: engine(model, jobs, new, args.lam, "eager"), False),
        "engine-static": (lambda: engine(model, jobs, new, args.lam, "static"), True),
        "greedy-dynamic": (lambda: generate(model, naive, new, None), False),
        "greedy-static": (lambda: engine(model, jobs, new, 1.0, "static"), True),
    }
    if args.tokenizer:
        paths.update(lmeval_paths(args, device, dtype))
    gpu = torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine()
    bandwidth = args.bandwidth or next((v for k, v in BANDWIDTH_TBS.items() if k in gpu), None)
    print(
        f"{args.shape}, {dtype}, {n} records, {new} new tokens, lam {args.lam}; {gpu}; torch {torch.__version__},"
        f" transformers {__import__('transformers').__version__}",
        flush=True,
    )
    rows, tokens, checks = [], {}, {}
    for name in (args.paths or ",".join(PATHS + (LMEVAL if args.tokenizer else ()))).split(","):
        fn, warm = paths[name]
        try:
            out, seconds, compile_s, peak = timed(device, fn, warm)
        except Exception as error:  # one broken path must not cost the others' figures on a short GPU lease
            traceback.print_exc()
            rows.append(dict(path=name, error=f"{type(error).__name__}: {error}"[:300]))
            continue
        tokens[name] = out
        assert name in LMEVAL or all(len(t) == new for t in out), name
        bound = bandwidth and bound_tokens_per_s(model, jobs, new, name, bandwidth * 1e12)
        rows.append(
            dict(
                path=name,
                tokens_per_s=n * new / seconds,
                seconds=seconds,
                compile_s=compile_s,
                peak_gib=peak,
                bound_tokens_per_s=bound or None,
                share_of_bound=bound and n * new / seconds / bound,
            )
        )
        print(f"  {name:17s} {n * new / seconds:9.0f} tok/s  {seconds:7.2f} s", flush=True)
        for a, b, label in (
            ("generate-static", "generate-dynamic", "generate static = dynamic (transformers' own two paths)"),
            ("engine-static", "engine-eager", f"engine static = eager (lam {args.lam})"),
            ("greedy-static", "greedy-dynamic", "greedy static = generate (lam 1)"),
            ("lmeval-loop", "lmeval-hflm", "LoopLM = HFLM generate_until (texts)"),
        ):
            if name in (a, b) and {a, b} <= tokens.keys():
                checks[label] = agreement(tokens[a], tokens[b])
        if args.json:
            with open(args.json, "w") as f:
                summary = dict(device=gpu, shape=args.shape, records=n, new_tokens=new, bandwidth_tbs=bandwidth)
                json.dump(summary | dict(rows=rows, agreement=checks), f)

    print(f"\n| path | target tokens/s | seconds | compile s | peak GiB | bandwidth bound ({bandwidth} TB/s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['path']} | failed: {r['error'][:80]} | | | | |")
            continue
        compile_s = "" if r["compile_s"] is None else f"{r['compile_s']:.0f}"
        bound = "" if not r["bound_tokens_per_s"] else f"{r['bound_tokens_per_s']:,.0f} ({r['share_of_bound']:.0%})"
        print(
            f"| {r['path']} | {r['tokens_per_s']:,.0f} | {r['seconds']:.2f} | {compile_s} | {r['peak_gib']:.1f} "
            f"| {bound} |"
        )
    if any(r["path"] in LMEVAL for r in rows):
        print("lmeval rows: requests x max_gen_toks per second (a stop string may end a request early, on both paths)")
    for name, (same, prefix) in checks.items():
        print(f"agreement, {name}: {same:.0%} of records identical, {prefix:.0%} of tokens before the first difference")


if __name__ == "__main__":
    main()
