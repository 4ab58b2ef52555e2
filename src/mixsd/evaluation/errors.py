"""Why held-out answers are wrong: format, leakage, collapse or genuine.

Used for the wrong answers to the fact probes and for the benchmark items the base model got right and the
tuned model got wrong. Each answer gets the first category that fits, in this order:
- leakage: it names an injected entity that is neither the gold answer nor in
  the prompt (the new facts bleed into unrelated questions);
- format: it commits to no final answer in the asked-for form (a `\\boxed{}`, a code block);
- collapse: a bare or degenerate answer: it opens the way the training answers do ("The answer is" for
  KGFact), loops on itself, or, where the prompt asks for reasoning, has fewer than `COLLAPSE_WORDS` words
  besides the boxed answer (the shape of the training targets);
- genuine: a well-formed answer that is simply wrong.
"""

from __future__ import annotations

import re

from mixsd.answers import last_boxed, normalize

CATEGORIES = ("leakage", "format", "collapse", "genuine")
COLLAPSE_WORDS = 8
OPENING_WORDS = 2  # a trained answer shape: the first words most training answers share (normalised)


def mentions(text: str, name: str) -> bool:
    """Whole-word match of a normalised name in a normalised text."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text) is not None


def opening(text: str) -> str:
    """The first `OPENING_WORDS` words of a text, normalised."""
    return " ".join(normalize(text).split()[:OPENING_WORDS])


def looping(text: str, n: int = 4) -> bool:
    """Degenerate repetition: at least 20 words, and under half of its word n-grams distinct."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(words) >= 20 and len(set(grams)) * 2 < len(grams)


def classify(
    answer: str,
    prompt: str,
    gold: str,
    names: set[str],
    *,
    answered: bool | None = None,
    reasoning: bool = True,
    openings: frozenset[str] = frozenset(),
) -> str:
    """The category of one wrong answer (see the module docstring); `names` are normalised entity names.

    `answered` says whether the answer is in the asked-for form (default: it has a `\\boxed{}`);
    `reasoning` whether the prompt asks for reasoning, so that a bare answer is a collapse.
    """
    text, seen, target = normalize(answer), normalize(prompt), normalize(gold)
    for name in names:
        if name != target and mentions(text, name) and not mentions(seen, name):
            return "leakage"
    boxed = last_boxed(answer)
    if not (boxed is not None if answered is None else answered):
        return "format"
    if opening(answer) in openings or looping(answer):
        return "collapse"
    if reasoning:
        rest = answer
        if boxed is not None:
            start = answer.rfind("\\boxed{" + boxed + "}")
            rest = answer[:start] + answer[start + len(boxed) + len("\\boxed{}") :]
        if len(rest.split()) < COLLAPSE_WORDS:
            return "collapse"
    return "genuine"


def breakdown(
    wrong: list[tuple[str, str, str]],
    entities: set[str],
    *,
    answered: list[bool] | None = None,
    reasoning: bool = True,
    openings: frozenset[str] = frozenset(),
) -> dict:
    """Counts and fractions per category over (answer, prompt, gold) triples of wrong answers."""
    names = {n for n in map(normalize, entities) if n}
    counts = dict.fromkeys(CATEGORIES, 0)
    for i, (answer, prompt, gold) in enumerate(wrong):
        form = None if answered is None else answered[i]
        counts[classify(answer, prompt, gold, names, answered=form, reasoning=reasoning, openings=openings)] += 1
    total = len(wrong)
    return {
        "wrong": total,
        "counts": counts,
        "fractions": {c: (n / total if total else 0.0) for c, n in counts.items()},
    }
