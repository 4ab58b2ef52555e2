"""`mixsd` command line: a thin argparse layer over the Python API.

The flags of `inject`, `targets`, `train` and `eval` are generated from the
stage's config dataclass (`mixsd.settings`), so a setting is defined once, with
its default and help; each of those commands also reads `--config YAML`.

Errors reach the user as one line on stderr: a `MixsdError` (bad input) or an
`OSError` (a missing, unreadable or full file system) with exit code 2, anything
else with exit code 1. `mixsd --debug ...` (or MIXSD_DEBUG=1) shows the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mixsd import __version__
from mixsd.data.kgfact import SIZES as KGFACT_SIZES
from mixsd.errors import MixsdError
from mixsd.evaluation.config import EvalConfig
from mixsd.pipeline import InjectConfig
from mixsd.ranks import Ranks
from mixsd.settings import DEFAULT_MODEL, HelpFormatter, add_arguments, apply_yaml, from_args
from mixsd.targets.config import TargetConfig
from mixsd.train.config import TrainConfig


def cmd_models(args: argparse.Namespace) -> None:
    from mixsd import models

    print(f"cache: {models.cache_dir()}  (set MIXSD_CACHE to move it)")
    for row in models.list_models():
        print(f"{row['alias']:<14} {row['description']}")
        print(f"{'':<14} {row['status']}: {row['cache']}")
    print("Any Hugging Face model id, local directory or .gguf file also works as --model.")


def cmd_demo(args: argparse.Namespace) -> None:
    from mixsd.demo import run_demo

    run_demo(model=args.model, out=args.out, bf16=args.bf16)


def cmd_inject(args: argparse.Namespace) -> None:
    from mixsd.pipeline import inject

    inject(from_args(InjectConfig, args))


def cmd_continual(args: argparse.Namespace) -> None:
    from mixsd.continual import ContinualConfig, continual
    from mixsd.report.continual import run_lines

    config = from_args(ContinualConfig, args)
    rounds = continual(config)
    if Ranks.from_env().main:
        print("\n".join(run_lines(Path(config.out).name, rounds)))


def cmd_sweep(args: argparse.Namespace) -> None:
    from mixsd.sweep import sweep

    specs = sweep(args.config, args.out, runs=args.runs, stop_after=args.stage, dry_run=args.dry_run)
    if args.dry_run:
        print("\n".join(s.name for s in specs))


def cmd_report(args: argparse.Namespace) -> None:
    from mixsd.report.sweep import headline, write_sweep_report

    path = write_sweep_report(args.dir)
    print(f"{headline(path)}\n\nreport: {path}")


def cmd_compare(args: argparse.Namespace) -> None:
    from mixsd.report.paired import compare_runs

    print(compare_runs(args.runs, resamples=args.bootstrap, seed=args.seed))


def cmd_targets(args: argparse.Namespace) -> None:
    from mixsd.targets.generate import generate_targets

    report = generate_targets(from_args(TargetConfig, args))
    if not Ranks.from_env().main:
        return  # rank 0 reports for the job
    print(
        f"{report.written} targets in {report.out}: {report.verified} verified by mixsd, "
        f"{len(report.gold_fallback)} ground-truth fallbacks, {len(report.unverified)} unverified, "
        f"{len(report.skipped)} skipped; {report.tokens} tokens, mean naive fraction "
        f"{report.mean_naive_fraction:.2f}, {report.seconds:.0f}s (details: {report.out}.report.json)"
    )


def cmd_train(args: argparse.Namespace) -> None:
    from mixsd.train.run import train

    train(from_args(TrainConfig, args))


def cmd_eval(args: argparse.Namespace) -> None:
    from mixsd.evaluation.run import evaluate
    from mixsd.report.table import format_table

    config, main = from_args(EvalConfig, args), Ranks.from_env().main  # rank 0 reports for the job
    if config.checkpoints:
        from mixsd.evaluation.trajectory import evaluate_checkpoints
        from mixsd.report.table import format_trajectory

        trajectory = evaluate_checkpoints(config)
        if main:
            print(format_trajectory(trajectory))
            print(f"one eval.json per checkpoint, and the trajectory: {config.checkpoints}/trajectory.json")
        return
    result = evaluate(config)
    if main:
        print(format_table(result))
        print(f"every figure, the predictions and the command: {config.out}")


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
    counts = ", ".join(f"{name} {f['records']}" for name, f in manifest["files"].items())
    print(f"KGFact {args.size} (seed {args.seed}) in {args.out}: {counts}")


def cmd_data_kgfunc(args: argparse.Namespace) -> None:
    from mixsd.data.kgfunc import build_kgfunc

    manifest = build_kgfunc(args.out, seed=args.seed, limit=args.limit)
    counts = ", ".join(f"{name} {f['records']}" for name, f in manifest["files"].items())
    print(f"KGFunc (seed {args.seed}) in {args.out}: {counts}")


def cmd_nll(args: argparse.Namespace) -> None:
    from mixsd.evaluation.nll import files_nll

    files_nll(args.files, args.model, out=args.out, batch_size=args.batch_size, dtype=args.dtype, device=args.device)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixsd",
        description="Inject new knowledge into a language model with Mixed Contextual Self-Distillation.",
    )
    parser.add_argument("--version", action="version", version=f"mixsd {__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, func, config: type | None = None, **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, formatter_class=HelpFormatter, **kwargs)
        p.set_defaults(func=func)
        return add_arguments(p, config) if config else p

    command("models", "list model aliases and where their converted weights are cached", cmd_models)

    p = command("demo", "inject 50 KGFact facts into the embedded model and report (what `make demo` runs)", cmd_demo)
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--out", default="runs/demo", help="run directory (rerunning continues or skips finished stages)")
    p.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="bf16 autocast in training (default: where the CPU computes bf16 natively); --no-bf16 times an fp32 CPU",
    )

    command(
        "inject",
        "targets -> train -> evaluate -> report, skipping stages that are up to date",
        cmd_inject,
        InjectConfig,
        description="--config YAML may also hold targets:/train:/eval: sections with the "
        "settings of each stage (the keys of `mixsd targets|train|eval`).",
    )

    from mixsd.continual import ContinualConfig

    command(
        "continual",
        "facts in rounds: each round injected into the model the round before produced, every round so far scored",
        cmd_continual,
        ContinualConfig,
        description="--config YAML may also hold targets:/train:/eval: sections, as for `mixsd inject`.",
    )

    p = command("sweep", "a grid of inject runs over methods, lam and hyper-parameters", cmd_sweep)
    p.add_argument("--config", required=True, help="sweep YAML (see mixsd.sweep)")
    p.add_argument("--out", required=True)
    p.add_argument("--runs", help="only runs whose name matches this glob (split a sweep across machines)")
    p.add_argument("--stage", choices=["targets", "train", "eval", "report"], help="stop after this stage")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")

    p = command("report", "report.md and plots for a sweep directory (or one run)", cmd_report)
    p.add_argument("dir")

    p = command(
        "compare", "paired differences of two runs scored on the same items (A - B, with intervals)", cmd_compare
    )
    p.add_argument(
        "runs",
        nargs="+",
        metavar="RUN",
        help="A B (eval.json files or run directories; B is the reference, e.g. SFT), or A1 A2 ... vs B1 B2 ...: "
        "runs of one configuration with different seeds on each side, whose seeds are resampled as well as items",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="resamples for the intervals")
    p.add_argument("--seed", type=int, default=0)

    command("targets", "generate verified MixSD targets for a corpus (resumable)", cmd_targets, TargetConfig)
    command(
        "train",
        "fine-tune on MixSD targets (mixsd), corpus answers (sft), by on-policy self-distillation (opsd); or "
        "locate-and-edit (memit)",
        cmd_train,
        TrainConfig,
    )
    command(
        "eval",
        "memorisation of the facts and retention of the base model's abilities, side by side",
        cmd_eval,
        EvalConfig,
    )

    p = command("data", "build the KGFact / KGFunc corpora, import your own facts, or convert benchmarks", None)
    data = p.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    p = data.add_parser(
        "import",
        help="normalise a JSONL file of facts (ours, TRL messages, TRL prompt/privileged_context, question/answer)",
    )
    p.add_argument("input", metavar="IN")
    p.add_argument("--out", required=True, help="output JSONL in the mixsd record format")
    p.add_argument("--skip-bad", action="store_true", help="leave out bad lines (and report them) instead of stopping")
    p.add_argument(
        "--context",
        choices=["clear_answer", "answer"],
        default="clear_answer",
        help="published data whose clear_answer states the fact (KGFact, MQuAKE): the expert sees that "
        "statement (clear_answer) or the whole ground-truth answer turn, as the paper's targets do (answer)",
    )
    p.set_defaults(func=cmd_data_import)
    for name, what, out in (
        ("simpleqa", "a local SimpleQA CSV/JSONL (problem, answer, metadata) into facts", "output JSONL"),
        ("mquake", "a local MQuAKE-CF JSON into facts (the edits) and a multi_hop split", "output directory"),
    ):
        p = data.add_parser(name, help=f"convert {what}")
        p.add_argument("input", metavar="FILE")
        p.add_argument("--out", required=True, help=out)
        p.add_argument(
            "--skip-bad", action="store_true", help="leave out bad rows (and report them) instead of stopping"
        )
        p.set_defaults(func=cmd_data_convert)
    p = data.add_parser("kgfact", help="build the synthetic world-graph corpus (train, paraphrase, two_hop, retrieval)")
    p.add_argument(
        "--size", choices=list(KGFACT_SIZES), default="small", help="mini: 20 facts, demo: 50, small: 100, large: 525"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_data_kgfact)
    p = data.add_parser("kgfunc", help="build the digit-operation corpus (train, test, unseen, chain)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, help="keep only the first N training examples (default all 1,600)")
    p.add_argument("--out", required=True, help="output directory")
    p.set_defaults(func=cmd_data_kgfunc)

    p = command("nll", "mean per-token NLL of targets or corpus answers under a model, given the naive prompt", cmd_nll)
    p.add_argument("files", nargs="+", help="targets files (mixsd targets) or corpus files (any record format)")
    p.add_argument("--model", default=DEFAULT_MODEL, help="usually the base model the targets were made with")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--dtype", default="auto")
    p.add_argument("--device")
    p.add_argument("--out", help="also write the figures to this JSON file")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line; a `--config` YAML file supplies defaults that the flags then override."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "config_class", None) and args.config:
        apply_yaml(args.subparser, args.config_class, args.config)
        args = parser.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv[:1] or os.environ.get("MIXSD_DEBUG", "") not in ("", "0")
    try:
        args = parse(argv)
        args.func(args)
        sys.stdout.flush()  # here, so that a reader who left is caught below
    except KeyboardInterrupt:
        print("mixsd: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`mixsd report DIR | head`): nothing to say, and no flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as e:
        if debug:
            raise
        print(f"mixsd: error: {_one_line(e)}", file=sys.stderr)
        return 2 if isinstance(e, MixsdError | OSError) else 1
    return 0


def _one_line(e: Exception) -> str:
    """What went wrong, on one line: a `MixsdError` as written, an `OSError` with its file, else the exception
    type with a pointer to `--debug` (a bug of ours: please report it with the traceback)."""
    if isinstance(e, MixsdError):
        text = str(e)
    elif isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        text = f"{where}{e.strerror or e}"
    else:
        text = f"{type(e).__name__}: {e} (an internal error: rerun with `mixsd --debug ...` for the traceback)"
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
