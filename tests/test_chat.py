"""Chat rendering: the system turn is the template's default unless asked away."""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast

from mixsd.chat import adds_default_system, prompt_ids

# A Qwen3-like template: ChatML with no system turn unless the conversation has one.
NO_DEFAULT = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_smollm2_template_loses_its_default_system_text(tokenizer):
    assert adds_default_system(tokenizer)
    default = tokenizer.decode(prompt_ids(tokenizer, "hi"))
    bare = tokenizer.decode(prompt_ids(tokenizer, "hi", system_prompt=False))
    assert "You are a helpful AI assistant" in default
    assert bare == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_a_template_without_a_default_system_turn_is_left_alone(tokenizer):
    qwen_like = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer, chat_template=NO_DEFAULT)
    assert not adds_default_system(qwen_like)
    ids = prompt_ids(qwen_like, "hi", system_prompt=False)
    assert ids == prompt_ids(qwen_like, "hi")
    assert qwen_like.decode(ids) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
