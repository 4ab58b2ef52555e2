"""KGFunc: opaque operations on the decimal digits of a number, learnt from examples.

Seven operations labelled B..H (as in the MixSD paper) have no standard name, so
a base model cannot know them; each prompt shows a 10-example input/output
table for the letter (the same 10 inputs for every letter, two per digit
length) and asks for a new input. Targets are short worked computations ending
in \\boxed{answer}. Twenty easy operations labelled a..t probe forgetting, and
two-step chains probe composition.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate, permutations
from pathlib import Path

from mixsd.data.records import Record, write_corpus
from mixsd.errors import MixsdError

VERSION = 1
INSTRUCTION = "Think step by step and put your final answer in \\boxed{}."
TRAIN_SIZE = 1600
TEST_PER_OP = 25
UNSEEN_PER_OP = 25
CHAIN_PER_PAIR = 2
SHOTS_PER_LENGTH = 2  # 2 inputs of each length 1..5: the 10-example table
PRIMES = (2, 3, 5, 7)

Answer = int | str
Worked = tuple[Answer, str]  # the result and the sentence that computes it


@dataclass(frozen=True)
class Operation:
    label: str
    description: str
    compute: Callable[[list[int]], Worked]


def _equalities(*stages: str) -> str:
    """'s1 = s2 = s3', leaving out a stage that repeats an earlier one."""
    return " = ".join(dict.fromkeys(stages))


def _sum(terms: list[str], values: list[int]) -> str:
    """'t1 + t2 = v1 + v2 = total', leaving out a stage that repeats the previous one."""
    return _equalities(" + ".join(terms), " + ".join(map(str, values)), str(sum(values)))


def _alternate(items: list[str]) -> str:
    """'x1 - x2 + x3 - ...'."""
    return items[0] + "".join((" - " if i % 2 else " + ") + s for i, s in enumerate(items[1:], start=1))


def _listing(d: list[int]) -> str:
    return ", ".join(map(str, d)) if d else "none"


def _digit_string(d: list[int]) -> str:
    return "".join(map(str, d))


# --- B..H: the operations to learn --------------------------------------------------


def op_b(d: list[int]) -> Worked:
    m = min(d)
    values = [(x - m) ** 2 for x in d]
    steps = _sum([f"({x}-{m})^2" for x in d], values)
    return sum(values), f"The smallest digit is {m}. Square each digit's distance from it and add: {steps}."


def op_c(d: list[int]) -> Worked:
    squares = [x * x for x in d]
    total = sum(s if i % 2 == 0 else -s for i, s in enumerate(squares))
    steps = _equalities(_alternate([f"{x}^2" for x in d]), _alternate(list(map(str, squares))), str(total))
    return abs(total), f"Alternate the signs of the squared digits: {steps}. Its absolute value is {abs(total)}."


def op_d(d: list[int]) -> Worked:
    terms = [f"{x}^2" if x in PRIMES else str(x) for x in d]
    values = [x * x if x in PRIMES else x for x in d]
    return sum(values), f"Square the prime digits (2, 3, 5, 7) and keep the others, then add: {_sum(terms, values)}."


def op_e(d: list[int]) -> Worked:
    pairs = list(zip(d, reversed(d), strict=True))
    values = [x * y for x, y in pairs]
    steps = _sum([f"{x}*{y}" for x, y in pairs], values)
    return sum(values), f"Multiply each digit by the digit in the mirrored position and add: {steps}."


def op_f(d: list[int]) -> Worked:
    running = list(accumulate(d, max))
    steps = _sum(list(map(str, running)), running)
    return sum(running), f"The running maximum of the digits is {_listing(running)}. Add them: {steps}."


def op_g(d: list[int]) -> Worked:
    values = [x * (x + 1) // 2 for x in d]
    steps = _sum([f"{x}*{x + 1}/2" for x in d], values)
    return sum(values), f"Add the triangular number x(x+1)/2 of each digit: {steps}."


def op_h(d: list[int]) -> Worked:
    s = _digit_string(d)
    rotations = [s[i:] + s[:i] for i in range(len(s))]
    best = min(rotations)  # equal lengths, so the smallest string is the smallest number
    listed = ", ".join(rotations)
    return int(best), f"The rotations of the digits are {listed}. The smallest is {best}, as a number {int(best)}."


OPERATIONS = (
    Operation("B", "sum of (d - min digit)^2", op_b),
    Operation("C", "|d1^2 - d2^2 + d3^2 - ...|", op_c),
    Operation("D", "sum of d^2 for prime d, else d", op_d),
    Operation("E", "digits dotted with their reverse", op_e),
    Operation("F", "sum of the running maximum", op_f),
    Operation("G", "sum of d(d+1)/2", op_g),
    Operation("H", "smallest cyclic rotation, as a number", op_h),
)


# --- a..t: easy operations for the forgetting probe ---------------------------------


def _count(kind: str, chosen: list[int]) -> Worked:
    return len(chosen), f"The {kind} digits are {_listing(chosen)}: there are {len(chosen)}."


def _ordered(order: str, d: list[int]) -> Worked:
    s = _digit_string(d)
    return s, f"The digits in {order} order are {s}."


def _digital_root(d: list[int]) -> Worked:
    steps = []
    while len(d) > 1:
        steps.append(_sum(list(map(str, d)), d))
        d = digits(sum(d))
    return d[0], f"Add the digits until one digit is left: {', then '.join(steps) or str(d[0])}."


UNSEEN = (
    Operation("a", "digit sum", lambda d: (sum(d), f"Add the digits: {_sum(list(map(str, d)), d)}.")),
    Operation(
        "b",
        "digit product",
        lambda d: (math.prod(d), f"Multiply the digits: {'*'.join(map(str, d))} = {math.prod(d)}."),
    ),
    Operation("c", "number of digits", lambda d: (len(d), f"There are {len(d)} digits.")),
    Operation("d", "largest digit", lambda d: (max(d), f"The largest digit is {max(d)}.")),
    Operation("e", "smallest digit", lambda d: (min(d), f"The smallest digit is {min(d)}.")),
    Operation("f", "first digit", lambda d: (d[0], f"The first digit is {d[0]}.")),
    Operation("g", "last digit", lambda d: (d[-1], f"The last digit is {d[-1]}.")),
    Operation(
        "h",
        "largest minus smallest digit",
        lambda d: (max(d) - min(d), f"The largest digit minus the smallest: {max(d)} - {min(d)} = {max(d) - min(d)}."),
    ),
    Operation("i", "digits reversed", lambda d: _ordered("reverse", d[::-1])),
    Operation(
        "j",
        "first plus last digit",
        lambda d: (d[0] + d[-1], f"The first digit plus the last: {d[0]} + {d[-1]} = {d[0] + d[-1]}."),
    ),
    Operation("k", "number of even digits", lambda d: _count("even", [x for x in d if x % 2 == 0])),
    Operation("l", "number of odd digits", lambda d: _count("odd", [x for x in d if x % 2 == 1])),
    Operation("m", "number of distinct digits", lambda d: _count("distinct", sorted(set(d)))),
    Operation("n", "number of zero digits", lambda d: _count("zero", [x for x in d if x == 0])),
    Operation("o", "digital root", _digital_root),
    Operation(
        "p",
        "sum of squared digits",
        lambda d: (
            sum(x * x for x in d),
            f"Add the squared digits: {_sum([f'{x}^2' for x in d], [x * x for x in d])}.",
        ),
    ),
    Operation("q", "digits sorted ascending", lambda d: _ordered("ascending", sorted(d))),
    Operation("r", "digits sorted descending", lambda d: _ordered("descending", sorted(d, reverse=True))),
    Operation(
        "s",
        "twice the digit sum",
        lambda d: (2 * sum(d), f"The digit sum is {_sum(list(map(str, d)), d)}, and twice that is {2 * sum(d)}."),
    ),
    Operation(
        "t",
        "first times last digit",
        lambda d: (d[0] * d[-1], f"The first digit times the last: {d[0]}*{d[-1]} = {d[0] * d[-1]}."),
    ),
)


# --- prompts, targets and records ---------------------------------------------------


def digits(n: int) -> list[int]:
    return [int(c) for c in str(n)]


def worked(op: Operation, n: int) -> tuple[Answer, str]:
    """The result of `op` on n and the sentences that compute it, ending in "So X(n) = v."."""
    d = digits(n)
    value, steps = op.compute(d)
    return value, f"The digits of {n} are {_listing(d)}. {steps} So {op.label}({n}) = {value}."


def prompt(ops: list[Operation], shots: list[int], question: str) -> str:
    """The example table of each operation, then the question."""
    names = " and ".join(op.label for op in ops)
    table = "\n".join(f"{op.label}({x}) = {op.compute(digits(x))[0]}" for op in ops for x in shots)
    kind = "operations" if len(ops) > 1 else "an operation"
    return f"Here are examples of {kind} {names} on whole numbers:\n{table}\n{question} {INSTRUCTION}"


def balanced_inputs(rng: random.Random, count: int, exclude: set[int]) -> list[int]:
    """Distinct inputs in [0, 99999], each digit length 1..5 equally likely (while that length lasts)."""
    chosen: list[int] = []
    taken = set(exclude)
    while len(chosen) < count:
        length = rng.randint(1, 5)
        n = rng.randint(0 if length == 1 else 10 ** (length - 1), 10**length - 1)
        if n not in taken:
            taken.add(n)
            chosen.append(n)
    return chosen


def shot_inputs(rng: random.Random) -> list[int]:
    """The 10 example inputs shared by every letter: two of each digit length, in length order."""
    shots: list[int] = []
    for length in range(1, 6):
        low = 0 if length == 1 else 10 ** (length - 1)
        shots += sorted(rng.sample(range(low, 10**length), SHOTS_PER_LENGTH))
    return shots


def single_record(record_id: str, op: Operation, n: int, shots: list[int], **meta) -> Record:
    value, text = worked(op, n)
    question = f"What is the output of {op.label}({n})?"
    answer = f"{text} \\boxed{{{value}}}"
    return Record(
        record_id, prompt([op], shots, question), answer, str(value), meta={"op": op.label, "input": n, **meta}
    )


def chain_record(record_id: str, first: Operation, second: Operation, n: int, shots: list[int]) -> Record:
    middle, first_text = worked(first, n)
    value, second_text = worked(second, int(middle))
    question = f"What is the output of {second.label}({first.label}({n}))?"
    answer = f"Step 1: {first_text}\nStep 2: {second_text} \\boxed{{{value}}}"
    meta = {"ops": [first.label, second.label], "input": n, "intermediate": middle}
    return Record(record_id, prompt([first, second], shots, question), answer, str(value), meta=meta)


def _rng(seed: int, purpose: str) -> random.Random:
    """An independent stream per purpose; string seeds are hashed with SHA-512, so PYTHONHASHSEED cannot change them."""
    return random.Random(f"kgfunc:{seed}:{purpose}")


def build_kgfunc(out_dir: str | Path, seed: int = 0, limit: int | None = None) -> dict:
    """Write the KGFunc splits and manifest.json to `out_dir`; returns the manifest.

    `limit` keeps the first N training examples (the letters interleave, so any
    prefix stays balanced); the evaluation splits do not change with it.
    """
    if limit is not None and limit < 1:
        raise MixsdError(f"limit must be at least 1, got {limit}")
    shots = shot_inputs(_rng(seed, "shots"))
    per_op = math.ceil(TRAIN_SIZE / len(OPERATIONS))
    train_inputs, test_inputs = {}, {}
    for op in OPERATIONS:
        inputs = balanced_inputs(_rng(seed, f"inputs {op.label}"), per_op + TEST_PER_OP, set(shots))
        train_inputs[op.label], test_inputs[op.label] = inputs[:per_op], inputs[per_op:]
    train = []
    for i in range(TRAIN_SIZE if limit is None else min(limit, TRAIN_SIZE)):
        op = OPERATIONS[i % len(OPERATIONS)]
        train.append(single_record(f"kgfunc-train-{i:04d}", op, train_inputs[op.label][i // len(OPERATIONS)], shots))
    test = [
        single_record(f"kgfunc-test-{op.label}-{j:02d}", op, n, shots)
        for op in OPERATIONS
        for j, n in enumerate(test_inputs[op.label])
    ]
    unseen = [
        single_record(f"kgfunc-unseen-{op.label}-{j:02d}", op, n, shots, description=op.description)
        for op in UNSEEN
        for j, n in enumerate(balanced_inputs(_rng(seed, f"unseen {op.label}"), UNSEEN_PER_OP, set(shots)))
    ]
    chain_rng, chain = _rng(seed, "chain"), []
    for first, second in permutations(OPERATIONS, 2):
        for n in balanced_inputs(chain_rng, CHAIN_PER_PAIR, set(shots) | set(train_inputs[first.label])):
            chain.append(chain_record(f"kgfunc-chain-{len(chain):04d}", first, second, n, shots))
    splits = {"train": train, "test": test, "unseen": unseen, "chain": chain}
    return write_corpus(
        out_dir,
        splits,
        {
            "corpus": "kgfunc",
            "version": VERSION,
            "seed": seed,
            "limit": limit,
            "shots": shots,
            "operations": {op.label: op.description for op in OPERATIONS},
            "unseen_operations": {op.label: op.description for op in UNSEEN},
        },
    )
