"""Render user prompts with the model's own chat template (its default system turn included)."""

from __future__ import annotations


def prompt_ids(tokenizer, user_text: str) -> list[int]:
    """Token ids of a one-user-turn conversation, ending where the assistant starts writing."""
    out = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_text}], add_generation_prompt=True, tokenize=True
    )
    ids = out["input_ids"] if hasattr(out, "keys") else out
    return list(ids)


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
