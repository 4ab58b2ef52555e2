"""The base-result cache: hit on the same key, miss on any change of key or weights."""

from __future__ import annotations

import os

from mixsd.evaluation.cache import cached, model_fingerprint


def test_same_key_computes_once():
    calls = []

    def compute():
        calls.append(1)
        return {"acc": [1.0, 0.0], "x": 0.1 + 0.2}

    first = cached({"kind": "t", "model": "m"}, compute)
    second = cached({"kind": "t", "model": "m"}, compute)
    assert first == ({"acc": [1.0, 0.0], "x": 0.1 + 0.2}, False)
    assert second == (first[0], True)  # floats survive the JSON round trip exactly
    assert cached({"kind": "t", "model": "other"}, compute)[1] is False
    assert cached({"kind": "t", "model": "m"}, compute, reuse=False)[1] is False  # refreshes the entry
    assert cached({"kind": "t", "model": "m"}, compute)[1] is True
    assert len(calls) == 3


def test_unreadable_entry_is_recomputed(isolated_cache):
    cached({"kind": "t"}, lambda: 1)
    (entry,) = isolated_cache.glob("*.json")
    entry.write_text("{broken")
    assert cached({"kind": "t"}, lambda: 2) == (2, False)
    assert cached({"kind": "t"}, lambda: 3) == (2, True)


def test_fingerprint_follows_the_weights(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    before = model_fingerprint(str(tmp_path))
    assert model_fingerprint(str(tmp_path)) == before
    stat = (tmp_path / "model.safetensors").stat()
    (tmp_path / "model.safetensors").write_bytes(b"retrained")
    os.utime(tmp_path / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert model_fingerprint(str(tmp_path)) != before  # size changed
    assert model_fingerprint("some-org/some-model") == "some-org/some-model"
