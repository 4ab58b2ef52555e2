"""`mixsd continual`: facts that arrive in rounds, each injected into the model the round before produced.

    base -> round 1 -> round 2 -> ...        each round an `inject` run: OUT/round-K/

Round K's MixSD targets are decoded by, and its training starts from, round K-1's model (the base for round 1).
Its evaluation compares with the original base on the facts of every round so far, so OUT/rounds.json tells, after
each round, how much of each earlier round is still known and how much of the base's abilities are kept. A round
whose predecessor changed (other settings, so other weights) starts over; an interrupted round continues as
`inject` does, stage by stage.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mixsd import models
from mixsd.data.records import Record, write_records
from mixsd.errors import MixsdError
from mixsd.io import exclusive, file_sha256, read_json, write_json
from mixsd.pipeline import InjectConfig, RunSettings, fact_files, inject
from mixsd.ranks import Ranks
from mixsd.settings import setting


@dataclass
class ContinualConfig(RunSettings):
    facts: list[str] = setting(
        help="the rounds' facts files in order; a directory of them (*.jsonl, in name order); or one facts file or "
        "directory (its train.jsonl) that --rounds splits"
    )
    out: str = setting(help="run directory: round-1/ ... round-N/ (each an inject run), rounds.json, rounds.png")
    rounds: int | None = setting(None, "split one facts file into N rounds of consecutive records")
    round_size: int | None = setting(
        None, "with --rounds: facts per round, from the first (default: all of them, as evenly as they split)"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.round_size is not None and self.rounds is None:
            raise MixsdError("--round-size needs --rounds N")
        if self.train.get("save_every_epoch") or self.train.get("save_adapter"):
            raise MixsdError(
                "continual scores each round's final, whole model and trains the next from it: no save_every_epoch "
                "or save_adapter"
            )


def round_facts(config: ContinualConfig) -> list[list[Record]]:
    """Each round's records, read (and so validated) before any model is loaded."""
    paths = [Path(f) for f in config.facts]
    if config.rounds is not None:
        if len(paths) != 1:
            raise MixsdError(f"--rounds splits one facts file or directory, got {len(paths)}")
        _, records = fact_files(str(paths[0]))
        n = config.rounds
        sizes = (
            [config.round_size] * n
            if config.round_size
            else [len(records) // n + (k < len(records) % n) for k in range(n)]
        )
        if n < 2 or min(sizes) < 1 or sum(sizes) > len(records):
            raise MixsdError(f"cannot make {n} rounds of {sizes[0]} facts from {len(records)}", path=paths[0])
        ends = list(itertools.accumulate(sizes))
        rounds = [records[end - size : end] for size, end in zip(sizes, ends, strict=True)]
    else:
        if len(paths) == 1 and paths[0].is_dir() and not (paths[0] / "train.jsonl").is_file():
            paths = sorted(
                paths[0].glob("*.jsonl"),
                key=lambda p: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)],
            )
        if len(paths) < 2:
            raise MixsdError(
                "continual needs two rounds or more: several facts files, a directory of them, or --rounds N",
                path=config.facts[0],
            )
        rounds = [fact_files(str(p))[1] for p in paths]
    seen: dict[str, int] = {}
    for k, records in enumerate(rounds, 1):
        for r in records:
            if r.id in seen:
                raise MixsdError(
                    f"fact id {r.id!r} is in round {seen[r.id]} and round {k}; each fact is scored by its id, so ids "
                    "must be unique across rounds"
                )
            seen[r.id] = k
    if (limit := config.eval.get("limit")) is not None and limit < len(seen):
        raise MixsdError(
            f"eval limit {limit} would leave out some of the {len(seen)} facts the last round scores; "
            "limit the locality pools with locality_limit instead"
        )
    return rounds


