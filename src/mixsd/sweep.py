"""`mixsd sweep`: a grid of `inject` runs over methods, lam and hyper-parameters.

    model: smollm2-135m
    facts: data/kgfact-small
    grid:
      - {method: sft,   lr: [3e-5, 1e-4], epochs: [5, 10]}
      - {method: mixsd, lam: [0, 0.3, 0.5], lr: [3e-5, 1e-4], epochs: [5, 10]}
      - {method: opsd,  lr: [1e-5, 3e-5]}
      - {method: sft,   seed: [0, 1, 2]}      # seeds: a run each; the report pools them
      - {method: mixsd, rounds: 5}            # continual: the facts in 5 rounds (mixsd continual)
    targets: {max_new_tokens: 96}      # shared stage settings, as in `mixsd inject --config`
    train: {}
    eval: {suite: default}

Every run is the directory OUT/runs/<name>, named by its settings, so runs can
be split across machines (`--runs GLOB`) and resumed; MixSD targets are made
once per lam under OUT/targets/, and the base model is evaluated once (the
evaluation cache).
"""

from __future__ import annotations

import fnmatch
import itertools
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mixsd.continual import ContinualConfig, continual
from mixsd.errors import MixsdError
from mixsd.io import exclusive
from mixsd.pipeline import PLAN, InjectConfig, inject
from mixsd.ranks import Ranks
from mixsd.settings import DEFAULT_LAM, DEFAULT_MODEL, load_yaml, mapping
from mixsd.train.config import METHODS, TrainConfig

SWEEP_KEYS = {"model", "facts", "grid", "targets", "train", "eval"}
CONTINUAL_KEYS = {"rounds", "round_size"}
GRID_KEYS = (
    {"method", "lam", "lora"}
    | CONTINUAL_KEYS
    | ({f.name for f in fields(TrainConfig)} - {"data", "out", "model", "method"})
)


@dataclass(frozen=True)
class RunSpec:
    name: str
    config: InjectConfig | ContinualConfig


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def expand(values: dict[str, Any], out: Path, source: str = "sweep config") -> list[RunSpec]:
    """The grid as named runs; unknown keys and methods fail here, before any work."""
    try:
        values = mapping(SWEEP_KEYS, values)
        if not values.get("facts") or not values.get("grid"):
            raise MixsdError("a sweep needs 'facts' and a non-empty 'grid'")
        if not isinstance(values["grid"], list) or not all(isinstance(e, dict) for e in values["grid"]):
            raise MixsdError("'grid' must be a list of mappings, e.g. - {method: sft, lr: [1e-5, 3e-5]}")
        grid = [mapping(GRID_KEYS, entry, " in the grid") for entry in values["grid"]]
    except MixsdError as e:
        raise MixsdError(str(e), path=source) from None
    runs: dict[str, RunSpec] = {}
    for entry in grid:
        method = entry.get("method")
        if method not in METHODS:
            raise MixsdError(f"unknown method {method!r} in the grid; choose one of {', '.join(METHODS)}", path=source)
        if "lam" in entry and method != "mixsd":
            raise MixsdError(f"'lam' only applies to method mixsd, not {method}", path=source)
        axes = {k: v if isinstance(v, list) else [v] for k, v in entry.items() if k != "method"}
        for combo in itertools.product(*axes.values()):
            point = dict(zip(axes, combo, strict=True))
            lam = point.pop("lam", DEFAULT_LAM) if method == "mixsd" else None
            lora = point.pop("lora", None)
            name = "-".join(
                [method]
                + ([f"lam{_fmt(lam)}"] if lam is not None else [])
                + [f"{k}{_fmt(v)}" for k, v in sorted(point.items())]
                + ([f"lora{lora}"] if lora else [])
            )
            # A seed on the grid is the whole run's: training order and, for MixSD, the targets' coins.
            seed = f"-seed{point['seed']}" if "seed" in point else ""
            targets = (values.get("targets") or {}) | ({"seed": point["seed"]} if seed else {})
            rounds = {k: point.pop(k) for k in CONTINUAL_KEYS & set(point)}
            shared = {
                "out": str(out / "runs" / name),
                "model": values.get("model", DEFAULT_MODEL),
                "method": method,
                "lora": lora,
                "lam": lam if lam is not None else DEFAULT_LAM,
                "targets": targets,
                "train": (values.get("train") or {}) | point,
                "eval": values.get("eval") or {},
            }
            if rounds:  # each round makes its own targets, from the model the round before produced
                config = ContinualConfig.from_mapping(shared | rounds | {"facts": [values["facts"]]}, source)
            else:
                targets_out = str(out / "targets" / f"lam{_fmt(lam)}{seed}.jsonl") if lam is not None else None
                config = InjectConfig.from_mapping(
                    shared | {"facts": values["facts"], "targets_out": targets_out}, source
                )
            runs[name] = RunSpec(name, config)
    return list(runs.values())


def sweep(
    config_path: str, out: str, runs: str | None = None, stop_after: str | None = None, dry_run: bool = False
) -> list[RunSpec]:
    """Run (or list) the grid; each run continues from whatever its directory already holds."""
    if stop_after is not None and stop_after not in PLAN:
        raise MixsdError(f"unknown stage {stop_after!r}; choose one of {', '.join(PLAN)}")
    out_dir = Path(out)
    specs = expand(load_yaml(config_path), out_dir, config_path)
    if runs:
        specs = [s for s in specs if fnmatch.fnmatch(s.name, runs)]
        if not specs:
            raise MixsdError(f"no run matches {runs!r}")
    if stop_after not in (None, "report") and any(isinstance(s.config, ContinualConfig) for s in specs):
        raise MixsdError("--stage does not split continual runs (rounds: N): each round is a whole inject run")
    if dry_run:
        return specs
    with exclusive(out_dir):
        _run(specs, out_dir, stop_after)
    return specs


def _run(specs: list[RunSpec], out_dir: Path, stop_after: str | None) -> None:
    # Targets first, once per lam, so that runs sharing them never race to make them.
    shared = {
        s.config.targets_out: s for s in specs if s.config.method == "mixsd" and isinstance(s.config, InjectConfig)
    }
    for spec in shared.values():
        inject(spec.config, stop_after="targets")
    main = Ranks.from_env().main  # under `accelerate launch`, rank 0 speaks and writes the report
    for i, spec in enumerate(specs, 1):
        if main:
            print(f"\n##### sweep run {i}/{len(specs)}: {spec.name}", flush=True)
        if isinstance(spec.config, ContinualConfig):
            continual(spec.config)
        else:
            inject(spec.config, stop_after=stop_after)
    if stop_after in (None, "report") and main:
        from mixsd.report.sweep import write_sweep_report

        print(f"\nsweep report: {write_sweep_report(out_dir)}")
