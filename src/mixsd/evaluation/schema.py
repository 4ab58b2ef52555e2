"""eval.json, the one file an evaluation writes: its layout, and the typed view that readers use.

Version 1 (a file without "schema" is version 1). Every section but the provenance is optional:

    schema            1
    command, config, versions, models {tuned, base: {name, fingerprint}}, seeds    provenance
    facts             the facts source, its manifest and splits
    memorisation      {split: {n, tuned: {loose, strict}, base?: {loose, strict}}}    injected knowledge
    probes            {split: the same, base always}                                 held-out capability
    probe_retention   {tasks: {split: Kept}, mean: Kept, confidence, resamples, seed}
    benchmarks        {task: {metric, n, chance, base, tuned, answered?: {base, tuned}}}  accuracies
    benchmark_errors  {task: {wrong, counts, fractions}}   generative items base right, tuned wrong, by category
    skipped_tasks     {task: why}                          e.g. code tasks without --allow-code-execution
    retention         {tasks: {task: Kept + n, chance, base, tuned}, mean: Kept}      tuned / base
    general           {n, sources, openings, leakage|collapse|changed|gold_nll: Paired, answers: [...]}  everyday
    locality          {n, kept, kept_ci, families: {generative, mc: Share}, pools: {task: Share + family, pool,
                      known, lost: {leakage, format, collapse, genuine}}, known_set, items, lost_answers}
                      of the items the base model knows, the share the tuned model still gets right
    predictions, items  per record answers and per item benchmark scores
    analyses          {drift?, fisher?, errors?, target_nll?}
    trajectory        {rule, checkpoint, epoch}: `inject` with snapshots reports this selected checkpoint
    timing_s, cached

where Share is {n, kept, kept_ci}, Kept is {retention, retention_ci, chance_corrected, chance_corrected_ci} and
Paired is {base, tuned, difference, difference_ci}: rates and their tuned - base difference (95% bootstrap intervals).
Evaluation writes the file (`evaluation/run.py`, the typed sections through `as_json`); the report reads it through
`EvalResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mixsd.errors import MixsdError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Kept:
    """A retention (tuned / base) with its bootstrap 95% interval, raw and chance-corrected."""

    retention: float | None = None
    retention_ci: list[float] | None = None
    chance_corrected: float | None = None
    chance_corrected_ci: list[float] | None = None


@dataclass(frozen=True)
class Split:
    """Accuracy on one fact split, loose and strict, for the tuned model (and the base, where scored)."""

    n: int
    tuned: dict[str, float]
    base: dict[str, float] | None = None


@dataclass(frozen=True, kw_only=True)
class Benchmark:
    metric: str | None = None
    n: int
    chance: float
    base: float
    tuned: float
    answered: dict[str, float] | None = None  # generative tasks: share of answers in the asked-for form


@dataclass(frozen=True)
class EvalResult:
    schema: int = SCHEMA_VERSION
    memorisation: dict[str, Split] = field(default_factory=dict)
    probes: dict[str, Split] = field(default_factory=dict)
    probe_retention: dict[str, Kept] = field(default_factory=dict)
    benchmarks: dict[str, Benchmark] = field(default_factory=dict)
    retention: dict[str, Kept] = field(default_factory=dict)
    mean_retention: Kept = field(default_factory=Kept)
    benchmark_errors: dict[str, dict] = field(default_factory=dict)
    skipped_tasks: dict[str, str] = field(default_factory=dict)
    trajectory: dict[str, Any] = field(default_factory=dict)  # the selected checkpoint, when inject scored several
    general: dict[str, Any] = field(default_factory=dict)  # the general-prompt probe (evaluation/general.py)
    locality: dict[str, Any] = field(default_factory=dict)  # the known items kept (evaluation/locality.py)
    analyses: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict[str, Any], source: object = "eval.json") -> EvalResult:
        schema = obj.get("schema", 1)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise MixsdError(
                f"eval.json schema {schema!r} is newer than this mixsd reads ({SCHEMA_VERSION})", path=source
            )
        for section in SECTIONS:
            if section in obj and not isinstance(obj[section], dict):
                raise MixsdError(f"{section!r} must be an object, got {type(obj[section]).__name__}", path=source)
        retention = obj.get("retention", {})
        try:
            return cls(
                schema=schema,
                memorisation={s: _view(Split, v) for s, v in obj.get("memorisation", {}).items()},
                probes={s: _view(Split, v) for s, v in obj.get("probes", {}).items()},
                probe_retention={s: _view(Kept, v) for s, v in obj.get("probe_retention", {}).get("tasks", {}).items()},
                benchmarks={t: _view(Benchmark, v) for t, v in obj.get("benchmarks", {}).items()},
                retention={t: _view(Kept, v) for t, v in retention.get("tasks", {}).items()},
                mean_retention=_view(Kept, retention.get("mean", {})),
                benchmark_errors=obj.get("benchmark_errors", {}),
                skipped_tasks=obj.get("skipped_tasks", {}),
                trajectory=obj.get("trajectory", {}),
                general=obj.get("general", {}),
                locality=obj.get("locality", {}),
                analyses=obj.get("analyses", {}),
            )
        except (AttributeError, TypeError) as e:
            raise MixsdError(f"not laid out as an eval.json ({e})", path=source) from None


SECTIONS = (
    "memorisation",
    "probes",
    "probe_retention",
    "benchmarks",
    "retention",
    "benchmark_errors",
    "skipped_tasks",
    "trajectory",
    "general",
    "locality",
    "analyses",
    "predictions",
    "items",
)


def as_json(view: Any) -> dict[str, Any]:
    """A typed section as eval.json stores it (evaluation/run.py writes through these types): its fields in order,
    the unset optional ones left out."""
    return {k: v for k, v in asdict(view).items() if v is not None}


def _view(cls: type, values: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in values.items() if k in names})
