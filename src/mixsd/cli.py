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

    run_demo(model=args.model)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixsd",
        description="Inject new knowledge into a language model with Mixed Contextual Self-Distillation.",
    )
    parser.add_argument("--version", action="version", version=f"mixsd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("models", help="list model aliases and where their converted weights are cached")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("demo", help="the default end-to-end run on the embedded model")
    p.add_argument("--model", default="smollm2-135m")
    p.set_defaults(func=cmd_demo)

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
