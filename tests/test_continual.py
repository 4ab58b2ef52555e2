"""`mixsd continual` on the tiny model: each round starts from the previous round's weights and decodes its targets
with them, a killed round continues to the same bytes, and rounds.json grows with every round's scores."""

from __future__ import annotations

import json

import pytest
import yaml

import mixsd.targets.generate
import mixsd.train.run
from mixsd.cli import main
from mixsd.continual import ContinualConfig, continual, round_facts, weights_sha256
from mixsd.data.records import Record, write_records
from mixsd.errors import MixsdError
from mixsd.sweep import expand, sweep

FAST = {
    "targets": {"max_new_tokens": 8, "retries": 0, "on_fail": "gold"},
    "train": {"epochs": 2, "batch_size": 2, "save_steps": 0, "max_completion_length": 8, "replay": 0},
    "eval": {
        "suite": "none",
        "max_new_tokens": 8,
        "drift_items": 0,
        "fisher_items": 0,
        "bootstrap": 10,
        "general_prompts": 0,
    },
}


@pytest.fixture
def facts(zib_facts):
    return zib_facts(6)


def spy(monkeypatch, module, name: str) -> list[tuple[str, str | None, int]]:
    """Record, at each call of `module.name`, the model it was given, that model's weight digest and how many rounds
    rounds.json held then."""
    calls, real = [], getattr(module, name)

    def wrapped(config, *args, **kwargs):
        rounds = next(iter(spy.out.glob("rounds.json")), None)  # type: ignore[attr-defined]
        done = len(json.loads(rounds.read_text())["rounds"]) if rounds else 0
        calls.append((config.model, weights_sha256(config.model), done))
        return real(config, *args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return calls


def test_each_round_trains_and_decodes_from_the_round_before(tiny_model_dir, facts, tmp_path, monkeypatch):
    out = tmp_path / "run"
    spy.out = out  # type: ignore[attr-defined]
    trained = spy(monkeypatch, mixsd.train.run, "train")
    decoded = spy(monkeypatch, mixsd.targets.generate, "generate_targets")
    rounds = continual(ContinualConfig(facts=[str(facts)], out=str(out), model=tiny_model_dir, rounds=3, **FAST))

    ends = [weights_sha256(str(out / f"round-{k}" / "model")) for k in (1, 2, 3)]
    starts = [weights_sha256(tiny_model_dir)] + ends[:2]
    assert len(set(starts + ends)) == 4  # every round changed the weights
    assert [h for _, h, _ in trained] == starts  # round K trained from round K-1's weights, checked by hash
    assert [h for _, h, _ in decoded] == starts  # and its targets were decoded by that model
    assert [r["start_sha256"] for r in rounds] == starts and [r["model_sha256"] for r in rounds] == ends
    assert [done for _, _, done in trained] == [0, 1, 2]  # rounds.json held every finished round before the next

    saved = json.loads((out / "rounds.json").read_text())["rounds"]
    assert saved == rounds
    assert [sorted(r["memorisation"]) for r in saved] == [
        ["round-1"],
        ["round-1", "round-2"],
        ["round-1", "round-2", "round-3"],
    ]
    eval3 = json.loads((out / "round-3" / "eval.json").read_text())
    assert eval3["memorisation"]["train"]["n"] == 6  # every round's facts so far, scored against the original base
    assert eval3["models"]["base"]["name"] == tiny_model_dir
    assert (out / "rounds.png").is_file() and "| after round |" in (out / "report.md").read_text()


def test_a_kill_in_round_two_then_a_rerun_gives_the_uninterrupted_bytes(tiny_model_dir, facts, tmp_path, monkeypatch):
    def run(name: str) -> list[dict]:
        return continual(
            ContinualConfig(facts=[str(facts)], out=str(tmp_path / name), model=tiny_model_dir, rounds=2, **FAST)
        )

    clean = run("clean")
    real = mixsd.train.run.train

    def killed(config, *args, **kwargs):
        if "round-2" in config.out:
            raise KeyboardInterrupt  # as a kill would: round 2's targets are written, its training is not
        return real(config, *args, **kwargs)

    monkeypatch.setattr(mixsd.train.run, "train", killed)
    with pytest.raises(KeyboardInterrupt):
        run("killed")
    assert not (tmp_path / "killed" / "round-2" / "model" / "README.md").exists()
    monkeypatch.setattr(mixsd.train.run, "train", real)
    resumed = run("killed")

    def scores(rounds: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rounds]

    assert scores(resumed) == scores(clean)
    for name in ("model/model.safetensors", "targets.jsonl"):
        assert (tmp_path / "killed" / "round-2" / name).read_bytes() == (
            tmp_path / "clean" / "round-2" / name
        ).read_bytes()


def test_a_changed_round_starts_the_later_rounds_over(tiny_model_dir, facts, tmp_path, capsys):
    rounds = [tmp_path / "r1.jsonl", tmp_path / "r2.jsonl"]
    write_records(rounds[0], [Record("a", "Where does Zib0 live?", "\\boxed{Quor0}")])
    write_records(rounds[1], [Record("b", "Where does Zib1 live?", "\\boxed{Quor1}")])
    config = ContinualConfig(facts=[str(p) for p in rounds], out=str(tmp_path / "run"), model=tiny_model_dir, **FAST)
    settings = tmp_path / "fast.yaml"
    settings.write_text(yaml.safe_dump(FAST | {"model": tiny_model_dir}))
    assert main(["continual", "--facts", *map(str, rounds), "--out", config.out, "--config", str(settings)]) == 0
    assert "| after round | facts | this round's facts |" in capsys.readouterr().out  # the per-round table
    continual(config)
    assert capsys.readouterr().out.count("train (up to date, skipped)") == 2
    write_records(rounds[0], [Record("a", "Where does Zib0 live?", "\\boxed{Quor9}")])
    continual(config)
    printed = capsys.readouterr().out
    assert "train (up to date" not in printed  # round 1 retrained, so round 2 started from other weights


def test_rounds_split_every_fact_and_round_files_go_in_numeric_order(zib_facts, tmp_path):
    facts = zib_facts(7)
    split = round_facts(ContinualConfig(facts=[str(facts)], out="o", rounds=3))
    assert [[r.id for r in records] for records in split] == [["f0", "f1", "f2"], ["f3", "f4"], ["f5", "f6"]]
    assert [len(r) for r in round_facts(ContinualConfig(facts=[str(facts)], out="o", rounds=3, round_size=2))] == [
        2
    ] * 3
    weekly = tmp_path / "weekly"
    for week in (10, 2, 1):
        write_records(
            weekly / f"week{week}.jsonl", [Record(f"w{week}", f"Where does Zib{week} live?", "\\boxed{Quor}")]
        )
    assert [records[0].id for records in round_facts(ContinualConfig(facts=[str(weekly)], out="o"))] == [
        "w1",
        "w2",
        "w10",
    ]


def test_round_errors_are_one_line(tmp_path, facts, capsys):
    dup = tmp_path / "dup.jsonl"
    write_records(dup, [Record("f0", "Where does Zib0 live?", "\\boxed{Quor0}")])
    cases = [
        (["--facts", str(facts)], "continual needs two rounds or more"),
        (["--facts", str(facts), "--rounds", "4", "--round-size", "2"], "cannot make 4 rounds of 2 facts from 6"),
        (["--facts", str(facts), str(dup)], "fact id 'f0' is in round 1 and round 2"),
    ]
    for flags, message in cases:
        assert main(["continual", *flags, "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err
    limited = ContinualConfig(facts=[str(facts)], out="o", rounds=2, eval={"limit": 3})
    with pytest.raises(MixsdError, match="eval limit 3 would leave out some of the 6 facts.*locality_limit"):
        round_facts(limited)
    with pytest.raises(MixsdError, match="no save_every_epoch"):
        ContinualConfig(facts=[str(facts)], out="o", rounds=2, train={"save_every_epoch": True})
    with pytest.raises(MixsdError, match="or save_adapter"):
        ContinualConfig(facts=[str(facts)], out="o", rounds=2, lora=16, train={"save_adapter": True})


def test_a_sweep_compares_continual_runs_round_by_round(tiny_model_dir, facts, tmp_path, capsys):
    values = {
        "model": tiny_model_dir,
        "facts": str(facts),
        "grid": [{"method": m, "rounds": 2} for m in ("mixsd", "sft")],
    }
    grid = tmp_path / "sweep.yaml"
    values |= FAST | {"eval": FAST["eval"] | {"general_prompts": 8}}  # leakage, paired per prompt
    grid.write_text(yaml.safe_dump(values))
    specs = expand(values, tmp_path / "sweep")
    assert [s.name for s in specs] == ["mixsd-lam0.3-rounds2", "sft-rounds2"]
    assert all(isinstance(s.config, ContinualConfig) for s in specs)
    with pytest.raises(MixsdError, match="--stage does not split continual runs"):
        sweep(str(grid), str(tmp_path / "sweep"), stop_after="train")
    sweep(str(grid), str(tmp_path / "sweep"))
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "## Paired against SFT, round by round" in report
    assert "| mixsd-lam0.3-rounds2 | sft-rounds2 | 2 | earlier rounds' facts | 3 |" in report
    assert (tmp_path / "sweep" / "rounds.png").is_file()
    assert main(["report", str(tmp_path / "sweep")]) == 0
    assert "## At the last round" in capsys.readouterr().out
