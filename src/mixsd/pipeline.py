"""`mixsd inject`: facts in, a tuned model and the evidence out.

    targets (MixSD only) -> train -> evaluate -> report

Each stage writes its output under OUT and records a key of its inputs in
OUT/stages.json; a stage whose output exists with the same key is skipped, so
an interrupted run continues where it stopped (the targets and training stages
also resume their own partial work). Changing a setting reruns that stage and
everything after it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from mixsd.data.records import read_records
from mixsd.errors import MixsdError
from mixsd.evaluation.config import EvalConfig
from mixsd.io import exclusive, file_sha256, read_json, remove_partial_writes, write_json
from mixsd.ranks import Ranks
from mixsd.settings import DEFAULT_LAM, DEFAULT_MODEL, MODEL_HELP, check_choices, mapping, section, setting
from mixsd.targets.config import TargetConfig
from mixsd.train.config import Method, TrainConfig

# Fields the pipeline sets itself; the per-stage sections may set any other field of the stage's config.
OWNED = {
    "targets": {"data", "out", "model", "lam"},
    "train": {"data", "out", "model", "method", "lora", "resume"},
    "eval": {"model", "base", "facts", "out", "targets"},
}
STAGE_CONFIGS = {"targets": TargetConfig, "train": TrainConfig, "eval": EvalConfig}
# `inject`'s defaults are the recipe (configs/recipe.yaml; docs/results/frontier-kgfact): LoRA r16 at its default
# lr, 14 epochs in batches of 5 beside the base's own answers to 50 everyday prompts (self-replay), and a target
# that never verifies retried at lower lam before the gold answer (counted in the targets report; `mixsd targets`
# drops it instead). It kept 0.63 of the base's known items, where every weight for 8 epochs without replay kept
# 0.44 (MixSD) and 0.47 (SFT); SFT with the same settings keeps no detectably different share. For mixsd and sft;
# a section or sweep grid entry overrides them key by key, and `lora: 0` trains every weight.
RECIPE_LORA = 16
TARGET_DEFAULTS = {"on_fail": "lower-lam"}
TRAIN_DEFAULTS = {"epochs": 14, "batch_size": 5, "replay": 50}


@dataclass(kw_only=True)
class RunSettings:
    """What a run does to its facts, shared by `inject` and `continual` (which injects once per round)."""

    model: str = setting(DEFAULT_MODEL, MODEL_HELP)
    method: Method = setting(
        "mixsd", "mixsd: MixSD targets; sft: corpus answers; opsd: on-policy self-distillation; memit: locate-and-edit"
    )
    lam: float = setting(DEFAULT_LAM, "MixSD's naive-conditional probability")
    lora: int | None = setting(None, f"LoRA rank R (default: {RECIPE_LORA}, the recipe's; 0: full fine-tuning)")
    targets: dict[str, Any] = section("more TargetConfig fields (YAML)")
    train: dict[str, Any] = section("more TrainConfig fields (YAML)")
    eval: dict[str, Any] = section("more EvalConfig fields (YAML)")

    def __post_init__(self) -> None:
        check_choices(self)
        for stage, cls in STAGE_CONFIGS.items():
            setattr(self, stage, mapping(cls, getattr(self, stage) or {}, f" in the {stage} section", OWNED[stage]))
        # The recipe's settings, recorded as run (inject.json). It was searched for MixSD and SFT only: opsd and
        # memit keep their own defaults.
        recipe = self.method in ("mixsd", "sft")
        if self.lora is None:
            self.lora = RECIPE_LORA if recipe else 0
        self.targets = TARGET_DEFAULTS | self.targets
        self.train = (TRAIN_DEFAULTS if recipe else {}) | self.train

    @classmethod
    def from_mapping(cls, values: dict[str, Any], source: str = "config") -> Any:
        """Build from a YAML mapping whose keys mirror the CLI flags (dashes or underscores)."""
        try:
            values = mapping(cls, values)
            missing = [k for k in ("facts", "out") if values.get(k) is None]
            if missing:
                raise MixsdError(f"missing {missing[0]!r}")
            return cls(**values)
        except MixsdError as e:
            raise MixsdError(str(e), path=source) from None


@dataclass
class InjectConfig(RunSettings):
    facts: str = setting(help="facts file, or a directory with train.jsonl and evaluation splits (mixsd data ...)")
    out: str = setting(help="run directory: ends with model/, targets.jsonl, eval.json, report.md")
    targets_out: str | None = setting(
        None, "where the targets go (default OUT/targets.jsonl; a sweep shares them per lam)"
    )
    base: str | None = setting(
        None, "the model the evaluation compares with (default: --model; `continual` keeps the original one)"
    )
    eval_facts: str | None = setting(
        None, "the facts the evaluation scores (default: --facts; `continual`: every round so far)"
    )


def fact_files(facts: str) -> tuple[Path, list]:
    """The training file of `facts` and its records, read (and so validated) before any model is loaded."""
    path = Path(facts)
    train_file = path / "train.jsonl" if path.is_dir() else path
    if not train_file.is_file():
        raise MixsdError(
            "no such file" + (" (a facts directory needs train.jsonl)" if path.is_dir() else ""), path=train_file
        )
    records = read_records(train_file)
    if not records:
        raise MixsdError("no facts to inject", path=train_file)
    return train_file, records


# Per stage, settings added after runs were first keyed: left out of the key at their default, so those runs resume.
_PROMPT = {"system_prompt": None, "chat_kwargs": None}
LATER = {
    "TargetConfig": _PROMPT,
    "TrainConfig": _PROMPT
    | {"lr_schedule": "constant", "warmup_ratio": 0.0, "train_layers": None, "replay": 0, "replay_max_new_tokens": 96}
    | {"memit_steps": 25, "memit_clamp": 4.0, "memit_kl": 0.0625, "memit_decay": 0.5, "memit_update_weight": None}
    | {"memit_stat_tokens": 100_000, "memit_batch": None, "skip_bad": False, "memit_values": "fact"}
    | {"memit_token": "subject", "memit_preserve": 0.0, "memit_stop": False},
    "EvalConfig": _PROMPT | {"no_system_prompt": False, "locality_limit": None},
}


def _settings(config) -> dict:
    """A stage config's settings as its key sees them. MEMIT's own settings are left out of a trained run's: they do
    not touch it, so changing their defaults does not redo it."""
    later = LATER[type(config).__name__]
    settings = {k: v for k, v in asdict(config).items() if not (k in later and v == later[k])}
    if isinstance(config, TrainConfig) and config.method != "memit":
        settings = {k: v for k, v in settings.items() if not k.startswith("memit_")}
    return settings


def _key(settings: dict, *inputs: str) -> str:
    # The decode path is left out: both paths give the same tokens (fp32, tested), so earlier runs resume.
    settings = {k: v for k, v in settings.items() if k != "decode"}
    blob = json.dumps(settings, sort_keys=True, default=str) + "".join(inputs)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Stages:
    """OUT/stages.json: for each finished stage, the key of the inputs that produced it."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[str, dict] = read_json(path) if path.is_file() else {}

    def up_to_date(self, stage: str, key: str, output: Path) -> bool:
        return self.done.get(stage, {}).get("key") == key and output.exists()

    def finish(self, stage: str, key: str, seconds: float) -> None:
        if self.path.is_file():  # another writer (a run sharing these targets) may have added stages
            self.done = read_json(self.path)
        self.done[stage] = {"key": key, "seconds": round(seconds, 1), "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        write_json(self.path, self.done)


PLAN = ("targets", "train", "eval", "report")


def inject(config: InjectConfig, stop_after: str | None = None) -> dict | None:
    """Run every stage that is not up to date (up to `stop_after`); returns the evaluation result."""
    train_file, records = fact_files(config.facts)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out):
        return _inject(config, stop_after, train_file, records, out)


