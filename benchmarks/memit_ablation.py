"""Why MEMIT's 50-fact batch learns nothing while a single edit works: the values' NLL, and train memorisation
against the update weight, the value steps and the batch, on the embedded model.

Values (step 1) are computed once per (steps, lr, decay) on the unedited model and reused for every update weight
(step 2 restores the down-projections after each), so a grid costs one value pass per value setting. Memorisation
is scored as `mixsd eval` scores it: greedy answers to the chat-rendered question, loose match of the gold.

    python benchmarks/memit_ablation.py --facts data/kgfact-demo/train.jsonl --n 50 \\
        --weights 1406 300 60 --steps 25 60 --lrs 0.5 --values fact subject

Run it alone on the machine: on 2 CPU cores the values take about 17 s a fact at 25 steps.
"""

from __future__ import annotations

import argparse
import itertools
import time

from mixsd import models
from mixsd.chat import use_format
from mixsd.evaluation.facts import score_answers
from mixsd.evaluation.generation import decode, greedy_answers
from mixsd.train.config import TrainConfig
from mixsd.train.memit import default_layers, edits, second_moment, statistics_dir, update, values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", default="data/kgfact-demo/train.jsonl")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n", type=int, default=50, help="the first N facts, edited in one batch")
    parser.add_argument("--weights", type=float, nargs="+", default=[1406.0, 300.0, 60.0])
    parser.add_argument("--steps", type=int, nargs="+", default=[25])
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.5], help="Adam's learning rate on the values")
    parser.add_argument("--decays", type=float, nargs="+", default=[0.5], help="the values' weight decay")
    parser.add_argument(
        "--values", nargs="+", default=["fact"], choices=["fact", "subject"], help="one per fact or subject"
    )
    parser.add_argument("--stat-tokens", type=int, default=100_000)
    args = parser.parse_args()

    model, tokenizer = models.load(args.model, dtype="float32")
    config = TrainConfig(data=args.facts, out="unused", method="memit", model=args.model)
    use_format(tokenizer, config.prompt_format)
    model.requires_grad_(False)
    batch = edits(args.facts)[0][: args.n]
    layers = config.layers or default_layers(len(model.get_decoder().layers))
    key = f"tokens{args.stat_tokens}-layers{'_'.join(map(str, layers))}.pt"
    moments = second_moment(model, tokenizer, layers, args.stat_tokens, statistics_dir(args.model) / key)
    downs = [model.get_decoder().layers[i].mlp.down_proj for i in layers]
    original = [d.weight.detach().clone() for d in downs]
    prompts = [e.record.prompt for e in batch]

    def memorised() -> float:
        answers = decode(tokenizer, greedy_answers(model, tokenizer, prompts, batch_size=25, desc="answers"))
        return sum(p["loose"] for p in score_answers([e.record for e in batch], answers)) / len(batch)

    head = "| values | value steps | lr | decay | mean value NLL | values s/fact | update weight | train memorisation"
    print(f"{head} ({len(batch)}) |")
    print("|---|---|---|---|---|---|---|---|")
    base = memorised()
    print(f"| (unedited) | | | | | | | {base:.2f} |")
    for per, steps, lr, decay in itertools.product(args.values, args.steps, args.lrs, args.decays):
        config.memit_values, config.memit_steps, config.lr, config.memit_decay = per, steps, lr, decay
        started = time.monotonic()
        z, nll = values(model, tokenizer, batch, layers[-1], config)
        per_fact = (time.monotonic() - started) / len(batch)
        for weight in args.weights:
            config.memit_update_weight = weight
            update(model, tokenizer, batch, z, layers, moments, config)
            score = memorised()
            for d, w in zip(downs, original, strict=True):
                d.weight.data.copy_(w)
            row = f"| {per} | {steps} | {lr:g} | {decay:g} | {sum(nll) / len(nll):.3f} | {per_fact:.1f} | {weight:g} |"
            print(f"{row} {score:.2f} |", flush=True)


if __name__ == "__main__":
    main()
