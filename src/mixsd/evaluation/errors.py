"""Why held-out answers are wrong: format, leakage, collapse or genuine.

Each wrong answer gets the first category that fits, in this order:
- leakage: it names an injected entity that is neither the gold answer nor in
  the prompt (the new facts bleed into unrelated questions);
- format: it commits to no boxed answer although the prompt asks for one;
- collapse: a bare answer with no reasoning (fewer than `COLLAPSE_WORDS` words
  besides the boxed answer), the shape of the training targets;
- genuine: a reasoned, well-formed answer that is simply wrong.
"""

from __future__ import annotations

import re

from mixsd.answers import last_boxed, normalize

CATEGORIES = ("leakage", "format", "collapse", "genuine")
COLLAPSE_WORDS = 8


def mentions(text: str, name: str) -> bool:
    """Whole-word match of a normalised name in a normalised text."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def classify(answer: str, prompt: str, gold: str, names: set[str]) -> str:
    """The category of one wrong answer (see the module docstring); `names` are normalised entity names."""
    text, seen, target = normalize(answer), normalize(prompt), normalize(gold)
    for name in names:
        if name != target and mentions(text, name) and not mentions(seen, name):
            return "leakage"
    boxed = last_boxed(answer)
    if boxed is None:
        return "format"
    start = answer.rfind("\\boxed{" + boxed + "}")
    rest = answer[:start] + answer[start + len(boxed) + len("\\boxed{}") :]
    return "collapse" if len(rest.split()) < COLLAPSE_WORDS else "genuine"


def breakdown(wrong: list[tuple[str, str, str]], entities: set[str]) -> dict:
    """Counts and fractions per category over (answer, prompt, gold) triples of wrong answers."""
    names = {n for n in map(normalize, entities) if n}
    counts = dict.fromkeys(CATEGORIES, 0)
    for answer, prompt, gold in wrong:
        counts[classify(answer, prompt, gold, names)] += 1
    total = len(wrong)
    return {
        "wrong": total,
        "counts": counts,
        "fractions": {c: (n / total if total else 0.0) for c, n in counts.items()},
    }
