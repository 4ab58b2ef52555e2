"""KGFunc: every boxed answer and every example in every prompt checked against an independent implementation."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections import Counter

import pytest

from mixsd.answers import last_boxed
from mixsd.cli import main
from mixsd.data.kgfunc import build_kgfunc
from mixsd.data.records import read_records
from mixsd.errors import MixsdError

SPLITS = ("train.jsonl", "test.jsonl", "unseen.jsonl", "chain.jsonl")


def digits_of(n: int) -> list[int]:
    """Most significant first, by repeated division (the builder reads the decimal string)."""
    out = []
    while True:
        n, r = divmod(n, 10)
        out.insert(0, r)
        if n == 0:
            return out


def running_max_sum(d: list[int]) -> int:
    total, best = 0, -1
    for x in d:
        best = x if x > best else best
        total += best
    return total


def smallest_rotation(n: int) -> int:
    s = str(n)
    return min(int((s + s)[i : i + len(s)]) for i in range(len(s)))


REFERENCE = {
    "B": lambda n, d: sum((x - min(d)) ** 2 for x in d),
    "C": lambda n, d: abs(sum(x * x * (-1) ** i for i, x in enumerate(d))),
    "D": lambda n, d: sum(x**2 if x in {2, 3, 5, 7} else x for x in d),
    "E": lambda n, d: sum(d[i] * d[-1 - i] for i in range(len(d))),
    "F": lambda n, d: running_max_sum(d),
    "G": lambda n, d: sum(math.comb(x + 1, 2) for x in d),
    "H": lambda n, d: smallest_rotation(n),
    "a": lambda n, d: sum(d),
    "b": lambda n, d: math.prod(d),
    "c": lambda n, d: len(str(n)),
    "d": lambda n, d: int(max(str(n))),
    "e": lambda n, d: int(min(str(n))),
    "f": lambda n, d: int(str(n)[0]),
    "g": lambda n, d: n % 10,
    "h": lambda n, d: max(d) - min(d),
    "i": lambda n, d: str(n)[::-1],
    "j": lambda n, d: d[0] + d[-1],
    "k": lambda n, d: sum(1 for c in str(n) if c in "02468"),
    "l": lambda n, d: sum(1 for c in str(n) if c in "13579"),
    "m": lambda n, d: len(Counter(str(n))),
    "n": lambda n, d: str(n).count("0"),
    "o": lambda n, d: 0 if n == 0 else 1 + (n - 1) % 9,
    "p": lambda n, d: sum(x**2 for x in d),
    "q": lambda n, d: "".join(sorted(str(n))),
    "r": lambda n, d: "".join(sorted(str(n), reverse=True)),
    "s": lambda n, d: 2 * sum(d),
    "t": lambda n, d: d[0] * d[-1],
}


def reference(label: str, n: int) -> str:
    return str(REFERENCE[label](n, digits_of(n)))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("kgfunc")
    manifest = build_kgfunc(out, seed=0)
    return out, manifest, {name.removesuffix(".jsonl"): read_records(out / name) for name in SPLITS}


def test_sizes(corpus):
    _, manifest, splits = corpus
    assert len(splits["train"]) == 1600
    assert Counter(r.meta["op"] for r in splits["train"]) == {
        "B": 229,
        "C": 229,
        "D": 229,
        "E": 229,
        "F": 228,
        "G": 228,
        "H": 228,
    }
    assert Counter(r.meta["op"] for r in splits["test"]) == dict.fromkeys("BCDEFGH", 25)
    assert Counter(r.meta["op"] for r in splits["unseen"]) == dict.fromkeys("abcdefghijklmnopqrst", 25)
    assert len(splits["chain"]) == 7 * 6 * 2
    assert {name: f["records"] for name, f in manifest["files"].items()} == {
        f"{k}.jsonl": len(v) for k, v in splits.items()
    }


def test_every_boxed_answer_matches_the_independent_computation(corpus):
    _, _, splits = corpus
    for name in ("train", "test", "unseen"):
        for r in splits[name]:
            assert last_boxed(r.answer) == r.gold == reference(r.meta["op"], r.meta["input"]), r.id
            assert r.answer.endswith(f"\\boxed{{{r.gold}}}")
    for r in splits["chain"]:
        first, second = r.meta["ops"]
        middle = reference(first, r.meta["input"])
        assert str(r.meta["intermediate"]) == middle
        assert last_boxed(r.answer) == r.gold == reference(second, int(middle)), r.id


def test_every_example_table_is_right_and_shared(corpus):
    _, manifest, splits = corpus
    shots = manifest["shots"]
    assert len(shots) == 10 and sorted(Counter(len(str(x)) for x in shots).values()) == [2] * 5
    line = re.compile(r"^([A-Za-z])\((\d+)\) = (\S+)$", re.M)
    for records in splits.values():
        for r in records:
            table = line.findall(r.prompt)
            labels = r.meta["ops"] if "ops" in r.meta else [r.meta["op"]]
            assert [(label, int(x)) for label, x, _ in table] == [(label, x) for label in labels for x in shots]
            assert all(value == reference(label, int(x)) for label, x, value in table)


def test_held_out_inputs_are_unseen_and_length_balanced(corpus):
    _, manifest, splits = corpus
    shots = set(manifest["shots"])
    train = {op: {r.meta["input"] for r in splits["train"] if r.meta["op"] == op} for op in "BCDEFGH"}
    for r in splits["test"]:
        assert r.meta["input"] not in train[r.meta["op"]] | shots
    for r in splits["chain"]:
        assert r.meta["input"] not in train[r.meta["ops"][0]] | shots
    assert all(0 <= r.meta["input"] <= 99999 and r.meta["input"] not in shots for rs in splits.values() for r in rs)
    lengths = Counter(len(str(r.meta["input"])) for r in splits["train"])
    assert all(lengths[k] > 0.15 * len(splits["train"]) for k in (2, 3, 4, 5))


def test_limit_keeps_a_prefix_and_the_evaluation_splits(corpus, tmp_path):
    out, _, splits = corpus
    manifest = build_kgfunc(tmp_path, seed=0, limit=50)
    assert read_records(tmp_path / "train.jsonl") == splits["train"][:50]
    assert manifest["limit"] == 50
    for name in SPLITS[1:]:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    with pytest.raises(MixsdError, match="limit"):
        build_kgfunc(tmp_path, limit=0)


def test_same_seed_same_bytes_under_any_hash_seed(corpus, tmp_path):
    out, _, _ = corpus
    code = f"from mixsd.data.kgfunc import build_kgfunc; build_kgfunc({str(tmp_path)!r}, seed=0)"
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONHASHSEED": "777"})
    for name in (*SPLITS, "manifest.json"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes()


def test_cli(tmp_path, capsys):
    assert main(["data", "kgfunc", "--out", str(tmp_path), "--limit", "70", "--seed", "4"]) == 0
    assert "train.jsonl 70" in capsys.readouterr().out
    assert main(["data", "kgfunc", "--out", str(tmp_path), "--limit", "-1"]) == 2
