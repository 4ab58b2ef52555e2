"""The expert prompt x+: the question, the fact in context, and a closing instruction.

The template is a plain string with `{question}` and `{context}` placeholders.
Ours is written for this project; to reproduce the paper's exact wording, put
the authors' text (with the same two placeholders) in a file and pass it as
`--expert-template FILE` / `TargetConfig(expert_template=...)`.
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


def load_template(spec: str | None) -> str:
    """`None` gives the default; an existing file path gives its text; anything else is the template itself."""
    if spec is None:
        return DEFAULT_EXPERT_TEMPLATE
    path = Path(spec)
    text = path.read_text(encoding="utf-8") if path.is_file() else spec
    for key in ("{question}", "{context}"):
        if key not in text:
            raise MixsdError(f"expert template must contain {key}", path=spec if path.is_file() else None)
    return text


def expert_prompt(question: str, context: str, template: str = DEFAULT_EXPERT_TEMPLATE) -> str:
    return template.replace("{question}", question).replace("{context}", context)
