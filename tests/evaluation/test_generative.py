"""The generative benchmark tasks, scored end to end through lm-eval with stand-in models (no weights):
one that answers every item right scores 1.0, one that answers wrongly or in the wrong form scores 0."""

from __future__ import annotations

import pytest
from lm_eval.api.model import LM

from mixsd.evaluation.benchmarks import score_lm
from mixsd.evaluation.generative import LETTERS, boxed_letter, code_block, math_correct, math_gold

GENERATIVE = [
    "mixsd_gsm8k",
    "mixsd_math500",
    "mixsd_math",
    "mixsd_mmlu_boxed",
    "mixsd_triviaqa",
    "mixsd_nq_open",
    "mixsd_humaneval",
    "mixsd_mbpp",
]


class StandIn(LM):
    """An lm-eval model that writes `answer(task, doc)` for every generation request."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.prompts: list[str] = []

    def generate_until(self, requests):
        self.prompts += [r.arguments[0] for r in requests]
        return [self.answer(r.task_name, r.doc) for r in requests]

    def loglikelihood(self, requests):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError

    def apply_chat_template(self, chat_history, add_generation_prompt=True):
        return "".join(f"<{m['role']}>{m['content']}" for m in chat_history) + "<assistant>"

    @property
    def tokenizer_name(self):
        return "stand-in"


def right(task: str, doc: dict) -> str:
    if task in ("mixsd_gsm8k", "mixsd_math500", "mixsd_math"):
        return f"Let me work through it step by step. So the answer is \\boxed{{{math_gold(doc)}}}."
    if task == "mixsd_mmlu_boxed":
        return f"The right option is \\boxed{{{LETTERS[doc['answer']]}}}."
    if task == "mixsd_triviaqa":
        return f"It is {doc['answer']['value']}."
    if task == "mixsd_nq_open":
        return f"I believe it is {doc['answer'][0]}."
    if task == "mixsd_humaneval":
        return f"Here it is:\n```python\n{doc['prompt']}{doc['canonical_solution']}```\n"
    return f"```python\n{doc['code']}\n```"


def wrong(task: str, doc: dict) -> str:
    if task == "mixsd_mmlu_boxed":
        return f"\\boxed{{{LETTERS[(doc['answer'] + 1) % 4]}}}"
    if task in ("mixsd_humaneval", "mixsd_mbpp"):
        return "```python\ndef nothing():\n    return None\n```"
    return "After careful thought: \\boxed{Zanzibar Quuxley 917.25}"


def unformatted(task: str, doc: dict) -> str:
    """The right answer, but not in the form the prompt asked for (no box, no code block)."""
    if task in ("mixsd_triviaqa", "mixsd_nq_open"):
        return ""
    text = right(task, doc)
    return text.replace("\\boxed", "").replace("```python", "").replace("```", "").replace("def ", "lambda ")


@pytest.fixture(scope="module")
def scored():
    items = dict.fromkeys(GENERATIVE, 4)
    return {
        name: score_lm(StandIn(answer), items, seed=0, allow_code=True)
        for name, answer in (("right", right), ("wrong", wrong), ("unformatted", unformatted))
    }


@pytest.mark.parametrize("task", GENERATIVE)
def test_right_answers_score_one_and_wrong_or_unformatted_ones_zero(scored, task):
    good, bad, unformatted = scored["right"][task], scored["wrong"][task], scored["unformatted"][task]
    assert good.correct == [1.0] * 4 and good.answered == [1.0] * 4
    assert bad.correct == [0.0] * 4
    assert unformatted.correct == [0.0] * 4 and unformatted.answered == [0.0] * 4
    assert good.doc_ids == bad.doc_ids and len(set(good.doc_ids)) == 4
    assert all(r and g for r, g in zip(good.responses, good.golds, strict=True))


def test_prompts_go_through_the_chat_template():
    model = StandIn(right)
    score_lm(model, {"mixsd_gsm8k": 2, "mixsd_mmlu_boxed": 1}, seed=0)
    assert len(model.prompts) == 3
    assert all(p.startswith("<user>") and p.endswith("<assistant>") for p in model.prompts)
    mmlu = next(p for p in model.prompts if "multiple choice" in p)
    assert mmlu.count("Answer: \\boxed{") == 5  # the five dev examples of the subject


def test_code_tasks_refuse_to_run_code_without_the_opt_in():
    with pytest.raises(RuntimeError, match="--allow-code-execution"):
        score_lm(StandIn(right), {"mixsd_humaneval": 1}, seed=0)


def test_answer_extraction():
    assert math_correct("so \\boxed{\\frac{1}{2}}", "0.5") and math_correct("\\boxed{0.5}", "\\frac12")
    assert not math_correct("the answer is 0.5", "0.5") and not math_correct("\\boxed{\\frac{", "0.5")
    assert boxed_letter("\\boxed{(C)}") == "C" and boxed_letter("\\boxed{\\text{b}}") == "B"
    assert boxed_letter("\\boxed{E}") is None and boxed_letter("C") is None
    assert code_block("x\n```python\ndef f():\n    return 1\n```\nmore") == "def f():\n    return 1\n"
    assert code_block("def f():\n    return 1") == "def f():\n    return 1" and code_block("no code") is None
