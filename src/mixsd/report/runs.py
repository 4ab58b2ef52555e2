"""The runs of a sweep (or one run), loaded from their eval.json, inject.json and stages.json.

Shared by the tables (`sweep.py`) and the plots (`plots.py`), so both read a run the same way.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from mixsd.errors import MixsdError
from mixsd.evaluation.errors import CATEGORIES
from mixsd.evaluation.schema import EvalResult
from mixsd.io import read_json

HEADLINE_MEMORISATION = 0.9
SEED = re.compile(r"-seed(\d+)(?=-|$)")  # a run name's seed suffix, as the sweep writes it (`sft-seed1`)
GENERAL = ("leakage", "collapse", "changed", "gold_nll")  # the general-prompt probe's figures in tables


@dataclass
class Row:
    name: str
    method: str
    lam: float | None
    lr: float | None
    epochs: float | None
    lora: int | None
    memorisation: dict[str, float]  # split -> tuned loose accuracy
    probes: dict[str, float]  # probe split -> retention (tuned / base)
    general: dict[str, float]  # general-prompt probe: leakage / collapse / changed rate, gold-answer NLL (tuned)
    general_base: dict[str, float]  # the same figures of the base model
    retention: dict[str, float]  # benchmark -> retention
    locality: dict[str, float | None]  # known items still right: "kept" overall and per family ("generative", "mc")
    lost: dict[str, int]  # generative benchmark items base right, tuned wrong: category -> count, over the tasks
    retention_ci: dict[str, list[float]]  # benchmark -> bootstrap 95% interval of the retention
    mean_retention: float | None
    mean_chance_corrected: float | None
    target_nll: float | None
    gold_share: float | None  # share of MixSD targets that never verified and fell back to the gold answer
    fisher: float | None
    seconds: float
    point: str = ""  # the reported checkpoint of a trajectory, e.g. "first_peak: epoch 3" ("": the final model)
    trajectory: list[tuple[float, float]] = field(default_factory=list)  # (mean retention, train mem.) per checkpoint
    curve: list[tuple[float, float]] = field(default_factory=list)  # (epoch, train memorisation) per checkpoint
    selected_epoch: float | None = None  # the reported checkpoint's epoch
    replay: int = 0  # self-replay answers trained beside the facts


def load_run(run: Path) -> Row:
    result = EvalResult.from_json(read_json(run / "eval.json"), run / "eval.json")
    settings = read_json(run / "inject.json")
    stages = read_json(run / "stages.json") if (run / "stages.json").is_file() else {}
    train = settings.get("train", {})
    nll = result.analyses.get("target_nll", {})
    mixsd = settings["method"] == "mixsd"
    return Row(
        name=run.name,
        method=settings["method"],
        lam=settings["lam"] if mixsd else None,
        lr=train.get("lr"),
        epochs=None if settings["method"] == "memit" else train.get("epochs"),  # MEMIT edits once: no epochs
        lora=settings.get("lora"),
        memorisation={s: v.tuned["loose"] for s, v in result.memorisation.items()},
        probes={s: v.retention for s, v in result.probe_retention.items()},
        general={k: result.general[k]["tuned"] for k in GENERAL if k in result.general},
        general_base={k: result.general[k]["base"] for k in GENERAL if k in result.general},
        retention={t: v.retention for t, v in result.retention.items()},
        locality={"kept": result.locality["kept"], **{f: v["kept"] for f, v in result.locality["families"].items()}}
        if result.locality
        else {},
        lost={c: sum(e["counts"][c] for e in result.benchmark_errors.values()) for c in CATEGORIES}
        if result.benchmark_errors
        else {},
        retention_ci={t: v.retention_ci for t, v in result.retention.items() if v.retention_ci is not None},
        mean_retention=result.mean_retention.retention,
        mean_chance_corrected=result.mean_retention.chance_corrected,
        target_nll=nll.get("mean_nll"),
        fisher=result.analyses.get("fisher", {}).get("fisher_weighted"),
        gold_share=nll["gold_fallback"] / nll["records"] if mixsd and "gold_fallback" in nll else None,
        seconds=sum(s.get("seconds", 0.0) for s in stages.values()),
        point=f"{result.trajectory['rule']}: epoch {result.trajectory['epoch']:g}" if result.trajectory else "",
        selected_epoch=result.trajectory["epoch"] if result.trajectory else None,
        replay=train.get("replay", 0),
        **_trajectory(run / "model" / "trajectory.json"),
    )


def _trajectory(path: Path) -> dict[str, list[tuple[float, float]]]:
    """Each scored checkpoint in training order: (mean retention, train memorisation) where both exist, and
    (epoch, train memorisation)."""
    if not path.is_file():
        return {}
    points = [
        (p.get("mean_retention"), p.get("memorisation", {}).get("train"), p.get("epoch"))
        for p in read_json(path)["points"]
    ]
    return {
        "trajectory": [(x, y) for x, y, _ in points if x is not None and y is not None],
        "curve": [(e, y) for _, y, e in points if e is not None and y is not None],
    }


def label(r: Row, method: bool = True, seed: bool = False) -> str:
    """Short name for plots: method (unless the colour already says it), lam, lr x epochs, LoRA, self-replay, and
    with `seed` the run's seed (`s1`), so that a plot with a point per run tells the seeds of one configuration
    apart."""
    names = {"sft": "SFT", "mixsd": "MixSD", "opsd": "OPSD", "memit": "MEMIT"}
    parts = [names.get(r.method, r.method)] if method else []
    if r.lam is not None:
        parts.append(f"λ{r.lam:g}")
    if r.lr:
        mantissa, exponent = f"{r.lr:e}".split("e")
        parts.append(f"{float(mantissa):g}e{int(exponent)}" + (f"×{r.epochs:g}" if r.epochs else ""))
    if r.lora:
        parts.append(f"LoRA {r.lora}")
    if r.replay:
        parts.append(f"replay {r.replay}")
    if seed and (found := SEED.search(r.name)):
        parts.append(f"s{found[1]}")
    return " ".join(parts)


def configuration(name: str) -> str:
    """A run's name without its seed (`-seed1`): runs that differ only by seed are one configuration."""
    return SEED.sub("", name)


