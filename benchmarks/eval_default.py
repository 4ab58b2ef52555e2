"""Time `mixsd eval` with the default model: the default suite alone, then with KGFact-small.

Three runs, each a plain `mixsd eval` command:
- suite: the default model against itself on the default benchmark suite only,
  so the model is scored once: one model's pass (goal <= 3 minutes on a
  2-core CPU) and the base model's accuracy per task;
- cold: a tuned model (a copy of the default model in another directory, so it
  is loaded and scored as a model of its own) against the default model on
  KGFact-small and the default suite, with `--no-cache`: both models scored,
  the worst case (goal <= 10 minutes);
- warm: the same command with the base's results from the cache, as every run
  of a sweep after the first.

    .venv/bin/python benchmarks/eval_default.py [--runs suite,cold,warm] [--facts DIR]
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
    parser.add_argument("--runs", default="suite,cold,warm", help="comma-separated: suite, cold, warm")
    parser.add_argument("--facts", help="a KGFact directory (default: build KGFact-small, seed 0)")
    args = parser.parse_args()
    runs = args.runs.split(",")
    mixsd = str(Path(sys.executable).with_name("mixsd"))
    summary = []
    with tempfile.TemporaryDirectory(prefix="mixsd-bench-") as tmp:
        if "suite" in runs:
            seconds = timed([mixsd, "eval", "--model", models.DEFAULT_MODEL, "--suite", "default", "--no-cache",
                             "--drift-items", "0", "--fisher-items", "0", "--out", f"{tmp}/suite.json"])
            result = json.loads(Path(f"{tmp}/suite.json").read_text())
            accuracy = ", ".join(f"{name} {row['base']:.3f} ({row['metric']}, n={row['n']}, chance {row['chance']:.2f})"
                                 for name, row in result["benchmarks"].items())
            summary += [f"suite: one pass of the default model {result['timing_s']['benchmarks']:.0f} s "
                        f"(command {seconds:.0f} s); accuracy {accuracy}"]
        facts = args.facts or f"{tmp}/kgfact-small"
        if not args.facts and {"cold", "warm"} & set(runs):
            subprocess.run([mixsd, "data", "kgfact", "--size", "small", "--out", facts], check=True)
        tuned = f"{tmp}/tuned"
        if {"cold", "warm"} & set(runs):
            shutil.copytree(models.resolve(models.DEFAULT_MODEL), tuned)
        command = [mixsd, "eval", "--model", tuned, "--base", models.DEFAULT_MODEL, "--facts", facts]
        for run in ("cold", "warm"):
            if run in runs:
                seconds = timed([*command, *(["--no-cache"] if run == "cold" else []), "--out", f"{tmp}/{run}.json"])
                stages = json.loads(Path(f"{tmp}/{run}.json").read_text())["timing_s"]
                summary += [f"{run}: {seconds:.0f} s; by stage: " + ", ".join(f"{k} {v:.0f}" for k, v in stages.items())]
    print("\n" + "\n".join(summary))
    print(f"load average now {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
