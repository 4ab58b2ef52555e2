"""Why MEMIT's 50-fact batch learns nothing while a single edit works: the values' NLL, and train memorisation
against the update weight, the value steps, the band, `--memit-preserve` and the batch, on the embedded model.

Values (step 1) are computed once per (steps, lr, decay, band's last layer) on the unedited model and reused for
every band ending there, every update weight and every preserve weight (step 2 restores the down-projections after
each), so a grid costs one value pass per value setting; `--values-cache DIR` keeps them for the next run.
"change reached" says how much of each fact's asked change of state (z minus its unedited state, at the last edited
layer) the update delivered: 1 is all of it, 0 none. "gold NLL" is each gold answer's NLL a token under the edited
model (the values reached "mean value NLL"); "the key's state alone" is the same under the unedited model with only
the key token's state at the last edited layer set to what the edit made it: if that is low and the edited model's
is not, the edit works at the key and breaks elsewhere. With `--batches` smaller than N the facts are edited a
batch at a time, each batch's values found on the model the batches before it edited (`mixsd train
--memit-batch`), which costs a value pass per update weight. Memorisation is scored as `mixsd eval` scores it:
greedy answers to the chat-rendered question, loose match of the gold. The gold NLLs are the box's, without the end
of turn the values also ask for (`--no-stop`: they do not).

    python benchmarks/memit_ablation.py --facts data/kgfact-demo/train.jsonl --n 50 \\
        --weights 1406 300 60 --steps 60 --lrs 0.5 --preserves 0 1 10
    python benchmarks/memit_ablation.py --n 20 --one-per-subject --weights 1406 300 60 --steps 60 --bands 3-12 12

Run it alone on the machine: on 2 CPU cores the values take about 40 s a fact at 60 steps.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import time
from pathlib import Path
from statistics import mean, median

import torch
import torch.nn.functional as F

from mixsd import models
from mixsd.chat import use_format
from mixsd.evaluation.facts import score_answers
from mixsd.evaluation.general import gold_nll
from mixsd.evaluation.generation import decode, greedy_answers
from mixsd.io import atomic_open, file_sha256
from mixsd.train.config import TrainConfig
from mixsd.train.memit import (
    default_layers,
    edits,
    forward_at,
    requests,
    second_moment,
    statistics_dir,
    target_ids,
    update,
    values,
)


def _band(text: str) -> list[int]:
    """'3-12' is layers 3 to 12, '12' layer 12 alone."""
    first, _, last = text.partition("-")
    return list(range(int(first), int(last or first) + 1))


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
    parser.add_argument(
        "--bands", nargs="+", default=None, help="edited layers as FIRST-LAST (default: the authors' middle band)"
    )
    parser.add_argument(
        "--preserves", type=float, nargs="+", default=[0.0], help="hold the requests' other tokens (--memit-preserve)"
    )
    parser.add_argument(
        "--stop", action=argparse.BooleanOptionalAction, default=True, help="values end with the end of turn"
    )
    parser.add_argument("--values-cache", help="a folder to keep each batch's values in and read them back from")
    parser.add_argument("--stat-tokens", type=int, default=100_000)
    args = parser.parse_args()

    model, tokenizer = models.load(args.model, dtype="float32")
    config = TrainConfig(data=args.facts, out="unused", method="memit", model=args.model, memit_stop=args.stop)
    use_format(tokenizer, config.prompt_format)
    model.requires_grad_(False)
    facts = edits(args.facts)[0]
    if args.one_per_subject:  # each subject's first fact: no two edits share a key
        first = {}
        for e in facts:
            first.setdefault(e.subject, e)
        facts = list(first.values())
    batch = facts[: args.n]
    band = default_layers(len(model.get_decoder().layers))
    bands = [_band(b) for b in args.bands] if args.bands else [band]
    union = sorted({i for b in bands for i in b})
    key = f"tokens{args.stat_tokens}-layers{'_'.join(map(str, union))}.pt"
    moments = second_moment(model, tokenizer, union, args.stat_tokens, statistics_dir(args.model) / key)
    downs = [model.get_decoder().layers[i].mlp.down_proj for i in union]
    original = [d.weight.detach().clone() for d in downs]
    prompts = [e.record.prompt for e in batch]
    pad = tokenizer.pad_token_id

    def memorised() -> float:
        answers = decode(tokenizer, greedy_answers(model, tokenizer, prompts, batch_size=25, desc="answers"))
        return sum(p["loose"] for p in score_answers([e.record for e in batch], answers)) / len(batch)

    plain = {t: [mine[0] for mine in requests(tokenizer, batch, t)] for t in args.tokens}  # unprefixed: ids, key

    def at(module, token: str, inputs: bool = False):  # `module`'s input or output at each fact's key token
        return forward_at(model, module, [i for i, _ in plain[token]], [c for _, c in plain[token]], pad, inputs=inputs)

    def states(token: str, layer: int):  # each fact's state at `layer`'s output
        return at(model.get_decoder().layers[layer], token)

    def kept_values(args, batch, setting: tuple, config):
        """The batch's values at one setting, read back from `--values-cache` when an earlier run saved them (they
        depend only on the model, the facts and the setting: the search is deterministic)."""
        if not args.values_cache:
            return values(model, tokenizer, batch, setting[-1], config)
        ids = hashlib.sha256(json.dumps([[e.record.id for e in batch], setting, args.model]).encode()).hexdigest()
        path = Path(args.values_cache) / f"values-{file_sha256(args.facts)[:12]}-{ids[:12]}.pt"
        if path.is_file():
            return torch.load(path, weights_only=True)
        found = values(model, tokenizer, batch, setting[-1], config)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as f:
            torch.save(found, f)
        return found

    def alone(token: str, layer: int, edited) -> list[float]:
        """Each fact's gold NLL per token under the unedited model with only its key token's state at `layer` set
        to what the edited model made it: what the edit carries through that one state, the rest left as it was."""
        block, nll = model.get_decoder().layers[layer], []
        for (ids, col), edit, h in zip(plain[token], batch, edited, strict=True):
            answer = target_ids(tokenizer, edit, stop=False)

            def hook(_module, _args, out, col=col, h=h):
                stream = (out[0] if isinstance(out, tuple) else out).clone()
                stream[0, col] = h
                return (stream, *out[1:]) if isinstance(out, tuple) else stream

            handle = block.register_forward_hook(hook)
            try:
                with torch.no_grad():
                    logits = model(input_ids=torch.tensor([ids + answer[:-1]])).logits[0, len(ids) - 1 :]
            finally:
                handle.remove()
            nll.append(F.cross_entropy(logits.float(), torch.tensor(answer)).item())
        return nll

    for token in args.tokens:  # how alike the batch's keys are, at the first and last layer edited
        alike = []
        for i, down in ((union[0], downs[0]), (union[-1], downs[-1])):
            keys = F.normalize(at(down, token, inputs=True), dim=-1)
            cos = keys @ keys.T
            alike.append(f"layer {i} {(cos.sum() - cos.diagonal().sum()) / (len(batch) ** 2 - len(batch)):.3f}")
        print(f"keys at the {token} token, mean pairwise cosine: {', '.join(alike)}\n")
    lasts = sorted({b[-1] for b in bands})
    unedited = {(token, last): states(token, last) for token in args.tokens for last in lasts}
    targets = [(e.record.prompt, f"\\boxed{{{e.record.gold}}}") for e in batch]
    head = "| key token | values | value steps | lr | decay | edits at once | mean value NLL | edit s/fact | layers |"
    head += " update weight | preserve | change reached | gold NLL, the key's state alone |"
    print(f"{head} gold NLL: mean / median | memorised ({len(batch)}) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    base = memorised()
    gold = gold_nll(model, tokenizer, targets)
    print(f"| (unedited) | | | | | | | | | | | | | {mean(gold):.3f} / {median(gold):.3f} | {base:.2f} |")
    grid = itertools.product(args.tokens, args.values, args.steps, args.lrs, args.decays, args.batches)
    for token, per, steps, lr, decay, size in grid:
        config.memit_token, config.memit_values, config.memit_steps = token, per, steps
        config.lr, config.memit_decay = lr, decay
        chunks = [batch[i : i + size] for i in range(0, len(batch), size)]
        # One batch: its values are the unedited model's at a band's last layer, found once for every band ending
        # there and every weight. Sequential batches: each batch's values are found on the model the batches
        # before it edited, so again for every band and weight.
        found: dict[int, tuple] = {}
        found_s: dict[int, float] = {}
        for layers, weight, keep in itertools.product(bands, args.weights, args.preserves):
            last = layers[-1]
            if len(chunks) == 1 and last not in found:
                started = time.monotonic()
                found[last] = kept_values(args, batch, (token, per, steps, lr, decay, args.stop, last), config)
                found_s[last] = time.monotonic() - started
            config.memit_update_weight, config.memit_preserve = weight, keep
            started, nll = time.monotonic(), []
            for chunk in chunks:
                z, losses = found.get(last) or values(model, tokenizer, chunk, last, config)
                update(model, tokenizer, chunk, z, layers, moments, config)
                nll += losses
            per_fact = (found_s.get(last, 0.0) + time.monotonic() - started) / len(batch)  # values and updates
            edited, reached = states(token, last), ""
            if last in found:  # how much of the asked change (z - state) the update delivered, averaged over facts
                asked = found[last][0] - unedited[token, last]
                left = (found[last][0] - edited).norm(dim=-1) / asked.norm(dim=-1)
                reached = f"{1 - left.mean().item():.2f}"
            score, gold = memorised(), gold_nll(model, tokenizer, targets)
            for d, w in zip(downs, original, strict=True):
                d.weight.data.copy_(w)
            lone = alone(token, last, edited)
            row = f"| {token} | {per} | {steps} | {lr:g} | {decay:g} | {min(size, len(batch))} |"
            row += f" {sum(nll) / len(nll):.3f} |"
            where = f"{layers[0]}-{last}" if len(layers) > 1 else f"{last}"
            print(
                f"{row} {per_fact:.1f} | {where} | {weight:g} | {keep:g} | {reached} | {mean(lone):.3f} "
                f"| {mean(gold):.3f} / {median(gold):.3f} | {score:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