@dataclass
class Stage:
    """One step of `inject`: its settings (keyed with the previous stage's key and the digests of `hashed`, read
    when the stage comes up), the file that exists once it is done, the ledger entry that records its key, and the
    call that does the work."""

    name: str
    settings: dict[str, Any]
    output: Path
    ledger: Stages
    entry: str
    run: Callable[[], None]
    hashed: tuple[Path, ...] = ()
    note: str = ""


def stage_configs(config: InjectConfig, train_file: Path) -> tuple[TargetConfig, TrainConfig, EvalConfig]:
    """The three stages' configs `inject` runs for `config` (TargetConfig's unused when the method is not mixsd)."""
    out = Path(config.out)
    data = (
        (Path(config.targets_out) if config.targets_out else out / "targets.jsonl")
        if config.method == "mixsd"
        else train_file
    )
    model_dir = out / "model"
    tcfg = TargetConfig(data=str(train_file), out=str(data), model=config.model, lam=config.lam, **config.targets)
    rcfg = TrainConfig(
        data=str(data),
        out=str(model_dir),
        method=config.method,
        model=config.model,
        lora=config.lora or None,
        **config.train,
    )
    ecfg = EvalConfig(  # `targets`: their NLL under the base, MixSD's targets or SFT's y*
        model=str(model_dir),
        base=config.base or config.model,
        facts=config.eval_facts or config.facts,
        out=str(out / "eval.json"),
        targets=str(data),
        **config.eval,
    )
    return tcfg, rcfg, ecfg


