"""Retention: how much of the base model's accuracy the tuned model keeps, with bootstrap intervals.

Per task, retention = tuned / base accuracy and chance-corrected retention = (tuned - chance) / (base - chance), which
does not credit the tuned model for what a uniform guess would score. Both are paired: base and tuned are scored on the
same items, and the bootstrap resamples items (within each task) for both at once. A ratio whose denominator is not
positive is undefined (None).
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95


def _ratio(tuned: np.ndarray, base: np.ndarray, chance: float) -> np.ndarray:
    """(tuned - chance) / (base - chance), NaN where the denominator is not positive."""
    denominator = base - chance
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, (tuned - chance) / safe, np.nan)


def interval(samples: np.ndarray) -> list[float] | None:
    """Percentile interval of the defined bootstrap samples; None if fewer than half are defined."""
    defined = samples[~np.isnan(samples)]
    if len(defined) < len(samples) / 2:
        return None
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return [float(low), float(high)]


def paired_difference(a: list[float], b: list[float], picks: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean of a - b over the same items, and its value under each row of bootstrap item indices `picks`."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return float(d.mean()), d[picks].mean(axis=1)


def _point(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def retention_table(tasks: dict[str, dict], *, resamples: int = 1000, seed: int = 0) -> dict:
    """Retention per task and their mean over tasks, each with a bootstrap CI.

    `tasks` maps a task name to {"base": [per-item score], "tuned": [...], "chance": float}
    with the two lists over the same items in the same order. The mean leaves
    out tasks where a ratio is undefined; its CI comes from the same resamples.
    """
    rng = np.random.default_rng(seed)
    rows: dict[str, dict] = {}
    boots: dict[str, dict[str, np.ndarray]] = {"retention": {}, "chance_corrected": {}}
    for name in sorted(tasks):
        base = np.asarray(tasks[name]["base"], dtype=np.float64)
        tuned = np.asarray(tasks[name]["tuned"], dtype=np.float64)
        chance = float(tasks[name]["chance"])
        if base.shape != tuned.shape or base.size == 0:
            raise ValueError(f"{name}: base and tuned need the same non-empty items, got {base.size} and {tuned.size}")
        picks = rng.integers(0, base.size, size=(resamples, base.size))
        base_b, tuned_b = base[picks].mean(axis=1), tuned[picks].mean(axis=1)
        row = {"n": int(base.size), "chance": chance, "base": float(base.mean()), "tuned": float(tuned.mean())}
        for key, floor in (("retention", 0.0), ("chance_corrected", chance)):
            boots[key][name] = _ratio(tuned_b, base_b, floor)
            row[key] = _point(_ratio(tuned.mean(), base.mean(), floor))
            row[f"{key}_ci"] = interval(boots[key][name])
        rows[name] = row
    mean: dict = {"tasks": len(rows)}
    for key, per_task in boots.items():
        defined = [name for name, row in rows.items() if row[key] is not None]
        mean[key] = float(np.mean([rows[name][key] for name in defined])) if defined else None
        mean[f"{key}_ci"] = interval(np.mean([per_task[name] for name in defined], axis=0)) if defined else None
    return {"tasks": rows, "mean": mean, "confidence": CONFIDENCE, "resamples": resamples, "seed": seed}
