"""Why MEMIT's 50-fact batch learns nothing while a single edit works: the values' NLL, and train memorisation
against the update weight, the value steps and the batch, on the embedded model.

Values (step 1) are computed once per (steps, lr, decay) on the unedited model and reused for every update weight
(step 2 restores the down-projections after each), so a grid costs one value pass per value setting, and
"change reached" says how much of each fact's asked change of state (z minus its unedited state, at the last edited
layer) the update delivered: 1 is all of it, 0 none; with
`--batches` smaller than N the facts are edited a batch at a time, each batch's values found on the model the
batches before it edited (`mixsd train --memit-batch`), which costs a value pass per update weight. Memorisation
is scored as `mixsd eval` scores it: greedy answers to the chat-rendered question, loose match of the gold.

    python benchmarks/memit_ablation.py --facts data/kgfact-demo/train.jsonl --n 50 \\
        --weights 1406 300 60 --steps 25 60 --lrs 0.5 --values fact subject --tokens subject question
    python benchmarks/memit_ablation.py --n 20 --one-per-subject --weights 1406 300 60 --steps 60 --lrs 0.5

Run it alone on the machine: on 2 CPU cores the values take about 17 s a fact at 25 steps.
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch.nn.functional as F

from mixsd import models
from mixsd.chat import use_format
from mixsd.evaluation.facts import score_answers
from mixsd.evaluation.generation import decode, greedy_answers
from mixsd.train.config import TrainConfig
from mixsd.train.memit import (
    default_layers,
    edits,
    forward_at,
    requests,
    second_moment,
    statistics_dir,
    update,
    values,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--facts", default="data/kgfact-demo/train.jsonl")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--n", type=int, default=50, help="the first N facts, edited in one batch")
    parser.add_argument(
        "--one-per-subject", action="store_true", help="only each subject's first fact (so no two share a key)"
    )
    parser.add_argument("--weights", type=float, nargs="+", default=[1406.0, 300.0, 60.0])
    parser.add_argument("--steps", type=int, nargs="+", default=[25])
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.5], help="Adam's learning rate on the values")
    parser.add_argument("--decays", type=float, nargs="+", default=[0.5], help="the values' weight decay")
    parser.add_argument(
        "--values", nargs="+", default=["fact"], choices=["fact", "subject"], help="one per fact or subject"
    )
    parser.add_argument(
        "--tokens", nargs="+", default=["subject"], choices=["subject", "question"], help="where the keys are read"
    )
    parser.add_argument("--batches", type=int, nargs="+", default=[50], help="facts edited together, in turn")
    parser.add_argument("--stat-tokens", type=int, default=100_000)
    args = parser.parse_args()

    model, tokenizer = models.load(args.model, dtype="float32")
    config = TrainConfig(data=args.facts, out="unused", method="memit", model=args.model)
    use_format(tokenizer, config.prompt_format)
    model.requires_grad_(False)
    facts = edits(args.facts)[0]
    if args.one_per_subject:  # each subject's first fact: no two edits share a key
        first = {}
        for e in facts:
            first.setdefault(e.subject, e)
        facts = list(first.values())
    batch = facts[: args.n]
    layers = config.layers or default_layers(len(model.get_decoder().layers))
    key = f"tokens{args.stat_tokens}-layers{'_'.join(map(str, layers))}.pt"
    moments = second_moment(model, tokenizer, layers, args.stat_tokens, statistics_dir(args.model) / key)
    downs = [model.get_decoder().layers[i].mlp.down_proj for i in layers]
    original = [d.weight.detach().clone() for d in downs]
    prompts = [e.record.prompt for e in batch]
    pad = tokenizer.pad_token_id

    def memorised() -> float:
        answers = decode(tokenizer, greedy_answers(model, tokenizer, prompts, batch_size=25, desc="answers"))
        return sum(p["loose"] for p in score_answers([e.record for e in batch], answers)) / len(batch)

    plain = {t: [mine[0] for mine in requests(tokenizer, batch, t)] for t in args.tokens}  # unprefixed: ids, key

    def at(module, token: str, inputs: bool = False):  # `module`'s input or output at each fact's key token
        return forward_at(model, module, [i for i, _ in plain[token]], [c for _, c in plain[token]], pad, inputs=inputs)

    def states(token: str):  # each fact's state at the last edited layer
        return at(model.get_decoder().layers[layers[-1]], token)

    for token in args.tokens:  # how alike the batch's keys are, at the band's first and last layer
        alike = []
        for i, down in ((layers[0], downs[0]), (layers[-1], downs[-1])):
            keys = F.normalize(at(down, token, inputs=True), dim=-1)
            cos = keys @ keys.T
            alike.append(f"layer {i} {(cos.sum() - cos.diagonal().sum()) / (len(batch) ** 2 - len(batch)):.3f}")
        print(f"keys at the {token} token, mean pairwise cosine: {', '.join(alike)}\n")
    unedited = {token: states(token) for token in args.tokens}
    head = "| key token | values | value steps | lr | decay | edits at once | mean value NLL | edit s/fact |"
    print(f"{head} update weight | change reached | train memorisation ({len(batch)}) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    base = memorised()
    print(f"| (unedited) | | | | | | | | | | {base:.2f} |")
    grid = itertools.product(args.tokens, args.values, args.steps, args.lrs, args.decays, args.batches)
    for token, per, steps, lr, decay, size in grid:
        config.memit_token, config.memit_values, config.memit_steps = token, per, steps
        config.lr, config.memit_decay = lr, decay
        chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
        # One batch: its values are the unedited model's, found once for every weight. Sequential batches: each
        # batch's values are found on the model the batches before it edited, so again for every weight.
        started = time.monotonic()
        found = values(model, tokenizer, batch, layers[-1], config) if len(chunks) == 1 else None
        found_s = time.monotonic() - started
        for weight in args.weights:
            config.memit_update_weight = weight
            started, nll = time.monotonic(), []
            for chunk in chunks:
                z, losses = found or values(model, tokenizer, chunk, layers[-1], config)
                update(model, tokenizer, chunk, z, layers, moments, config)
                nll += losses
            per_fact = (found_s + time.monotonic() - started) / len(batch)  # values and updates
            reached = ""
            if found:  # how much of the asked change (z - state) the update delivered, on average over the facts
                asked = found[0] - unedited[token]
                left = (found[0] - states(token)).norm(dim=-1) / asked.norm(dim=-1)
                reached = f"{1 - left.mean().item():.2f}"
            score = memorised()
            for d, w in zip(downs, original, strict=True):
                d.weight.data.copy_(w)
            row = f"| {token} | {per} | {steps} | {lr:g} | {decay:g} | {size} | {sum(nll) / len(nll):.3f} |"
            print(f"{row} {per_fact:.1f} | {weight:g} | {reached} | {score:.2f} |", flush=True)


if __name__ == "__main__":
    main()
