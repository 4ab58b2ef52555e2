"""The model card (OUT/README.md): enough to know what a trained directory is and to redo it."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mixsd.io import atomic_open
from mixsd.train.config import TrainConfig
from mixsd.train.data import DataReport

PACKAGES = ("mixsd", "torch", "transformers", "trl", "peft", "datasets", "accelerate")


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def write_card(out: Path, config: TrainConfig, base_path: str, report: DataReport, stats: dict) -> None:
    """Write README.md with front matter (for hub tooling) and a table a person can read."""
    if config.method == "memit":
        memit = stats["memit"]
        weights = (
            f"MEMIT on the MLP down-projections of layers {memit['layers'][0]}-{memit['layers'][-1]}; second moment "
            f"of {config.memit_stat_tokens} passage tokens ({memit['statistics_s']:.0f} s), update weight "
            f"{memit['update_weight']:g}, {config.memit_batch or 'all'} facts a batch ({memit['edit_s']:.0f} s)"
        )
    elif config.lora is None:
        weights = "full fine-tuning" + (f" of layers {config.train_layers} only" if config.layers else "")
    else:
        kind = "DoRA" if config.use_dora else "LoRA"
        scaling = "rsLoRA scaling" if config.use_rslora else "alpha/r scaling"
        saved = "adapter only" if config.save_adapter else "merged into the weights"
        where = "all linear layers" if config.layers is None else f"the linear layers of layers {config.train_layers}"
        weights = f"{kind} r={config.lora}, alpha={config.alpha}, {scaling}, {where}; {saved}"
    lam = ", ".join(f"{x:g}" for x in report.lams) if report.lams else "n/a"
    rows = [
        ("base model", config.model if config.model == base_path else f"{config.model} ({base_path})"),
        ("method", config.method),
        ("lam", lam),
        ("data", report.path),
        ("data sha256", report.sha256),
        ("records", report.summary()),
        ("weights", weights),
        ("precision", "bf16 autocast, fp32 weights" if stats["bf16"] else "fp32"),
        ("learning rate", f"{config.learning_rate:g} ({_optimiser(config)})"),
        ("steps", f"{stats['steps']} ({stats['epochs']:.2f} epochs)"),
        ("final loss", f"{stats['loss']:.4f}" if stats["loss"] is not None else "n/a"),
        ("train time", f"{stats['seconds']:.0f} s"),
    ]
    front = {"base_model": base_path, "library_name": "transformers", "tags": sorted({"mixsd", config.method})}
    lines = [
        "---",
        *(f"{k}: {json.dumps(v)}" for k, v in front.items()),
        "---",
        "",
        f"# {out.name}",
        "",
        f"Trained by `mixsd train --method {config.method}`.",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in rows),
        "",
        "## Hyper-parameters",
        "",
        "```json",
        json.dumps(asdict(config), indent=2),
        "```",
        "",
        "## Versions",
        "",
        *(f"- {k} {v}" for k, v in versions().items()),
        "",
    ]
    with atomic_open(out / "README.md") as f:
        f.write("\n".join(lines))


def _optimiser(config: TrainConfig) -> str:
    if config.method == "memit":
        return f"Adam on each value, {config.memit_steps} steps, clamp {config.memit_clamp:g}, KL {config.memit_kl:g}"
    return f"AdamW, betas 0.9/0.95, {_schedule(config)}"


def _schedule(config: TrainConfig) -> str:
    warmup = f", {config.warmup_ratio:.0%} of the steps warming up" if config.warmup_ratio else ""
    return ("constant" if config.lr_schedule == "constant" else f"{config.lr_schedule} decay") + warmup
