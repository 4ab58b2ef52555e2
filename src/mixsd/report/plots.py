"""The report's figures (matplotlib, Agg): the memorisation-retention frontier, per-task retention, target NLL."""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mixsd.io import atomic_open  # noqa: E402
from mixsd.report.runs import Row, best_at_headline, configuration, label  # noqa: E402

COLOURS = {"sft": "tab:red", "mixsd": "tab:blue", "opsd": "tab:green", "memit": "tab:purple"}
LABEL_DY = 3  # a point label's default height above its point, in points


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=120, metadata={"Software": None})
    plt.close(fig)
    return path


def stack_labels(points: list[tuple[float, float, float]], height: float, tries: int = 8) -> list[float]:
    """Vertical offsets (in points) for labels right of each point so that no two label boxes overlap.

    `points` are (x, y, width) in points on the page; a label tries offsets d, d - s, d + s, d - 2s, ... (d is
    LABEL_DY, s one line) and takes the first free one (the last try if none is), so near-coincident runs' labels
    fan out.
    """
    placed: list[tuple[float, float, float]] = []  # (left, bottom, width) of each placed label
    offsets = []
    for x, y, width in points:
        for k in range(tries):
            dy = LABEL_DY + (k + 1) // 2 * (height + 1) * (1 if k % 2 == 0 else -1)
            if not any(x < px + pw and px < x + width and abs(y + dy - py) < height for px, py, pw in placed):
                break
        placed.append((x, y + dy, width))
        offsets.append(dy)
    return offsets


def _annotate(ax, items: list[tuple[str, float, float, str]], fontsize: float = 6) -> None:
    """Label each (text, x, y, colour) point; labels moved off their point get a thin leader line."""
    ax.autoscale_view()  # settle the limits the data transform uses
    order = sorted(items, key=lambda item: (-item[2], item[1]))
    to_points = 72 / ax.figure.dpi
    page = [(*(ax.transData.transform((x, y)) * to_points), 0.55 * fontsize * len(text)) for text, x, y, _ in order]
    for (text, x, y, colour), dy in zip(order, stack_labels(page, fontsize + 1), strict=True):
        moved = dy != LABEL_DY
        ax.annotate(
            text,
            (x, y),
            textcoords="offset points",
            xytext=(4, dy),
            fontsize=fontsize,
            color=colour,
            va="bottom",
            arrowprops={"arrowstyle": "-", "lw": 0.4, "color": colour} if moved else None,
        )


def plot_pareto(rows: list[Row], front: set[str], path: Path) -> Path | None:
    """Train memorisation against mean benchmark retention (and retrieval-probe retention when measured); runs
    scored along training draw their trajectory, one dot per checkpoint, up to the reported point."""
    axes_x = [("mean_retention", "mean benchmark retention (tuned / base)")]
    if all(r.mean_retention is None for r in rows) and any("gold_nll" in r.general or r.locality for r in rows):
        axes_x = []  # no benchmark suite was run: no empty panel
    if any(r.locality.get("kept") is not None for r in rows):
        axes_x.append(("locality", "locality: known items kept (tuned / base)"))
    if any("retrieval" in r.probes for r in rows):
        axes_x.append(("retrieval", "retrieval-probe retention (tuned / base)"))
    if any("gold_nll" in r.general for r in rows):
        axes_x.append(("gold_nll", "everyday reference-answer NLL, nats/token (axis reversed: right keeps more)"))
    fig, axes = plt.subplots(1, len(axes_x), figsize=(6.5 * len(axes_x), 5), squeeze=False)
    for ax, (key, axis_label) in zip(axes[0], axes_x, strict=True):
        x_of = {
            "mean_retention": lambda r: r.mean_retention,
            "retrieval": lambda r: r.probes.get("retrieval"),
            "locality": lambda r: r.locality.get("kept"),
            "gold_nll": lambda r: r.general.get("gold_nll"),
        }[key]
        pts = [(r, x_of(r), r.memorisation.get("train")) for r in rows]
        pts = [(r, x, y) for r, x, y in pts if x is not None and y is not None]
        for method in sorted({r.method for r, _, _ in pts}):
            sel = [(r, x, y) for r, x, y in pts if r.method == method]
            ax.scatter(
                [x for _, x, _ in sel],
                [y for _, _, y in sel],
                c=COLOURS.get(method, "grey"),
                label=method,
                s=[90 if r.name in front else 35 for r, _, _ in sel],
                edgecolors="black",
                linewidths=[1.5 if r.name in front else 0 for r, _, _ in sel],
                alpha=0.85,
            )
        if key == "mean_retention":
            for r, _, _ in pts:  # each run's checkpoints along training, ending in its reported point
                if len(r.trajectory) > 1:
                    xs, ys = zip(*r.trajectory, strict=True)
                    ax.plot(xs, ys, "o-", color=COLOURS.get(r.method, "grey"), lw=0.8, ms=2.5, alpha=0.5, zorder=1)
        for method in sorted({r.method for r, _, _ in pts}):  # each method's own front on this panel's axes
            mine = [(x, y) for r, x, y in pts if r.method == method]
            best = method_front(mine, higher_x=key != "gold_nll")
            if len(best) > 1:
                xs, ys = zip(*best, strict=True)
                ax.plot(xs, ys, color=COLOURS.get(method, "grey"), lw=1, ls="--", zorder=1)
        ax.axhline(0.9, color="grey", lw=0.8, ls=":")
        if key == "gold_nll":  # the base model's NLL of the same answers: nothing lost
            base = next((r.general_base["gold_nll"] for r in rows if "gold_nll" in r.general_base), None)
            if base is not None:
                ax.axvline(base, color="grey", lw=0.8, ls=":")
            ax.invert_xaxis()
        else:
            ax.axvline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_xlabel(axis_label)
        ax.set_ylabel("train memorisation (loose accuracy)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        _annotate(ax, [(label(r, method=False, seed=True), x, y, COLOURS.get(r.method, "grey")) for r, x, y in pts])
        if pts:
            for handle in ax.legend(fontsize=8, loc="best").legend_handles:
                if hasattr(handle, "set_sizes"):  # one marker size in the legend, whatever the first point's
                    handle.set_sizes([35])
    fig.suptitle("Memorisation vs retention (dashed: each method's Pareto front; big markers: the report's frontier)")
    return _save(fig, path)


def method_front(points: list[tuple[float, float]], higher_x: bool = True) -> list[tuple[float, float]]:
    """The (retention, memorisation) points no other beats on both, in order of memorisation, highest first:
    a point stays if it keeps more (x) than every point that memorised more."""
    best: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (-p[1], -p[0] if higher_x else p[0])):
        if not best or (x > best[-1][0] if higher_x else x < best[-1][0]):
            best.append((x, y))
    return best


