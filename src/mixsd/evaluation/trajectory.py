"""`mixsd eval --checkpoints RUN`: score every epoch snapshot of a training run and pick the reported point.

The paper does not report a run by its last model alone. It scores checkpoints along training and reports SFT at
its *first peak* (the first checkpoint where train accuracy reaches a new maximum and the next checkpoint is no
higher), MixSD and OPSD at their last checkpoint. Snapshots come from `mixsd train --save-every-epoch`
(RUN/epochs/epoch-NNN); each gets its own eval.json under RUN/evals/, with the base model's results from the
cache after the first, and RUN/trajectory.json lists the points and the selected one. Finished points are
read back, not scored again, so an interrupted call resumes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import get_args

from mixsd.errors import MixsdError
from mixsd.evaluation.config import EvalConfig, Select
from mixsd.io import read_json, write_json
from mixsd.ranks import Ranks

RULES = get_args(Select)[1:]
PAPER_RULE = {"sft": "first_peak", "mixsd": "last", "opsd": "last", "memit": "last"}


def first_peak(values: list[float]) -> int:
    """Index of the first value that is a new maximum and is not exceeded by the next one (or is the last)."""
    if not values:
        raise ValueError("first_peak needs at least one value")
    best = float("-inf")
    for i, value in enumerate(values):
        if value > best:
            best = value
            if i + 1 == len(values) or values[i + 1] <= value:
                return i
    raise AssertionError("unreachable: the first maximum always qualifies")


def select(values: list[float], rule: str) -> int:
    if rule == "first_peak":
        return first_peak(values)
    if rule == "last":
        return len(values) - 1
    raise MixsdError(f"unknown selection rule {rule!r}; choose one of {', '.join(RULES)} or auto")


def _point(name: str, snapshot: Path, result: dict, eval_path: str) -> dict:
    state = read_json(snapshot / "state.json")
    match = result.get("facts", {}).get("headline_match", "loose")
    general = result.get("general", {})
    return {
        "checkpoint": name,
        "epoch": state["epoch"],
        "step": state["step"],
        "memorisation": {s: v["tuned"][match] for s, v in result.get("memorisation", {}).items()},
        "mean_retention": result.get("retention", {}).get("mean", {}).get("retention"),
        "general": {k: general[k]["tuned"] for k in ("leakage", "collapse") if k in general},
        "eval": eval_path,
    }


def _scored(config: EvalConfig, snapshot: Path, out: Path, label: str, splits: tuple[str, ...] | None = None) -> dict:
    """The snapshot's eval.json, read back where an earlier call finished it (so an interrupted call resumes)."""
    from mixsd.evaluation.run import evaluate

    if out.is_file():
        return read_json(out)
    print(f"mixsd eval: {label}: {snapshot.name}", flush=True)
    return evaluate(replace(config, model=str(snapshot), checkpoints=None, out=str(out)), splits)


def evaluate_checkpoints(config: EvalConfig) -> dict:
    """Score each snapshot of `config.checkpoints`, write RUN/trajectory.json and return it.

    With `checkpoint_eval: memorisation` each snapshot is scored on the train split alone (RUN/evals/*/
    memorisation.json), which is all the selection reads, and only the selected one on everything (eval.json):
    the trajectory then has no retention per point, but costs one full evaluation instead of one per epoch.
    """
    run = Path(config.checkpoints)
    snapshots = sorted((run / "epochs").glob("epoch-*"))
    if not snapshots:
        raise MixsdError("no epoch snapshots under epochs/ (train with --save-every-epoch)", path=run)
    if not config.facts:
        raise MixsdError("--checkpoints needs --facts: the selection reads train memorisation")
    method = read_json(run / "epochs" / "train.json")["method"]
    rule = PAPER_RULE.get(method, "last") if config.select == "auto" else config.select
    light = config.checkpoint_eval == "memorisation"
    cheap = replace(config, suite="none", general_prompts=0, drift_items=0, fisher_items=0, targets=None)
    points = []
    for i, snapshot in enumerate(snapshots, 1):
        name = "memorisation.json" if light else "eval.json"
        path = f"evals/{snapshot.name}/{name}"
        label = f"checkpoint {i}/{len(snapshots)}" + (" (train split)" if light else "")
        result = _scored(cheap if light else config, snapshot, run / path, label, ("train",) if light else None)
        points.append(_point(snapshot.name, snapshot, result, path))
    chosen = select([p["memorisation"].get("train", 0.0) for p in points], rule)
    if light:
        snapshot, path = snapshots[chosen], f"evals/{snapshots[chosen].name}/eval.json"
        points[chosen] = _point(snapshot.name, snapshot, _scored(config, snapshot, run / path, "selected"), path)
    trajectory = {"run": str(run), "method": method, "rule": rule, "selected": chosen, "points": points}
    if Ranks.from_env().main:
        write_json(run / "trajectory.json", trajectory)
    return trajectory
