"""Paired comparison of two runs scored on the same items: "A minus B = +x [lo, hi]", not two overlapping intervals.

Both runs' eval.json keep their per-item scores, so the difference can be resampled item by item: fact answers and
in-context probe answers (loose, per record id), benchmark items (per doc id; retention is accuracy over the shared
base's accuracy, so A's retention minus B's is their accuracy difference over the base's), and the general-prompt
probe's leakage and collapse flags and its gold-answer NLL (per prompt). The mean retention difference resamples
the items of every task at once, as the per-run intervals do. Each figure gets a verdict; where the interval holds
0, the half-width of the interval is the smallest difference this sample could have detected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from mixsd.chat import DEFAULT_FORMAT
from mixsd.errors import MixsdError
from mixsd.evaluation.retention import CONFIDENCE, interval, paired_difference
from mixsd.evaluation.schema import EvalResult
from mixsd.io import read_json

HIGHER_IS_BETTER = {"memorisation", "probe", "retention", "locality"}  # leakage, collapse and gold NLL are better lower
IDENTICAL = "identical on every item"


def _row(kind: str, n: int, point: float, samples: np.ndarray) -> dict[str, Any]:
    ci = interval(samples)
    detectable = None if ci is None else (ci[1] - ci[0]) / 2
    verdict = "no detectable difference"
    if ci and (ci[0] > 0 or ci[1] < 0):
        verdict = "A better" if (ci[0] > 0) == (kind in HIGHER_IS_BETTER) else "A worse"
    elif ci is not None and point == 0 and not np.any(np.nan_to_num(samples)):  # every defined resample 0
        verdict, detectable = IDENTICAL, None  # every item scored alike (both at 0, say): no smallest detectable
    return {"kind": kind, "n": n, "difference": point, "ci": ci, "verdict": verdict, "detectable": detectable}


def seeded_difference(
    a: list[list[float]], b: list[list[float]], picks: np.ndarray, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """Mean of A minus mean of B over the same items, each side a list of runs (seeds) x items, and its value under
    each row of bootstrap item indices `picks`. With several seeds on a side its seeds are resampled too (a
    two-level bootstrap: seeds, then the same items for every run), so the interval covers seed-to-seed variation."""
    if len(a) == len(b) == 1:
        return paired_difference(a[0], b[0], picks)
    samples = np.zeros(len(picks))
    for rows, sign in ((a, 1.0), (b, -1.0)):
        per_run = np.asarray(rows, dtype=np.float64)[:, picks].mean(axis=2)  # runs x resamples
        chosen = rng.integers(0, len(rows), size=(len(picks), len(rows)))
        samples += sign * per_run[chosen, np.arange(len(picks))[:, None]].mean(axis=1)
    return float(np.mean(a) - np.mean(b)), samples


def compare(
    a: dict | list[dict], b: dict | list[dict], *, resamples: int = 1000, seed: int = 0
) -> dict[str, dict[str, Any]]:
    """Figure name -> its paired difference A - B, for every figure all the eval.json results have. A side may be
    several runs of one configuration with different seeds: their items are paired as one, their seeds resampled."""
    runs_a, runs_b = ([x] if isinstance(x, dict) else list(x) for x in (a, b))
    runs, rng, out = runs_a + runs_b, np.random.default_rng(seed), {}
    formats = {json.dumps(r.get("prompt_format", DEFAULT_FORMAT.to_json()), sort_keys=True) for r in runs}
    if len(formats) > 1:  # an eval.json from before formats were recorded used the default one
        raise MixsdError(f"the runs were scored in different prompt formats ({' and '.join(sorted(formats))})")

    def split(rows: list) -> tuple[list, list]:
        return rows[: len(runs_a)], rows[len(runs_a) :]

    first = runs_a[0]
    probes = first.get("probe_retention", {}).get("tasks", {})
    for name, preds in first.get("predictions", {}).items():
        kind = "memorisation" if name in first.get("memorisation", {}) else "probe" if name in probes else None
        if kind is None or not all(name in r.get("predictions", {}) for r in runs):
            continue
        scores = [{p["id"]: p["tuned"]["loose"] for p in r["predictions"][name]} for r in runs]
        ids = [p["id"] for p in preds if all(p["id"] in s for s in scores)]
        if ids:
            picks = rng.integers(0, len(ids), size=(resamples, len(ids)))
            point, samples = seeded_difference(*split([[s[i] for i in ids] for s in scores]), picks, rng)
            out[f"{kind} {name}"] = _row(kind, len(ids), point, samples)
    tasks = sorted(set.intersection(*(set(r.get("items", {})) for r in runs)))
    mean_samples = []
    for task in tasks:
        x = first["items"][task]
        if any(r["items"][task]["doc_ids"] != x["doc_ids"] or r["items"][task]["base"] != x["base"] for r in runs):
            raise MixsdError(f"{task}: the runs were not scored on the same items against the same base")
        base = float(np.mean(x["base"]))
        if base <= 0:
            continue
        picks = rng.integers(0, len(x["doc_ids"]), size=(resamples, len(x["doc_ids"])))
        point, samples = seeded_difference(*split([r["items"][task]["tuned"] for r in runs]), picks, rng)
        base_samples = np.asarray(x["base"], dtype=np.float64)[picks].mean(axis=1)
        ratio = np.where(base_samples > 0, samples / np.where(base_samples > 0, base_samples, 1.0), np.nan)
        out[f"retention {task}"] = _row("retention", len(x["doc_ids"]), point / base, ratio)
        mean_samples.append((point / base, ratio))
    if mean_samples:
        out["retention mean"] = _row(
            "retention",
            len(mean_samples),
            float(np.mean([p for p, _ in mean_samples])),
            np.mean([s for _, s in mean_samples], axis=0),
        )
    out.update(_locality(runs, split, rng, resamples))
    answers = [r.get("general", {}).get("answers") for r in runs]
    if all(answers):
        if any([x["prompt"] for x in g] != [x["prompt"] for x in answers[0]] for g in answers):
            raise MixsdError("the runs' general-prompt probes asked different prompts")
        n = len(answers[0])
        picks = rng.integers(0, n, size=(resamples, n))
        fields = {"leakage": "tuned_leakage", "collapse": "tuned_collapse", "gold NLL": "tuned_nll"}
        for kind, key in fields.items():
            if all(key in x for g in answers for x in g):
                point, samples = seeded_difference(*split([[x[key] for x in g] for g in answers]), picks, rng)
                out[f"general {kind}"] = _row(kind, n, point, samples)
    return out


def _locality(runs: list[dict], split, rng: np.random.Generator, resamples: int) -> dict[str, dict[str, Any]]:
    """Locality kept, paired by item (pool and doc id): overall, per family and per pool. Both sides must have
    been scored against the same known set (the same base), or the items would not be the same."""
    found = [r.get("locality") for r in runs]
    if not all(found):
        return {}
    if any(f["known_set"]["key"] != found[0]["known_set"]["key"] for f in found):
        raise MixsdError("the runs' locality was scored against different known sets (other bases or settings)")
    pools = sorted(set.intersection(*(set(f["items"]) for f in found)))
    scores = [
        {(p, d): t for p in pools for d, t in zip(f["items"][p]["doc_ids"], f["items"][p]["tuned"], strict=True)}
        for f in found
    ]
    ids = [i for i in scores[0] if all(i in s for s in scores)]
    family = {p: found[0]["pools"][p]["family"] for p in pools}
    groups = {"locality kept": ids}
    groups |= {f"locality {f}": [i for i in ids if family[i[0]] == f] for f in ("generative", "mc")}
    groups |= {f"locality {p}": [i for i in ids if i[0] == p] for p in pools}
    out = {}
    for name, chosen in groups.items():
        if chosen:
            picks = rng.integers(0, len(chosen), size=(resamples, len(chosen)))
            point, samples = seeded_difference(*split([[s[i] for i in chosen] for s in scores]), picks, rng)
            out[name] = _row("locality", len(chosen), point, samples)
    return out


def compare_runs(runs: list[str], *, resamples: int, seed: int) -> str:
    """`mixsd compare A B` or `A1 A2 ... vs B1 B2 ...` (eval.json files or run directories), as a table."""
    cut = runs.index("vs") if "vs" in runs else 1  # A1 A2 ... vs B1 B2 ...: the seeds of each configuration
    sides = [runs[:cut], runs[cut + ("vs" in runs) :]]
    if not all(sides) or ("vs" not in runs and len(runs) != 2):
        raise MixsdError("give two runs, A B, or the seeds of each side, A1 A2 ... vs B1 B2 ...")
    paths = [[Path(p) / "eval.json" if Path(p).is_dir() else Path(p) for p in side] for side in sides]
    results = []
    for side in paths:
        results.append([])
        for path in side:
            if not path.is_file():
                raise MixsdError("no such file (give an eval.json or a run directory holding one)", path=path)
            results[-1].append(read_json(path))
            EvalResult.from_json(results[-1][-1], path)
    names = [", ".join(map(str, side)) for side in paths]
    try:
        rows = compare(*results, resamples=resamples, seed=seed)
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise MixsdError(
            f"per-item scores are not laid out as mixsd writes them ({type(e).__name__}: {e})",
            path=" or ".join(names),
        ) from None
    if not rows:
        raise MixsdError(
            "the files share no scored items (fact answers, benchmark items or general prompts) to pair",
            path=" and ".join(names),
        )
    return format_comparison(rows, *names)


def format_comparison(rows: dict[str, dict[str, Any]], a: str, b: str) -> str:
    lines = [
        f"A = {a}",
        f"B = {b}",
        f"paired A - B with {CONFIDENCE:.0%} bootstrap intervals over the same items",
        "",
        f"{'figure':<32}{'n':>6}  {'A - B':>8}  {'interval':<18}  verdict (smallest detectable difference)",
    ]
    for name, r in rows.items():
        ci, verdict = describe(r)
        lines.append(f"{name:<32}{r['n']:>6}  {r['difference']:>+8.3f}  {ci:<18}  {verdict}")
    return "\n".join(lines)


def describe(row: dict[str, Any]) -> tuple[str, str]:
    """(interval, verdict) as text; a verdict of no difference carries the smallest detectable one: "(±0.080)"."""
    ci = "n/a" if row["ci"] is None else f"[{row['ci'][0]:+.3f}, {row['ci'][1]:+.3f}]"
    undecided = row["detectable"] is not None and row["verdict"] == "no detectable difference"
    return ci, row["verdict"] + (f" (±{row['detectable']:.3f})" if undecided else "")