def plot_task_retention(rows: list[Row], front: set[str], tasks: list[str], path: Path) -> Path | None:
    """Per-task retention with 95% intervals of the headline runs (best per method and lam at >= 90%
    memorisation); the Pareto frontier when no run gets there."""
    shown = [r for g in best_at_headline(rows) for r in g]
    title = "best run per method and λ at >= 90% train memorisation"
    if not shown:
        shown, title = [r for r in rows if r.name in front], "Pareto-frontier runs (none reached 90% memorisation)"
    shown = [r for r in shown if r.retention]
    if not shown or not tasks:
        return None
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(tasks) + 2), 4.5))
    width = 0.8 / len(shown)
    for i, r in enumerate(shown):
        xs = [t + (i - (len(shown) - 1) / 2) * width for t in range(len(tasks))]
        kept = [r.retention.get(t, 0.0) for t in tasks]
        lows, highs = zip(*(r.retention_ci.get(t, [k, k]) for t, k in zip(tasks, kept, strict=True)), strict=True)
        same = sum(s.method == r.method for s in shown)
        rank = sum(s.method == r.method for s in shown[: i + 1])
        ax.bar(
            xs,
            kept,
            width,
            label=f"{label(r)} (mem. {r.memorisation['train']:.2f})",
            color=COLOURS.get(r.method, "grey"),
            alpha=0.35 + 0.65 * rank / same,
            edgecolor="black",
            linewidth=0.5,
            yerr=[
                [k - lo for k, lo in zip(kept, lows, strict=True)],
                [hi - k for k, hi in zip(kept, highs, strict=True)],
            ],
            error_kw={"elinewidth": 0.7, "capsize": 1.5},
        )
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.set_xticks(range(len(tasks)), [t.removeprefix("mixsd_") for t in tasks], rotation=20)
    ax.set_ylabel("retention (tuned / base accuracy), 95% CI")
    ax.set_title(f"Benchmark retention per task: {title}", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_trajectories(rows: list[Row], path: Path) -> Path | None:
    """Train memorisation at every scored checkpoint, one line per run; a star marks the checkpoint each run is
    reported at (the paper's rule: SFT at its first peak, MixSD and OPSD at the last)."""
    traced = [r for r in rows if len(r.curve) > 1]
    if not traced:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for r in traced:
        colour = COLOURS.get(r.method, "grey")
        epochs, memorised = zip(*r.curve, strict=True)
        ax.plot(epochs, memorised, "o-", color=colour, lw=1, ms=3, alpha=0.7, label=label(r, method=True))
        chosen = [(e, m) for e, m in r.curve if e == r.selected_epoch]
        if chosen:
            ax.plot(*chosen[0], marker="*", color=colour, ms=13, markeredgecolor="black", markeredgewidth=0.6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("train memorisation (loose accuracy)")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))  # seeds of one configuration share a label
    ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower right")
    ax.set_title("Memorisation along training (stars: the reported checkpoint)", fontsize=10)
    return _save(fig, path)


