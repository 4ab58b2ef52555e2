"""Paired comparison of two runs scored on the same items: "A minus B = +x [lo, hi]", not two overlapping intervals.

Both runs' eval.json keep their per-item scores, so the difference can be resampled item by item: fact
answers (loose, per record id), benchmark items (per doc id; retention is accuracy over the shared base's
accuracy, so A's retention minus B's is their accuracy difference over the base's), and the general-prompt
probe's leakage and collapse flags and its gold-answer NLL (per prompt). The mean retention difference
resamples the items of every task at once, as the per-run intervals do. Each figure gets a verdict; where the
interval holds 0, the half-width of the interval is the smallest difference this sample could have detected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mixsd.errors import MixsdError
from mixsd.evaluation.retention import CONFIDENCE, interval, paired_difference

HIGHER_IS_BETTER = {"memorisation": True, "retention": True, "leakage": False, "collapse": False, "gold NLL": False}


def _row(kind: str, n: int, point: float, samples: np.ndarray) -> dict[str, Any]:
    ci = interval(samples)
    verdict = "no detectable difference"
    if ci and (ci[0] > 0 or ci[1] < 0):
        verdict = "A better" if (ci[0] > 0) == HIGHER_IS_BETTER[kind] else "A worse"
    return {
        "kind": kind,
        "n": n,
        "difference": point,
        "ci": ci,
        "verdict": verdict,
        "detectable": None if ci is None else (ci[1] - ci[0]) / 2,
    }


def compare(a: dict, b: dict, *, resamples: int = 1000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Figure name -> its paired difference A - B, for every figure both eval.json results have."""
    rng, out = np.random.default_rng(seed), {}
    for split, preds in a.get("predictions", {}).items():
        if split not in a.get("memorisation", {}) or split not in b.get("predictions", {}):
            continue
        theirs = {p["id"]: p["tuned"]["loose"] for p in b["predictions"][split]}
        pairs = [(p["tuned"]["loose"], theirs[p["id"]]) for p in preds if p["id"] in theirs]
        if pairs:
            picks = rng.integers(0, len(pairs), size=(resamples, len(pairs)))
            point, samples = paired_difference(*zip(*pairs, strict=True), picks)
            out[f"memorisation {split}"] = _row("memorisation", len(pairs), point, samples)
    tasks = sorted(set(a.get("items", {})) & set(b.get("items", {})))
    mean_samples = []
    for task in tasks:
        x, y = a["items"][task], b["items"][task]
        if x["doc_ids"] != y["doc_ids"] or x["base"] != y["base"]:
            raise MixsdError(f"{task}: the two runs were not scored on the same items against the same base")
        base = float(np.mean(x["base"]))
        if base <= 0:
            continue
        picks = rng.integers(0, len(x["doc_ids"]), size=(resamples, len(x["doc_ids"])))
        point, samples = paired_difference(x["tuned"], y["tuned"], picks)
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
    ga, gb = a.get("general", {}).get("answers"), b.get("general", {}).get("answers")
    if ga and gb:
        if [x["prompt"] for x in ga] != [x["prompt"] for x in gb]:
            raise MixsdError("the two runs' general-prompt probes asked different prompts")
        picks = rng.integers(0, len(ga), size=(resamples, len(ga)))
        for kind in ("leakage", "collapse"):
            point, samples = paired_difference(
                [x[f"tuned_{kind}"] for x in ga], [x[f"tuned_{kind}"] for x in gb], picks
            )
            out[f"general {kind}"] = _row(kind, len(ga), point, samples)
        if all("tuned_nll" in x for x in (*ga, *gb)):
            point, samples = paired_difference([x["tuned_nll"] for x in ga], [x["tuned_nll"] for x in gb], picks)
            out["general gold NLL"] = _row("gold NLL", len(ga), point, samples)
    return out


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
