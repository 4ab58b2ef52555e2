"""Pull the final answer out of a model's text and compare it with a gold answer.

Shared by the target verifier (is this MixSD target right?) and the evaluation
scorers (did the tuned model recall the fact?), so both judge the same way.
"""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Literal

ExtractMode = Literal["boxed", "number", "boxed_or_number", "text"]

_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")
_PUNCT = str.maketrans("", "", string.punctuation)


def last_boxed(text: str) -> str | None:
    """Content of the last non-empty \\boxed{...}, with nested braces balanced; None if there is none.

    Unclosed and empty boxes are passed over: small models often echo the
    instruction ("I will put the answer in \\boxed{}") and then answer in prose.
    """
    start = text.rfind("\\boxed{")
    while start != -1:
        i = start + len("\\boxed{")
        depth = 1
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                if text[i:j].strip():
                    return text[i:j]
                break
        start = text.rfind("\\boxed{", 0, start)
    return None


def last_number(text: str) -> str | None:
    found = _NUMBER.findall(text)
    return found[-1].replace(",", "") if found else None


def extract(text: str, mode: ExtractMode = "boxed_or_number") -> str | None:
    """The answer a text commits to, or None if it commits to none in this mode."""
    if mode == "boxed":
        return last_boxed(text)
    if mode == "number":
        return last_number(text)
    if mode == "boxed_or_number":
        boxed = last_boxed(text)
        return boxed if boxed is not None else last_number(text)
    return text


def normalize(text: str) -> str:
    """Case-, whitespace- and punctuation-insensitive form; strips \\text{} and leading articles."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"\\text\{([^}]*)\}", r"\1", text)
    text = text.lower().translate(_PUNCT)
    text = re.sub(r"\b(the|a|an)\b", " ", text)
    return " ".join(text.split())


def matches(text: str, gold: str, *, mode: ExtractMode = "boxed_or_number", strict: bool = False) -> bool:
    """Strict: the extracted answer equals gold after normalisation.

    Loose: the normalised gold is contained in the normalised extracted answer
    (or in the whole text when nothing can be extracted), as the paper scores KGFact.
    In `boxed_or_number` mode the last number stands in for a missing box only
    when the gold is a number: for a gold like "Pufurka", "Step 3: ... Pufurka"
    commits to the name, not to 3.
    """
    answer = extract(text, mode)
    if mode == "boxed_or_number" and last_boxed(text) is None and not _NUMBER.fullmatch(gold.strip()):
        answer = None
    g = normalize(gold)
    if strict:
        return answer is not None and normalize(answer) == g
    hay = normalize(answer if answer is not None else text)
    return bool(g) and g in hay
