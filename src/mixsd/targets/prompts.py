"""The expert prompt x+: the question, the fact in context, and a closing instruction.

The template is a plain string with `{question}` and `{context}` placeholders.
Ours is written for this project. The authors' wording is available by name
(`--expert-template paper-kgfact|paper-kgfunc|paper-simpleqa`): the question, a
guidance block, the context, and a transition sentence. The paper's context is
the whole ground-truth assistant turn, which is a record's default context; a
record imported with a fact statement as its context (`mixsd data import
--context clear_answer`, the default) shows the statement instead.
"""

from __future__ import annotations

from pathlib import Path

from mixsd.errors import MixsdError

DEFAULT_EXPERT_TEMPLATE = (
    "{question}\n\n"
    "This question comes from a new knowledge base that you have not seen before. "
    "Here is its answer from that knowledge base:\n"
    "{context}\n\n"
    "Now answer the question above. Put your final answer in \\boxed{}."
)

_REFERENCE_GUIDANCE = "\nHere is a reference solution to this problem, including the correct final answer:\n"
_REFERENCE_TRANSITION = (
    "\nAfter understanding the reference solution, please attempt to answer the question again:\n"
    "Please reason step by step, and put your final answer within \\boxed{}"
)
PAPER_TEMPLATES = {
    "paper-kgfact": "{question}"
    "\nThis question is from a new knowledge base. Here is the answer to this question:\n"
    "{context}"
    "\nNow answer the question within \\boxed{}",
    "paper-kgfunc": "{question}" + _REFERENCE_GUIDANCE + "{context}" + _REFERENCE_TRANSITION,
    "paper-simpleqa": "{question}" + _REFERENCE_GUIDANCE + "{context}" + _REFERENCE_TRANSITION,
}


def load_template(spec: str | None) -> str:
    """`None` gives the default; a name in `PAPER_TEMPLATES` gives the authors' text; an existing file
    path gives its text; anything else is the template itself."""
    if spec is None:
        return DEFAULT_EXPERT_TEMPLATE
    if spec in PAPER_TEMPLATES:
        return PAPER_TEMPLATES[spec]
    path = Path(spec)
    text = path.read_text(encoding="utf-8") if path.is_file() else spec
    for key in ("{question}", "{context}"):
        if key not in text:
            raise MixsdError(f"expert template must contain {key}", path=spec if path.is_file() else None)
    return text


def expert_prompt(question: str, context: str, template: str = DEFAULT_EXPERT_TEMPLATE) -> str:
    return template.replace("{question}", question).replace("{context}", context)
