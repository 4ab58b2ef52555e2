"""SECURITY.md's promises about models and records, checked: no pickles, no model code, no paths from records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mixsd import models
from mixsd.data.records import Record, write_records
from mixsd.errors import MixsdError


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path) -> Path:
    path = tmp_path / "model"
    shutil.copytree(tiny_model_dir, path)
    return path


def test_pickled_weights_are_refused(model_copy, tiny_model):
    (model_copy / "model.safetensors").unlink()
    torch.save(tiny_model.state_dict(), model_copy / "pytorch_model.bin")  # loading it would unpickle
    with pytest.raises(MixsdError, match="no file named model.safetensors"):
        models.load(str(model_copy))


EVIL = "open({sentinel!r}, 'w').write('ran')\nfrom transformers import LlamaConfig as C, LlamaForCausalLM as M\n"


@pytest.mark.parametrize("model_type", ["llama", "no-such-architecture"])
def test_a_models_own_code_never_runs(model_copy, tmp_path, model_type):
    sentinel = tmp_path / "ran"
    config = json.loads((model_copy / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {"AutoConfig": "evil.C", "AutoModelForCausalLM": "evil.M"}
    (model_copy / "config.json").write_text(json.dumps(config))
    (model_copy / "evil.py").write_text(EVIL.format(sentinel=str(sentinel)))
    try:
        models.load(str(model_copy))  # a known architecture loads with transformers' own class
    except MixsdError as e:
        assert "cannot load model" in str(e)  # an unknown one is refused, not run
    assert not sentinel.exists()


AUDIT = """
import sys
from pathlib import Path
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from mixsd.cli import main
for argv in {commands!r}:
    assert main(argv) == 0, argv
hits = [p for p in opened if "sentinel" in p]
print("HITS", hits)
"""


def test_paths_inside_records_are_never_opened(tiny_model_dir, tmp_path):
    """Records whose every field names a file: importing them and making targets opens none of those files
    (PEP 578 audit hook on every `open`)."""
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("secret")
    facts = tmp_path / "facts.jsonl"
    write_records(
        facts,
        [
            Record(
                "r1",
                str(sentinel),
                f"{sentinel} \\boxed{{{sentinel}}}",
                gold=str(sentinel),
                context=str(sentinel),
                meta={"path": str(sentinel), "file": f"file://{sentinel}"},
            )
        ],
    )
    commands = [
        ["data", "import", str(facts), "--out", str(tmp_path / "imported.jsonl")],
        ["targets", "--data", str(facts), "--out", str(tmp_path / "t.jsonl"), "--model", tiny_model_dir]
        + ["--max-new-tokens", "4", "--retries", "0"],
    ]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    done = subprocess.run(
        [sys.executable, "-c", AUDIT.format(commands=commands)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "HITS []" in done.stdout
