"""Converters from benchmark files the user already has: SimpleQA and MQuAKE-CF.

Both run offline on a local copy and write our record format, every answer
turn ending in `\\boxed{}` so that targets and scores use the same gold.

- SimpleQA (CSV or JSONL with `problem`, `answer`, `metadata`): one fact per
  row, the answer turn is the boxed answer, as the paper trains on it.
- MQuAKE-CF (JSON list of cases, or JSONL): every requested edit becomes a fact
  whose expert context is the edit statement ("Ellie Kemper is a citizen of
  Croatia."); the multi-hop questions of each case become the `multi_hop`
  split, whose gold is the case's new answer, scored like KGFact's two-hop.

A bad row stops the conversion with file, line and problem; `skip_bad` leaves it
out and counts it in the result.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mixsd.data.kgfact import INSTRUCTION, answer_turn
from mixsd.data.records import Record, write_corpus, write_records
from mixsd.errors import MixsdError
from mixsd.io import check_file, file_sha256, read_jsonl


class BadRow(ValueError):
    """One row that cannot be converted (the reader adds file and line)."""


@dataclass
class Converted:
    written: dict[str, int]  # split -> records written
    skipped: list[tuple[int, str]]  # (line, reason) of rows left out with skip_bad


def convert_simpleqa(src: str | os.PathLike, out: str | os.PathLike, *, skip_bad: bool = False) -> Converted:
    """`mixsd data simpleqa`: a SimpleQA CSV or JSONL file into one facts file."""
    records: list[Record] = []
    skipped: list[tuple[int, str]] = []
    for line, row in _rows(Path(src), skip_bad, skipped):
        try:
            question, answer = _field(row, "problem"), _field(row, "answer")
            meta = {"source_line": line}
            if row.get("metadata") not in (None, ""):
                meta["metadata"] = _metadata(row["metadata"])
        except BadRow as e:
            _bad(src, line, str(e), skip_bad, skipped)
            continue
        record_id = f"simpleqa-{len(records):04d}"
        records.append(Record(record_id, f"{question} {INSTRUCTION}", f"\\boxed{{{answer}}}", answer, meta=meta))
    if not records:
        raise MixsdError("no rows to convert", path=src)
    return Converted({"train": write_records(out, records)}, skipped)


def convert_mquake(src: str | os.PathLike, out_dir: str | os.PathLike, *, skip_bad: bool = False) -> Converted:
    """`mixsd data mquake`: MQuAKE-CF cases into `train.jsonl` (the edits) and `multi_hop.jsonl`."""
    train: dict[tuple[str, str, str], Record] = {}  # one fact per distinct edit, first occurrence kept
    multi_hop: list[Record] = []
    skipped: list[tuple[int, str]] = []
    duplicates = 0
    for line, case in _rows(Path(src), skip_bad, skipped):
        try:
            case_id = case.get("case_id", line)
            edits = [_edit(rewrite, case_id, j) for j, rewrite in enumerate(_list(case, "requested_rewrite"))]
            new_answer = _field(case, "new_answer")
            questions = [_text(q, "questions") for q in _list(case, "questions")]
        except BadRow as e:
            _bad(src, line, str(e), skip_bad, skipped)
            continue
        for key, record in edits:
            duplicates += key in train
            train.setdefault(key, record)
        aliases = case.get("new_answer_alias") or []
        for k, question in enumerate(questions):
            meta = {"case_id": case_id, "new_answer_alias": aliases, "original_answer": case.get("answer")}
            prompt = f"{question} {INSTRUCTION}"
            multi_hop.append(Record(f"mquake-{case_id}-hop{k}", prompt, answer_turn(new_answer), new_answer, meta=meta))
    if not train:
        raise MixsdError("no cases to convert", path=src)
    manifest = write_corpus(
        out_dir,
        {"train": list(train.values()), "multi_hop": multi_hop},
        {
            "corpus": "mquake",
            "source": str(src),
            "source_sha256": file_sha256(src),
            "duplicate_edits": duplicates,
            "skipped": len(skipped),
        },
    )
    return Converted({name.removesuffix(".jsonl"): f["records"] for name, f in manifest["files"].items()}, skipped)


def _edit(rewrite: Any, case_id: Any, j: int) -> tuple[tuple[str, str, str], Record]:
    """One requested edit as a fact: the edit's question, the new target boxed, the edit statement as context."""
    if not isinstance(rewrite, dict):
        raise BadRow(f"requested_rewrite[{j}] must be an object")
    cloze, subject, question = (_field(rewrite, k) for k in ("prompt", "subject", "question"))
    target = rewrite.get("target_new")
    target = _field(target, "str") if isinstance(target, dict) else None
    if target is None:
        raise BadRow(f"requested_rewrite[{j}]: 'target_new' must be an object with a 'str'")
    if "{}" not in cloze:
        raise BadRow(f"requested_rewrite[{j}]: 'prompt' must contain {{}} for the subject")
    statement = f"{cloze.replace('{}', subject).rstrip()} {target}."
    record = Record(
        f"mquake-{case_id}-edit{j}",
        f"{question} {INSTRUCTION}",
        answer_turn(target),
        target,
        context=statement,
        meta={
            "case_id": case_id,
            "subject": subject,
            "relation_id": rewrite.get("relation_id"),
            "target_true": (rewrite.get("target_true") or {}).get("str"),
        },
    )
    return (subject, str(rewrite.get("relation_id", cloze)), target), record


