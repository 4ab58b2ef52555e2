"""`mixsd inject` and `mixsd sweep` end to end on the tiny model: stages, skipping, config validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixsd.cli import main
from mixsd.errors import MixsdError
from mixsd.pipeline import RECIPE_LORA, TARGET_DEFAULTS, TRAIN_DEFAULTS, InjectConfig, inject, stage_configs
from mixsd.settings import load_yaml
from mixsd.sweep import expand, sweep
from mixsd.train.config import TrainConfig

FAST = {
    "targets": {"max_new_tokens": 8, "retries": 0, "on_fail": "gold"},
    "train": {"epochs": 1, "batch_size": 4, "save_steps": 0, "max_completion_length": 8, "replay": 2},
    "eval": {"suite": "none", "max_new_tokens": 8, "drift_items": 0, "fisher_items": 0, "bootstrap": 10},
}


@pytest.fixture
def facts(zib_facts):
    return zib_facts(6)


def test_inject_runs_every_stage_then_skips_them(tiny_model_dir, facts, tmp_path, capsys):
    config = InjectConfig(facts=str(facts), out=str(tmp_path / "run"), model=tiny_model_dir, **FAST)
    result = inject(config)
    out = tmp_path / "run"
    for name in ("targets.jsonl", "model/config.json", "model/README.md", "eval.json", "report.md", "stages.json"):
        assert (out / name).is_file(), name
    assert result["memorisation"]["train"]["n"] == 6
    assert "target_nll" in result["analyses"]
    # a kill mid-write leaves temporary files (CI caught one); the next run of the directory clears them all,
    # even when every stage is up to date and nothing would write over them
    leftovers = [out / ".eval.json.k1.tmp", out / "model" / "evals" / "epoch-001" / ".memorisation.json.k2.tmp"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    (out / "model" / ".save-k3").mkdir()
    capsys.readouterr()
    inject(config)
    printed = capsys.readouterr().out
    assert printed.count("up to date, skipped") == 3  # targets, train, eval
    assert not any(p.exists() for p in leftovers) and not (out / "model" / ".save-k3").exists()


def test_changing_a_setting_reruns_that_stage_and_later_ones(tiny_model_dir, facts, tmp_path, capsys):
    config = InjectConfig(facts=str(facts), out=str(tmp_path / "run"), model=tiny_model_dir, **FAST)
    inject(config, stop_after="train")
    changed = InjectConfig(
        facts=str(facts),
        out=str(tmp_path / "run"),
        model=tiny_model_dir,
        targets=FAST["targets"],
        train=FAST["train"] | {"lr": 3e-4},
        eval=FAST["eval"],
    )
    capsys.readouterr()
    inject(changed, stop_after="train")
    printed = capsys.readouterr().out
    assert "targets (up to date, skipped)" in printed and "train (up to date" not in printed


def test_bad_facts_fail_before_any_model_is_loaded(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q?"}\n')
    config = InjectConfig(facts=str(bad), out=str(tmp_path / "run"), model=str(tmp_path / "no-such-model"))
    with pytest.raises(MixsdError, match="bad.jsonl:1"):
        inject(config)


def test_unknown_keys_fail_with_the_valid_choices(tmp_path):
    with pytest.raises(MixsdError, match="valid keys: .*lam"):
        InjectConfig.from_mapping({"facts": "f", "out": "o", "lamda": 0.3})
    with pytest.raises(MixsdError, match="unknown key 'temp' in the targets section; valid keys:.*temperature"):
        InjectConfig(facts="f", out="o", targets={"temp": 0.5})
    with pytest.raises(MixsdError, match="--method must be one of mixsd, sft, opsd"):
        InjectConfig(facts="f", out="o", method="dpo")


def test_yaml_sections_take_numbers_yaml_reads_as_text(tmp_path):
    """YAML 1.1 reads `lr: 3e-4` as the string '3e-4'; the stage sections convert it, or say what is wrong."""
    path = tmp_path / "run.yaml"
    path.write_text("facts: f\nout: o\ntrain: {lr: 3e-4, epochs: 2}\n")
    config = InjectConfig.from_mapping(load_yaml(str(path)), source=str(path))
    assert config.train == TRAIN_DEFAULTS | {"lr": 3e-4, "epochs": 2}  # the recipe's, key by key
    with pytest.raises(MixsdError, match="run.yaml.*lr: expected float, got 'fast'"):
        InjectConfig.from_mapping({"facts": "f", "out": "o", "train": {"lr": "fast"}}, source=str(path))


def test_sweep_grid_names_runs_by_settings_and_shares_targets_per_lam(tmp_path):
    specs = expand(
        {
            "facts": "f",
            "grid": [
                {"method": "sft", "lr": [1e-5, 1e-4], "epochs": [2, 4]},
                {"method": "mixsd", "lam": [0, 0.3], "lr": 1e-4},
            ],
        },
        tmp_path,
    )
    names = [s.name for s in specs]
    assert names == [
        "sft-epochs2-lr1e-05",
        "sft-epochs4-lr1e-05",
        "sft-epochs2-lr0.0001",
        "sft-epochs4-lr0.0001",
        "mixsd-lam0-lr0.0001",
        "mixsd-lam0.3-lr0.0001",
    ]
    mixsd = [s.config for s in specs if s.config.method == "mixsd"]
    assert [c.targets_out for c in mixsd] == [
        str(tmp_path / "targets" / "lam0.jsonl"),
        str(tmp_path / "targets" / "lam0.3.jsonl"),
    ]
    assert specs[0].config.train == TRAIN_DEFAULTS | {"lr": 1e-5, "epochs": 2}


def test_a_seed_on_the_grid_seeds_the_whole_run(tmp_path):
    grid = [{"method": "sft", "seed": [0, 1]}, {"method": "mixsd", "lam": 0.3, "seed": [0, 1]}]
    specs = {s.name: s.config for s in expand({"facts": "f", "grid": grid, "targets": {"retries": 1}}, tmp_path)}
    assert list(specs) == ["sft-seed0", "sft-seed1", "mixsd-lam0.3-seed0", "mixsd-lam0.3-seed1"]
    assert specs["sft-seed1"].train == TRAIN_DEFAULTS | {"seed": 1}
    mixsd = specs["mixsd-lam0.3-seed1"]
    assert mixsd.train == TRAIN_DEFAULTS | {"seed": 1}
    assert mixsd.targets == TARGET_DEFAULTS | {"retries": 1, "seed": 1}
    assert mixsd.targets_out == str(tmp_path / "targets" / "lam0.3-seed1.jsonl")


def test_the_recipe_config_is_the_frontier_point_it_names_and_the_confirmation_repeats_it(tmp_path):
    """configs/recipe.yaml is MixSD's 0.9 point of the recipe search, setting for setting, and inject's defaults;
    the confirmation's seeds differ from that point (and its SFT counterpart) in the seed alone, so they pair."""
    from importlib.resources import files

    configs = files("mixsd") / "configs"
    recipe = InjectConfig.from_mapping(load_yaml(str(configs / "recipe.yaml")) | {"facts": "f", "out": "o"})
    frontier = {s.name: s.config for s in expand(load_yaml(str(configs / "frontier-kgfact.yaml")), tmp_path)}
    point = frontier["mixsd-lam0.3-epochs14-replay50-lora16"]
    search_only = {"save_every_epoch"}  # snapshots for the trajectory: how the study reads, not what trains
    assert (recipe.method, recipe.lam, recipe.lora, recipe.targets) == (
        point.method,
        point.lam,
        point.lora,
        point.targets,
    )
    assert recipe.train == {k: v for k, v in point.train.items() if k not in search_only}
    default = InjectConfig(facts="f", out="o")
    assert (default.method, default.lam, default.lora, default.targets, default.train) == (
        recipe.method,
        recipe.lam,
        recipe.lora,
        recipe.targets,
        recipe.train,
    )
    confirm = {s.name: s.config for s in expand(load_yaml(str(configs / "frontier-kgfact-confirm.yaml")), tmp_path)}
    for name, seeded in confirm.items():
        base = frontier[name.replace("-seed1", "").replace("-seed2", "")]
        seed = seeded.train["seed"]
        assert seeded.train == base.train | {"seed": seed} and seeded.eval == base.eval
        assert seeded.targets == base.targets | {"seed": seed}  # (unused by SFT, which trains the corpus answers)


