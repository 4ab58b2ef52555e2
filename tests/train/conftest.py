"""Small corpus and MixSD targets files for the training tests."""

from __future__ import annotations

import pytest
from train_testdata import make_records, target_row

from mixsd.io import write_jsonl


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.jsonl"
    write_jsonl(path, (r.to_json() for r in make_records(4)))
    return path


@pytest.fixture
def targets_file(tmp_path, tokenizer):
    path = tmp_path / "targets.jsonl"
    write_jsonl(path, (target_row(r, tokenizer) for r in make_records(4)))
    return path
