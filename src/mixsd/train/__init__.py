"""Training: MixSD targets and SFT through TRL's SFTTrainer, on-policy self-distillation through its SDFTTrainer."""

from mixsd.train.config import TrainConfig

__all__ = ["TrainConfig", "train"]


def __getattr__(name: str):
    if name == "train":  # loads torch and TRL: only on first use
        from mixsd.train.run import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
