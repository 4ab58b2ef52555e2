"""Locality: of what the base model got right, how much does the tuned model still get right?

The pools (suites.yaml `locality`) are large offline benchmarks. A small model answers few of their items, but
the pools are large, so the items it does answer are many. The *base pass* scores the base model on every pool
item, then asks the items it got right a second time, alone; the items right both times are the *known set*
(asking twice drops the items a model gets right only by the numerical luck of one batch's padding). The *tuned
pass* asks the tuned model those known items only, in the same batches, so the base model itself keeps exactly
1. `kept` is the share still right: per pool, per family (generative answers through the chat template, scored
on the answer alone; log-likelihood choices on raw text) and overall, each with a bootstrap interval over items.

The known set depends on the base model's weights, its chat template, the pools and the numeric setting (dtype,
device); it is cached per base, and the embedded model's ships with mixsd (`known/`), so its default costs nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np

from mixsd import models
from mixsd.answers import normalize
from mixsd.chat import format_of
from mixsd.evaluation import benchmarks, errors
from mixsd.evaluation.cache import lookup, model_fingerprint, store
from mixsd.evaluation.config import EvalConfig
from mixsd.evaluation.retention import CONFIDENCE, interval
from mixsd.io import file_sha256

KNOWN_DIR = Path(__file__).parent / "known"  # shipped known sets: <alias>.json.gz
FAMILIES = ("generative", "mc")
CODE_VERSION = 1  # bump when a pool's prompt or scorer changes what the base gets right


@dataclass
class Known:
    """The base model's known set: per pool task, the doc ids it answered right twice and its answers."""

    key: dict
    pools: dict[str, dict]  # task -> {family, pool, doc_ids, answers}
    seconds: float = 0.0  # what the base pass cost

    @property
    def n(self) -> int:
        return sum(len(p["doc_ids"]) for p in self.pools.values())


def pools() -> dict[str, int | None]:
    """Pool task -> items the base pass scores (a seeded subset; None: all)."""
    return dict(benchmarks.suites()["locality"])


def base_identity(name: str) -> str:
    """The base weights' identity: a shipped alias by its file's content (the same on every machine), any other
    model by the cache's fingerprint."""
    if name in models.ALIASES:
        digest = file_sha256(models.alias_gguf(models.ALIASES[name]))[:16]
        return f"{name}:{digest}"
    return model_fingerprint(name)


def known_key(config: EvalConfig, base_model, tokenizer) -> dict:
    """Everything the known set depends on: the base weights and chat template, the pools, the numeric setting."""
    template = tokenizer.chat_template or ""
    return {
        "kind": "locality-known",
        "code_version": CODE_VERSION,
        "base": base_identity(config.base),
        "chat_template": hashlib.sha256(template.encode()).hexdigest()[:16],
        "pools": pools(),
        "seed": config.seed,
        "dtype": str(base_model.dtype).removeprefix("torch."),
        "device": base_model.device.type,
        "batch_size": config.batch_size,
        **format_of(tokenizer).key(),
    }


def scorer(config: EvalConfig):
    """`score(model, tokenizer, items)` for both passes: greedy, each item's plain accuracy."""
    return partial(
        benchmarks.score_benchmarks, seed=config.seed, metric="acc", batch_size=config.batch_size, decode=config.decode
    )


def shipped(base: str) -> Known | None:
    path = KNOWN_DIR / f"{base}.json.gz"
    if not path.is_file():
        return None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return Known(**json.load(f))


def save_shipped(known: Known, base: str) -> Path:
    """Write a known set as package data (how `known/` is made: benchmarks/locality_known.py)."""
    KNOWN_DIR.mkdir(exist_ok=True)
    path = KNOWN_DIR / f"{base}.json.gz"
    with gzip.GzipFile(path, "wb", mtime=0) as f:  # mtime 0: the same set gives the same bytes
        f.write((json.dumps(asdict(known), sort_keys=True, indent=0) + "\n").encode())
    return path


def find_known(base: str, key: dict, *, reuse: bool = True) -> tuple[Known | None, str]:
    """The known set for `key` (shipped, else cached) and where it came from, or (None, why it must be computed)."""
    ship = shipped(base)
    if reuse and ship is not None and ship.key == key:
        return ship, "shipped"
    cached = lookup(key) if reuse else None
    if cached is not None:
        return Known(**cached), "cache"
    if ship is None:
        return None, f"no known set for {base} yet"
    differs = sorted(k for k in key.keys() | ship.key.keys() if key.get(k) != ship.key.get(k))
    return None, f"the shipped known set was made with other {', '.join(differs)}"