def weights_sha256(model: str) -> str | None:
    """The digest of a model's weight files (None for a model that is not on disk)."""
    path = Path(models.resolve(model))
    files = sorted(path.glob("*.safetensors")) if path.is_dir() else [path] if path.is_file() else []
    if not files:
        return None
    return hashlib.sha256("".join(file_sha256(f) for f in files).encode()).hexdigest()


def continual(config: ContinualConfig) -> list[dict]:
    """Inject every round in turn (each continuing whatever its directory holds); returns rounds.json's rounds."""
    rounds = round_facts(config)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out):
        return _continual(config, rounds, out)


def _continual(config: ContinualConfig, rounds: list[list[Record]], out: Path) -> list[dict]:
    ranks = Ranks.from_env()
    if ranks.main:
        write_json(out / "continual.json", asdict(config))
    settings = {k: v for k, v in asdict(config).items() if k not in ("facts", "out", "rounds", "round_size", "model")}
    model, chain, scores = config.model, "", []
    source = Path(config.facts[0]) / "manifest.json"
    corpus = read_json(source).get("corpus") if len(config.facts) == 1 and source.is_file() else None
    for k, records in enumerate(rounds, 1):
        rdir, facts_dir = out / f"round-{k}", out / "facts"
        seen = facts_dir / f"seen-{k}"  # a facts directory, so its manifest can say how the corpus is scored
        if ranks.main:
            write_records(facts_dir / f"round-{k}.jsonl", records)
            write_records(seen / "train.jsonl", [r for earlier in rounds[:k] for r in earlier])
            write_json(seen / "manifest.json", {"corpus": corpus} if corpus else {})
        # What round K starts from: the chain of its predecessors' training keys. If it changed, so did the model
        # this round's directory was made from, and the round starts over (so does one whose wipe was cut short).
        start = rdir / "start.key"
        if ranks.main and rdir.exists() and (not start.is_file() or start.read_text() != chain):
            shutil.rmtree(rdir)
        if ranks.main:
            rdir.mkdir(exist_ok=True)
            start.write_text(chain)
        ranks.barrier()
        if ranks.main:
            print(f"\n##### continual round {k}/{len(rounds)}: {len(records)} facts, from {model}", flush=True)
        inject(
            InjectConfig(
                facts=str(facts_dir / f"round-{k}.jsonl"),
                out=str(rdir),
                base=config.model,
                eval_facts=str(seen),
                model=model,
                **settings,
            )
        )
        if ranks.main:
            origin = scores[-1]["model_sha256"] if scores else weights_sha256(model)  # round K-1's, hashed once
            scores.append(round_scores(k, rounds, rdir, start=origin))
            write_json(out / "rounds.json", {"config": asdict(config), "rounds": scores})
        chain = hashlib.sha256((chain + read_json(rdir / "stages.json")["train"]["key"]).encode()).hexdigest()[:16]
        model = str(rdir / "model")
    if ranks.main:
        from mixsd.report.continual import write_continual_report

        print(f"\nreport: {write_continual_report(out)}")
    return scores


def round_scores(k: int, rounds: list[list[Record]], rdir: Path, start: str | None) -> dict[str, Any]:
    """After round K: memorisation of each round's facts so far, and what the base's abilities kept (the round's
    eval.json, against the original base)."""
    from mixsd.report.runs import load_run

    result, row = read_json(rdir / "eval.json"), load_run(rdir)
    match = result["facts"]["headline_match"]
    right = {p["id"]: bool(p["tuned"][match]) for p in result["predictions"]["train"]}
    return {
        "round": k,
        "facts": len(rounds[k - 1]),
        "start_sha256": start,
        "model_sha256": weights_sha256(str(rdir / "model")),
        "memorisation": {
            f"round-{j}": sum(right[r.id] for r in records) / len(records) for j, records in enumerate(rounds[:k], 1)
        },
        "memorisation_seen": sum(right.values()) / len(right),
        "match": match,
        "locality": row.locality,
        "general": row.general,
        "general_base": row.general_base,
        "seconds": row.seconds,
    }
