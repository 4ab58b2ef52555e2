"""What `mixsd train` needs to know, with defaults that work for small models on a CPU.

The optimiser follows the paper (AdamW, betas 0.9 / 0.95, weight decay 0.01,
constant learning rate, no warm-up). Learning rate, epochs and batch size were
tuned so that SmolLM2-135M memorises 100 KGFact-style facts on a 2-core CPU
within ten minutes (README, "Training"); larger models want a smaller rate.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixsd.errors import MixsdError
from mixsd.models import DEFAULT_MODEL

METHODS = ("mixsd", "sft", "opsd")

# Full fine-tuning moves every weight, LoRA only a low-rank update: it needs a
# larger step for the same progress.
DEFAULT_LR_FULL = 1e-4
DEFAULT_LR_LORA = 1e-3

# SDFT's `distillation_alpha` interpolates the divergence: 0 is forward
# KL(teacher || student), the paper's OPSD runs; 1 is reverse KL(student || teacher).
KL_ALPHA = {"forward": 0.0, "reverse": 1.0, "jsd": 0.5}


@dataclass
class TrainConfig:
    """One training run: `data` (targets file for `mixsd`, corpus file otherwise) into the model directory `out`."""

    data: str
    out: str
    method: str = "mixsd"
    model: str = DEFAULT_MODEL
    # Optimisation. `lr=None` picks DEFAULT_LR_FULL or DEFAULT_LR_LORA.
    lr: float | None = None
    epochs: float = 8.0  # with lr 1e-4: 90% of KGFact-small memorised by SmolLM2-135M (README)
    batch_size: int = 8  # sequences per forward pass (for opsd: rollouts, i.e. prompts x `rollouts`)
    grad_accum: int = 1
    max_steps: int | None = None  # stop after this many optimiser steps (overrides `epochs`)
    weight_decay: float = 0.01
    max_length: int = 1024  # tokens of prompt + answer; longer prompts are cut from the left
    seed: int = 0
    bf16: bool | None = None  # bf16 autocast; None: where the hardware has native bf16 (see run.use_bf16)
    # LoRA on all linear layers; `lora=None` trains every weight.
    lora: int | None = None
    lora_alpha: int | None = None  # None: 2 * lora
    use_rslora: bool = False
    use_dora: bool = False
    save_adapter: bool = False  # save only the adapter instead of merged weights
    # Checkpoints under OUT/checkpoints (0: none), kept after success only on request.
    save_steps: int = 100
    resume: bool = False
    keep_checkpoints: bool = False
    # On-policy self-distillation (method `opsd`), see METHOD.md section 4.
    kl: str = "forward"  # forward | reverse | jsd
    top_k: int = 64  # the divergence is taken over the student's top-k tokens (paper: teacher's top-64)
    rollouts: int = 1  # sampled completions per prompt
    max_completion_length: int = 64  # KGFact answers are ~20 tokens
    temperature: float = 1.0  # sampling temperature of the rollouts
    expert_template: str | None = None  # file or text with {question} and {context}; None: the default
    no_system_prompt: bool = False  # mixsd/sft: prompts without a system turn, as the targets were made

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        return DEFAULT_LR_FULL if self.lora is None else DEFAULT_LR_LORA

    @property
    def alpha(self) -> int | None:
        """LoRA scaling numerator: 2r unless set."""
        if self.lora is None:
            return None
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora

    def validate(self) -> None:
        """Reject impossible settings before anything is loaded."""
        if self.method not in METHODS:
            raise MixsdError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        positive = {
            "epochs": self.epochs, "batch_size": self.batch_size, "grad_accum": self.grad_accum,
            "max_length": self.max_length, "rollouts": self.rollouts, "top_k": self.top_k,
            "max_completion_length": self.max_completion_length, "temperature": self.temperature,
        }
        if self.lr is not None:
            positive["lr"] = self.lr
        if self.max_steps is not None:
            positive["max_steps"] = self.max_steps
        if self.lora is not None:
            positive["lora"] = self.lora
        for name, value in positive.items():
            if not value > 0:
                raise MixsdError(f"{name} must be positive, got {value}")
        if self.save_steps < 0:
            raise MixsdError(f"save_steps must be >= 0 (0: no checkpoints), got {self.save_steps}")
        if self.lora is None and (self.save_adapter or self.use_dora or self.use_rslora or self.lora_alpha):
            raise MixsdError("--save-adapter, --dora, --rslora and --lora-alpha need --lora R")
        if self.no_system_prompt and self.method == "opsd":
            raise MixsdError("--no-system-prompt is for mixsd and sft: SDFT renders the opsd prompts itself")
        if self.kl not in KL_ALPHA:
            raise MixsdError(f"unknown KL direction {self.kl!r}; choose one of {', '.join(KL_ALPHA)}")
        if self.method == "opsd":
            if (self.batch_size * self.grad_accum) % self.rollouts:
                raise MixsdError(
                    f"batch_size x grad_accum ({self.batch_size * self.grad_accum}) must be a multiple of rollouts ({self.rollouts})"
                )
            if self.max_completion_length >= self.max_length:
                raise MixsdError(f"max_completion_length ({self.max_completion_length}) must be below max_length ({self.max_length})")
