"""Paired comparisons of two runs: against a direct computation, exactly 0 for a run against itself, verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixsd.cli import main
from mixsd.errors import MixsdError
from mixsd.evaluation.retention import paired_difference
from mixsd.report.paired import IDENTICAL, _row, compare, describe, seeded_difference

RUNS = Path(__file__).resolve().parents[2] / "docs" / "results" / "kgfact-small-smollm2" / "runs"


def result(train: list[bool], tuned: list[float], flags: list[bool]) -> dict:
    return {
        "memorisation": {"train": {"n": len(train), "tuned": {"loose": float(np.mean(train)), "strict": 0.0}}},
        "predictions": {"train": [{"id": f"r{i}", "tuned": {"loose": x}} for i, x in enumerate(train)]},
        "items": {"t": {"doc_ids": list(range(len(tuned))), "base": [1.0, 1.0, 0.0, 1.0], "tuned": tuned}},
        "general": {
            "answers": [{"prompt": f"p{i}", "tuned_leakage": f, "tuned_collapse": False} for i, f in enumerate(flags)]
        },
    }


def test_difference_is_the_direct_paired_bootstrap():
    a, b = [1.0, 0.0, 1.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]
    picks = np.random.default_rng(1).integers(0, 5, size=(300, 5))
    point, samples = paired_difference(a, b, picks)
    direct = [np.mean([a[i] - b[i] for i in row]) for row in picks]
    assert point == pytest.approx(0.4) and samples == pytest.approx(direct)


def test_a_run_against_itself_is_identical_on_every_item_with_no_detectable_claim():
    run = json.loads((RUNS / "mixsd-lam0.3-epochs8-lr0.0001" / "eval.json").read_text())
    rows = compare(run, run, resamples=200)
    assert {"memorisation train", "probe retrieval", "retention mean", "retention mixsd_piqa"} <= set(rows)
    for r in rows.values():
        assert r["difference"] == 0.0 and r["ci"] == [0.0, 0.0] and r["verdict"] == IDENTICAL
        assert r["detectable"] is None and describe(r) == ("[+0.000, +0.000]", IDENTICAL)  # not "±0.000"


def test_an_undefined_interval_is_not_called_identical():
    row = _row("retention", 4, 0.0, np.full(100, np.nan))  # e.g. too few resamples with a base-correct item
    assert row["ci"] is None and row["verdict"] == "no detectable difference" and row["detectable"] is None


def test_differences_that_cancel_are_not_identical():
    a = result([True, False] * 20, [1.0, 1.0, 0.0, 1.0], [False] * 40)
    b = result([False, True] * 20, [1.0, 1.0, 0.0, 1.0], [False] * 40)
    row = compare(a, b, resamples=200)["memorisation train"]
    assert row["difference"] == 0.0 and row["verdict"] == "no detectable difference" and row["detectable"] > 0.1


def test_verdicts_follow_the_interval_and_the_direction_of_better():
    a = result([True] * 40, [1.0, 1.0, 0.0, 1.0], [False] * 40)
    b = result([False] * 40, [0.0, 0.0, 0.0, 0.0], [True] * 40)
    rows = compare(a, b, resamples=200)
    assert rows["memorisation train"]["verdict"] == "A better" and rows["memorisation train"]["difference"] == 1.0
    assert rows["retention t"]["difference"] == pytest.approx(1.0)  # (3/4 - 0) / base 3/4
    assert rows["general leakage"]["difference"] == -1.0 and rows["general leakage"]["verdict"] == "A better"
    assert compare(b, a, resamples=200)["general leakage"]["verdict"] == "A worse"

    # an in-context probe split is paired like a memorisation split: higher is better
    for run, answers in ((a, [True] * 30), (b, [False] * 30)):
        run["probe_retention"] = {"tasks": {"retrieval": {"retention": 1.0}}}
        run["predictions"]["retrieval"] = [{"id": f"q{i}", "tuned": {"loose": x}} for i, x in enumerate(answers)]
    probe = compare(a, b, resamples=200)["probe retrieval"]
    assert probe["n"] == 30 and probe["difference"] == 1.0 and probe["verdict"] == "A better"


def test_runs_on_other_items_are_refused_and_the_cli_prints_the_table(tmp_path, capsys):
    a, b = result([True], [1.0, 1.0, 0.0, 1.0], [False]), result([True], [1.0, 1.0, 0.0, 1.0], [False])
    b["items"]["t"]["doc_ids"] = [9, 8, 7, 6]
    with pytest.raises(MixsdError, match="not scored on the same items"):
        compare(a, b)
    assert main(["compare", str(RUNS / "mixsd-lam0-epochs8-lr0.0001"), str(RUNS / "sft-epochs8-lr0.0001")]) == 0
    out = capsys.readouterr().out
    assert "retention mean" in out and "memorisation paraphrase" in out
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2


def test_the_gold_answer_nll_is_paired_per_prompt_and_lower_is_better():
    nll_a, nll_b = [1.0, 2.0, 1.5, 0.5] * 10, [1.5, 2.5, 2.0, 1.0] * 10
    a, b = result([True] * 40, [1.0] * 4, [False] * 40), result([True] * 40, [1.0] * 4, [False] * 40)
    for run, nll in ((a, nll_a), (b, nll_b)):
        for row, x in zip(run["general"]["answers"], nll, strict=True):
            row["tuned_nll"] = x
    rows = compare(a, b, resamples=200)
    assert rows["general gold NLL"]["difference"] == pytest.approx(-0.5)
    assert rows["general gold NLL"]["verdict"] == "A better"  # A finds the right answers more likely
    assert compare(b, a, resamples=200)["general gold NLL"]["verdict"] == "A worse"


def test_seeds_are_resampled_as_well_as_items():
    """Two seeds of A that disagree completely, on items that agree within each run: resampling items alone would
    give an interval of width 0; resampling seeds too spans the seed-to-seed difference."""
    a = [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]
    b = [[0.5, 0.5, 0.5, 0.5]]
    rng = np.random.default_rng(0)
    picks = rng.integers(0, 4, size=(400, 4))
    point, samples = seeded_difference(a, b, picks, np.random.default_rng(1))
    assert point == 0.0 and set(np.round(samples, 6)) <= {-0.5, 0.0, 0.5}
    assert samples.min() == -0.5 and samples.max() == 0.5
    single, _ = seeded_difference([a[0]], b, picks, np.random.default_rng(1))
    assert single == paired_difference(a[0], b[0], picks)[0] == 0.5


def test_compare_pairs_the_seeds_of_each_side(tmp_path, capsys):
    one = result([True] * 40, [1.0, 1.0, 0.0, 1.0], [False] * 40)
    two = result([False] * 40, [1.0, 0.0, 0.0, 1.0], [False] * 40)
    sft = result([True] * 40, [0.0, 0.0, 0.0, 1.0], [True] * 40)
    rows = compare([one, two], [sft], resamples=300)
    assert rows["memorisation train"]["difference"] == pytest.approx(-0.5)
    assert rows["memorisation train"]["ci"] == [-1.0, 0.0]  # the two seeds disagree on every question
    paths = []
    for name, run in (("a1", one), ("a2", two), ("sft", sft)):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(run))
    assert main(["compare", str(paths[0]), str(paths[1]), "vs", str(paths[2])]) == 0
    assert f"A = {paths[0]}, {paths[1]}" in capsys.readouterr().out
    assert main(["compare", str(paths[0]), str(paths[1]), str(paths[2])]) == 2  # three runs need a "vs"
    assert "A1 A2 ... vs B1 B2" in capsys.readouterr().err


REPO = Path(__file__).resolve().parents[2]
COMPARISONS = sorted((REPO / "docs" / "results").rglob("compare*.txt"))


@pytest.mark.parametrize("committed", COMPARISONS, ids=lambda p: str(p.relative_to(REPO / "docs" / "results")))
def test_committed_comparisons_regenerate_byte_for_byte(committed, monkeypatch, capsys):
    """Every compare.txt under docs/results is what `mixsd compare` prints today for the files its header names,
    from the directory those names are relative to (the study's, or the repository root)."""
    sides = [line.split(" = ", 1)[1].split(", ") for line in committed.read_text().splitlines()[:2]]
    bases = [committed.parent, committed.parent.parent, REPO]
    monkeypatch.chdir(next(b for b in bases if all((b / p).is_file() for side in sides for p in side)))
    args = [*sides[0], "vs", *sides[1]] if len(sides[0]) > 1 else [*sides[0], *sides[1]]
    assert main(["compare", *args]) == 0
    assert capsys.readouterr().out == committed.read_text()
