"""Evaluation: memorisation of injected facts, retention of the base model's abilities, and the paper's analyses."""

from mixsd.evaluation.run import EvalConfig, evaluate, format_table

__all__ = ["EvalConfig", "evaluate", "format_table"]
