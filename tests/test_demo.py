"""The demo's shortcuts, checked without a model: `make demo` would otherwise meet a bad training
setting only after minutes of target generation."""

from __future__ import annotations

import pytest

from mixsd.demo import DEMO_CONFIG
from mixsd.errors import MixsdError
from mixsd.evaluation.config import EvalConfig
from mixsd.pipeline import InjectConfig
from mixsd.settings import load_yaml
from mixsd.train.config import TrainConfig

DEMO = load_yaml(str(DEMO_CONFIG))
DEMO_TRAIN, DEMO_EVAL = DEMO["train"], DEMO["eval"]


def test_demo_overrides_are_valid_stage_settings(tmp_path):
    InjectConfig(facts=str(tmp_path), out=str(tmp_path / "demo"), **DEMO)
    TrainConfig(data="targets.jsonl", out=str(tmp_path / "model"), **DEMO_TRAIN)
    config = EvalConfig(model="tuned", **DEMO_EVAL)
    assert config.limit > 0 and config.drift_items == 0 and config.fisher_items == 0


def test_a_misspelled_override_would_be_refused(tmp_path):
    with pytest.raises(MixsdError, match="unknown key 'drift_item'"):
        InjectConfig(facts=str(tmp_path), out=str(tmp_path / "demo"), eval={**DEMO_EVAL, "drift_item": 0})