def _rows(path: Path, skip_bad: bool, skipped: list) -> Iterator[tuple[int, dict]]:
    """(line, object) per row of a CSV file, a JSON list, or a JSONL file."""
    check_file(path, "CSV, JSON or JSONL")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise MixsdError(f"not UTF-8 (byte {e.start})", path=path) from None
    if path.suffix.lower() == ".csv":
        yield from _csv_rows(path, text)
    elif text.lstrip().startswith("["):
        yield from _json_list(path, text, skip_bad, skipped)
    else:
        yield from read_jsonl(path, skip_bad=skip_bad, skipped=skipped)


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict]]:
    reader = csv.DictReader(text.splitlines(keepends=True))
    if not reader.fieldnames:
        raise MixsdError("empty CSV file", path=path)
    line = 1
    try:
        for row in reader:
            yield line + 1, row  # a row starts on the line after the previous one ended
            line = reader.line_num
    except csv.Error as e:
        raise MixsdError(f"malformed CSV: {e}", path=path, line=reader.line_num) from None


def _json_list(path: Path, text: str, skip_bad: bool, skipped: list) -> Iterator[tuple[int, dict]]:
    """Elements of a top-level JSON array, each with the line it starts on."""
    decoder, i = json.JSONDecoder(), text.index("[") + 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            return
        line = text.count("\n", 0, i) + 1
        try:
            obj, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise MixsdError(f"malformed JSON: {e.msg}", path=path, line=e.lineno) from None
        if isinstance(obj, dict):
            yield line, obj
        else:
            _bad(path, line, f"expected a JSON object, got {type(obj).__name__}", skip_bad, skipped)


def _bad(path: Any, line: int, reason: str, skip_bad: bool, skipped: list) -> None:
    if not skip_bad:
        raise MixsdError(reason, path=path, line=line)
    skipped.append((line, reason))


def _field(row: dict, key: str) -> str:
    if row.get(key) is None:
        raise BadRow(f"missing field {key!r}")
    return _text(row[key], key)


def _text(value: Any, key: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadRow(f"{key!r} must be a string, got {type(value).__name__}")
    if not str(value).strip():
        raise BadRow(f"empty {key!r}")
    return str(value).strip()


def _list(row: dict, key: str) -> list:
    value = row.get(key)
    if not isinstance(value, list) or not value:
        raise BadRow(f"{key!r} must be a non-empty list")
    return value


def _metadata(value: Any) -> Any:
    """SimpleQA's CSV writes metadata as a Python dict literal; parse it where it is one, else keep it."""
    if isinstance(value, str):
        with contextlib.suppress(ValueError, SyntaxError):
            return ast.literal_eval(value)
    return value
