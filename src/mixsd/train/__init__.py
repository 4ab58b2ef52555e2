"""Training: MixSD targets and SFT through TRL's SFTTrainer, on-policy self-distillation through its SDFTTrainer."""

from mixsd.train.config import TrainConfig
from mixsd.train.run import train

__all__ = ["TrainConfig", "train"]
