"""One line of a targets file: TRL's conversational format plus a `mixsd` block with the exact sampled ids.

The target writer, training, the target NLL and the tests all go through `TargetRow`, so the format is
defined here once; `to_json` fixes the key order, so the same row always gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mixsd.data.records import InvalidRecord, Record, derived_id, record_from_json
from mixsd.errors import MixsdError
from mixsd.io import read_jsonl


class InvalidTarget(ValueError):
    """One JSON object that is not a target row (the reader adds file and line)."""


@dataclass(frozen=True)
class TargetRow:
    id: str
    prompt: str  # the naive user turn
    text: str  # the assistant turn, decoded from `token_ids` (end-of-turn excluded)
    token_ids: list[int]  # what training learns, exactly as sampled (with the end-of-turn id if the model stopped)
    lam: float | None = None
    seed: int | None = None
    attempts: int = 1
    verified: bool = False  # training drops unverified rows
    source: str = "mixsd"  # "gold": the target never verified and is the ground-truth answer instead
    naive_fraction: float = 0.0  # share of the tokens that came from the naive conditional
    finish_reason: str = "stop"  # stop | length | gold
    gold: str | None = None
    extracted: str | None = None  # the answer the verifier read from `text`
    prompt_format: dict[str, Any] | None = None  # how the prompt was rendered (chat.PromptFormat), if not the default

    def to_json(self) -> dict[str, Any]:
        meta = ("lam", "seed", "attempts", "verified", "source", "naive_fraction", "token_ids", "finish_reason")
        return {
            "id": self.id,
            "messages": [{"role": "user", "content": self.prompt}, {"role": "assistant", "content": self.text}],
            "mixsd": {k: getattr(self, k) for k in (*meta, "gold", "extracted")}
            | ({"prompt_format": self.prompt_format} if self.prompt_format is not None else {}),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TargetRow:
        meta = obj.get("mixsd")
        messages = obj.get("messages")
        if not isinstance(meta, dict) or not isinstance(messages, list) or not messages:
            raise InvalidTarget("not a MixSD target: expected messages and a mixsd block with token_ids")
        user, assistant = messages[0], messages[1] if len(messages) > 1 else None
        if not (isinstance(user, dict) and user.get("role") == "user" and isinstance(user.get("content"), str)):
            raise InvalidTarget("messages[0] must be the user turn with text content")
        ids = meta.get("token_ids")
        if not (isinstance(ids, list) and ids and all(type(i) is int and i >= 0 for i in ids)):
            raise InvalidTarget("mixsd.token_ids must be a non-empty list of token ids")
        known = {f.name for f in fields(cls)} - {"id", "prompt", "text", "token_ids"}
        text = assistant.get("content") if isinstance(assistant, dict) else None
        return cls(
            id=str(obj["id"]) if "id" in obj else derived_id(user["content"]),
            prompt=user["content"],
            text=text if isinstance(text, str) else "",
            token_ids=ids,
            **{k: v for k, v in meta.items() if k in known},
        )


def read_trained(path: str | Path) -> list[tuple[int, TargetRow | Record]]:
    """(line, row) for each line of a file a model is trained on: a targets row (it has a `mixsd` block) or a
    corpus record in any format `mixsd data import` reads. The one reader of both kinds, for training, the
    target NLL and the leakage probe; it needs no model, so a bad line (or a repeated id) fails before one loads."""
    rows: list[tuple[int, TargetRow | Record]] = []
    first_line: dict[str, int] = {}
    for lineno, obj in read_jsonl(path):
        try:
            row = TargetRow.from_json(obj) if "mixsd" in obj else record_from_json(obj)
        except InvalidTarget as e:
            raise MixsdError(str(e), path=path, line=lineno) from None
        except InvalidRecord as e:
            raise MixsdError(f"not a MixSD target (no mixsd block) nor a record: {e}", path=path, line=lineno) from None
        if row.id in first_line:
            raise MixsdError(f"duplicate id {row.id!r} (first on line {first_line[row.id]})", path=path, line=lineno)
        first_line[row.id] = lineno
        rows.append((lineno, row))
    if not rows:
        raise MixsdError("no records", path=path)
    return rows
