"""What `mixsd train` needs to know, with defaults that work for small models on a CPU.

The optimiser follows the paper (AdamW, betas 0.9 / 0.95, weight decay 0.01,
constant learning rate, no warm-up by default; a schedule, warm-up and the set of
trained layers are settings, for the gentler end of the recipe search). Learning rate, epochs and batch size were
tuned so that SmolLM2-135M memorises 100 KGFact-style facts on a 2-core CPU
within ten minutes (docs/training.md); larger models want a smaller rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from mixsd.chat import PromptSettings
from mixsd.errors import MixsdError
from mixsd.settings import DEFAULT_MODEL, MODEL_HELP, check_choices, setting

Method = Literal["mixsd", "sft", "opsd", "memit"]
Schedule = Literal["constant", "linear", "cosine"]
Divergence = Literal["forward", "reverse", "jsd"]
METHODS: tuple[str, ...] = get_args(Method)

# Full fine-tuning moves every weight, LoRA only a low-rank update: it needs a
# larger step for the same progress.
DEFAULT_LR_FULL = 1e-4
DEFAULT_LR_LORA = 1e-3
DEFAULT_LR_MEMIT = 0.5  # Adam on each fact's value vector, not on weights (the authors' EasyEdit setting)

# SDFT's `distillation_alpha` interpolates the divergence: 0 is forward
# KL(teacher || student), the paper's OPSD runs; 1 is reverse KL(student || teacher).
KL_ALPHA: dict[Divergence, float] = {"forward": 0.0, "reverse": 1.0, "jsd": 0.5}


@dataclass
class TrainConfig(PromptSettings):
    """One training run: `data` (targets file for `mixsd`, corpus file otherwise) into the model directory `out`."""

    data: str = setting(help="targets file (--method mixsd) or corpus file (sft, opsd)")
    out: str = setting(help="output directory for the trained model")
    method: Method = setting(
        "mixsd",
        "mixsd: MixSD targets; sft: corpus answers; opsd: on-policy self-distillation; memit: locate-and-edit",
    )
    model: str = setting(DEFAULT_MODEL, MODEL_HELP)
    # Optimisation. With lr 1e-4 and 8 epochs SmolLM2-135M memorises 90% of KGFact-small (docs/training.md).
    lr: float | None = setting(
        None,
        f"learning rate (default {DEFAULT_LR_FULL:g} full, {DEFAULT_LR_LORA:g} LoRA, {DEFAULT_LR_MEMIT:g} memit)",
    )
    epochs: float = setting(8.0, "passes over the data")
    batch_size: int = setting(8, "sequences per forward pass (opsd: rollouts, i.e. prompts x rollouts)")
    grad_accum: int = setting(1, "forward passes per optimiser step")
    max_steps: int | None = setting(None, "stop after N optimiser steps (overrides --epochs)")
    weight_decay: float = setting(0.01, "AdamW weight decay (betas 0.9, 0.95, as in the paper)")
    lr_schedule: Schedule = setting(
        "constant", "learning-rate schedule after the warm-up: constant (the paper), linear or cosine decay to 0"
    )
    warmup_ratio: float = setting(0.0, "share of the steps spent warming the learning rate up from 0")
    replay: int = setting(
        0,
        "mixsd/sft: also train on N everyday prompts with the base model's own greedy answers (self-replay; from "
        "datasets no evaluation reads), an anchor for what the model already does",
    )
    replay_max_new_tokens: int = setting(96, "tokens of each self-replay answer")
    train_layers: str | None = setting(
        None,
        "decoder layers that train, e.g. '8-20' or '0,3,5' (counted from 0); embeddings, final norm and head stay "
        "frozen; with --lora, the layers that get adapters; with memit, the layers edited (default: every weight, "
        "every layer's adapters, or MEMIT's band 0.11n-0.4n of n layers)",
    )
    max_length: int = setting(1024, "max tokens of prompt + answer; longer prompts are cut from the left")
    seed: int = setting(0, "data order and initialisation")
    bf16: bool | None = setting(None, "bf16 autocast (default: where the hardware computes bf16 natively)")
    # LoRA on all linear layers; no rank trains every weight.
    lora: int | None = setting(None, "train a rank-R LoRA on all linear layers instead of all weights")
    lora_alpha: int | None = setting(None, "LoRA alpha (default 2R)")
    use_rslora: bool = setting(False, "rank-stabilised LoRA scaling", flag="rslora")
    use_dora: bool = setting(False, "weight-decomposed LoRA (DoRA)", flag="dora")
    save_adapter: bool = setting(False, "save the LoRA adapter instead of merged weights")
    # Checkpoints under OUT/checkpoints, kept after success only on request.
    save_steps: int = setting(100, "checkpoint every N steps under OUT/checkpoints (0: never)")
    resume: bool = setting(False, "continue from the last checkpoint in OUT")
    keep_checkpoints: bool = setting(False, "keep OUT/checkpoints after success")
    save_every_epoch: bool = setting(
        False, "keep the model after every epoch (weights, tokenizer) in OUT/epochs, for `mixsd eval --checkpoints OUT`"
    )
    # On-policy self-distillation (method `opsd`), see METHOD.md section 4.
    kl: Divergence = setting("forward", "opsd: divergence direction")
    top_k: int = setting(64, "opsd: tokens the divergence is taken over (the paper: the teacher's top 64)")
    rollouts: int = setting(1, "opsd: sampled completions per prompt")
    max_completion_length: int = setting(64, "opsd: max tokens per rollout (KGFact answers are ~20)")
    temperature: float = setting(1.0, "opsd: rollout sampling temperature")
    expert_template: str | None = setting(
        None, "opsd: expert prompt template (a paper-* name, or a file or text with {question} and {context})"
    )

    # MEMIT (method `memit`, train/memit.py): the authors' EasyEdit settings, but for the value steps, the update
    # weight, the preserve term and the stop, tuned on the embedded model's 50 demo facts (docs/results/memit-demo).
    memit_steps: int = setting(60, "memit: Adam steps on each fact's value (the authors': 25)")
    memit_clamp: float = setting(4.0, "memit: a value's change is at most this times the state's norm")
    memit_kl: float = setting(0.0625, "memit: weight of the KL term that keeps what the model says of the subject")
    memit_decay: float = setting(
        0.5, "memit: decay on a value's change, this times |change| / |state|^2 as the authors have it"
    )
    memit_update_weight: float | None = setting(
        None,
        "memit: weight of the keys' second moment against the edits (default: 0.039 times the MLP's width, 60 for "
        "SmolLM2-135M; the authors' 15000 for GPT-J is 0.92 times its width of 16384)",
    )
    memit_stat_tokens: int = setting(
        100_000, "memit: tokens of offline Wikipedia passages (SQuAD, DROP, CoQA) for the second moment (cached)"
    )
    memit_batch: int | None = setting(None, "memit: facts edited together (default: all at once)")
    memit_values: Literal["fact", "subject"] = setting(
        "fact",
        "memit: one value per fact (the authors'), or one per subject shared by all its facts (their keys are alike, "
        "and one linear update cannot send alike keys to different values)",
    )
    memit_token: Literal["subject", "question"] = setting(
        "subject",
        "memit: where the keys are read: the subject's last token (the authors'), or the question's last token (its "
        "first '?', else the prompt's end), where the relation has been read too, so a subject's facts get keys of "
        "their own",
    )
    memit_preserve: float = setting(
        1.0,
        "memit: weight that holds the edit prompts' and answers' other tokens' MLP outputs in place, per token, "
        "against a key's 1 (0: the authors', only the second moment does)",
    )
    memit_stop: bool = setting(
        True,
        "memit: the values' target ends with the end of turn, as SFT's does, so the edited model stops after its "
        "answer (--no-memit-stop: ends at the box, the authors')",
    )
    skip_bad: bool = setting(False, "memit: leave out records with no subject in their prompt, and count them")

    @property
    def learning_rate(self) -> float:
        if self.lr is not None:
            return self.lr
        if self.method == "memit":
            return DEFAULT_LR_MEMIT
        return DEFAULT_LR_FULL if self.lora is None else DEFAULT_LR_LORA

    @property
    def layers(self) -> list[int] | None:
        """The `train_layers` indices, sorted, or None for all."""
        if self.train_layers is None:
            return None
        found: set[int] = set()
        try:
            for part in filter(None, (p.strip() for p in self.train_layers.split(","))):
                low, _, high = part.partition("-")
                found.update(range(int(low), int(high or low) + 1))
        except ValueError:
            found = set()
        if not found or min(found) < 0:
            raise MixsdError(f"--train-layers must be like '8-20' or '0,3,5', got {self.train_layers!r}")
        return sorted(found)

    @property
    def alpha(self) -> int | None:
        """LoRA scaling numerator: 2r unless set."""
        if self.lora is None:
            return None
        return self.lora_alpha if self.lora_alpha is not None else 2 * self.lora

    def __post_init__(self) -> None:
        """Reject impossible settings before anything is loaded."""
        super().__post_init__()
        check_choices(self)
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "grad_accum": self.grad_accum,
            "max_length": self.max_length,
            "rollouts": self.rollouts,
            "top_k": self.top_k,
            "max_completion_length": self.max_completion_length,
            "temperature": self.temperature,
        }
        optional = {"lr": self.lr, "max_steps": self.max_steps, "lora": self.lora}
        positive |= {name: value for name, value in optional.items() if value is not None}
        for name, value in positive.items():
            if not value > 0:
                raise MixsdError(f"{name} must be positive, got {value}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise MixsdError(f"--warmup-ratio must be in [0, 1), got {self.warmup_ratio}")
        if (self.layers is not None or self.replay) and self.method == "opsd":
            raise MixsdError("--train-layers and --replay are for mixsd and sft")
        if self.replay < 0 or self.replay_max_new_tokens < 1:
            raise MixsdError("--replay must be >= 0 and --replay-max-new-tokens >= 1")
        if self.save_steps < 0:
            raise MixsdError(f"save_steps must be >= 0 (0: no checkpoints), got {self.save_steps}")
        if self.lora is None and (self.save_adapter or self.use_dora or self.use_rslora or self.lora_alpha):
            raise MixsdError("--save-adapter, --dora, --rslora and --lora-alpha need --lora R")
        if self.method == "memit" and (self.lora or self.replay or self.resume):
            raise MixsdError("memit edits the weights once: --lora, --replay and --resume do not apply")
        if (
            min(self.memit_steps, self.memit_stat_tokens, self.memit_batch or 1) < 1
            or (self.memit_update_weight or 0) < 0
        ):
            raise MixsdError("--memit-steps, --memit-stat-tokens, --memit-batch must be >= 1, the update weight >= 0")
        if not self.prompt_format.is_default and self.method == "opsd":
            raise MixsdError("the prompt flags are for mixsd and sft: SDFT renders the opsd prompts itself")
        if self.method == "opsd":
            if (self.batch_size * self.grad_accum) % self.rollouts:
                raise MixsdError(
                    f"batch_size x grad_accum ({self.batch_size * self.grad_accum}) must be a multiple of "
                    f"rollouts ({self.rollouts})"
                )
            if self.max_completion_length >= self.max_length:
                raise MixsdError(
                    f"max_completion_length ({self.max_completion_length}) must be below max_length ({self.max_length})"
                )
