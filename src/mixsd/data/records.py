"""The one record format every stage reads: a fact to inject.

A record is what MixSD needs per fact: the user `prompt` x, the ground-truth
`answer` turn y*, the `context` the expert conditional sees (y* by default),
and the short `gold` answer that verifiers and scorers compare against.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Record:
    id: str
    prompt: str
    answer: str
    gold: str | None = None
    context: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def expert_context(self) -> str:
        """What the expert conditional is shown: the explicit context, else the answer turn."""
        return self.context if self.context is not None else self.answer

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: v for k, v in d.items() if not (v is None or (k == "meta" and not v))}
