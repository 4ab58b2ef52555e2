"""The report of continual runs (`mixsd continual`, or a sweep's `rounds` entries): after every round, each round's
facts still known and the base's abilities kept, per run; MixSD (or any method) minus SFT round by round, paired on
the same items with the seeds resampled; and rounds.png."""

from __future__ import annotations

from pathlib import Path

from mixsd.data.records import read_records
from mixsd.io import atomic_open, file_sha256, read_json
from mixsd.report.paired import compare, describe
from mixsd.report.plots import plot_rounds
from mixsd.report.runs import configuration, fmt, mean

PAIRED = (
    "memorisation earlier",
    "memorisation train",
    "locality kept",
    "locality generative",
    "general leakage",
    "general gold NLL",
)
NAMES = {"memorisation earlier": "earlier rounds' facts", "memorisation train": "every round's facts so far"}


def continual_runs(directory: Path) -> dict[str, list[dict]]:
    """Run name -> its rounds (rounds.json): the directory itself if it is a continual run, else its runs/*/."""
    files = [directory / "rounds.json"] if (directory / "rounds.json").is_file() else []
    files = files or sorted(directory.glob("runs/*/rounds.json"))
    return {f.parent.name: read_json(f)["rounds"] for f in files}


def earlier(rounds: list[dict], k: int) -> float | None:
    """Mean memorisation, after round K, of the facts of the rounds before it (None after round 1)."""
    before = [v for name, v in rounds[k - 1]["memorisation"].items() if name != f"round-{k}"]
    return mean(before) if before else None


def run_lines(name: str, rounds: list[dict]) -> list[str]:
    """A run's table (one row per round) and its memorisation matrix (after round K, round J's facts)."""
    lines = [
        "",
        f"### {name}",
        "",
        "| after round | facts | this round's facts | earlier rounds' (mean) | all so far | locality kept "
        "| generative | mc | leakage | gold NLL | time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        k, loc, general = r["round"], r["locality"], r["general"]
        cells = [str(k), str(r["facts"]), fmt(r["memorisation"][f"round-{k}"]), fmt(earlier(rounds, k))]
        cells += [fmt(r["memorisation_seen"])] + [fmt(loc.get(x)) for x in ("kept", "generative", "mc")]
        cells += [fmt(general.get("leakage")), fmt(general.get("gold_nll")), f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    n = len(rounds)
    lines += ["", "| after round | " + " | ".join(f"round {j}" for j in range(1, n + 1)) + " |"]
    lines.append("|---|" + "---|" * n)
    for r in rounds:
        row = [fmt(r["memorisation"].get(f"round-{j}")) if j <= r["round"] else "" for j in range(1, n + 1)]
        lines.append(f"| {r['round']} | " + " | ".join(row) + " |")
    return lines


def _round_result(round_dir: Path, ids: set[str]) -> dict:
    """A round's eval.json with the earlier rounds' facts (`ids`) as a split of their own, so `compare` pairs
    them alone."""
    result = read_json(round_dir / "eval.json")
    preds = [p for p in result["predictions"]["train"] if p["id"] in ids]
    return {
        **result,
        "memorisation": {**result["memorisation"], "earlier": {}},
        "predictions": {**result["predictions"], "earlier": preds},
    }


def _split(directory: Path, name: str) -> tuple[str, ...]:
    """A run's rounds, by the digests of their facts files: runs pair only where they split the facts alike."""
    return tuple(file_sha256(f) for f in sorted((directory / "runs" / name / "facts").glob("round-*.jsonl")))


def paired_lines(directory: Path, runs: dict[str, list[dict]]) -> list[str]:
    """Each non-SFT configuration minus the SFT one with the same rounds, round by round, the seeds of both
    resampled."""
    groups: dict[str, list[str]] = {}
    for name in runs:
        groups.setdefault(configuration(name), []).append(name)
    method = methods(directory, runs)
    split = {c: _split(directory, names[0]) for c, names in groups.items()}
    sfts = {split[c]: c for c, names in reversed(groups.items()) if method[names[0]] == "sft"}  # the first per split
    pairs = [(c, sfts[split[c]]) for c, names in groups.items() if method[names[0]] != "sft" and split[c] in sfts]
    if not pairs:
        return []
    lines = [
        "",
        "## Paired against SFT, round by round",
        "",
        "Each configuration (A) minus the SFT one with the same rounds, after the same round, over the same items "
        "(seeds resampled too); where the interval holds 0, ± is the smallest difference this sample could have "
        "detected.",
        "",
        "| configuration | SFT | after round | figure | n | A - SFT | interval | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for config, sft in pairs:
        names, facts = groups[config], directory / "runs" / groups[config][0] / "facts"
        for k in range(1, min(len(runs[n]) for n in names + groups[sft]) + 1):
            ids = {r.id for j in range(1, k) for r in read_records(facts / f"round-{j}.jsonl")}
            a, b = (
                [_round_result(directory / "runs" / n / f"round-{k}", ids) for n in side]
                for side in (names, groups[sft])
            )
            figures = compare(a, b)
            for figure in PAIRED:
                if figure in figures and (figure != "memorisation earlier" or k > 1):
                    f = figures[figure]
                    ci, verdict = describe(f)
                    cells = [config, sft, str(k), NAMES.get(figure, figure), str(f["n"]), f"{f['difference']:+.3f}"]
                    lines.append("| " + " | ".join(cells + [ci, verdict]) + " |")
    return lines


def write_continual_report(directory: str | Path) -> Path:
    """report.md and rounds.png of a continual run or of a sweep of them."""
    directory = Path(directory)
    runs = continual_runs(directory)
    lines = [f"# mixsd continual: {directory.name}", ""] + continual_lines(directory, runs)
    lines += ["", "## Plots", "", "![rounds](rounds.png)"]
    plot_rounds(runs, methods(directory, runs), directory / "rounds.png")
    path = directory / "report.md"
    with atomic_open(path) as f:
        f.write("\n".join(lines) + "\n")
    return path


def methods(directory: Path, runs: dict[str, list[dict]]) -> dict[str, str]:
    """Run name -> its method (its continual.json)."""
    single = (directory / "rounds.json").is_file()
    return {n: read_json((directory if single else directory / "runs" / n) / "continual.json")["method"] for n in runs}


def continual_lines(directory: Path, runs: dict[str, list[dict]]) -> list[str]:
    """The runs' tables, the paired comparison and the last round's headline."""
    lines = [
        f"{len(runs)} continual run(s). Each round trains the model the round before produced (the base first) on "
        "that round's facts; after it, the model answers the facts of every round so far (memorisation, as the "
        "corpus scores it) and is scored against the original base (locality: of the items the base gets right, "
        "the share still right; leakage: everyday answers naming a trained entity; gold NLL: nats/token of their "
        "reference answers).",
        "",
        "## Rounds",
    ]
    for name, rounds in runs.items():
        lines += run_lines(name, rounds)
    lines += ["", "## At the last round", ""]
    for name, rounds in runs.items():
        last, k = rounds[-1], rounds[-1]["round"]
        lines.append(
            f"- `{name}` after round {k}: earlier rounds' facts {fmt(earlier(rounds, k))}, "
            f"this round's {fmt(last['memorisation'][f'round-{k}'])}, locality kept "
            f"{fmt(last['locality'].get('kept'))}, leakage {fmt(last['general'].get('leakage'))}"
        )
    if not (directory / "rounds.json").is_file():
        lines += paired_lines(directory, runs)
    return lines
