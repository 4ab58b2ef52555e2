"""Evaluation: memorisation of injected facts, retention of the base model's abilities, and the paper's analyses."""

from mixsd.evaluation.config import EvalConfig

__all__ = ["EvalConfig", "evaluate"]


def __getattr__(name: str):
    if name == "evaluate":  # loads torch and lm-eval: only on first use
        from mixsd.evaluation.run import evaluate

        return evaluate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
