"""Small file helpers shared by every stage: atomic writes and strict JSONL reading.

Finished work is never lost and never half-written: every output goes to a
temporary file in the same directory and is renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mixsd.errors import MixsdError


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the result should read like any file we write
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
        f.write("\n")


def dumps_line(obj: Any) -> str:
    """One canonical JSONL line (stable bytes for the same object)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any]) -> int:
    n = 0
    with atomic_open(path) as f:
        for row in rows:
            f.write(dumps_line(row))
            n += 1
    return n


def read_jsonl(
    path: str | os.PathLike, *, skip_bad: bool = False, skipped: list | None = None
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line.

    A line that is not UTF-8 or not a JSON object raises a `MixsdError` naming
    file and line, unless `skip_bad`, in which case it is appended to `skipped`
    as (line, reason) and reading goes on.
    """
    path = Path(path)
    if not path.is_file():
        raise MixsdError("no such file", path=path)
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                _bad(path, lineno, f"not UTF-8 (byte {e.start})", skip_bad, skipped)
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                _bad(path, lineno, f"malformed JSON: {e.msg} (column {e.colno})", skip_bad, skipped)
                continue
            except RecursionError:
                _bad(path, lineno, "malformed JSON: nested too deeply", skip_bad, skipped)
                continue
            if not isinstance(obj, dict):
                _bad(path, lineno, f"expected a JSON object, got {type(obj).__name__}", skip_bad, skipped)
                continue
            yield lineno, obj


def _bad(path: Path, lineno: int, reason: str, skip_bad: bool, skipped: list | None) -> None:
    if not skip_bad:
        raise MixsdError(reason, path=path, line=lineno)
    if skipped is not None:
        skipped.append((lineno, reason))
