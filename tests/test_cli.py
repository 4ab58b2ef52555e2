"""The CLI is generated from the config dataclasses: every field is a flag with the same default, and back."""

from __future__ import annotations

import argparse
import subprocess
import sys
import typing
from dataclasses import MISSING, fields

import pytest

from mixsd.cli import build_parser, parse
from mixsd.continual import ContinualConfig
from mixsd.errors import MixsdError
from mixsd.evaluation.config import EvalConfig
from mixsd.pipeline import InjectConfig
from mixsd.settings import cli_fields, flag_name
from mixsd.targets.config import TargetConfig
from mixsd.train.config import TrainConfig

COMMANDS = {
    "targets": TargetConfig,
    "train": TrainConfig,
    "eval": EvalConfig,
    "inject": InjectConfig,
    "continual": ContinualConfig,
}


def subparser(name: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


@pytest.mark.parametrize(("command", "cls"), COMMANDS.items())
def test_every_field_is_a_flag_with_its_default_and_every_flag_a_field(command, cls):
    actions = {a.dest: a for a in subparser(command)._actions if a.option_strings and a.dest != "help"}
    for f in cli_fields(cls):
        action = actions.pop(f.name)
        assert flag_name(f) in action.option_strings
        assert action.default == (argparse.SUPPRESS if f.default is MISSING else f.default), f.name
        assert action.help.strip(), f"{f.name} has no help text"
    assert set(actions) == {"config"}  # the YAML file of the same keys
    yaml_only = {f.name for f in fields(cls)} - {f.name for f in cli_fields(cls)}
    assert yaml_only == ({"targets", "train", "eval"} if cls in (InjectConfig, ContinualConfig) else set())


REQUIRED = {"data": "d.jsonl", "out": "o", "facts": "f", "model": "m"}


@pytest.mark.parametrize("cls", COMMANDS.values())
def test_every_choice_field_rejects_a_value_outside_its_literal_from_python_too(cls):
    """The Literal annotation is the one list of choices: argparse and YAML read it, and so does the config itself."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    choice_fields = [
        f
        for f in fields(cls)
        if typing.Literal in (typing.get_origin(hints[f.name]),)
        or any(typing.get_origin(a) is typing.Literal for a in typing.get_args(hints[f.name]))
    ]
    assert choice_fields
    for f in choice_fields:
        with pytest.raises(MixsdError, match=f"^{flag_name(f)} must be one of .*, got 'bogus'$"):
            cls(**{k: v for k, v in REQUIRED.items() if k in names}, **{f.name: "bogus"})


def test_flags_build_the_config(tmp_path):
    args = parse(["targets", "--data", "d.jsonl", "--out", "o.jsonl", "--lam", "0.5", "--no-system-prompt"])
    assert (args.data, args.lam, args.no_system_prompt, args.top_k) == ("d.jsonl", 0.5, True, 64)
    args = parse(["eval", "--model", "m", "--no-cache"])
    assert args.use_cache is False
    args = parse(["continual", "--facts", "r1.jsonl", "r2.jsonl", "--out", "o", "--lora", "16"])
    assert (args.facts, args.lora) == (["r1.jsonl", "r2.jsonl"], 16)


def test_yaml_gives_values_and_flags_override(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("data: d.jsonl\nout: o.jsonl\nlam: 0.5\ntop-k: 8\n")
    args = parse(["targets", "--config", str(path), "--lam", "0.7"])
    assert (args.data, args.out, args.lam, args.top_k) == ("d.jsonl", "o.jsonl", 0.7, 8)
    path.write_text("facts: data/kgfact-demo\nout: o\nrounds: 5\n")  # one facts value in YAML: a list of one
    args = parse(["continual", "--config", str(path)])
    assert (args.facts, args.rounds) == (["data/kgfact-demo"], 5)
    path.write_text("facts: [r1.jsonl, 2]\nout: o\n")
    with pytest.raises(MixsdError, match="facts: expected list"):
        parse(["continual", "--config", str(path)])


def test_bad_yaml_and_missing_values_are_one_line_errors(tmp_path, capsys):
    from mixsd.cli import main

    path = tmp_path / "t.yaml"
    path.write_text("data: d.jsonl\nlamda: 0.5\n")
    assert main(["targets", "--config", str(path)]) == 2
    assert (
        capsys.readouterr().err
        == f"mixsd: error: {path}: unknown key 'lamda'; valid keys: "
        + ", ".join(sorted(f.name for f in fields(TargetConfig)))
        + "\n"
    )
    assert main(["targets", "--data", "d.jsonl"]) == 2
    assert "missing --out" in capsys.readouterr().err


def test_config_modules_do_not_import_torch():
    code = (
        "import sys, mixsd.targets.config, mixsd.train.config, mixsd.evaluation.config, mixsd.pipeline, mixsd.cli;"
        "heavy = [m for m in ('torch', 'transformers', 'trl', 'lm_eval') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_bad_inject_section_names_the_yaml_file(tmp_path, capsys):
    from mixsd.cli import main

    path = tmp_path / "run.yaml"
    path.write_text("facts: f\nout: o\ntrain: {epochz: 2}\n")
    assert main(["inject", "--config", str(path)]) == 2
    assert capsys.readouterr().err.startswith(f"mixsd: error: {path}: unknown key 'epochz' in the train section")


def test_help_shows_defaults_including_zeros(capsys):
    with pytest.raises(SystemExit):
        parse(["targets", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.3)" in text and "(default: smollm2-135m)" in text
    assert "seeds each record's coins and samples (default: 0)" in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_the_recipe_knobs_round_trip_through_flags_yaml_and_the_recorded_config(tmp_path):
    from dataclasses import asdict

    knobs = {
        "lr_schedule": "cosine",
        "warmup_ratio": 0.1,
        "train_layers": "8-20",
        "replay": 32,
        "memit_token": "question",
    }
    flags = [x for k, v in knobs.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    from_flags = parse(["train", "--data", "t.jsonl", "--out", "o", *flags])
    (tmp_path / "t.yaml").write_text("data: t.jsonl\nout: o\n" + "".join(f"{k}: {v}\n" for k, v in knobs.items()))
    from_yaml = parse(["train", "--config", str(tmp_path / "t.yaml")])
    for args in (from_flags, from_yaml):
        config = TrainConfig(**{k: v for k, v in vars(args).items() if k in {f.name for f in fields(TrainConfig)}})
        assert {k: asdict(config)[k] for k in knobs} == knobs  # what train.json and the model card record
        assert config.layers == list(range(8, 21))
    targets = parse(["targets", "--data", "d", "--out", "o", "--on-fail", "lower-lam"])
    assert targets.on_fail == "lower-lam"
