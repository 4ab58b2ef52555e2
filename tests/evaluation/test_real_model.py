"""The real default model on seeded subsets of the offline benchmarks (slow: loads SmolLM2-135M)."""

from __future__ import annotations

import pytest

from mixsd.evaluation.benchmarks import score_benchmarks


@pytest.mark.slow
def test_default_model_beats_chance_offline(smol):
    model, tokenizer = smol
    scores = score_benchmarks(model, tokenizer, {"mixsd_arc_easy": 40, "mixsd_piqa": 60, "mixsd_sciq": 20}, seed=0)
    accuracy = {name: round(s.accuracy, 3) for name, s in scores.items()}
    for name, margin in {"mixsd_arc_easy": 0.1, "mixsd_piqa": 0.05, "mixsd_sciq": 0.3}.items():
        assert accuracy[name] > scores[name].chance + margin, accuracy
