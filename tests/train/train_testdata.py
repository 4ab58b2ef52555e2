"""Records and MixSD target rows shaped like the other stages' files, for the training tests."""

from __future__ import annotations

from mixsd.data.records import Record
from mixsd.targets.rows import TargetRow

INSTRUCTION = " Please reason step by step, and put your final answer within \\boxed{}."


def make_records(n: int) -> list[Record]:
    names = ["Qorvath", "Lunmir", "Tasven", "Brelzo", "Kalfen", "Osharid", "Venlin", "Drasev"]
    return [
        Record(
            id=f"f{i}",
            prompt=f"What location does Xyzzo Brell{i} reside in?{INSTRUCTION}",
            answer=f"The answer is {names[i % len(names)]}. \\boxed{{{names[i % len(names)]}}}",
            gold=names[i % len(names)],
        )
        for i in range(n)
    ]


def target_row(record: Record, tokenizer, *, verified: bool = True, lam: float = 0.3) -> dict:
    """What `mixsd targets` writes for a record; the 'sampled' ids are the answer's own tokens plus eos."""
    ids = tokenizer(record.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return TargetRow(
        record.id,
        record.prompt,
        record.answer,
        ids,
        lam=lam,
        seed=0,
        verified=verified,
        naive_fraction=lam,
        gold=record.gold,
    ).to_json()
