"""`mixsd` command line: a thin argparse layer over the Python API.

Each subcommand parses flags into the stage's config dataclass and calls one
API function. A `MixsdError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

from mixsd import __version__
from mixsd.errors import MixsdError


def cmd_models(args: argparse.Namespace) -> None:
    from mixsd import models

    print(f"cache: {models.cache_dir()}  (set MIXSD_CACHE to move it)")
    for row in models.list_models():
        print(f"{row['alias']:<14} {row['description']}")
        print(f"{'':<14} {row['status']}: {row['cache']}")
    print("Any Hugging Face model id, local directory or .gguf file also works as --model.")


def cmd_demo(args: argparse.Namespace) -> None:
    from mixsd.demo import run_demo

    run_demo(model=args.model, out=args.out)


def cmd_inject(args: argparse.Namespace) -> None:
    from mixsd.pipeline import InjectConfig, inject, load_yaml

    values = load_yaml(args.config) if args.config else {}
    for key in ("model", "facts", "out", "lam", "method", "lora"):
        if getattr(args, key) is not None:  # flags override the config file
            values[key] = getattr(args, key)
    inject(InjectConfig.from_mapping(values, args.config or "command line"))


def cmd_sweep(args: argparse.Namespace) -> None:
    from mixsd.sweep import sweep

    specs = sweep(args.config, args.out, runs=args.runs, stop_after=args.stage, dry_run=args.dry_run)
    if args.dry_run:
        print("\n".join(s.name for s in specs))


def cmd_report(args: argparse.Namespace) -> None:
    from mixsd.report.sweep import write_sweep_report

    print(write_sweep_report(args.dir))


def cmd_targets(args: argparse.Namespace) -> None:
    from mixsd.targets.generate import TargetConfig, generate_targets

    config = TargetConfig(**{k: v for k, v in vars(args).items() if k not in ("func", "command")})
    report = generate_targets(config)
    print(f"{report.written} targets in {report.out}: {report.verified} verified by mixsd, "
          f"{len(report.gold_fallback)} ground-truth fallbacks, {len(report.unverified)} unverified, "
          f"{len(report.skipped)} skipped; {report.tokens} tokens, mean naive fraction "
          f"{report.mean_naive_fraction:.2f}, {report.seconds:.0f}s (details: {report.out}.report.json)")


def cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import fields

    from mixsd.train import TrainConfig, train

    names = {f.name for f in fields(TrainConfig)}
    train(TrainConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None}))


def cmd_data_import(args: argparse.Namespace) -> None:
    from mixsd.data.records import import_records

    result = import_records(args.input, args.out, skip_bad=args.skip_bad, context_from=args.context)
    print(f"wrote {result.written} records to {args.out}")
    _print_skipped(args.input, result.skipped)


def _print_skipped(path: str, skipped: list[tuple[int, str]]) -> None:
    if skipped:
        print(f"skipped {len(skipped)} bad lines:")
        for line, reason in skipped:
            print(f"  {path}:{line}: {reason}")


def cmd_data_convert(args: argparse.Namespace) -> None:
    from mixsd.data import convert

    run = convert.convert_simpleqa if args.data_command == "simpleqa" else convert.convert_mquake
    result = run(args.input, args.out, skip_bad=args.skip_bad)
    print(f"{args.data_command} in {args.out}: " + ", ".join(f"{s} {n}" for s, n in result.written.items()))
    _print_skipped(args.input, result.skipped)


def cmd_data_kgfact(args: argparse.Namespace) -> None:
    from mixsd.data.kgfact import build_kgfact

    manifest = build_kgfact(args.out, size=args.size, seed=args.seed)
    print(f"KGFact {args.size} (seed {args.seed}) in {args.out}: " + ", ".join(f"{name} {f['records']}" for name, f in manifest["files"].items()))


def cmd_data_kgfunc(args: argparse.Namespace) -> None:
    from mixsd.data.kgfunc import build_kgfunc

    manifest = build_kgfunc(args.out, seed=args.seed, limit=args.limit)
    print(f"KGFunc (seed {args.seed}) in {args.out}: " + ", ".join(f"{name} {f['records']}" for name, f in manifest["files"].items()))


def cmd_eval(args: argparse.Namespace) -> None:
    from mixsd.evaluation import EvalConfig, evaluate, format_table

    config = EvalConfig(**{k: v for k, v in vars(args).items() if k not in ("func", "command", "no_cache")},
                        use_cache=not args.no_cache)
    print(format_table(evaluate(config)))
    print(f"every figure, the predictions and the command: {config.out}")


def cmd_nll(args: argparse.Namespace) -> None:
    from mixsd import models
    from mixsd.evaluation.nll import target_nll
    from mixsd.io import write_json

    model, tokenizer = models.load(args.model, dtype=args.dtype, device=args.device)
    rows = [target_nll(model, tokenizer, path, batch_size=args.batch_size) for path in args.files]
    for row in rows:
        print(f"{row['mean_nll']:.4f} nats/token  {row['records']:>5} records {row['tokens']:>7} tokens  {row['file']}")
    if args.out:
        write_json(args.out, {"model": args.model, "files": rows})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixsd",
        description="Inject new knowledge into a language model with Mixed Contextual Self-Distillation.",
    )
    parser.add_argument("--version", action="version", version=f"mixsd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list model aliases and where their converted weights are cached")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("demo", help="inject KGFact-small into the embedded model and report (what `make demo` runs)")
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--out", default="runs/demo", help="run directory (rerunning continues or skips finished stages)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("inject", help="targets -> train -> evaluate -> report, skipping stages that are up to date")
    p.add_argument("--model", help="base model (default smollm2-135m)")
    p.add_argument("--facts", help="facts file, or a directory with train.jsonl and evaluation splits")
    p.add_argument("--out", help="run directory: ends with model/, targets.jsonl, eval.json, report.md")
    p.add_argument("--lam", type=float, help="MixSD's naive-conditional probability (default 0.3)")
    p.add_argument("--method", choices=["mixsd", "sft", "opsd"], help="default mixsd")
    p.add_argument("--lora", type=int, metavar="R", help="LoRA rank (default: full fine-tuning)")
    p.add_argument("--config", help="YAML with the same keys, plus targets:/train:/eval: sections for each stage")
    p.set_defaults(func=cmd_inject)

    p = sub.add_parser("sweep", help="a grid of inject runs over methods, lam and hyper-parameters")
    p.add_argument("--config", required=True, help="sweep YAML (see mixsd.sweep)")
    p.add_argument("--out", required=True)
    p.add_argument("--runs", help="only runs whose name matches this glob (split a sweep across machines)")
    p.add_argument("--stage", choices=["targets", "train", "eval", "report"], help="stop after this stage")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="report.md and plots for a sweep directory (or one run)")
    p.add_argument("dir")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("targets", help="generate verified MixSD targets for a corpus (resumable)")
    p.add_argument("--model", default="smollm2-135m", help="alias, local directory, .gguf file or hub id")
    p.add_argument("--data", required=True, help="corpus JSONL (any format `mixsd data import` reads)")
    p.add_argument("--out", required=True, help="targets JSONL (TRL conversational format + a mixsd block)")
    p.add_argument("--lam", type=float, default=0.3, help="probability of the naive conditional per token")
    p.add_argument("--temperature", type=float, default=0.0, help="0: argmax of the picked conditional")
    p.add_argument("--top-k", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--retries", type=int, default=3, help="new attempts (fresh coins) for a target that fails")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16, help="records decoded together")
    p.add_argument("--expert-template", help="paper-kgfact, paper-kgfunc, paper-simpleqa (the authors' wording), "
                   "or a file or text with {question} and {context} (default: ours)")
    p.add_argument("--no-system-prompt", action="store_true",
                   help="no system turn in the prompts, as in the paper (a template that always writes one keeps it empty)")
    p.add_argument("--extract", choices=["boxed", "number", "boxed_or_number", "text"], default="boxed_or_number")
    p.add_argument("--strict", action="store_true", help="answer must equal gold (normalised), not contain it")
    p.add_argument("--on-fail", choices=["skip", "gold"], default="skip",
                   help="skip: keep the failed target marked verified=false (training drops it); gold: write y*")
    p.add_argument("--dtype", default="auto", help="auto: float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--device", help="default: cuda if available, else cpu")
    p.set_defaults(func=cmd_targets)

    p = sub.add_parser("train", help="fine-tune on MixSD targets (mixsd), corpus answers (sft) or by on-policy self-distillation (opsd)",
                       description="Unset options take the defaults of mixsd.train.TrainConfig (tuned for small models on a CPU).")
    p.add_argument("--model", help="base model: alias, directory or hub id (default smollm2-135m)")
    p.add_argument("--data", required=True, help="targets file (--method mixsd) or corpus file (sft, opsd)")
    p.add_argument("--method", required=True, choices=["mixsd", "sft", "opsd"])
    p.add_argument("--out", required=True, help="output directory for the trained model")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-4 full, 1e-3 LoRA)")
    p.add_argument("--epochs", type=float)
    p.add_argument("--batch-size", type=int, help="sequences per step (opsd: rollouts)")
    p.add_argument("--grad-accum", type=int)
    p.add_argument("--max-steps", type=int, help="stop after N optimiser steps (overrides --epochs)")
    p.add_argument("--max-length", type=int, help="max tokens of prompt + answer")
    p.add_argument("--seed", type=int)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: where the hardware computes bf16 natively)")
    p.add_argument("--lora", type=int, metavar="R", help="train a rank-R LoRA on all linear layers instead of all weights")
    p.add_argument("--lora-alpha", type=int, help="LoRA alpha (default 2R)")
    p.add_argument("--rslora", dest="use_rslora", action="store_true", default=None, help="rank-stabilised LoRA scaling")
    p.add_argument("--dora", dest="use_dora", action="store_true", default=None, help="weight-decomposed LoRA (DoRA)")
    p.add_argument("--save-adapter", action="store_true", default=None, help="save the LoRA adapter instead of merged weights")
    p.add_argument("--save-steps", type=int, help="checkpoint every N steps under OUT/checkpoints (0: never)")
    p.add_argument("--resume", action="store_true", default=None, help="continue from the last checkpoint in OUT")
    p.add_argument("--keep-checkpoints", action="store_true", default=None, help="keep OUT/checkpoints after success")
    p.add_argument("--kl", choices=["forward", "reverse", "jsd"], help="opsd: divergence direction (default forward)")
    p.add_argument("--top-k", type=int, help="opsd: tokens the divergence is taken over (default 64)")
    p.add_argument("--rollouts", type=int, help="opsd: sampled completions per prompt (default 1)")
    p.add_argument("--max-completion-length", type=int, help="opsd: max tokens per rollout (default 64)")
    p.add_argument("--temperature", type=float, help="opsd: rollout sampling temperature (default 1.0)")
    p.add_argument("--expert-template", help="opsd: expert prompt template (a paper-* name, or a file or text with {question} and {context})")
    p.add_argument("--no-system-prompt", action="store_true", default=None,
                   help="mixsd/sft: no system turn in the prompts (use it when the targets were made with it)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("data", help="build the KGFact / KGFunc corpora or import your own facts")
    data = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    p = data.add_parser("import", help="normalise a JSONL file of facts (ours, TRL messages, TRL prompt/privileged_context, question/answer)")
    p.add_argument("input", metavar="IN")
    p.add_argument("--out", required=True, help="output JSONL in the mixsd record format")
    p.add_argument("--skip-bad", action="store_true", help="leave out bad lines (and report them) instead of stopping")
    p.add_argument("--context", choices=["clear_answer", "answer"], default="clear_answer",
                   help="published data whose clear_answer states the fact (KGFact, MQuAKE): the expert sees that "
                   "statement (clear_answer) or the whole ground-truth answer turn, as the paper's targets do (answer)")
    p.set_defaults(func=cmd_data_import)
    for name, what, out in (("simpleqa", "a local SimpleQA CSV/JSONL (problem, answer, metadata) into facts", "output JSONL"),
                            ("mquake", "a local MQuAKE-CF JSON into facts (the edits) and a multi_hop split", "output directory")):
        p = data.add_parser(name, help=f"convert {what}")
        p.add_argument("input", metavar="FILE")
        p.add_argument("--out", required=True, help=out)
        p.add_argument("--skip-bad", action="store_true", help="leave out bad rows (and report them) instead of stopping")
        p.set_defaults(func=cmd_data_convert)
    p = data.add_parser("kgfact", help="build the synthetic world-graph corpus (train, paraphrase, two_hop, retrieval)")
    p.add_argument("--size", choices=["small", "large"], default="small", help="small: 100 facts, large: 525")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_data_kgfact)
    p = data.add_parser("kgfunc", help="build the digit-operation corpus (train, test, unseen, chain)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="keep only the first N training examples (default all 1,600)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_data_kgfunc)

    p = sub.add_parser("eval", help="memorisation of the facts and retention of the base model's abilities, side by side",
                       description="Unset options take the defaults of mixsd.evaluation.EvalConfig.")
    p.add_argument("--model", required=True, help="the tuned model: alias, directory, .gguf file or hub id")
    p.add_argument("--base", default="smollm2-135m", help="the model it was tuned from (its results are cached)")
    p.add_argument("--facts", help="facts directory (mixsd data kgfact|kgfunc) or one JSONL file (the train split)")
    p.add_argument("--suite", default="default",
                   help="default (seeded subset, ~3 min per model on 2 CPU cores), full, none, or comma-separated lm-eval task names")
    p.add_argument("--limit", type=int, help="at most N items per benchmark task and N records per fact split")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=64, help="for greedy answers to the fact questions")
    p.add_argument("--base-memorisation", action="store_true",
                   help="also answer the memorisation splits with the base model (probes always get both)")
    p.add_argument("--metric", default="auto",
                   help="per-item benchmark metric behind retention: auto (acc_norm for ARC-Challenge and HellaSwag, acc otherwise), acc, acc_norm")
    p.add_argument("--seed", type=int, default=0, help="benchmark subsets and bootstrap")
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the confidence intervals")
    p.add_argument("--drift-items", type=int, default=4, help="held-out prompts per benchmark task for drift (0: skip)")
    p.add_argument("--fisher-items", type=int, default=32, help="held-out items for the diagonal Fisher (0: skip)")
    p.add_argument("--targets", help="the file the model was trained on, for its NLL under the base model")
    p.add_argument("--no-cache", action="store_true", help="re-score the base model (and refresh its cached results) instead of reusing them")
    p.add_argument("--dtype", default="auto", help="auto: float32 on CPU, bfloat16 on CUDA")
    p.add_argument("--device", help="default: cuda if available, else cpu")
    p.add_argument("--out", default="eval.json")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("nll", help="mean per-token NLL of targets or corpus answers under a model, given the naive prompt")
    p.add_argument("files", nargs="+", help="targets files (mixsd targets) or corpus files (any record format)")
    p.add_argument("--model", default="smollm2-135m", help="usually the base model the targets were made with")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device")
    p.add_argument("--out", help="also write the figures to this JSON file")
    p.set_defaults(func=cmd_nll)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except MixsdError as e:
        print(f"mixsd: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mixsd: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
