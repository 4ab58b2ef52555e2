"""The sweep report: table straight from eval.json, Pareto frontier, reproducible bytes, real PNGs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from statistics import stdev

import pytest

from mixsd.errors import MixsdError
from mixsd.report.runs import best_at_headline, collect, configuration, label, pareto
from mixsd.report.sweep import write_sweep_report


def fake_run(root, name, method, mem, kept, lam=None, nll=None):
    run = root / "runs" / name
    run.mkdir(parents=True)
    (run / "inject.json").write_text(
        json.dumps(
            {"method": method, "lam": lam if lam is not None else 0.3, "lora": None, "train": {"lr": 1e-4, "epochs": 5}}
        )
    )
    (run / "stages.json").write_text(json.dumps({"train": {"seconds": 12.5}, "eval": {"seconds": 3.0}}))
    tasks = {"mixsd_arc_easy": {"retention": kept}, "mixsd_piqa": {"retention": kept + 0.01}}
    (run / "eval.json").write_text(
        json.dumps(
            {
                "memorisation": {
                    "train": {"n": 100, "tuned": {"loose": mem, "strict": mem}, "base": {"loose": 0, "strict": 0}}
                },
                "probe_retention": {"tasks": {"retrieval": {"retention": kept}}},
                "retention": {"tasks": tasks, "mean": {"retention": kept + 0.005, "chance_corrected": kept - 0.1}},
                "analyses": {
                    "target_nll": {"mean_nll": nll, "records": 100, "gold_fallback": 25 if method == "mixsd" else 0},
                    "fisher": {"fisher_weighted": 0.0123},
                }
                if nll
                else {},
            }
        )
    )


@pytest.fixture
def sweep_dir(tmp_path):
    fake_run(tmp_path, "sft-lr0.0001", "sft", 0.95, 0.80, nll=2.5)
    fake_run(tmp_path, "mixsd-lam0.3", "mixsd", 0.92, 0.97, lam=0.3, nll=0.6)
    fake_run(tmp_path, "mixsd-lam0.7", "mixsd", 0.40, 0.99, lam=0.7, nll=0.4)
    fake_run(tmp_path, "opsd-lr1e-05", "opsd", 0.30, 0.90)  # dominated by mixsd-lam0.3
    return tmp_path


def test_pareto_frontier_keeps_only_undominated_runs(sweep_dir):
    front = {r.name for r in pareto(collect(sweep_dir))}
    assert front == {"sft-lr0.0001", "mixsd-lam0.3", "mixsd-lam0.7"}


def test_headline_runs_are_the_best_per_method_and_lam_above_90_percent(sweep_dir):
    rows = collect(sweep_dir)
    assert [[r.name for r in g] for g in best_at_headline(rows)] == [["mixsd-lam0.3"], ["sft-lr0.0001"]]
    assert {label(r) for r in rows} == {"SFT 1e-4×5", "MixSD λ0.3 1e-4×5", "MixSD λ0.7 1e-4×5", "OPSD 1e-4×5"}
    lora_replay = dataclasses.replace(rows[0], lora=16, replay=50)  # two knobs the recipe search turns
    assert label(lora_replay).endswith("LoRA 16 replay 50")


def test_a_locality_study_ranks_by_known_items_kept_and_holds_to_the_threshold(sweep_dir):
    """Where locality was measured it ranks the headline (benchmark retention is absent there); and while a run
    is read at no selected checkpoint (MEMIT's one point), one below 90% does not qualify because it has one."""
    rows = collect(sweep_dir)
    kept = {"mixsd-lam0.3": 0.60, "mixsd-lam0.7": 0.90, "sft-lr0.0001": 0.62, "opsd-lr1e-05": 0.95}
    point = {"mixsd-lam0.3": "last: epoch 14", "mixsd-lam0.7": "last: epoch 8", "sft-lr0.0001": "first_peak: epoch 8"}
    rows = [
        dataclasses.replace(r, locality={"kept": kept[r.name]}, mean_retention=None, point=point.get(r.name, ""))
        for r in rows
    ]
    assert [[r.name for r in g] for g in best_at_headline(rows)] == [["mixsd-lam0.3"], ["sft-lr0.0001"]]
    every = [dataclasses.replace(r, point=r.point or "last: epoch 1") for r in rows]  # the paper's points: all count
    assert len(best_at_headline(every)) == 4  # each method and lam, 0.40 and 0.30 memorisation included


def test_table_numbers_are_the_eval_json_numbers(sweep_dir):
    text = write_sweep_report(sweep_dir).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| mixsd-lam0.3"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "mixsd-lam0.3 *" and cells[2] == "0.3"
    assert "0.920" in cells and "0.970" in cells and "0.980" in cells and "0.975" in cells and "0.600" in cells
    assert cells[-3] == "0.25"  # a quarter of its targets fell back to the gold answer
    sft = next(line for line in text.splitlines() if line.startswith("| sft-lr0.0001"))
    assert [c.strip() for c in sft.strip("|").split("|")][-3] == ""  # not a MixSD run
    assert "best mixsd (lam 0.3): `mixsd-lam0.3`" in text and "best sft: `sft-lr0.0001`" in text
    assert "opsd" not in text.split("## At")[1].split("## Plots")[0]  # below 90% memorisation


def test_a_memit_run_has_no_epochs_in_the_table(sweep_dir):
    """MEMIT edits once: the sweep's shared `epochs` does not apply to it, so its cell is empty, not a number."""
    fake_run(sweep_dir, "memit", "memit", 0.90, 0.95)
    text = write_sweep_report(sweep_dir).read_text()

    def row(name: str) -> list[str]:
        line = next(line for line in text.splitlines() if line.startswith(f"| {name} "))
        return [c.strip() for c in line.strip("|").split("|")]

    assert row("memit")[4] == "" and row("sft-lr0.0001")[4] == "5"


def test_report_is_reproducible_byte_for_byte(sweep_dir):
    first = write_sweep_report(sweep_dir).read_bytes()
    assert write_sweep_report(sweep_dir).read_bytes() == first


def test_plots_are_png_files(sweep_dir):
    write_sweep_report(sweep_dir)
    for name in ("pareto.png", "retention_by_task.png", "target_nll.png"):
        data = (sweep_dir / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_nothing_to_report_is_a_clear_error(tmp_path):
    with pytest.raises(MixsdError, match="no finished runs"):
        write_sweep_report(tmp_path)


def test_lost_items_and_reported_points(sweep_dir):
    path = sweep_dir / "runs" / "sft-lr0.0001" / "eval.json"
    result = json.loads(path.read_text())
    result["benchmark_errors"] = {
        "mixsd_gsm8k": {"counts": {"leakage": 2, "format": 1, "collapse": 5, "genuine": 0}},
        "mixsd_triviaqa": {"counts": {"leakage": 1, "format": 0, "collapse": 0, "genuine": 3}},
    }
    result["trajectory"] = {"rule": "first_peak", "checkpoint": "epoch-003", "epoch": 3.0}
    path.write_text(json.dumps(result))
    text = write_sweep_report(sweep_dir).read_text()
    head = next(line for line in text.splitlines() if line.startswith("| run"))
    column = [c.strip() for c in head.strip("|").split("|")].index("lost items L/F/C/G")
    cells = {
        line.split("|")[1].strip(" *"): [c.strip() for c in line.strip("|").split("|")][column]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| run")
    }
    assert cells["sft-lr0.0001"] == "3/1/5/3" and cells["mixsd-lam0.3"] == ""
    sft = next(line for line in text.splitlines() if line.startswith("| sft-lr0.0001"))
    assert "| first_peak: epoch 3 |" in sft and "reported point" in head
    mixsd = next(line for line in text.splitlines() if line.startswith("| mixsd-lam0.3"))
    assert "| final |" in mixsd


def test_headline_runs_are_paired_against_sft(sweep_dir):
    answers = {"sft-lr0.0001": [1, 1, 1, 0, 1, 1], "mixsd-lam0.3": [1, 0, 1, 0, 0, 1]}
    for name, loose in answers.items():
        path = sweep_dir / "runs" / name / "eval.json"
        result = json.loads(path.read_text())
        result["predictions"] = {"train": [{"id": f"f{i}", "tuned": {"loose": x}} for i, x in enumerate(loose)]}
        path.write_text(json.dumps(result))
    text = write_sweep_report(sweep_dir).read_text()
    assert "## Paired against SFT (`sft-lr0.0001`)" in text
    row = next(line for line in text.splitlines() if line.startswith("| mixsd-lam0.3 | memorisation train"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "6" and cells[3] == f"{(3 - 5) / 6:+.3f}"  # paired over the same six questions
    assert cells[5].startswith(("A worse", "no detectable difference"))
    assert (sweep_dir / "paired.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "![paired](paired.png)" in text


def test_trajectories_are_read_for_the_pareto_plot(sweep_dir):
    points = [
        {"memorisation": {"train": 0.2}, "mean_retention": 0.99},
        {"memorisation": {"train": 0.6}, "mean_retention": None},  # a checkpoint scored without benchmarks: left out
        {"memorisation": {"train": 0.95}, "mean_retention": 0.8},
    ]
    path = sweep_dir / "runs" / "sft-lr0.0001" / "model" / "trajectory.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"points": points}))
    rows = {r.name: r for r in collect(sweep_dir)}
    assert rows["sft-lr0.0001"].trajectory == [(0.99, 0.2), (0.8, 0.95)] and rows["mixsd-lam0.3"].trajectory == []
    write_sweep_report(sweep_dir)
    assert (sweep_dir / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def seeded_runs(root, answers: dict[str, list[int]], epochs: dict[str, list[float]]) -> None:
    """Runs named as a sweep names seeds, each scored on the same six questions and reported at a checkpoint."""
    for name, loose in answers.items():
        method = name.split("-")[0]
        fake_run(root, name, method, sum(loose) / 6, 0.9, lam=0.3 if method == "mixsd" else None)
        run = root / "runs" / name
        result = json.loads((run / "eval.json").read_text())
        result["predictions"] = {"train": [{"id": f"f{i}", "tuned": {"loose": x}} for i, x in enumerate(loose)]}
        chosen = 2.0 if method == "mixsd" else 1.0
        result["trajectory"] = {"rule": "last", "checkpoint": "epoch-002", "epoch": chosen}
        (run / "eval.json").write_text(json.dumps(result))
        points = [{"epoch": e, "memorisation": {"train": m}} for e, m in zip([1.0, 2.0], epochs[name], strict=True)]
        (run / "model").mkdir()
        (run / "model" / "trajectory.json").write_text(json.dumps({"points": points}))


def test_seeds_of_one_configuration_are_pooled_and_paired_as_one(tmp_path):
    answers = {
        "sft-seed0": [1, 1, 1, 1, 1, 1],
        "sft-seed1": [1, 1, 1, 1, 1, 0],
        "mixsd-lam0.3-seed0": [1, 0, 1, 0, 0, 1],
        "mixsd-lam0.3-seed1": [1, 1, 1, 0, 0, 1],
    }
    seeded_runs(tmp_path, answers, {name: [0.5, sum(x) / 6] for name, x in answers.items()})
    assert configuration("mixsd-lam0.3-seed12-lora8") == "mixsd-lam0.3-lora8" and configuration("sft-seed2") == "sft"
    rows = {r.name: r for r in collect(tmp_path)}
    # the Pareto plot has a point per run and names its seed; legends and tables name the configuration
    assert label(rows["mixsd-lam0.3-seed1"], method=False, seed=True).endswith(" s1")
    assert label(rows["mixsd-lam0.3-seed1"]) == label(rows["mixsd-lam0.3-seed0"])
    text = write_sweep_report(tmp_path).read_text()

    pooled = text.split("## Seeds pooled")[1].split("##")[0]
    sft = next(line for line in pooled.splitlines() if line.startswith("| sft |"))
    assert "| 2 | epoch 1, epoch 1 |" in sft and f"| {11 / 12:.3f} ± {stdev([1, 5 / 6]):.3f} |" in sft

    # every method at its reported point (no 90% threshold), means over seeds, paired with seeds resampled
    assert "## At the reported points" in text and "`mixsd-lam0.3 (2 seeds)` (means over seeds)" in text
    assert "## Paired against SFT (`sft (2 seeds)`)" in text
    row = next(line for line in text.splitlines() if line.startswith("| mixsd-lam0.3 (2 seeds) | memorisation train"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "6" and cells[3] == f"{(7 / 12) - (11 / 12):+.3f}"
    assert (tmp_path / "trajectories.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![trajectories](trajectories.png)" in text
    mixsd = {r.name: r for r in collect(tmp_path)}["mixsd-lam0.3-seed1"]
    assert mixsd.curve == [(1.0, 0.5), (2.0, 4 / 6)] and mixsd.selected_epoch == 2.0


STUDIES = sorted(p.parent for p in (Path(__file__).resolve().parents[2] / "docs" / "results").glob("*/runs"))


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.name)
def test_committed_studies_regenerate_byte_for_byte(study, tmp_path):
    """`mixsd report docs/results/<study>` gives back the committed report.md and plots."""
    copy = tmp_path / study.name
    shutil.copytree(study, copy)
    write_sweep_report(copy)
    for name in ["report.md", *sorted(p.name for p in study.glob("*.png"))]:
        assert (copy / name).read_bytes() == (study / name).read_bytes(), name
    assert sorted(p.name for p in copy.glob("*.png")) == sorted(p.name for p in study.glob("*.png"))


def test_locality_has_its_columns_and_the_field_names_head_the_table(sweep_dir):
    for name, kept in (("sft-lr0.0001", 0.41), ("mixsd-lam0.3", 0.87)):
        path = sweep_dir / "runs" / name / "eval.json"
        result = json.loads(path.read_text())
        share = {"n": 1000, "kept": kept, "kept_ci": [kept - 0.03, kept + 0.03]}
        families = {"generative": {**share, "kept": kept - 0.1}, "mc": share}
        result["locality"] = {**share, "families": families, "pools": {}, "items": {}}
        result["locality"]["known_set"] = {"source": "shipped", "key": {"base": "b"}}
        path.write_text(json.dumps(result))
    text = write_sweep_report(sweep_dir).read_text()
    head = next(line for line in text.splitlines() if line.startswith("| run |"))
    assert "| mem train (reliability) |" in head
    assert "| locality kept | locality generative kept | locality mc kept |" in head
    row = next(line for line in text.splitlines() if line.startswith("| mixsd-lam0.3"))
    assert "| 0.870 | 0.770 | 0.870 |" in row
    assert "| n/a | n/a | n/a |" in next(line for line in text.splitlines() if line.startswith("| opsd"))
    assert {r.name: r.locality.get("kept") for r in collect(sweep_dir)}["sft-lr0.0001"] == 0.41
