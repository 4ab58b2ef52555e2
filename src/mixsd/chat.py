"""Render user prompts with the model's own chat template (its default system turn included unless asked)."""

from __future__ import annotations

_SENTINEL = "\x00mixsd-system\x00"


def prompt_ids(tokenizer, user_text: str, *, system_prompt: bool = True) -> list[int]:
    """Token ids of a one-user-turn conversation, ending where the assistant starts writing.

    `system_prompt=False` asks for no system turn, as in the paper's prompts. A
    template that adds none by itself (Qwen3's) is left as it is; one that
    inserts a default system text when none is given (SmolLM2's) gets an empty
    system message instead, which drops the text but keeps the turn's markers.
    """
    messages = [{"role": "user", "content": user_text}]
    if not system_prompt and adds_default_system(tokenizer):
        messages.insert(0, {"role": "system", "content": ""})
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
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
