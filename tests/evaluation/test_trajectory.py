"""Checkpoint trajectories: the paper's selection rules, and a tiny run from training to trajectory.json."""

from __future__ import annotations

import json
import shutil

import pytest

from mixsd.cli import main
from mixsd.errors import MixsdError
from mixsd.evaluation import EvalConfig, trajectory
from mixsd.evaluation.trajectory import first_peak, select
from mixsd.train import TrainConfig, train


@pytest.mark.parametrize(
    ("values", "index"),
    [
        ([0.7], 0),  # a single checkpoint
        ([0.5, 0.5, 0.5], 0),  # flat: the first is already a peak
        ([0.1, 0.2, 0.3, 0.4], 3),  # still rising: the last
        ([0.1, 0.6, 0.4, 0.9], 1),  # the first peak, not the highest
        ([0.2, 0.8, 0.8, 0.9], 1),  # a plateau right after a rise ends it
        ([0.9, 0.1, 0.95], 0),
        ([0.3, 0.2, 0.5, 0.5], 0),
    ],
)
def test_first_peak(values, index):
    assert first_peak(values) == index


def test_selection_rules():
    assert select([0.1, 0.6, 0.4, 0.9], "last") == 3 and select([0.1, 0.6, 0.4, 0.9], "first_peak") == 1
    with pytest.raises(ValueError):
        first_peak([])
    with pytest.raises(MixsdError, match="unknown selection rule 'best'"):
        select([0.1], "best")
    with pytest.raises(MixsdError, match=r"\(--model\) or .* \(--checkpoints\), one of them"):
        EvalConfig()


def test_a_tiny_run_from_snapshots_to_its_trajectory(tiny_model_dir, facts_dir, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    config = TrainConfig(
        data=str(facts_dir / "train.jsonl"),
        out=str(run),
        method="sft",
        model=tiny_model_dir,
        epochs=3,
        batch_size=4,
        lr=3e-3,
        save_steps=0,
        save_every_epoch=True,
    )
    train(config)
    snapshots = sorted(p.name for p in (run / "epochs").glob("epoch-*"))
    assert snapshots == ["epoch-001", "epoch-002", "epoch-003"]
    assert json.loads((run / "epochs" / "epoch-002" / "state.json").read_text()) == {"epoch": 2.0, "step": 2}

    flags = ["--suite", "none", "--general-prompts", "0", "--max-new-tokens", "4", "--bootstrap", "20"]
    flags += ["--drift-items", "0", "--fisher-items", "0", "--batch-size", "4"]
    # the CPU budget's way: each snapshot on the train split alone, the selected one on everything
    light = [*flags, "--checkpoint-eval", "memorisation", "--general-prompts", "3"]
    main(["eval", "--checkpoints", str(run), "--base", tiny_model_dir, "--facts", str(facts_dir), *light])
    cheap = json.loads((run / "trajectory.json").read_text())
    chosen = cheap["points"][cheap["selected"]]
    assert cheap["selected"] == first_peak([p["memorisation"]["train"] for p in cheap["points"]])
    for point in cheap["points"]:
        light_result = json.loads((run / "evals" / point["checkpoint"] / "memorisation.json").read_text())
        assert list(light_result["memorisation"]) == ["train"] and "general" not in light_result
        assert (run / "evals" / point["checkpoint"] / "eval.json").is_file() == (point is chosen)
    full = json.loads((run / chosen["eval"]).read_text())
    assert chosen["eval"].endswith("eval.json") and full["general"]["n"] == 3 and "paraphrase" in full["memorisation"]
    assert "selected by first_peak" in capsys.readouterr().out
    shutil.rmtree(run / "evals")

    main(["eval", "--checkpoints", str(run), "--base", tiny_model_dir, "--facts", str(facts_dir), *flags])
    printed = capsys.readouterr().out
    saved = json.loads((run / "trajectory.json").read_text())
    assert saved["method"] == "sft" and saved["rule"] == "first_peak"
    assert [p["checkpoint"] for p in saved["points"]] == snapshots and [p["epoch"] for p in saved["points"]] == [
        1,
        2,
        3,
    ]
    train_memorisation = [p["memorisation"]["train"] for p in saved["points"]]
    assert saved["selected"] == first_peak(train_memorisation)
    for point in saved["points"]:
        result = json.loads((run / point["eval"]).read_text())
        assert result["models"]["tuned"]["name"] == str(run / "epochs" / point["checkpoint"])
        assert result["memorisation"]["train"]["tuned"]["loose"] == point["memorisation"]["train"]
    assert "selected by first_peak" in printed and printed.count(" *") == 1

    # finished points are read back, not scored again; --select overrides the paper's rule
    monkeypatch.setattr("mixsd.evaluation.run.evaluate", lambda config, splits=None: pytest.fail("scored again"))
    main(["eval", "--checkpoints", str(run), "--facts", str(facts_dir), "--select", "last", *flags])
    assert json.loads((run / "trajectory.json").read_text())["selected"] == 2
    assert trajectory.PAPER_RULE["mixsd"] == "last"