def base_pass(model, tokenizer, key: dict, *, score) -> Known:
    """Score every pool item, then the ones right again alone; `score(model, tokenizer, items)` is
    `benchmarks.score_benchmarks` with the evaluation's settings (items: task -> n or doc ids)."""
    t0, first = time.time(), {}
    for task, n in key["pools"].items():  # pool by pool, each cached: an interrupted base pass resumes
        part = {**{k: v for k, v in key.items() if k != "pools"}, "kind": "locality-first-pass", "task": task, "n": n}
        scored = lookup(part)
        if scored is None:
            say(f"base pass: {task}")
            scored = score(model, tokenizer, {task: n})[task].to_json()
            store(part, scored)
        first[task] = benchmarks.TaskScores(**scored)
    right = {task: [d for d, c in zip(s.doc_ids, s.correct, strict=True) if c > 0] for task, s in first.items()}
    pool_sizes = {task: len(s.doc_ids) for task, s in first.items()}
    again = score(model, tokenizer, {task: ids for task, ids in right.items() if ids})
    out = {}
    for task in first:
        s = again.get(task)
        kept = [i for i, c in enumerate(s.correct) if c > 0] if s else []
        out[task] = {
            "family": family(task),
            "pool": pool_sizes[task],
            "right_once": len(right[task]),
            "doc_ids": [s.doc_ids[i] for i in kept],
            "answers": [s.responses[i] if s.responses else _choice(s, i) for i in kept],
        }
    return Known(key=key, pools=out, seconds=round(time.time() - t0, 1))


def family(task: str) -> str:
    """generative (answered through the chat template) or mc (a log-likelihood choice or continuation)."""
    return "generative" if benchmarks.task_configs()[task]["output_type"] == "generate_until" else "mc"


def _choice(scores: benchmarks.TaskScores, i: int) -> str:
    """What the model picked on a log-likelihood item: its highest-scoring choice (a continuation task's one)."""
    return scores.choices[i][int(np.argmax(scores.loglikelihoods[i]))]


def tuned_items(known: Known, limit: int | None, seed: int) -> dict[str, list[int]]:
    """Task -> the known doc ids the tuned model answers: all, or a seeded `limit` of each pool."""
    out = {}
    for task, pool in known.pools.items():
        ids = pool["doc_ids"]
        if limit is not None and limit < len(ids):
            ids = sorted(random.Random(f"mixsd-locality:{seed}:{task}").sample(ids, limit))
        if ids:
            out[task] = ids
    return out


def _kept(right: np.ndarray, picks: np.ndarray) -> dict:
    n = int(right.size)
    if n == 0:
        return {"n": 0, "kept": None, "kept_ci": None}
    return {"n": n, "kept": float(right.mean()), "kept_ci": interval(right[picks(n)].mean(axis=1))}


def section(
    known: Known,
    scores: dict[str, benchmarks.TaskScores],
    *,
    entities: set[str],
    openings: frozenset[str],
    source: str,
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """eval.json's `locality`: kept overall, per family and per pool with bootstrap intervals, every lost item
    with why it was lost (evaluation/errors.py; a log-likelihood item has no text, so its loss is genuine), and
    the per-item results that `mixsd compare` pairs."""
    rng = np.random.default_rng(seed)
    names = {n for n in map(normalize, entities) if n}

    def picks(n: int) -> np.ndarray:
        return rng.integers(0, n, size=(resamples, n))

    pools, items, lost_items, families = {}, {}, {}, {f: [] for f in FAMILIES}
    for task in sorted(known.pools):
        pool = known.pools[task]
        if task not in scores:  # the base knows none of it (or `--limit` left none)
            pools[task] = {"family": pool["family"], "pool": pool["pool"], "known": len(pool["doc_ids"]), "n": 0}
            pools[task] |= {"kept": None, "kept_ci": None, "lost": dict.fromkeys(errors.CATEGORIES, 0)}
            continue
        s = scores[task]
        right = np.asarray(s.correct, dtype=np.float64) > 0
        lost = [i for i, r in enumerate(right) if not r]
        counts = dict.fromkeys(errors.CATEGORIES, 0)
        answers = []
        by_id = dict(zip(pool["doc_ids"], pool["answers"], strict=True))
        for i in lost:
            category = "genuine"
            if s.responses:
                category = errors.classify(
                    s.responses[i],
                    s.contexts[i],
                    s.golds[i],
                    names,
                    answered=bool(s.answered[i]) if s.answered else True,
                    reasoning=False,
                    openings=openings,
                )
                answers.append(
                    {"doc_id": s.doc_ids[i], "gold": s.golds[i], "base": by_id[s.doc_ids[i]], "tuned": s.responses[i]}
                    | {"category": category}
                )
            counts[category] += 1
        pools[task] = {
            "family": pool["family"],
            "pool": pool["pool"],
            "known": len(pool["doc_ids"]),
            **_kept(right, picks),
            "lost": counts,
        }
        items[task] = {"doc_ids": s.doc_ids, "tuned": right.astype(int).tolist()}
        if answers:
            lost_items[task] = answers
        families[pool["family"]].append(right)

    def joined(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)

    return {
        **_kept(joined([r for rs in families.values() for r in rs]), picks),
        "families": {f: _kept(joined(rs), picks) for f, rs in families.items()},
        "pools": pools,
        "known_set": {"source": source, "key": known.key, "base_pass_s": known.seconds},
        "confidence": CONFIDENCE,
        "resamples": resamples,
        "items": items,
        "lost_answers": lost_items,
    }


def say(message: str) -> None:
    print(f"mixsd eval: locality: {message}", file=sys.stderr, flush=True)
