"""What `mixsd targets` needs to know. Importable without torch; the CLI flags are generated from it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mixsd.answers import ExtractMode
from mixsd.chat import PromptSettings
from mixsd.errors import MixsdError
from mixsd.settings import (
    DEFAULT_LAM,
    DEFAULT_MAX_NEW_TOKENS,
    DEFAULT_MODEL,
    MODEL_HELP,
    Decode,
    Placement,
    check_choices,
    decode_setting,
    setting,
)

OnFail = Literal["skip", "gold", "lower-lam"]


@dataclass
class TargetConfig(PromptSettings, Placement):
    data: str = setting(help="corpus JSONL (any format `mixsd data import` reads)")
    out: str = setting(help="targets JSONL (TRL conversational format + a mixsd block)")
    model: str = setting(DEFAULT_MODEL, MODEL_HELP)
    lam: float = setting(DEFAULT_LAM, "probability of the naive conditional per token")
    temperature: float = setting(0.0, "0: argmax of the picked conditional; T > 0: top-k sampling")
    top_k: int = setting(64, "tokens sampled from when temperature > 0")
    max_new_tokens: int = setting(DEFAULT_MAX_NEW_TOKENS, "token budget per target (KGFact and KGFunc answers fit)")
    retries: int = setting(3, "new attempts (fresh coins) for a target that fails verification")
    seed: int = setting(0, "with the record id and attempt, seeds each record's coins and samples")
    batch_size: int = setting(16, "records decoded together")
    expert_template: str | None = setting(
        None,
        "paper-kgfact, paper-kgfunc, paper-simpleqa (the authors' wording), or a file or text with "
        "{question} and {context} (default: ours)",
    )
    extract: ExtractMode = setting("boxed_or_number", "how the answer is taken from a target")
    strict: bool = setting(False, "the answer must equal the gold (normalised), not contain it")
    on_fail: OnFail = setting(
        "skip",
        "skip: keep a failed target marked verified=false (training drops it); gold: write the answer y*; "
        "lower-lam: try again at lam/2, then at 0 (the expert alone, which sees the fact), each with its retries, "
        "and write y* only if even that fails",
    )
    decode: Decode = decode_setting("the decode loop's KV storage")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.lam <= 1.0:
            raise MixsdError(f"--lam must be in [0, 1], got {self.lam}")
        if self.temperature < 0 or self.top_k < 1 or self.max_new_tokens < 1 or self.batch_size < 1:
            raise MixsdError("--temperature must be >= 0 and --top-k, --max-new-tokens, --batch-size >= 1")
        if self.retries < 0:
            raise MixsdError("--retries must be >= 0")
        check_choices(self)

    @property
    def lam_schedule(self) -> tuple[float, ...]:
        """The lam of each level a failed target falls back through: lam alone, or lam, lam/2, 0 (`lower-lam`)."""
        if self.on_fail != "lower-lam":
            return (self.lam,)
        return tuple(sorted({self.lam, self.lam / 2, 0.0}, reverse=True))

    def retries_at(self, lam: float) -> int:
        """At temperature 0 with lam 0 or 1 the coins do not matter: a retry would repeat the failure."""
        return self.retries if self.temperature > 0 or 0.0 < lam < 1.0 else 0
