"""report.md for one `mixsd inject` run: its settings, stage times and the evaluation table."""

from __future__ import annotations

import json
from pathlib import Path

from mixsd.errors import MixsdError
from mixsd.io import atomic_open, read_json
from mixsd.report.table import format_locality, format_table


def write_run_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    eval_path = run_dir / "eval.json"
    if not eval_path.is_file():
        raise MixsdError("no eval.json here: run `mixsd inject` (or `mixsd eval`) first", path=run_dir)
    result = read_json(eval_path)
    settings = read_json(run_dir / "inject.json") if (run_dir / "inject.json").is_file() else {}
    stages = read_json(run_dir / "stages.json") if (run_dir / "stages.json").is_file() else {}
    lines = [f"# mixsd run: {run_dir.name}", ""]
    if settings:
        lam = f", lam {settings['lam']}" if settings.get("method") == "mixsd" else ""
        lora = f"LoRA r={settings['lora']}" if settings.get("lora") else "full fine-tuning"
        lines += [
            f"- base model: `{settings['model']}`",
            f"- facts: `{settings['facts']}`",
            f"- method: {settings['method']}{lam}, {lora}",
        ]
        for stage in ("targets", "train", "eval"):
            if settings.get(stage):
                lines.append(f"- {stage} settings: `{json.dumps(settings[stage], sort_keys=True)}`")
    if "trajectory" in result:
        t = result["trajectory"]
        where = f"epoch {t['epoch']:g}, rule {t['rule']}; model/trajectory.json"
        lines.append(f"- reported point: {t['checkpoint']} ({where})")
    if stages:
        lines.append("- stage times: " + ", ".join(f"{name} {s['seconds']:.0f} s" for name, s in stages.items()))
    lines += [
        "",
        "## Evaluation (tuned vs base)",
        "",
        "```",
        format_table(result),
        "```",
        "",
        f"Every figure, the per-record predictions and the per-item benchmark scores are in `{eval_path.name}`.",
    ]
    path = run_dir / "report.md"
    with atomic_open(path) as f:
        f.write("\n".join(lines) + "\n")
    card = run_dir / "model" / "README.md"
    if result.get("locality") and card.is_file():
        write_card_locality(card, result["locality"])
    return path


CARD_MARK = "<!-- mixsd locality -->"


def write_card_locality(card: Path, locality: dict) -> None:
    """The model card's locality section (replaced on a rerun): what the base model knew that this one keeps."""
    text = card.read_text(encoding="utf-8").split(CARD_MARK)[0].rstrip("\n")
    section = [
        "",
        CARD_MARK,
        "## Locality",
        "",
        "Of the benchmark items the base model answers right, the share this model still answers right "
        "(`mixsd eval --suite locality`; 95% bootstrap intervals over items):",
        "",
        "```",
        *format_locality(locality),
        "```",
    ]
    with atomic_open(card) as f:
        f.write(text + "\n" + "\n".join(section) + "\n")
