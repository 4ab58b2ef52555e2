"""Training tokens/s and model FLOPs utilisation (MFU) of `mixsd train` (TRL's SFTTrainer, bf16 autocast on a
GPU), all weights and LoRA, on a model of a real shape built from a config: random weights, no download.

Every sequence has the same length (a prompt and an answer of one-token words), so no step pays for padding.
The first --warmup steps are not timed (allocation, autotuning); the next --steps are, each ended by a device
synchronisation. Model FLOPs per token, the usual accounting (PaLM's appendix B), with N the weights of the
decoder's linear layers, L layers, d the attention width and T the sequence length:

    all weights   6N + 12 L d T     (forward 2N, backward 4N: input and weight gradients)
    LoRA          4N + 12 L d T     (frozen weights need no weight gradient; the adapters' own share is left out)

plus the LM head's 6 (all weights) or 4 (LoRA) x its weights for the answer tokens alone: TRL's fused head
projects only the positions the loss reads, so prompt tokens never reach it. MFU is that rate over the card's
dense bf16 peak (H100/H200 SXM: 989 TFLOP/s), or --peak-tflops.

    python benchmarks/train_throughput.py                         # CUDA: Qwen3-1.7B shape, 8 x 512 tokens
    python benchmarks/train_throughput.py --shape tiny --steps 3  # any CPU: a smoke test
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import torch
from gpu_decode import SHAPES, build
from transformers import AutoTokenizer, TrainerCallback

from mixsd import models
from mixsd.train import TrainConfig
from mixsd.train.run import prepare

PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense, SXM parts


class StepTimer(TrainerCallback):
    """Wall time of each optimiser step after the warm-up, the device synchronised at both ends."""

    def __init__(self, warmup: int):
        self.warmup, self.began, self.seconds = warmup, 0.0, []

    def on_step_begin(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.began = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        if state.global_step > self.warmup:
            self.seconds.append(time.perf_counter() - self.began)


def one_token_words(tokenizer, n: int = 2000) -> list[str]:
    """Words that the tokenizer encodes, after a space, as exactly one token: a text of k of them is k tokens."""
    words = []
    for token in tokenizer.get_vocab():
        word = tokenizer.convert_tokens_to_string([token])
        if (
            word.startswith(" ")
            and word[1:].isalpha()
            and len(tokenizer(word, add_special_tokens=False).input_ids) == 1
        ):
            words.append(word)
        if len(words) == n:
            break
    return sorted(words)


def corpus(path: Path, tokenizer, records: int, prompt_words: int, answer_words: int) -> None:
    rng, words = random.Random(0), one_token_words(tokenizer)
    with path.open("w") as f:
        for i in range(records):
            prompt = "".join(rng.choices(words, k=prompt_words))  # each word one token, its space kept
            answer = "".join(rng.choices(words, k=answer_words))
            f.write(json.dumps({"id": f"r{i}", "prompt": prompt, "answer": answer, "gold": answer}) + "\n")


def model_flops(model, seq_len: int, answer_len: int, lora: bool) -> tuple[float, int]:
    """(model FLOPs per sequence, N): the decoder's linear layers and attention for every token, the LM head for
    the answer's tokens."""
    config, head = model.config, model.get_output_embeddings()
    n = sum(
        m.weight.numel()
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and m is not head and "lora_" not in name
    )
    attention = 12 * config.num_hidden_layers * config.num_attention_heads * config.head_dim * seq_len
    k = 4 if lora else 6
    return (k * n + attention) * seq_len + k * head.weight.numel() * answer_len, n


def measure(args: argparse.Namespace, work: Path, lora: int | None) -> dict:
    config = TrainConfig(
        data=str(work / "corpus.jsonl"),
        out=str(work / f"out-{lora or 'full'}"),
        method="sft",
        model=str(work / "model"),
        batch_size=args.batch_size,
        max_steps=args.warmup + args.steps,
        save_steps=0,
        lora=lora,
    )
    timer = StepTimer(args.warmup)
    run = prepare(config, [timer])
    rows = run.trainer.train_dataset
    lengths = {len(ids) for ids in rows["input_ids"]}
    seq_len = max(lengths)
    answer_len = max(sum(label != -100 for label in labels) for labels in rows["labels"])  # TRL's loss mask
    run.trainer.train()
    flops, n = model_flops(
        run.trainer.model.get_base_model() if lora else run.trainer.model, seq_len, answer_len, bool(lora)
    )
    seconds = sum(timer.seconds) / len(timer.seconds)
    tokens_per_s = args.batch_size * seq_len / seconds
    flops_per_s = args.batch_size * flops / seconds
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device), None)
    row = dict(
        weights="all" if lora is None else f"LoRA r{lora}",
        seq_len=seq_len,
        answer_len=answer_len,
        lengths=sorted(lengths),
        batch=args.batch_size,
        step_s=seconds,
        tokens_per_s=tokens_per_s,
        model_tflops=flops_per_s / 1e12,
        mfu=None if peak is None else flops_per_s / (peak * 1e12),
        n_matmul=n,
        bf16=run.trainer.args.bf16,
        peak_gib=torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
    )
    del run
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return row


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=SHAPES, default="qwen3-1.7b" if cuda else "tiny")
    parser.add_argument("--batch-size", type=int, default=8 if cuda else 2)
    parser.add_argument("--seq-words", type=int, default=480 if cuda else 48, help="prompt + answer words")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10 if cuda else 3)
    parser.add_argument("--lora", type=int, default=16, help="the LoRA rank measured beside all weights")
    parser.add_argument("--peak-tflops", type=float, help="the card's dense bf16 peak (default: known cards)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(models.DEFAULT_MODEL))
    with tempfile.TemporaryDirectory(prefix="mixsd-train-tp-") as tmp:
        work = Path(tmp)
        # the shape's own vocabulary (the LM head is part of the cost), at least SmolLM2's, whose tokenizer writes
        vocab = max(SHAPES[args.shape]["vocab_size"], len(tokenizer))
        model = build(
            args.shape, torch.device("cuda" if cuda else "cpu"), torch.bfloat16 if cuda else torch.float32, vocab
        )
        models.save_into(model, tokenizer, work / "model")
        del model
        records = args.batch_size * (args.warmup + args.steps)
        corpus(
            work / "corpus.jsonl", tokenizer, records, args.seq_words * 3 // 4, args.seq_words - args.seq_words * 3 // 4
        )
        rows = [measure(args, work, None), measure(args, work, args.lora)]
    device = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"\n{args.shape}, {device}, torch {torch.__version__}, transformers {__import__('transformers').__version__}")
    print(
        "| weights | tokens/step | step s | tokens/s | model TFLOP/s | MFU | peak GiB |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:
        mfu = "" if r["mfu"] is None else f"{r['mfu']:.1%}"
        peak = "" if r["peak_gib"] is None else f"{r['peak_gib']:.1f}"
        print(
            f"| {r['weights']} | {r['batch']} x {r['seq_len']} | {r['step_s']:.3f} | {r['tokens_per_s']:,.0f} | "
            f"{r['model_tflops']:.3g} | {mfu} | {peak} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(dict(shape=args.shape, device=device, rows=rows), indent=1) + "\n")


if __name__ == "__main__":
    main()