def _inject(config: InjectConfig, stop_after: str | None, train_file: Path, records: list, out: Path) -> dict | None:
    from mixsd.evaluation.run import evaluate
    from mixsd.report.single import write_run_report
    from mixsd.targets.generate import generate_targets
    from mixsd.train.run import last_checkpoint, remove_checkpoints, train

    ranks = Ranks.from_env()  # under `accelerate launch` every stage shares its work; rank 0 keeps the books
    if ranks.main:
        remove_partial_writes(out)  # a killed run's half-written files (eval.json, a card, a snapshot): all redone
        write_json(out / "inject.json", asdict(config))
    stages = Stages(out / "stages.json")
    mixsd, epochs = config.method == "mixsd", config.method != "memit"  # memit edits once: no epochs to score
    tcfg, rcfg, ecfg = stage_configs(config, train_file)
    data, model_dir = Path(rcfg.data), Path(rcfg.out)

    def train_run() -> None:
        # Continue an interrupted training of these same inputs from its last checkpoint; anything else in
        # model/ (other inputs, or a run killed before its first checkpoint) is started over.
        started = model_dir / "checkpoints" / "inject.key"
        rcfg.resume = started.is_file() and started.read_text() == key and bool(last_checkpoint(started.parent))
        ranks.barrier()  # every rank has decided before rank 0 clears the way
        if not rcfg.resume and ranks.main:
            remove_checkpoints(started.parent)
            shutil.rmtree(model_dir, ignore_errors=True)
            started.parent.mkdir(parents=True)
            started.write_text(key)
        ranks.barrier()
        train(rcfg)

    plan = [
        Stage(
            "targets",
            _settings(tcfg) | {"out": None},
            data,
            Stages(data.parent / "stages.json"),  # next to the targets, which several runs may share
            f"targets:{data.name}",
            lambda: generate_targets(tcfg),
            note=f"({len(records)} facts, lam {config.lam})",
        )
    ] * mixsd
    plan += [
        Stage(
            "train", _settings(rcfg), model_dir / "README.md", stages, "train", train_run, (data,), f"({config.method})"
        ),
        Stage(
            "eval",
            _settings(ecfg),
            out / "eval.json",
            stages,
            "eval",
            lambda: _evaluate_trajectory(ecfg, model_dir) if rcfg.save_every_epoch and epochs else evaluate(ecfg),
        ),
    ]
    names = [stage.name for stage in plan] + ["report"]

    def banner(stage: str, note: str = "") -> None:
        if ranks.main:
            print(
                f"\n=== mixsd inject {out.name} [{names.index(stage) + 1}/{len(names)}] {stage} {note}".rstrip(),
                flush=True,
            )

    key = _key({}, file_sha256(train_file))
    for stage in plan:
        if stop_after and PLAN.index(stage.name) > PLAN.index(stop_after):
            return None
        key = _key(stage.settings, key, *(file_sha256(path) for path in stage.hashed))
        if stage.ledger.up_to_date(stage.entry, key, stage.output):
            banner(stage.name, "(up to date, skipped)")
        else:
            banner(stage.name, stage.note)
            started = time.time()
            stage.run()
            if ranks.main:
                stage.ledger.finish(stage.entry, key, time.time() - started)
            ranks.barrier()
    result = read_json(out / "eval.json")
    if stop_after == "eval":
        return result
    if ranks.main:
        banner("report")
        write_run_report(out)
        print(f"report: {out / 'report.md'}")
    return result


def _evaluate_trajectory(config: EvalConfig, model_dir: Path) -> None:
    """Score every epoch snapshot (MODEL/trajectory.json) and make the selected point the run's eval.json, as the
    paper reports a run: SFT at its first peak, MixSD and OPSD at their last checkpoint."""
    from mixsd.evaluation.trajectory import evaluate_checkpoints

    trajectory = evaluate_checkpoints(replace(config, model=None, checkpoints=str(model_dir)))
    point = trajectory["points"][trajectory["selected"]]
    result = read_json(model_dir / point["eval"])
    result["trajectory"] = {"rule": trajectory["rule"], "checkpoint": point["checkpoint"], "epoch": point["epoch"]}
    ranks = Ranks.from_env()
    if ranks.main:
        write_json(config.out, result)
    ranks.barrier()
