"""Render user prompts with the model's own chat template, in one prompt format for every stage.

A `PromptFormat` says how a one-user-turn conversation is rendered: the system turn (the template's own default,
none, or a text of the user's) and the chat template's own switches (Qwen3's `enable_thinking=False`). It is set
once, where the prompts are first rendered (`mixsd targets`, or `train` on a corpus), and travels with the data:
targets rows and the trained model's directory record it, and later stages read it from there. Within a process
the format lives on the tokenizer (`use_format`), so that every renderer, the fact answers, the probes, the target
NLL and lm-eval's chat turns alike, renders the same string for the same prompt.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mixsd.errors import MixsdError
from mixsd.settings import setting

_SENTINEL = "\x00mixsd-system\x00"
_ATTRIBUTE = "mixsd_prompt_format"
FORMAT_FILE = "prompt_format.json"  # in a trained model's directory


@dataclass(frozen=True)
class PromptFormat:
    """`system`: None keeps the template's default system turn, "" asks for none (a template that always writes
    one gets it empty), any other text is the system turn. `template_kwargs` go to `apply_chat_template`."""

    system: str | None = None
    template_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, no_system_prompt: bool, system_prompt: str | None, chat_kwargs: str | None) -> PromptFormat:
        """The format a stage's flags ask for (`--no-system-prompt`, `--system-prompt`, `--chat-kwargs`)."""
        if no_system_prompt and system_prompt is not None:
            raise MixsdError("give --no-system-prompt or --system-prompt TEXT, not both")
        try:
            kwargs = json.loads(chat_kwargs) if chat_kwargs else {}
        except json.JSONDecodeError:
            kwargs = None
        if not isinstance(kwargs, dict):
            raise MixsdError(
                f"--chat-kwargs must be a JSON object, e.g. '{{\"enable_thinking\": false}}', got {chat_kwargs!r}"
            )
        return cls("" if no_system_prompt else system_prompt, kwargs)

    @classmethod
    def from_json(cls, obj: Any, source: object = None) -> PromptFormat:
        if not isinstance(obj, dict) or not isinstance(obj.get("template_kwargs", {}), dict):
            raise MixsdError(f"a prompt format must be {{system, template_kwargs}}, got {obj!r}", path=source)
        return cls(obj.get("system"), dict(obj.get("template_kwargs", {})))

    @property
    def is_default(self) -> bool:
        return self.system is None and not self.template_kwargs

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def key(self) -> dict[str, Any]:
        """What a cache key or fingerprint adds: nothing for the default, so earlier entries stay valid."""
        return {} if self.is_default else {"prompt_format": self.to_json()}

    def describe(self) -> str:
        system = {None: "the template's system turn", "": "no system turn"}.get(self.system, f"system {self.system!r}")
        return system + "".join(f", {k}={v!r}" for k, v in self.template_kwargs.items())

    def messages(self, tokenizer, chat: list[dict[str, str]]) -> list[dict[str, str]]:
        if self.system is None or any(m["role"] == "system" for m in chat):
            return chat
        if self.system == "" and not adds_default_system(tokenizer):
            return chat  # the template writes none by itself (Qwen3's): nothing to remove
        return [{"role": "system", "content": self.system}, *chat]

    def render(self, tokenizer, chat: list[dict[str, str]], *, add_generation_prompt: bool = True) -> str:
        """The conversation as text, ending where the assistant starts writing."""
        return tokenizer.apply_chat_template(
            self.messages(tokenizer, chat),
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
            **self.template_kwargs,
        )


DEFAULT_FORMAT = PromptFormat()


@dataclass(kw_only=True)
class PromptSettings:
    """The prompt-format flags, one definition for every stage that renders prompts (targets, train, eval). Set
    them once: a targets file and a trained model record the format they were made in, the stages after read it
    from there, and a flag that disagrees is an error (`settle`)."""

    no_system_prompt: bool = setting(
        False, "no system turn in the prompts, as in the paper (a template that always writes one keeps it empty)"
    )
    system_prompt: str | None = setting(None, "this text as the system turn (default: the chat template's own)")
    chat_kwargs: str | None = setting(
        None, "a JSON object for the chat template, e.g. '{\"enable_thinking\": false}' for Qwen3 (thinking off)"
    )

    def __post_init__(self) -> None:
        """A bad combination fails here, before any model is loaded."""
        _ = self.prompt_format

    @property
    def prompt_format(self) -> PromptFormat:
        return PromptFormat.from_settings(self.no_system_prompt, self.system_prompt, self.chat_kwargs)


def use_format(tokenizer, fmt: PromptFormat) -> None:
    """Every prompt this tokenizer renders from now on is in `fmt`."""
    setattr(tokenizer, _ATTRIBUTE, fmt)


def format_of(tokenizer) -> PromptFormat:
    return getattr(tokenizer, _ATTRIBUTE, DEFAULT_FORMAT)


@contextmanager
def rendering(tokenizer, fmt: PromptFormat) -> Iterator[None]:
    """`fmt` for the prompts rendered inside the block (a targets file's own format, for its NLL)."""
    before = format_of(tokenizer)
    use_format(tokenizer, fmt)
    try:
        yield
    finally:
        use_format(tokenizer, before)


def prompt_ids(tokenizer, user_text: str) -> list[int]:
    """Token ids of a one-user-turn conversation in the tokenizer's prompt format, ending where the assistant
    starts writing."""
    fmt = format_of(tokenizer)
    messages = fmt.messages(tokenizer, [{"role": "user", "content": user_text}])
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, **fmt.template_kwargs)
    ids = out["input_ids"] if hasattr(out, "keys") else out
    return list(ids)


def adds_default_system(tokenizer) -> bool:
    """Whether the chat template writes a system text of its own into a user-only conversation.

    It does when the user-only rendering is the rendering with an explicit
    system message, with some other text where that message's content was.
    """
    user = [{"role": "user", "content": "x"}]
    plain = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
    marked = tokenizer.apply_chat_template(
        [{"role": "system", "content": _SENTINEL}, *user], add_generation_prompt=True, tokenize=False
    )
    head, _, tail = marked.partition(_SENTINEL)
    return len(plain) > len(head) + len(tail) and plain.startswith(head) and plain.endswith(tail)


def saved_format(model_dir: str | Path) -> PromptFormat | None:
    """The prompt format a model was trained in (its directory's prompt_format.json), None when it records none."""
    path = Path(model_dir) / FORMAT_FILE
    if not path.is_file():
        return None
    return PromptFormat.from_json(json.loads(path.read_text(encoding="utf-8")), path)


def save_format(model_dir: str | Path, fmt: PromptFormat) -> None:
    from mixsd.io import write_json

    write_json(Path(model_dir) / FORMAT_FILE, fmt.to_json())


def settle(recorded: PromptFormat | None, asked: PromptFormat, where: str) -> PromptFormat:
    """The format a stage uses: the one its input recorded (`where`), else the one its flags ask for. Flags that
    ask for another than the recorded one are an error: the model would be scored in a format it never saw."""
    if recorded is None:
        return asked
    if not asked.is_default and asked != recorded:
        raise MixsdError(
            f"{where} was made with {recorded.describe()}, but the flags ask for {asked.describe()}; "
            "drop the prompt flags (the recorded format is used)"
        )
    return recorded


def stop_ids(tokenizer, model=None) -> set[int]:
    """Token ids that end an assistant turn: the tokenizer's eos plus the generation config's."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
    if isinstance(eos, int):
        ids.add(eos)
    elif eos:
        ids.update(eos)
    return ids
