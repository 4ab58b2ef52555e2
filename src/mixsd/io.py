"""Small file helpers shared by every stage: atomic writes, output locks and strict JSONL reading.

Finished work is never lost and never half-written: every output goes to a
temporary file in the same directory, is fsynced and renamed into place. Two
commands never write the same output at once: each takes an exclusive lock on it
first (`exclusive`), and the second one stops with the holder's name.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from mixsd.errors import MixsdError
from mixsd.ranks import Ranks


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of `path`; rename it onto `path` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    like_any_file(tmp)  # mkstemp makes it private
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_partial_writes(directory: Path) -> None:
    """Delete what killed writes left in `directory` and below: `atomic_open`'s `.NAME.*.tmp` files and
    `models.save_into`'s `.save-*` folders. Only for a directory this process owns (under `exclusive`) and is about
    to write again."""
    for path in list(directory.rglob(".save-*")):
        shutil.rmtree(path, ignore_errors=True)
    for path in directory.rglob(".*.tmp"):
        path.unlink(missing_ok=True)


@contextmanager
def exclusive(output: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of `output` (a file or a directory) or stop with a `MixsdError` naming the holder.

    The lock is an `flock` on a hidden sibling, `.NAME.lock`, so the kernel releases it whenever the holder dies,
    even by SIGKILL: a stale lock file never blocks a rerun. The file names its holder (pid, host, command, start)
    for the error message, and is removed on release. Under `accelerate launch` only rank 0 takes it: the other
    ranks are the same job.
    """
    output = Path(output).absolute()
    lock = output.with_name(f".{output.name}.lock")
    if not Ranks.from_env().main:  # under a multi-process launch, rank 0 holds it for the whole job
        yield
        return
    while True:
        try:
            lock.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise MixsdError(f"cannot write the output directory: {e.strerror or e}", path=lock.parent) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise MixsdError(
                f"in use by {holder}; wait for it to finish, or choose another output", path=output
            ) from None
        try:  # the holder we waited on may have removed the file after we opened it: lock the current one
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    command = " ".join(["mixsd", *sys.argv[1:]]) if Path(sys.argv[0]).name == "mixsd" else " ".join(sys.argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} (`{command}`, since {started})\n".encode(), 0)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)  # releases the flock


def like_any_file(path: str | os.PathLike) -> None:
    """Give a file the mode of any file this user creates (0o666 less the umask): temporary-file writers make
    theirs private, and the result would stay unreadable to the rest of a team."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
        f.write("\n")


def file_sha256(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file's bytes: the one identity of an input file in keys, caches and reports."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_file(path: Path, kind: str) -> None:
    """A `MixsdError` unless `path` is an existing file (a directory is named as one)."""
    if path.is_dir():
        raise MixsdError(f"is a directory; give a {kind} file", path=path)
    if not path.is_file():
        raise MixsdError("no such file", path=path)


class _NotAnObject(ValueError):
    """Text that is not one JSON object: `reason` reads as a one-line error, `line` counts within the text."""

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.line = line


def _json_object(text: str) -> dict:
    """The JSON object in `text`, else `_NotAnObject`."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise _NotAnObject(f"malformed JSON: {e.msg} (column {e.colno})", e.lineno) from None
    except RecursionError:
        raise _NotAnObject("malformed JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise _NotAnObject(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _text(raw: bytes, bom: bool) -> str:
    """UTF-8 bytes as text (with `bom`, a leading byte-order mark is skipped), else `_NotAnObject`."""
    try:
        return raw.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as e:
        raise _NotAnObject(f"not UTF-8 (byte {e.start})") from None


def read_json(path: str | os.PathLike) -> dict:
    """A JSON object from a file we wrote (eval.json, stages.json, ...), or a `MixsdError` naming file and line."""
    path = Path(path)
    check_file(path, "JSON")
    try:
        return _json_object(_text(path.read_bytes(), bom=True))
    except _NotAnObject as e:
        raise MixsdError(str(e), path=path, line=e.line) from None


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
    """Yield (line number, object) for each non-blank line (LF or CRLF; a leading UTF-8 BOM is skipped).

    A line that is not UTF-8 or not a JSON object raises a `MixsdError` naming
    file and line, unless `skip_bad`, in which case it is appended to `skipped`
    as (line, reason) and reading goes on.
    """
    path = Path(path)
    check_file(path, "JSONL")
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = _text(raw, bom=lineno == 1)  # a byte-order mark is not data
                if not text.strip():
                    continue
                obj = _json_object(text)
            except _NotAnObject as e:
                if not skip_bad:
                    raise MixsdError(str(e), path=path, line=lineno) from None
                if skipped is not None:
                    skipped.append((lineno, str(e)))
                continue
            yield lineno, obj
