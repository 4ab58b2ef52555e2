"""Time `mixsd eval` with the default model: the default suite alone, then with KGFact-small.

Each run is a plain `mixsd eval` command, with `--no-cache` unless it says warm:
- suite: the default model on the default benchmark suite only; one model's
  pass (goal <= 3 minutes on a 2-core CPU) and the base accuracy per task;
- self: the default model on KGFact-small and the default suite (`--model`
  and `--base` are the same weights, so it is scored once) (goal <= 10 minutes);
- cold: a tuned model against the default model on KGFact-small and the
  default suite, both scored. The tuned model is a copy of the default model
  in another directory, so it is loaded and scored as a model of its own, and
  it answers at full length (a trained model stops sooner): the worst case;
- warm: the same as cold with the base's results from the cache, as every run
  of a sweep after the first.

    .venv/bin/python benchmarks/eval_default.py [--runs suite,self,cold,warm] [--facts DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mixsd import models


def timed(command: list[str]) -> float:
    print(f"$ {' '.join(command)}   (load average {os.getloadavg()[0]:.2f})", flush=True)
    started = time.time()
    subprocess.run(command, check=True)
    return time.time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="suite,self,cold,warm", help="comma-separated: suite, self, cold, warm")
    parser.add_argument("--facts", help="a KGFact directory (default: build KGFact-small, seed 0)")
    args = parser.parse_args()
    runs = args.runs.split(",")
    mixsd = str(Path(sys.executable).with_name("mixsd"))
    summary = []
    with tempfile.TemporaryDirectory(prefix="mixsd-bench-") as tmp:
        facts = args.facts or f"{tmp}/kgfact-small"
        if not args.facts:
            subprocess.run([mixsd, "data", "kgfact", "--size", "small", "--out", facts], check=True)
        if {"cold", "warm"} & set(runs):
            shutil.copytree(models.resolve(models.DEFAULT_MODEL), f"{tmp}/tuned")
        default = models.DEFAULT_MODEL
        commands = {
            "suite": [
                "--model",
                default,
                "--suite",
                "default",
                "--drift-items",
                "0",
                "--fisher-items",
                "0",
                "--no-cache",
            ],
            "self": ["--model", default, "--facts", facts, "--no-cache"],
            "cold": ["--model", f"{tmp}/tuned", "--base", default, "--facts", facts, "--no-cache"],
            "warm": ["--model", f"{tmp}/tuned", "--base", default, "--facts", facts],
        }
        for run in runs:
            out = f"{tmp}/{run}.json"
            seconds = timed([mixsd, "eval", *commands[run], "--out", out])
            result = json.loads(Path(out).read_text())
            stages = ", ".join(f"{k} {v:.0f}" for k, v in result["timing_s"].items())
            summary.append(f"{run}: {seconds:.0f} s; by stage (s): {stages}")
            mean = result.get("retention", {}).get("mean", {})
            drift = result.get("analyses", {}).get("drift", {})
            summary.append(
                f"  mean retention {mean.get('retention')}, drift KL {drift.get('mean_kl')}, "
                f"changed answers {drift.get('changed_fraction')}"
            )
            if result.get("benchmarks"):
                summary.append(
                    "  base accuracy: "
                    + ", ".join(
                        f"{name} {row['base']:.3f} ({row['metric']}, n={row['n']}, chance {row['chance']:.2f})"
                        for name, row in result["benchmarks"].items()
                    )
                )
    print("\n" + "\n".join(summary))
    print(f"load average now {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
