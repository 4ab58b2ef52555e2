"""The one record format every stage reads: a fact to inject.

A record is what MixSD needs per fact: the user `prompt` x, the ground-truth
`answer` turn y*, the `context` the expert conditional sees (y* by default),
and the short `gold` answer that verifiers and scorers compare against.

`read_records` also accepts, unchanged, the formats that users' files come in,
so a fact reads to the same record whichever of them it was written in:

- ours: `{"id", "prompt", "answer", "gold"?, "context"?, "meta"?}`;
- TRL conversational (also the published MixSD data):
  `{"messages": [user turn, assistant turn], "clear_answer"?, ...}`
  (see `_published` for what `clear_answer` becomes);
- TRL self-distillation / prompt-completion:
  `{"prompt", "privileged_context"?, "completion"?, ...}` (at least one of the two);
- plain `{"question", "answer", ...}`.

`id` and `gold` are optional, and every other field is kept in `meta` (except
one that looks like a misspelt field of ours, which is an error). A missing id
is derived from the prompt, and a missing gold is the last `\\boxed{}` of the answer, else the whole answer.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mixsd.answers import last_boxed, normalize
from mixsd.errors import MixsdError
from mixsd.io import file_sha256, read_jsonl, write_json, write_jsonl

RECORD_FIELDS = ("id", "prompt", "answer", "gold", "context", "meta")
_FORMAT_KEYS = {"messages": ("messages",), "question": ("question",), "trl": ("privileged_context", "completion")}
# what the expert sees for a published record whose clear_answer is a statement
CONTEXT_SOURCES = ("clear_answer", "answer")


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
        return {k: v for k, v in asdict(self).items() if not (v is None or (k == "meta" and not v))}


class InvalidRecord(ValueError):
    """One JSON object that is not a record in any accepted format (the reader adds file and line)."""


def derived_id(prompt: str) -> str:
    """A stable id for formats that carry none: the same prompt always gets the same id."""
    return "q" + hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def derived_gold(answer: str) -> str:
    boxed = last_boxed(answer)
    return boxed.strip() if boxed and boxed.strip() else answer.strip()


def record_from_json(obj: dict[str, Any], *, context_from: str = "clear_answer") -> Record:
    """Normalise one JSON object in any accepted format; `InvalidRecord` says what is wrong.

    `context_from` only matters for published lines whose `clear_answer` states the fact.
    """
    fmt, rest = _format_of(obj), dict(obj)
    if fmt == "record":
        _no_misspelt_fields(obj)
        prompt, answer = _text(_pop(rest, "prompt"), "prompt"), _text(_pop(rest, "answer"), "answer")
        context = rest.pop("context", None)
        context = None if context is None else _text(context, "context")
    elif fmt == "messages":
        prompt, answer = _conversation(rest.pop("messages"))
        context = _published(rest, answer, context_from) if "clear_answer" in rest else None
    elif fmt == "question":
        prompt, answer = _text(rest.pop("question"), "question"), _text(_pop(rest, "answer"), "answer")
        context = None
    else:  # TRL: a prompt with a privileged context, a completion, or both
        prompt = _single_turn(_pop(rest, "prompt"), "user", "prompt")
        privileged, completion = rest.pop("privileged_context", None), rest.pop("completion", None)
        if privileged is None and completion is None:
            raise InvalidRecord("'privileged_context' and 'completion' are both null")
        context = None if privileged is None else _privileged_text(privileged)
        answer = context if completion is None else _single_turn(completion, "assistant", "completion")
    id_, gold, meta = rest.pop("id", None), rest.pop("gold", None), rest.pop("meta", {})
    if not isinstance(meta, dict):
        raise InvalidRecord(f"'meta' must be an object, got {type(meta).__name__}")
    for name, value in (("prompt", prompt), ("answer", answer), ("context", context)):
        if value is not None and not value.strip():
            raise InvalidRecord(f"empty {name}")
    return Record(
        id=derived_id(prompt) if id_ is None else _scalar(id_, "id"),
        prompt=prompt,
        answer=answer,
        gold=derived_gold(answer) if gold is None else _scalar(gold, "gold"),
        context=None if context == answer else context,
        meta={**meta, **rest},  # fields a foreign format has beyond ours are kept, not dropped
    )


def _published(rest: dict[str, Any], answer: str, context_from: str) -> str | None:
    """Apply the published data's `clear_answer` to `rest`; returns the expert context it gives, if any.

    The gold is the last `\\boxed{}` of the assistant turn. A `clear_answer` that
    equals it (KGFunc, SimpleQA) adds nothing. One that differs is a statement
    of the fact (KGFact, MQuAKE): it is kept in `meta` and, with
    `context_from="clear_answer"`, is what the expert sees. Without a box the
    `clear_answer` is the only short answer there is, so it becomes the gold.
    """
    clear = _scalar(rest.pop("clear_answer"), "clear_answer")
    boxed = last_boxed(answer)
    if boxed is None:
        rest.setdefault("gold", clear)
        return None
    if normalize(clear) == normalize(boxed):
        return None
    rest["clear_answer"] = clear  # stays in meta
    return clear if context_from == "clear_answer" else None


def _no_misspelt_fields(obj: dict[str, Any]) -> None:
    """Fields we do not know are kept in `meta`, but one that looks like a misspelt field of ours is an error:
    a silently ignored `contxt` would show the expert the answer instead of the context."""
    known = RECORD_FIELDS + tuple(k for keys in _FORMAT_KEYS.values() for k in keys)
    for key in obj:
        if key not in known and (near := difflib.get_close_matches(key, known, n=1, cutoff=0.8)):
            raise InvalidRecord(f"unknown field {key!r}: did you mean {near[0]!r}? (other fields go in 'meta')")


def _format_of(obj: dict[str, Any]) -> str:
    """Which accepted format an object is in, told by the keys that only that format has."""
    found = [fmt for fmt, keys in _FORMAT_KEYS.items() if any(k in obj for k in keys)]
    if len(found) > 1:
        raise InvalidRecord(f"ambiguous record: it has fields of both the {found[0]!r} and the {found[1]!r} formats")
    return found[0] if found else "record"


def _pop(obj: dict[str, Any], key: str) -> Any:
    if key not in obj:
        raise InvalidRecord(f"missing field {key!r}")
    return obj.pop(key)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidRecord(f"{name!r} must be a string, got {type(value).__name__}")
    return value


def _scalar(value: Any, name: str) -> str:
    """An id or gold answer: a non-empty string, or a number written as one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidRecord(f"{name!r} must be a string or a number, got {type(value).__name__}")
    text = str(value)
    if not text.strip():
        raise InvalidRecord(f"empty {name}")
    return text


