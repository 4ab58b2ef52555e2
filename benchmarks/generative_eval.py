"""Throughput of the generative benchmark tasks: one model, one task at a time, as `mixsd eval` scores them.

For each task: items, wall time, generated tokens and tokens per second, accuracy and the share of answers in
the asked-for form. Greedy generations go through mixsd's decode loop (`LoopLM`); `--compare` also times lm-eval's
own `HFLM.generate_until` on the same requests and says whether the two wrote the same answers. The default is
the embedded model on this CPU; on a GPU, `--config-model qwen3-1.7b` measures a randomly initialised model of
that shape (no download; the answers are noise, the speed is not).

    .venv/bin/python benchmarks/generative_eval.py [--suite paper] [--limit 20] [--batch-size 32] [--compare]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from mixsd import models
from mixsd.evaluation.benchmarks import runs_code, score_lm, suite_items

SHAPES = {  # hidden, layers, heads, kv heads, intermediate: enough to time decoding at a model's size
    "qwen3-1.7b": (2048, 28, 16, 8, 6144),
    "llama-8b": (4096, 32, 32, 8, 14336),
}


def config_model(shape: str, tokenizer, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, heads, kv, inter = SHAPES[shape]
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        intermediate_size=inter,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config).to(device=device, dtype=torch.bfloat16).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--config-model", choices=sorted(SHAPES), help="random weights of this shape, bf16")
    parser.add_argument("--suite", default="paper")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--decode", default="auto", choices=["auto", "eager", "static"])
    parser.add_argument("--compare", action="store_true", help="also time lm-eval's HFLM on the same requests")
    args = parser.parse_args()

    model, tokenizer = models.load(args.model)
    if args.config_model:
        model = config_model(args.config_model, tokenizer, "cuda" if torch.cuda.is_available() else "cpu")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    print(f"# {args.config_model or args.model} on {device}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    from lm_eval.models.huggingface import HFLM

    from mixsd.evaluation.loop_lm import LoopLM

    lms = {"loop": LoopLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size, decode=args.decode)}
    if args.compare:
        lms["hflm"] = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=args.batch_size)
    print("| task | path | items | seconds | generated tokens | tokens/s | accuracy | answered | same answers |")
    print("|---|---|---|---|---|---|---|---|---|")
    for task, n in suite_items(args.suite, args.limit).items():
        responses = {}
        for path, lm in lms.items():
            started = time.time()
            scores = score_lm(lm, {task: n}, allow_code=runs_code(task))[task]
            seconds = time.time() - started
            if not scores.responses:  # multiple choice: no generation
                print(
                    f"| {task} | {path} | {len(scores.correct)} | {seconds:.0f} | - | - | {scores.accuracy:.3f} | - | |"
                )
                continue
            responses[path] = scores.responses
            tokens = sum(len(tokenizer(r, add_special_tokens=False).input_ids) for r in scores.responses)
            answered = sum(scores.answered) / len(scores.answered)
            same = "" if path == "loop" else f"{sum(a == b for a, b in zip(*responses.values(), strict=True))}/{n}"
            print(
                f"| {task} | {path} | {len(scores.correct)} | {seconds:.0f} | {tokens} | {tokens / seconds:.0f} "
                f"| {scores.accuracy:.3f} | {answered:.2f} | {same} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