def test_the_recipe_is_for_mixsd_and_sft_and_lora_0_trains_every_weight():
    for method in ("mixsd", "sft"):
        targets, train, _ = stage_configs(InjectConfig(facts="f", out="o", method=method), Path("f"))
        assert (train.lora, train.epochs, train.batch_size, train.replay) == (RECIPE_LORA, 14, 5, 50)
        assert targets.on_fail == "lower-lam"
    full = stage_configs(InjectConfig(facts="f", out="o", lora=0, train={"replay": 0}), Path("f"))[1]
    assert (full.lora, full.replay) == (None, 0)
    for method in ("opsd", "memit"):  # the search did not cover them: their own defaults
        train = stage_configs(InjectConfig(facts="f", out="o", method=method), Path("f"))[1]
        assert (train.lora, train.replay, train.epochs) == (None, 0, TrainConfig.epochs)


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ([{"method": "dpo"}], "unknown method 'dpo'.*choose one of"),
        ([{"method": "sft", "learning_rate": [1]}], "unknown key 'learning_rate' in the grid; valid keys"),
        ([{"method": "sft", "lam": [0.3]}], "'lam' only applies to method mixsd"),
    ],
)
def test_sweep_config_errors_are_immediate(tmp_path, grid, message):
    with pytest.raises(MixsdError, match=message):
        expand({"facts": "f", "grid": grid}, tmp_path)


