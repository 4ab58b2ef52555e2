import hashlib
import os

import pytest

from mixsd import io
from mixsd.io import atomic_open, read_jsonl, write_jsonl


def test_atomic_write_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        write_jsonl(tmp_path / "a.jsonl", [{"x": 1}])
    finally:
        os.umask(umask)
    assert (tmp_path / "a.jsonl").stat().st_mode & 0o777 == 0o644
    assert [row for _, row in read_jsonl(tmp_path / "a.jsonl")] == [{"x": 1}]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("new")
        raise RuntimeError
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_sha256_is_of_the_file_bytes(tmp_path):
    content = bytes(range(256)) * 12_000  # several read chunks
    (tmp_path / "f").write_bytes(content)
    assert io.file_sha256(tmp_path / "f") == hashlib.sha256(content).hexdigest()
