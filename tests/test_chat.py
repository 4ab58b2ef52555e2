"""Chat rendering: one prompt format (system turn, template switches) for every stage that renders a prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from mixsd.chat import PromptFormat, adds_default_system, format_of, prompt_ids, rendering, settle
from mixsd.cli import main
from mixsd.data.records import Record, write_records
from mixsd.errors import MixsdError

QWEN3_STYLE = (Path(__file__).parent / "fixtures" / "qwen3_style.jinja").read_text()
NO_SYSTEM = PromptFormat(system="")
THINKING_OFF = PromptFormat(template_kwargs={"enable_thinking": False})


def qwen3_style(tokenizer):
    """The SmolLM2 tokenizer (same vocabulary and special tokens) with the Qwen3-style chat template."""
    special = {"eos_token": tokenizer.eos_token, "pad_token": tokenizer.pad_token, "bos_token": tokenizer.bos_token}
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer, chat_template=QWEN3_STYLE, **special)


def test_smollm2_template_loses_its_default_system_text(tokenizer):
    assert adds_default_system(tokenizer)
    assert "You are a helpful AI assistant" in tokenizer.decode(prompt_ids(tokenizer, "hi"))
    with rendering(tokenizer, NO_SYSTEM):
        bare = tokenizer.decode(prompt_ids(tokenizer, "hi"))
    assert bare == "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    with rendering(tokenizer, PromptFormat(system="Be brief.")):
        assert tokenizer.decode(prompt_ids(tokenizer, "hi")).startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert format_of(tokenizer).is_default  # the block's format is gone after it


def test_a_qwen3_style_template_with_thinking_off_renders_the_empty_think_block(tokenizer):
    qwen = qwen3_style(tokenizer)
    assert not adds_default_system(qwen)
    plain = qwen.decode(prompt_ids(qwen, "hi"))
    assert plain == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    with rendering(qwen, NO_SYSTEM):  # no default system turn to remove: left alone
        assert qwen.decode(prompt_ids(qwen, "hi")) == plain
    with rendering(qwen, THINKING_OFF):
        assert qwen.decode(prompt_ids(qwen, "hi")) == plain + "<think>\n\n</think>\n\n"
        assert THINKING_OFF.render(qwen, [{"role": "user", "content": "hi"}]) == plain + "<think>\n\n</think>\n\n"


def test_formats_from_flags_and_their_conflicts():
    assert PromptFormat.from_settings(False, None, None).is_default
    assert PromptFormat.from_settings(True, None, None) == NO_SYSTEM
    assert PromptFormat.from_settings(False, None, '{"enable_thinking": false}') == THINKING_OFF
    assert PromptFormat.from_json(THINKING_OFF.to_json()) == THINKING_OFF and THINKING_OFF.key()
    assert PromptFormat().key() == {}  # the default adds nothing to a cache key
    for bad in ("[1]", "{nope"):
        with pytest.raises(MixsdError, match="--chat-kwargs must be a JSON object"):
            PromptFormat.from_settings(False, None, bad)
    with pytest.raises(MixsdError, match="not both"):
        PromptFormat.from_settings(True, "text", None)
    assert settle(None, NO_SYSTEM, "x") == NO_SYSTEM  # nothing recorded: the flags decide
    assert settle(NO_SYSTEM, PromptFormat(), "x") == NO_SYSTEM  # no flag: the recorded one
    assert settle(NO_SYSTEM, NO_SYSTEM, "x") == NO_SYSTEM
    with pytest.raises(MixsdError, match="was made with no system turn, but the flags ask for"):
        settle(NO_SYSTEM, THINKING_OFF, "the targets file t.jsonl")


@pytest.fixture
def rendered(monkeypatch):
    """Every chat prompt rendered in this test, as (user turn, text), whichever stage renders it."""
    seen: list[tuple[str, str]] = []
    original = PreTrainedTokenizerBase.apply_chat_template

    def spy(self, conversation, *args, **kwargs):
        text = original(self, conversation, *args, **{**kwargs, "tokenize": False})
        seen.append((conversation[-1]["content"], text))
        return original(self, conversation, *args, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "apply_chat_template", spy)
    return seen


@pytest.mark.parametrize(
    ("template", "flags", "expected"),
    [
        (None, ["--no-system-prompt"], "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n"),
        (QWEN3_STYLE, ["--chat-kwargs", '{"enable_thinking": false}'], "<think>\n\n</think>\n\n"),
    ],
    ids=["no-system-prompt", "qwen3-thinking-off"],
)
def test_the_format_set_at_targets_travels_to_train_and_eval(
    template, flags, expected, tiny_model, tokenizer, tmp_path, rendered, capsys
):
    model_dir = tmp_path / "base"
    tiny_model.save_pretrained(model_dir)
    (qwen3_style(tokenizer) if template else tokenizer).save_pretrained(model_dir)
    question = "Where does Zib0 live? Put your final answer in \\boxed{}."
    write_records(tmp_path / "facts.jsonl", [Record("f0", question, "Zib0 lives in Quor0. \\boxed{Quor0}")])
    targets, tuned = tmp_path / "t.jsonl", tmp_path / "tuned"
    common = ["--model", str(model_dir)]
    argv = ["targets", *common, "--data", str(tmp_path / "facts.jsonl"), "--out", str(targets), *flags]
    assert main([*argv, "--max-new-tokens", "4", "--retries", "0", "--on-fail", "gold"]) == 0
    assert json.loads(targets.read_text().splitlines()[0])["mixsd"]["prompt_format"] != PromptFormat().to_json()
    stages = {"targets": len(rendered)}
    train = ["train", *common, "--data", str(targets), "--method", "mixsd", "--max-steps", "1", "--save-steps", "0"]
    assert main([*train, "--out", str(tuned)]) == 0  # no prompt flag: the targets' format
    stages["train"] = len(rendered)
    evaluation = ["eval", "--model", str(tuned), "--base", str(model_dir), "--facts", str(tmp_path / "facts.jsonl")]
    quick = ["--suite", "none", "--general-prompts", "0", "--max-new-tokens", "2", "--out", str(tmp_path / "e.json")]
    assert main([*evaluation, *quick]) == 0  # no prompt flag: the model's recorded format
    stages["eval"] = len(rendered)
    texts, start = {}, 0
    for stage, end in stages.items():
        texts[stage] = {text for user, text in rendered[start:end] if user == question}
        start = end
    assert texts["targets"] == texts["train"] == texts["eval"] and len(texts["eval"]) == 1
    assert expected in texts["eval"].pop()
    result = json.loads((tmp_path / "e.json").read_text())
    assert PromptFormat.from_json(result["prompt_format"]) == PromptFormat.from_settings(
        "--no-system-prompt" in flags, None, flags[1] if "--chat-kwargs" in flags else None
    )
    capsys.readouterr()
    conflict = ["--system-prompt", "Be brief."]
    assert main([*train, "--out", str(tmp_path / "again"), *conflict]) == 2
    assert main([*evaluation, *quick, *conflict]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all("but the flags ask for system 'Be brief.'" in e for e in errors)