def _content(message: Any, where: str) -> tuple[str, str]:
    """(role, text) of one chat message; content is a string or a list of text parts, as in TRL."""
    if not isinstance(message, dict) or "role" not in message or "content" not in message:
        raise InvalidRecord(f"{where}: each message must be an object with 'role' and 'content'")
    content = message["content"]
    if isinstance(content, list):
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
            raise InvalidRecord(f"{where}: only text content parts are supported")
        content = " ".join(p["text"] for p in content)
    return str(message["role"]), _text(content, f"{where} content")


def _conversation(messages: Any) -> tuple[str, str]:
    if not isinstance(messages, list):
        raise InvalidRecord(f"'messages' must be a list, got {type(messages).__name__}")
    turns = [_content(m, "messages") for m in messages]
    roles = [role for role, _ in turns]
    if roles != ["user", "assistant"]:
        raise InvalidRecord(f"'messages' must be one user turn then one assistant turn, got roles {roles}")
    return turns[0][1], turns[1][1]


def _single_turn(value: Any, role: str, name: str) -> str:
    """A TRL prompt or completion: a string, or a one-message conversation in that role."""
    if isinstance(value, list):
        turns = [_content(m, name) for m in value]
        if [r for r, _ in turns] != [role]:
            raise InvalidRecord(f"{name!r} as a conversation must be exactly one {role} turn")
        return turns[0][1]
    return _text(value, name)


def _privileged_text(value: Any) -> str:
    """TRL's privileged context: a string, or messages whose contents are joined by newlines."""
    if isinstance(value, list):
        return "\n".join(text for _, text in (_content(m, "privileged_context") for m in value))
    return _text(value, "privileged_context")


def read_records(
    path: str | os.PathLike,
    *,
    skip_bad: bool = False,
    skipped: list[tuple[int, str]] | None = None,
    context_from: str = "clear_answer",
) -> list[Record]:
    """Read and normalise a JSONL file of facts in any accepted format.

    A bad line (not UTF-8, not JSON, not a record, a duplicate id) raises a
    `MixsdError` naming file and line; with `skip_bad` it is left out and
    appended to `skipped` as (line, reason) instead.
    """
    records: list[Record] = []
    first_line: dict[str, int] = {}
    for lineno, obj in read_jsonl(path, skip_bad=skip_bad, skipped=skipped):
        try:
            record = record_from_json(obj, context_from=context_from)
            if record.id in first_line:
                raise InvalidRecord(f"duplicate id {record.id!r} (first on line {first_line[record.id]})")
        except InvalidRecord as e:
            if not skip_bad:
                raise MixsdError(str(e), path=path, line=lineno) from None
            if skipped is not None:
                skipped.append((lineno, str(e)))
            continue
        first_line[record.id] = lineno
        records.append(record)
    return records


def write_records(path: str | os.PathLike, records: list[Record]) -> int:
    """Write records in our format, atomically; returns how many were written."""
    return write_jsonl(path, (r.to_json() for r in records))


def write_corpus(out_dir: str | os.PathLike, splits: dict[str, list[Record]], manifest: dict[str, Any]) -> dict:
    """Write each split as `<name>.jsonl` and `manifest.json` with their record counts and SHA-256; returns it."""
    out, files = Path(out_dir), {}
    for name, records in splits.items():
        path = out / f"{name}.jsonl"
        write_records(path, records)
        files[path.name] = {"records": len(records), "sha256": file_sha256(path)}
    manifest = manifest | {"files": files}
    write_json(out / "manifest.json", manifest)
    return manifest


@dataclass(frozen=True)
class ImportResult:
    written: int
    skipped: list[tuple[int, str]]


def import_records(
    src: str | os.PathLike, out: str | os.PathLike, *, skip_bad: bool = False, context_from: str = "clear_answer"
) -> ImportResult:
    """`mixsd data import`: normalise a user's file of facts into our record format."""
    if context_from not in CONTEXT_SOURCES:
        raise MixsdError(f"--context must be one of {', '.join(CONTEXT_SOURCES)}, got {context_from!r}")
    skipped: list[tuple[int, str]] = []
    records = read_records(src, skip_bad=skip_bad, skipped=skipped, context_from=context_from)
    if not records:
        raise MixsdError("no records to import", path=src)
    return ImportResult(written=write_records(out, records), skipped=skipped)
