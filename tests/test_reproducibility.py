"""Same command, same seed, same bytes: across two runs, batch sizes and PYTHONHASHSEED values (which reorder
Python's sets and dict-of-set iteration, the usual source of run-to-run drift)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).parents[1] / "src")


def mixsd(argv: list[str], hash_seed: str) -> None:
    """`python -m mixsd ARGV` in a fresh interpreter with the given PYTHONHASHSEED."""
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "mixsd", *argv], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "argv",
    [["data", "kgfact", "--size", "demo"], ["data", "kgfunc", "--limit", "40"]],
    ids=["kgfact", "kgfunc"],
)
def test_corpora_are_byte_identical_across_hash_seeds(argv, tmp_path):
    for seed in ("1", "2"):
        mixsd([*argv, "--seed", "3", "--out", str(tmp_path / seed)], hash_seed=seed)
    a, b = tree(tmp_path / "1"), tree(tmp_path / "2")
    assert a and a == b


@pytest.fixture
def facts(zib_facts) -> Path:
    return zib_facts(9)


def test_targets_are_byte_identical_across_hash_seeds_and_batch_sizes(facts, tiny_model_dir, tmp_path):
    outs = []
    for seed, batch in (("1", "1"), ("2", "5")):
        out = tmp_path / seed / "t.jsonl"
        argv = ["targets", "--data", str(facts), "--out", str(out), "--model", tiny_model_dir, "--lam", "0.5"]
        mixsd([*argv, "--batch-size", batch, "--max-new-tokens", "16"], hash_seed=seed)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 9


def test_evaluation_is_identical_across_hash_seeds_and_batch_sizes(facts, tiny_model_dir, tmp_path, without_nlls):
    """Everything but timings, cache hits and the command line (which names the output path). The reference-answer
    NLLs are sums of floats over padded batches, so another batch size moves their last digits: they agree to
    1e-6, and every other figure (answers, rates, intervals) is identical."""
    results = []
    for seed, batch in (("1", "1"), ("2", "7")):
        out = tmp_path / seed / "eval.json"
        argv = ["eval", "--facts", str(facts), "--model", tiny_model_dir, "--base", tiny_model_dir, "--out", str(out)]
        argv += ["--suite", "none", "--general-prompts", "12", "--max-new-tokens", "8", "--general-max-new-tokens"]
        argv += ["8", "--drift-items", "0", "--fisher-items", "0", "--bootstrap", "50", "--no-cache"]
        mixsd([*argv, "--batch-size", batch], hash_seed=seed)
        result = json.loads(out.read_text())
        results.append({k: v for k, v in result.items() if k not in ("timing_s", "cached", "command", "config")})
    (a, nll_a), (b, nll_b) = map(without_nlls, results)
    assert a == b
    assert nll_a == pytest.approx(nll_b, rel=1e-6)
    assert results[0]["memorisation"]["train"]["n"] == 9 and results[0]["general"]["n"] == 12
