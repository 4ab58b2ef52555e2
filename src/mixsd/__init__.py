"""mixsd: inject new knowledge into a language model with Mixed Contextual Self-Distillation.

The Python API, loaded on first use so that `import mixsd` stays light:

    from mixsd import inject, InjectConfig, TargetConfig, TrainConfig, EvalConfig
"""

__version__ = "0.1.0"

_API = {
    "inject": "mixsd.pipeline",
    "InjectConfig": "mixsd.pipeline",
    "TargetConfig": "mixsd.targets.config",
    "generate_targets": "mixsd.targets.generate",
    "TrainConfig": "mixsd.train.config",
    "train": "mixsd.train.run",
    "EvalConfig": "mixsd.evaluation.config",
    "evaluate": "mixsd.evaluation.run",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
