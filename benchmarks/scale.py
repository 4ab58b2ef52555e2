"""How each stage's time and peak memory grow with the number of facts (issue #34, its CPU part).

For each size, a KGFact corpus of about that many train facts (the `large` shape, with more entities per domain
beyond its 525), then a one-run `mixsd sweep --stage S` for each stage in its own process, as a user runs it:
wall time and the process's peak RSS (from wait4) per stage. With the default tiny model (2 layers, 64 wide,
SmolLM2's tokenizer, random weights, built from a config) the model costs little and the pipeline's own overhead
shows: corpus build, target bookkeeping, training data preparation, scoring, the report. With `--model
smollm2-135m` the real model's targets and scoring. Results go to `--out`/scale.json, resumably: a (model,
size, stage) already there is skipped.

    python benchmarks/scale.py --sizes 100 1000 10000 --out docs/scale
    python benchmarks/scale.py --sizes 100 1000 --model smollm2-135m --stages targets eval --out docs/scale
    python benchmarks/scale.py --plot --out docs/scale       # prints the table (with growth), writes scale.png

Run it alone on the machine: the times are the CPU's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("corpus", "targets", "train", "eval", "report")
TINY = "tiny"
SETTINGS = {  # one epoch and short answers: the costs that grow with the corpus, not a good model
    "targets": {"max_new_tokens": 32},
    "train": {"epochs": 1, "batch_size": 8, "save_steps": 0},
    "eval": {"suite": "none", "general_prompts": 0, "drift_items": 0, "fisher_items": 0, "max_new_tokens": 32},
}


def build_corpus(out: Path, facts: int) -> int:
    """KGFact's `large` shape (7 domains, 21 domain pairs) with enough entities a domain for `facts` train facts."""
    from mixsd.data import kgfact

    large = kgfact.SIZES["large"]
    name = f"scale{facts}"
    kgfact.SIZES[name] = kgfact.Size(large.domains, max(1, math.ceil(facts / 21)), 100, 50)
    return kgfact.build_kgfact(out, name)["facts"]


def tiny_model(out: Path) -> None:
    """A 2-layer Llama with SmolLM2's tokenizer and random weights (the tests' tiny model), saved once."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from mixsd import models

    if not (out / "config.json").is_file():
        _, tokenizer = models.load(models.DEFAULT_MODEL, dtype="float32", device="cpu")
        torch.manual_seed(0)
        shape = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
        config = LlamaConfig(vocab_size=len(tokenizer), num_key_value_heads=2, tie_word_embeddings=True, **shape)
        config.bos_token_id, config.eos_token_id, config.pad_token_id = 1, 2, 2
        models.save_into(LlamaForCausalLM(config).eval(), tokenizer, out)


def measure(argv: list[str], log: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a child process; a failure stops the benchmark with its log's tail."""
    started = time.monotonic()
    with log.open("w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{log.read_text()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "scale.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else []
    done = {(r["model"], r["size"], r["stage"]) for r in results}
    work = Path(args.work or tempfile.mkdtemp(prefix="mixsd-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model == TINY:  # built in a child: the parent stays small, since a child's peak RSS starts from its parent's
        model = str(work / "tiny-model")
        measure([sys.executable, __file__, "--tiny-model", "--out", model], work / "tiny-model.log")
    config = work / "sweep.yaml"
    for size in args.sizes:
        corpus, runs = work / f"corpus-{size}", work / f"{args.model}-{size}"
        for stage in args.stages:
            if (args.model, size, stage) in done:
                continue
            log = work / f"{args.model}-{size}-{stage}.log"
            build = [sys.executable, __file__, "--corpus-only", str(size), "--out", str(corpus)]
            if stage != "corpus" and not (corpus / "train.jsonl").is_file():
                measure(build, log)  # the corpus the stage reads, not timed here
            sweep = {"model": model, "facts": str(corpus), "grid": [{"method": "mixsd"}]} | SETTINGS
            config.write_text(json.dumps(sweep))  # JSON is YAML
            argv = [sys.executable, "-m", "mixsd", "sweep", "--config", str(config), "--out", str(runs)]
            seconds, peak = measure(build if stage == "corpus" else [*argv, "--stage", stage], log)
            facts = sum(1 for _ in (corpus / "train.jsonl").open())
            row = {"model": args.model, "size": size, "facts": facts, "stage": stage}
            results.append(row | {"seconds": round(seconds, 2), "peak_mb": round(peak, 1)})
            results_path.write_text(json.dumps(results, indent=1) + "\n")
            print(f"{args.model} {facts:>6} facts  {stage:<8} {seconds:8.1f} s  {peak:8.0f} MB", flush=True)


def growth(rows: list[dict], stage: str, key: str) -> tuple[float, float] | None:
    """(exponent of `key` against facts, ratio) between the two largest sizes of a stage: 1 is linear."""
    mine = sorted((r for r in rows if r["stage"] == stage), key=lambda r: r["facts"])
    if len(mine) < 2:
        return None
    a, b = mine[-2], mine[-1]
    ratio = b[key] / a[key]
    return math.log(ratio) / math.log(b["facts"] / a["facts"]), ratio


def plot(out: Path) -> None:
    """Print a table per model, with each stage's growth between the two largest sizes; write scale.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = json.loads((out / "scale.json").read_text())
    lines = []
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for model in dict.fromkeys(r["model"] for r in results):
        rows = [r for r in results if r["model"] == model]
        sizes = sorted({r["facts"] for r in rows})
        lines += [f"### {model}", "", "| stage | " + " | ".join(f"{n:,} facts" for n in sizes) + " | growth |"]
        lines.append("|---|" + "---|" * (len(sizes) + 1))
        for stage in STAGES:
            mine = {r["facts"]: r for r in rows if r["stage"] == stage}
            if not mine:
                continue
            cells = [f"{mine[n]['seconds']:.1f} s, {mine[n]['peak_mb']:.0f} MB" if n in mine else "" for n in sizes]
            time_growth, memory_growth = (
                growth(list(mine.values()), stage, "seconds"),
                growth(list(mine.values()), stage, "peak_mb"),
            )
            note = ""
            if time_growth and memory_growth:
                note = f"time n^{time_growth[0]:.2f}, memory x{memory_growth[1]:.2f}"
            lines.append(f"| {stage} | " + " | ".join(cells) + f" | {note} |")
            xs = sorted(mine)
            for ax, key in zip(axes, ("seconds", "peak_mb"), strict=True):
                ax.plot(xs, [mine[x][key] for x in xs], marker="o", label=f"{stage} ({model})")
        lines.append("")
    for ax, label in zip(axes, ("wall seconds (a process per stage)", "peak RSS, MB"), strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("train facts")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "scale.png", dpi=110)
    growth_note = "growth: between the two largest sizes, time as n^k (1 is linear) and the peak memory's ratio."
    print("\n".join(lines) + growth_note)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--model", default=TINY, help="'tiny' (built from a config) or a model alias / directory")
    parser.add_argument("--out", default="docs/scale", help="where scale.json (and with --plot, the table and plot)")
    parser.add_argument("--work", help="where corpora, runs and logs go (default: a temporary directory)")
    parser.add_argument("--plot", action="store_true", help="print the table and write scale.png from scale.json")
    parser.add_argument("--corpus-only", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tiny-model", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tiny_model:
        tiny_model(Path(args.out))
    elif args.corpus_only:
        build_corpus(Path(args.out), args.corpus_only)
    elif args.plot:
        plot(Path(args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
