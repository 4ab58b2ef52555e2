"""Retention ratios and their bootstrap intervals."""

from __future__ import annotations

import pytest

from mixsd.evaluation.retention import retention_table


def test_identical_scores_give_exactly_one():
    scores = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
    table = retention_table(
        {
            "a": {"base": scores, "tuned": scores, "chance": 0.25},
            "b": {"base": scores[:4], "tuned": scores[:4], "chance": 0.5},
        },
        resamples=200,
    )
    for row in [*table["tasks"].values(), table["mean"]]:
        assert row["retention"] == 1.0
        assert row["chance_corrected"] == 1.0
        assert row["retention_ci"] == [1.0, 1.0]
        assert row["chance_corrected_ci"] == [1.0, 1.0]


def test_figures_by_hand():
    table = retention_table({"t": {"base": [1, 1, 0, 0], "tuned": [1, 0, 0, 0], "chance": 0.25}}, resamples=100)
    row = table["tasks"]["t"]
    assert (row["n"], row["base"], row["tuned"]) == (4, 0.5, 0.25)
    assert row["retention"] == pytest.approx(0.5)
    assert row["chance_corrected"] == pytest.approx(0.0)  # tuned fell to chance
    low, high = row["retention_ci"]
    assert low <= row["retention"] <= high


def test_mean_is_over_tasks_and_skips_undefined():
    table = retention_table(
        {
            "half": {"base": [1, 1], "tuned": [1, 0], "chance": 0.0},
            "full": {"base": [1, 0], "tuned": [1, 0], "chance": 0.0},
            "at_chance": {"base": [1, 0], "tuned": [1, 1], "chance": 0.5},
        },
        resamples=100,
    )
    assert table["tasks"]["at_chance"]["chance_corrected"] is None  # base no better than a guess
    assert table["mean"]["retention"] == pytest.approx((0.5 + 1.0 + 2.0) / 3)
    assert table["mean"]["chance_corrected"] == pytest.approx((0.5 + 1.0) / 2)


def test_zero_base_is_undefined():
    row = retention_table({"t": {"base": [0, 0], "tuned": [1, 0], "chance": 0.0}}, resamples=50)["tasks"]["t"]
    assert row["retention"] is None and row["retention_ci"] is None


def test_same_seed_same_intervals():
    tasks = {"t": {"base": [1, 0, 1, 1, 0, 1, 1], "tuned": [1, 0, 0, 1, 0, 1, 0], "chance": 0.25}}
    assert retention_table(tasks, seed=3) == retention_table(tasks, seed=3)
    assert (
        retention_table(tasks, seed=3)["tasks"]["t"]["retention"]
        == retention_table(tasks, seed=4)["tasks"]["t"]["retention"]
    )


def test_items_must_pair_up():
    with pytest.raises(ValueError, match="same non-empty items"):
        retention_table({"t": {"base": [1, 0], "tuned": [1], "chance": 0.0}})