def test_sweep_runs_and_reports(tiny_model_dir, facts, tmp_path, capsys):
    config = tmp_path / "sweep.yaml"
    config.write_text(
        json.dumps(
            {
                "model": tiny_model_dir,
                "facts": str(facts),
                "grid": [{"method": "sft", "lr": 1e-4}, {"method": "mixsd", "lam": [0.5], "lr": [1e-4, 2e-4]}],
                **FAST,
            }
        )
    )
    specs = sweep(str(config), str(tmp_path / "sweep"))
    assert len(specs) == 3
    # One targets pass for the shared lam, then each MixSD run finds them up to date.
    banners = [line for line in capsys.readouterr().out.splitlines() if "] targets" in line]
    assert len(banners) == 3 and sum("up to date" in line for line in banners) == 2
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "sft-lr0.0001" in report and "mixsd-lam0.5-lr0.0001" in report and "mixsd-lam0.5-lr0.0002" in report
    assert (tmp_path / "sweep" / "pareto.png").is_file()
    capsys.readouterr()
    assert main(["report", str(tmp_path / "sweep")]) == 0
    assert (tmp_path / "sweep" / "report.md").read_text() == report
    printed = capsys.readouterr().out  # the headline and its paired verdicts, on the terminal too
    assert printed.startswith("## At ") and printed.endswith(f"report: {tmp_path / 'sweep' / 'report.md'}\n")
    assert printed.split("\n\nreport:")[0] in report


def test_cli_inject_with_bad_yaml_exits_2(tmp_path, capsys):
    bad = tmp_path / "run.yaml"
    bad.write_text("facts: [unclosed\n")
    assert main(["inject", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "run.yaml" in err and "\n" not in err


def test_inject_with_a_snapshot_per_epoch_reports_the_selected_point(tiny_model_dir, facts, tmp_path):
    train = FAST["train"] | {"epochs": 2, "save_every_epoch": True}
    stages = FAST | {"train": train}
    config = InjectConfig(facts=str(facts), out=str(tmp_path / "run"), model=tiny_model_dir, **stages)
    result = inject(config)
    trajectory = json.loads((tmp_path / "run" / "model" / "trajectory.json").read_text())
    assert trajectory["rule"] == "last"
    assert [p["checkpoint"] for p in trajectory["points"]] == ["epoch-001", "epoch-002"]
    assert result["trajectory"] == {"rule": "last", "checkpoint": "epoch-002", "epoch": 2.0}
    selected = json.loads((tmp_path / "run" / "model" / "evals" / "epoch-002" / "eval.json").read_text())
    assert result["memorisation"] == selected["memorisation"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "- reported point: epoch-002 (epoch 2, rule last; model/trajectory.json)" in report


def test_settings_added_later_leave_the_stage_keys_of_earlier_runs_alone():
    """A committed run's recorded configs (targets report, model card, eval.json) give the same key settings
    today: a setting added since is left out at its default, so `inject` resumes such a run instead of redoing it."""
    import json
    from pathlib import Path

    from mixsd.evaluation.config import EvalConfig
    from mixsd.pipeline import _settings
    from mixsd.targets.config import TargetConfig
    from mixsd.train.config import TrainConfig

    run = Path(__file__).resolve().parents[1] / "docs" / "results" / "headline-v2-demo" / "runs" / "mixsd-lam0.3-seed0"
    card = (run / "model" / "README.md").read_text()
    targets = json.loads(next((run.parents[1] / "targets").glob("*0.3*report.json")).read_text())
    recorded = {
        TargetConfig: targets["config"],
        TrainConfig: json.loads(card.split("```json\n")[1].split("```")[0]),
        EvalConfig: json.loads((run / "eval.json").read_text())["config"],
    }
    for cls, settings in recorded.items():
        today = _settings(cls(**settings))
        assert {k: v for k, v in today.items() if k != "decode"} == {k: v for k, v in settings.items() if k != "decode"}
