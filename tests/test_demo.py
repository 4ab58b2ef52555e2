"""The demo's shortcuts, checked without a model: `make demo` would otherwise meet a bad training
setting only after minutes of target generation."""

from __future__ import annotations

import pytest

from mixsd.demo import DEMO_EVAL, DEMO_TRAIN
from mixsd.errors import MixsdError
from mixsd.evaluation.run import EvalConfig
from mixsd.pipeline import InjectConfig
from mixsd.train.config import TrainConfig


def test_demo_overrides_are_valid_stage_settings(tmp_path):
    InjectConfig(facts=str(tmp_path), out=str(tmp_path / "demo"), train=DEMO_TRAIN, eval=DEMO_EVAL)
    TrainConfig(data="targets.jsonl", out=str(tmp_path / "model"), **DEMO_TRAIN).validate()
    config = EvalConfig(model="tuned", **DEMO_EVAL)
    assert config.limit > 0 and config.drift_items == 0 and config.fisher_items == 0


def test_a_misspelled_override_would_be_refused(tmp_path):
    with pytest.raises(MixsdError, match="unknown key 'drift_item'"):
        InjectConfig(facts=str(tmp_path), out=str(tmp_path / "demo"), eval={**DEMO_EVAL, "drift_item": 0})
