"""Make the embedded model's locality known set, the package data `mixsd eval --suite locality` ships with.

    python benchmarks/locality_known.py            # writes src/mixsd/evaluation/known/smollm2-135m.json.gz

It runs the base pass (evaluation/locality.py) with `mixsd eval`'s default settings and prints, per pool, the items
scored, those right once, those right again alone (the known set), and the pass's cost. Run it alone on the
machine: its seconds are the figure docs/evaluation.md quotes.
"""

from __future__ import annotations

import argparse
import platform

import torch

from mixsd import models
from mixsd.evaluation import locality
from mixsd.evaluation.config import EvalConfig
from mixsd.settings import DEFAULT_MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a model alias (the known set ships under its name)")
    args = parser.parse_args()
    config = EvalConfig(model=args.model, base=args.model, suite="locality")
    model, tokenizer = models.load(args.model, dtype=config.dtype, device=config.device)
    key = locality.known_key(config, model, tokenizer)
    known = locality.base_pass(model, tokenizer, key, score=locality.scorer(config))
    path = locality.save_shipped(known, args.model)
    print("| pool | family | scored | right once | known (right twice) |\n|---|---|---|---|---|")
    for task, pool in known.pools.items():
        print(f"| {task} | {pool['family']} | {pool['pool']} | {pool['right_once']} | {len(pool['doc_ids'])} |")
    by_family = {f: sum(len(p["doc_ids"]) for p in known.pools.values() if p["family"] == f) for f in locality.FAMILIES}
    print(f"\nknown items: {known.n} ({', '.join(f'{f} {n}' for f, n in by_family.items())})")
    print(
        f"base pass: {known.seconds:.0f} s on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}; written to {path}"
    )


if __name__ == "__main__":
    main()
