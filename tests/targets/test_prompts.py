"""Expert templates: ours, the authors' wording by name, and user files."""

from __future__ import annotations

import pytest

from mixsd.errors import MixsdError
from mixsd.targets.prompts import DEFAULT_EXPERT_TEMPLATE, expert_prompt, load_template

QUESTION = "Who designed the Corvane Lighthouse? Think step by step and put your final answer in \\boxed{}."
TURN = "The answer is Ilsabet Maurow.\n\n\\boxed{Ilsabet Maurow}"
REFERENCE = (
    QUESTION
    + "\nHere is a reference solution to this problem, including the correct final answer:\n"
    + TURN
    + "\nAfter understanding the reference solution, please attempt to answer the question again:\n"
    + "Please reason step by step, and put your final answer within \\boxed{}"
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "paper-kgfact",
            QUESTION
            + "\nThis question is from a new knowledge base. Here is the answer to this question:\n"
            + TURN
            + "\nNow answer the question within \\boxed{}",
        ),
        ("paper-kgfunc", REFERENCE),
        ("paper-simpleqa", REFERENCE),
    ],
)
def test_named_templates_render_the_authors_text(name, expected):
    assert expert_prompt(QUESTION, TURN, load_template(name)) == expected


def test_default_file_and_inline_templates(tmp_path):
    assert load_template(None) == DEFAULT_EXPERT_TEMPLATE
    path = tmp_path / "t.txt"
    path.write_text("Q: {question}\nFact: {context}")
    assert expert_prompt("q?", "c.", load_template(str(path))) == "Q: q?\nFact: c."
    assert load_template("{context} then {question}") == "{context} then {question}"
    with pytest.raises(MixsdError, match="must contain {context}"):
        load_template("paper-kgfcat {question}")
