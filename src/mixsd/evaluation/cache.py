"""Cache of the base model's results, so that a sweep scores the base once.

Each entry is a JSON file under <mixsd cache>/eval/, named by a hash of everything its value depends on: the model's
weights (by file name, size and modification time), what was scored and how, and the scorer's code version.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mixsd import __version__, models
from mixsd.io import write_json

# Bump when a scorer changes what it returns for the same inputs.
CODE_VERSION = 1


def model_fingerprint(name: str) -> str:
    """Identifies a model's weights: its resolved path plus a hash of its files' names, sizes and mtimes.

    A hub id that is not a local path is identified by the id itself.
    """
    path = Path(models.resolve(name))
    if not path.exists():
        return name
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    digest = hashlib.sha256()
    for f in files:
        stat = f.stat()
        digest.update(f"{f.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return f"{path.resolve()}#{digest.hexdigest()[:16]}"


def cache_root() -> Path:
    return models.cache_dir() / "eval"


def _entry(key: dict[str, Any]) -> tuple[Path, str]:
    key = {**key, "code_version": CODE_VERSION, "mixsd": __version__}
    blob = json.dumps(key, sort_keys=True)
    return cache_root() / f"{hashlib.sha256(blob.encode()).hexdigest()[:24]}.json", blob


def lookup(key: dict[str, Any]) -> Any | None:
    """The stored value for `key`, or None (absent, unreadable or mismatching: recomputed and overwritten)."""
    path, blob = _entry(key)
    if path.is_file():
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if json.dumps(entry["key"], sort_keys=True) == blob:
                return entry["value"]
        except (OSError, ValueError, KeyError):
            pass
    return None


def store(key: dict[str, Any], value: Any) -> None:
    path, blob = _entry(key)
    write_json(path, {"key": json.loads(blob), "value": value})


def cached(key: dict[str, Any], compute: Callable[[], Any], *, reuse: bool = True) -> tuple[Any, bool]:
    """(value, was_cached): the stored value for `key`, else `compute()`, stored under it.

    `reuse=False` recomputes and refreshes the entry.
    """
    value = lookup(key) if reuse else None
    if value is not None:
        return value, True
    value = compute()
    store(key, value)
    return value, False
