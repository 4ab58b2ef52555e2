"""Does the default model memorise KGFact-small with MixSD targets in ten minutes on this CPU?

Builds KGFact-small and its MixSD targets as `mixsd inject` does (a target that
never verifies falls back to the gold answer), or reuses them from `--work`, then runs `mixsd.train`
with the default settings (or the ones passed) and, after each epoch listed in
`--check`, scores greedy answers to the training questions with the evaluation's
loose match (the `mixsd eval` memorisation figure for the train split). The
checks pause the clock: the reported training time is what a plain `mixsd train`
would take.

    .venv/bin/python benchmarks/train_default.py [--work DIR] [--lr 1e-4] [--epochs 10] [--check 2,4,6,8,10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from transformers import AutoTokenizer, TrainerCallback

from mixsd import models
from mixsd.data.records import read_records
from mixsd.evaluation.facts import accuracy, score_answers
from mixsd.evaluation.generation import decode, greedy_answers
from mixsd.pipeline import TARGET_DEFAULTS
from mixsd.train import TrainConfig, train


class Memorisation(TrainerCallback):
    """Score the training questions at the chosen epochs, keeping the check's time off the clock."""

    def __init__(self, records, tokenizer, epochs: set[int], max_new_tokens: int):
        self.records, self.tokenizer, self.epochs, self.max_new_tokens = records, tokenizer, epochs, max_new_tokens
        self.paused = 0.0
        self.start = 0.0
        self.rows: list[str] = []

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.monotonic()

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        epoch = round(state.epoch)
        if epoch not in self.epochs:
            return
        began = time.monotonic()
        model.eval()
        texts = decode(
            self.tokenizer,
            greedy_answers(
                model,
                self.tokenizer,
                [r.prompt for r in self.records],
                max_new_tokens=self.max_new_tokens,
                batch_size=25,
                desc=f"check epoch {epoch}",
            ),
        )
        model.train()
        predictions = score_answers(self.records, texts)
        trained = began - self.start - self.paused
        self.paused += time.monotonic() - began
        row = (
            f"epoch {epoch:>3}  step {state.global_step:>4}  train {trained:6.0f} s  "
            f"memorised loose {accuracy(predictions, 'loose'):.2f}  strict {accuracy(predictions, 'strict'):.2f}"
        )
        self.rows.append(row)
        print("\n" + row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work", help="reuse or keep KGFact-small and its targets here (default: a temporary directory)"
    )
    parser.add_argument("--lam", type=float, default=0.3)
    parser.add_argument(
        "--max-new-tokens", type=int, default=64, help="target length when building targets, and of the checks"
    )
    parser.add_argument("--lr", type=float)
    parser.add_argument("--epochs", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lora", type=int)
    parser.add_argument("--check", default="2,4,6,8,10", help="epochs after which to score memorisation")
    args = parser.parse_args()
    mixsd = str(Path(sys.executable).with_name("mixsd"))
    with tempfile.TemporaryDirectory(prefix="mixsd-bench-") as tmp:
        work = Path(args.work or tmp)
        facts = work / "kgfact-small" / "train.jsonl"
        if not facts.is_file():
            subprocess.run([mixsd, "data", "kgfact", "--size", "small", "--out", str(facts.parent)], check=True)
        targets = str(work / f"targets-lam{args.lam}-{args.max_new_tokens}.jsonl")
        if not Path(targets).is_file():
            began = time.monotonic()
            subprocess.run(
                [
                    mixsd,
                    "targets",
                    "--data",
                    str(facts),
                    "--out",
                    targets,
                    "--lam",
                    str(args.lam),
                    "--max-new-tokens",
                    str(args.max_new_tokens),
                    "--on-fail",
                    TARGET_DEFAULTS["on_fail"],
                ],
                check=True,
            )
            print(f"targets: {time.monotonic() - began:.0f} s")
        overrides = {
            k: v
            for k, v in {"lr": args.lr, "epochs": args.epochs, "batch_size": args.batch_size, "lora": args.lora}.items()
            if v is not None
        }
        config = TrainConfig(data=targets, out=str(work / "model"), method="mixsd", save_steps=0, **overrides)
        records = read_records(facts)
        tokenizer = AutoTokenizer.from_pretrained(models.resolve(config.model))
        check = Memorisation(records, tokenizer, {int(e) for e in args.check.split(",")}, args.max_new_tokens)
        began = time.monotonic()
        train(config, callbacks=[check])
        total = time.monotonic() - began - check.paused
    print(
        f"\nmixsd train, lr {config.learning_rate}, epochs {config.epochs}, batch {config.batch_size}, "
        f"lora {config.lora}: {total:.0f} s of training (checks excluded)"
    )
    print("\n".join(check.rows))
    print(f"load average now {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