def configurations(rows: list[Row]) -> list[list[Row]]:
    """The runs grouped by configuration, each group's seeds in name order."""
    groups: dict[str, list[Row]] = {}
    for r in sorted(rows, key=lambda r: r.name):
        groups.setdefault(configuration(r.name), []).append(r)
    return list(groups.values())


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure as the reports print it ("n/a" where missing)."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def mean(values: list[float | None]) -> float | None:
    """The mean over seeds, or None where a seed lacks the figure."""
    return None if not values or any(v is None for v in values) else statistics.fmean(values)


def kept(row: Row) -> float | None:
    """What a run kept of the base: the share of its known items still right where locality was measured (the
    retention measure with power), else its mean benchmark retention."""
    return row.locality["kept"] if row.locality.get("kept") is not None else row.mean_retention


def at_reported_points(rows: list[Row]) -> bool:
    """Whether every run is read at a selected checkpoint; then the selection rule, not a threshold, fixes where a
    method is read, and every configuration qualifies for the headline."""
    return all(r.point for r in rows)


def best_at_headline(rows: list[Row]) -> list[list[Row]]:
    """The headline comparison: per method (and lam), the configuration (its seeds) that kept the most
    (`kept`) among those reaching the headline memorisation on average over seeds, or among all of them when every
    run is read at its selected checkpoint (`at_reported_points`)."""
    every = at_reported_points(rows)
    qualified = [
        g
        for g in configurations(rows)
        if every or mean([r.memorisation.get("train", 0.0) for r in g]) >= HEADLINE_MEMORISATION
    ]
    best: dict[tuple[str, float | None], list[Row]] = {}
    for g in sorted(qualified, key=lambda g: (mean([kept(r) or 0.0 for r in g]), g[0].name)):
        best[(g[0].method, g[0].lam)] = g
    return [best[k] for k in sorted(best, key=lambda k: (k[0], -1 if k[1] is None else k[1]))]


def pareto(rows: list[Row], x: str = "mean_retention") -> list[Row]:
    """Runs not beaten on both train memorisation and `x` by any other run."""
    points = [(r, r.memorisation.get("train"), getattr(r, x)) for r in rows]
    points = [(r, m, k) for r, m, k in points if m is not None and k is not None]
    return [r for r, m, k in points if not any((m2 >= m and k2 >= k) and (m2 > m or k2 > k) for _, m2, k2 in points)]


def collect(sweep_dir: Path) -> list[Row]:
    runs = sorted(p.parent for p in sweep_dir.glob("runs/*/eval.json"))
    if not runs and (sweep_dir / "eval.json").is_file():
        runs = [sweep_dir]
    if not runs:
        raise MixsdError("no finished runs (runs/*/eval.json) to report on", path=sweep_dir)
    return [load_run(run) for run in runs]
