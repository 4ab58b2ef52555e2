"""Evaluation: memorisation of injected facts, retention of the base model's abilities, and the paper's analyses.

The names below load on first use, so that importing a light submodule (`facts`) does not load torch.
"""

__all__ = ["EvalConfig", "evaluate", "format_table"]


def __getattr__(name: str):
    if name in __all__:
        from mixsd.evaluation import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
