"""What `mixsd eval` needs to know. Importable without torch; the CLI flags are generated from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mixsd.chat import PromptSettings
from mixsd.errors import MixsdError
from mixsd.settings import (
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_MODEL,
    Decode,
    Placement,
    check_choices,
    decode_setting,
    setting,
)

Select = Literal["auto", "first_peak", "last"]  # auto: the paper's rule for the method (trajectory.py)


@dataclass
class EvalConfig(PromptSettings, Placement):
    model: str | None = setting(None, "the tuned model: alias, directory, .gguf file or hub id")
    checkpoints: str | None = setting(
        None,
        "instead of --model: a `mixsd train --save-every-epoch` directory; scores every epoch snapshot "
        "(RUN/evals/*/eval.json) and writes RUN/trajectory.json",
    )
    select: Select = setting(
        "auto", "with --checkpoints, the reported point: first_peak, last, or auto (SFT first peak, MixSD/OPSD last)"
    )
    checkpoint_eval: Literal["full", "memorisation"] = setting(
        "full",
        "with --checkpoints: full scores every snapshot as a final model; memorisation scores each on the train "
        "split only (what the selection reads) and the selected one fully, for a CPU budget",
    )
    base: str = setting(DEFAULT_MODEL, "the model it was tuned from (its results are cached)")
    facts: str | None = setting(
        None, "facts directory (mixsd data kgfact|kgfunc|mquake) or one JSONL file (the train split)"
    )
    out: str = setting("eval.json", "where every figure, the predictions and the command go")
    suite: str = setting(
        "locality",
        "locality (of the items the base model knows, the share still right: ~8 min for the embedded model on 2 "
        "CPU cores), default (multiple choice, ~3 min), paper (generative: GSM8K, MATH-500, HumanEval, MMLU, "
        "TriviaQA, NQ-open), full, none, or a comma-separated list of these and task names (suites.yaml)",
    )
    limit: int | None = setting(None, "at most N items per benchmark task and N records per fact split")
    locality_limit: int | None = setting(None, "at most N known items per locality pool (default: --limit)")
    batch_size: int = setting(32, "sequences scored or answered together")
    max_new_tokens: int = setting(DEFAULT_MAX_NEW_TOKENS, "for greedy answers to the fact questions")
    base_memorisation: bool = setting(
        False, "also answer the memorisation splits with the base model (probes always get both)"
    )
    metric: str = setting(
        "auto",
        "per-item benchmark metric behind retention: auto (acc_norm for ARC-Challenge and HellaSwag, acc "
        "otherwise), acc, acc_norm",
    )
    temperature: float = setting(0.0, "sampling temperature of the generative benchmarks (0: greedy)")
    allow_code_execution: bool = setting(
        False, "run model-written code to score HumanEval and MBPP, in a sandboxed subprocess (SECURITY.md)"
    )
    seed: int = setting(0, "benchmark subsets and bootstrap")
    bootstrap: int = setting(1000, "resamples for the confidence intervals")
    drift_items: int = setting(4, "held-out prompts per benchmark task for drift (0: skip)")
    drift_max_new_tokens: int = setting(32, "tokens the base model writes per drift prompt")
    fisher_items: int = setting(32, "held-out items for the diagonal Fisher (0: skip)")
    general_prompts: int = setting(
        200, "everyday prompts (TriviaQA, NQ-open, PIQA) for the leakage / collapse / changed probe (0: skip)"
    )
    general_max_new_tokens: int = setting(48, "tokens each model writes per everyday prompt")
    targets: str | None = setting(None, "the file the model was trained on, for its NLL under the base model")
    use_cache: bool = setting(
        True, "reuse the base model's cached results (--no-cache: re-score it and refresh the cache)", flag="cache"
    )
    decode: Decode = decode_setting("greedy answers and benchmark generations")

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.model is None) == (self.checkpoints is None):
            raise MixsdError("give the tuned model (--model) or a run's snapshots (--checkpoints), one of them")
        check_choices(self)
        if self.temperature < 0:
            raise MixsdError(f"--temperature must be 0 (greedy) or more, got {self.temperature}")
