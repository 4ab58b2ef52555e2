"""Targets for a fixed seed are pinned: refactoring the engine or the writer must not change a byte.

Four KGFact-small facts through the real default model (fp32, CPU), sampled at temperature 0.7 so that the
per-record generators, the coins and the retries all take part. If this fails after a deliberate change to
the target format or the sampling, say so in the commit and update the digest.
"""

from __future__ import annotations

import hashlib

import pytest

from mixsd.data.kgfact import build_kgfact
from mixsd.data.records import read_records, write_records
from mixsd.targets.config import TargetConfig
from mixsd.targets.generate import generate_targets

PINNED = "819a0e39de0cffabeeaae6086c5c536621adf6ef01a5584fb4c2c6b78d227e3d"


@pytest.mark.slow
def test_targets_for_a_fixed_seed_are_byte_identical_to_the_pinned_ones(smol, tmp_path):
    build_kgfact(tmp_path / "kg", "small", seed=0)
    write_records(tmp_path / "f.jsonl", read_records(tmp_path / "kg" / "train.jsonl")[:4])
    config = TargetConfig(
        data=str(tmp_path / "f.jsonl"),
        out=str(tmp_path / "t.jsonl"),
        lam=0.3,
        max_new_tokens=32,
        retries=1,
        temperature=0.7,
    )
    generate_targets(config, *smol)
    assert hashlib.sha256((tmp_path / "t.jsonl").read_bytes()).hexdigest() == PINNED
