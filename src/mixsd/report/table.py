"""The compact evaluation table that `mixsd eval` prints and each run's report.md shows."""

from __future__ import annotations

from typing import Any

from mixsd.evaluation.schema import EvalResult, Kept


def _ci(value: float | None, interval: list[float] | None = None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.3f}" + (f" [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "")


def _pair(scores: dict | None) -> str:
    return "-" if scores is None else f"{scores['loose']:.3f} / {scores['strict']:.3f}"


def _kept(k: Kept, corrected: bool = False) -> str:
    return _ci(k.chance_corrected, k.chance_corrected_ci) if corrected else _ci(k.retention, k.retention_ci)


def _diff(rate: dict) -> str:
    ci = rate["difference_ci"]
    return f"{rate['difference']:+.3f}" + (f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else "")


def _errors(breakdown: dict) -> str:
    """ "(12): leakage 1, format 3, collapse 8, genuine 0", the categories of evaluation/errors.py."""
    return f"({breakdown['wrong']}): " + ", ".join(f"{c} {n}" for c, n in breakdown["counts"].items())


def format_table(result: dict[str, Any]) -> str:
    """The compact summary that `mixsd eval` prints; eval.json has every figure."""
    view = EvalResult.from_json(result)
    lines: list[str] = []
    if view.memorisation or view.probes:
        lines.append(f"{'facts (loose / strict)':<28}{'tuned':>15}{'base':>15}   retention")
        for splits, probe in ((view.memorisation, False), (view.probes, True)):
            for split, row in splits.items():
                label = f"  {split} ({row.n})"
                kept = f"   {_kept(view.probe_retention[split])}" if probe else ""
                lines.append(f"{label:<28}{_pair(row.tuned):>15}{_pair(row.base):>15}{kept}")
    if view.benchmarks:
        lines.append(
            f"{'benchmark':<22}{'n':>5}{'chance':>8}{'base':>8}{'tuned':>8}   {'retention':<24}chance-corrected"
        )
        for name, row in view.benchmarks.items():
            kept = view.retention[name]
            lines.append(
                f"  {name:<20}{row.n:>5}{row.chance:>8.3f}{row.base:>8.3f}{row.tuned:>8.3f}   "
                f"{_kept(kept):<24}{_kept(kept, corrected=True)}"
            )
        mean = view.mean_retention
        lines.append(f"  {'mean':<44}   {_kept(mean):<24}{_kept(mean, corrected=True)}")
        for name, errors in view.benchmark_errors.items():
            answered = view.benchmarks[name].answered
            form = f"; answered in form {answered['tuned']:.2f} (base {answered['base']:.2f})" if answered else ""
            lines.append(f"  {name}, lost items {_errors(errors)}{form}")
        for name, why in view.skipped_tasks.items():
            lines.append(f"  {name}: skipped, {why}")
    if view.general:
        rates = "; ".join(
            f"{kind} {r['tuned']:.3f} (base {r['base']:.3f}, {_diff(r)})"
            for kind, r in view.general.items()
            if kind in ("leakage", "collapse", "changed")
        )
        lines.append(f"general prompts ({view.general['n']}): {rates}")
        if "gold_nll" in view.general:
            r = view.general["gold_nll"]
            lines.append(
                f"  NLL of their reference answers, nats/token: {r['tuned']:.3f} (base {r['base']:.3f}, {_diff(r)})"
            )
    if view.locality:
        lines.extend(format_locality(view.locality))
    analyses = view.analyses
    if "drift" in analyses:
        d = analyses["drift"]
        lines.append(
            f"drift: mean KL(base || tuned) {d['mean_kl']:.4g} nats over {d['kl_positions']} positions; "
            f"{d['changed_fraction']:.0%} of {d['prompts']} greedy answers changed"
        )
    if "fisher" in analyses:
        f = analyses["fisher"]
        lines.append(
            f"Fisher-weighted displacement: {f['skipped']}"
            if "skipped" in f
            else f"Fisher-weighted displacement {f['fisher_weighted']:.4g} (squared distance "
            f"{f['squared_distance']:.4g}; Fisher from {f['items']} items)"
        )
    for split, roles in analyses.get("errors", {}).items():
        lines.append(f"wrong {split} answers of the tuned model {_errors(roles['tuned'])}")
    if "target_nll" in analyses:
        t = analyses["target_nll"]
        lines.append(
            f"target NLL under the base model: {t['mean_nll']:.4f} nats/token "
            f"({t['records']} records, {t['tokens']} tokens"
            + (f", {t['gold_fallback']} replaced by the gold answer" if t.get("gold_fallback") else "")
            + ")"
        )
    return "\n".join(lines)


def format_locality(loc: dict[str, Any]) -> list[str]:
    """Kept of the base model's known items: overall, per family and per pool, with the lost items' categories."""

    def share(row: dict) -> str:
        return _ci(row["kept"], row["kept_ci"])

    lines = [
        f"locality (of {loc['n']} items the base model knows, the share still right; known set: "
        f"{loc['known_set']['source']}): kept {share(loc)}",
        f"  {'pool':<26}{'pool':>6}{'known':>7}{'scored':>8}   {'kept':<24}lost: leakage/format/collapse/genuine",
    ]
    for family, row in loc["families"].items():
        if row["n"]:
            lines.append(f"  {family + ' (family)':<26}{'':>13}{row['n']:>8}   {share(row)}")
    for task, row in loc["pools"].items():
        lost = "/".join(str(row["lost"][c]) for c in ("leakage", "format", "collapse", "genuine"))
        lines.append(f"  {task:<26}{row['pool']:>6}{row['known']:>7}{row['n']:>8}   {share(row):<24}{lost}")
    return lines


def format_trajectory(trajectory: dict) -> str:
    """One line per checkpoint: train memorisation, mean retention, general leakage and collapse; * = selected."""
    points, chosen = trajectory["points"], trajectory["selected"]
    lines = [
        f"{trajectory['method']} run, selected by {trajectory['rule']}: {points[chosen]['checkpoint']}",
        f"{'checkpoint':<14}{'epoch':>6}{'train mem.':>12}{'mean kept':>11}{'leakage':>9}{'collapse':>10}",
    ]
    for i, p in enumerate(points):
        general = [p["general"].get(k) for k in ("leakage", "collapse")]
        cells = [_ci(c) for c in (p["memorisation"].get("train"), p["mean_retention"], *general)]
        mark = " *" if i == chosen else ""
        lines.append(
            f"{p['checkpoint']:<14}{p['epoch']:>6.0f}{cells[0]:>12}{cells[1]:>11}{cells[2]:>9}{cells[3]:>10}{mark}"
        )
    return "\n".join(lines)