def plot_nll_by_lam(rows: list[Row], path: Path) -> Path | None:
    """Mean per-token NLL of each target set under the base model: MixSD by lam, SFT's y* as a reference."""
    by_lam = sorted({(r.lam, r.target_nll) for r in rows if r.method == "mixsd" and r.target_nll is not None})
    sft = sorted({r.target_nll for r in rows if r.method == "sft" and r.target_nll is not None})
    if not by_lam and not sft:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    if by_lam:
        ax.plot(
            [lam for lam, _ in by_lam], [nll for _, nll in by_lam], "o-", color=COLOURS["mixsd"], label="MixSD targets"
        )
    if sft:
        ax.axhline(sft[0], color=COLOURS["sft"], ls="--", label="ground-truth answers (SFT)")
    ax.set_xlabel("λ (probability of the naive conditional)")
    ax.set_ylabel("mean NLL per token under the base model (nats)")
    ax.set_title("How improbable the training targets are")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_paired(comparisons: dict[str, dict[str, dict]], figures: tuple[str, ...], sft: str, path: Path) -> Path | None:
    """One panel per figure: each run minus SFT over the same items, with its paired 95% interval; a bar that
    crosses 0 is no detectable difference."""
    shown = [f for f in figures if any(f in c for c in comparisons.values())]
    if not shown:
        return None
    runs = list(comparisons)
    fig, axes = plt.subplots(1, len(shown), figsize=(3.2 * len(shown) + 1.5, 0.45 * len(runs) + 1.6), squeeze=False)
    for ax, name in zip(axes[0], shown, strict=True):
        for i, run in enumerate(runs):
            row = comparisons[run].get(name)
            if row is None:
                continue
            low, high = row["ci"] or [row["difference"]] * 2
            colour = COLOURS["mixsd"] if row["verdict"].startswith("A ") else "black"
            ax.errorbar(
                row["difference"],
                i,
                xerr=[[row["difference"] - low], [high - row["difference"]]],
                fmt="o",
                color=colour,
                capsize=3,
                ms=4,
            )
        ax.axvline(0.0, color="grey", lw=0.8, ls=":")
        ax.set_yticks(range(len(runs)), runs if ax is axes[0][0] else [""] * len(runs), fontsize=7)
        ax.set_ylim(-0.7, len(runs) - 0.3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("run - SFT", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Paired against SFT ({sft}), 95% intervals over the same items (blue: excludes 0)", fontsize=10)
    return _save(fig, path)


def plot_rounds(runs: dict[str, list[dict]], methods: dict[str, str], path: Path) -> Path | None:
    """Continual runs over their rounds, one line per configuration (the mean over its seeds), coloured by method:
    memorisation of each round's facts from the round it was taught on (R1, R2, ...; later rounds' lines paler),
    then locality kept and leakage."""
    groups: dict[str, list[list[dict]]] = {}
    for name, rounds in runs.items():
        groups.setdefault(configuration(name), []).append(rounds)
    first = {configuration(name): name for name in reversed(list(runs))}
    styles = ("-", "--", ":", "-.")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for i, (config, members) in enumerate(sorted(groups.items())):
        colour, n = COLOURS.get(methods[first[config]], "grey"), min(len(r) for r in members)
        style = "o" + styles[sum(methods[first[c]] == methods[first[config]] for c in sorted(groups)[:i]) % 4]
        for j in range(1, n + 1):
            x = list(range(j, n + 1))
            y = [statistics.fmean(r[k - 1]["memorisation"][f"round-{j}"] for r in members) for k in x]
            alpha = 1.0 - 0.6 * (j - 1) / max(n - 1, 1)
            axes[0].plot(x, y, style, color=colour, alpha=alpha, ms=3, label=config if j == 1 else None)
            axes[0].annotate(f"R{j}", (j, y[0]), xytext=(-4, 4), textcoords="offset points", fontsize=7, color=colour)
        for ax, figure in ((axes[1], ("locality", "kept")), (axes[2], ("general", "leakage"))):
            values = [[r[k][figure[0]].get(figure[1]) for r in members] for k in range(n)]
            if all(v is not None for row in values for v in row):
                ax.plot(range(1, n + 1), [statistics.fmean(v) for v in values], style, color=colour, label=config)
    titles = ("Each round's facts, from the round taught", "Locality kept (vs the base)", "Leakage (everyday answers)")
    last = max(len(rounds) for rounds in runs.values())
    for ax, title in zip(axes, titles, strict=True):
        ax.set_xlabel("after round")
        ax.set_xticks(range(1, last + 1))
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        ax.set_title(title, fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    axes[0].set_ylabel("memorisation")
    return _save(fig, path)
