"""KGFact: facts about an invented world that no base model can know.

A seeded syllable model names entities in typed domains; directed relations go
from an earlier domain to a later one, each written as a statement, a question
and a relative clause. Every source entity gets exactly one edge per later
domain, and within a domain pair every target is used once, so each
(source, relation) and each (relation, target) occurs once and every question
has exactly one answer.

Splits: the training questions, paraphrased wrappers of them, closed-book
two-hop questions composed from two trained facts, and a retrieval probe over a
disjoint held-out graph (the answering statement is in the prompt among
distractors: it measures a capability, not memorisation).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

from mixsd.data.records import Record, write_corpus
from mixsd.errors import MixsdError

VERSION = 1
INSTRUCTION = "Think step by step and put your final answer in \\boxed{}."


@dataclass(frozen=True)
class Size:
    domains: int  # the first this many of DOMAINS
    entities: int  # per domain
    retrieval_questions: int
    retrieval_context: int  # statements shown per retrieval question, the answering one included


# demo: half of small's entities (50 facts, shorter retrieval contexts), so `make demo` fits a 2-core CPU
SIZES = {"demo": Size(5, 5, 20, 10), "small": Size(5, 10, 50, 25), "large": Size(7, 25, 100, 50)}

# The paper's first seven domains, in its order. Each name pattern gets a fresh
# invented word for every "{w}"; the kind words only make the domain recognisable.
DOMAINS: dict[str, tuple[str, ...]] = {
    "person": ("{w} {w}",),
    "location": ("{w}",),
    "organization": ("{w} Guild", "{w} Institute", "{w} Company", "{w} Society", "{w} Foundation"),
    "event": ("{w} Festival", "{w} Summit", "{w} Regatta", "{w} Fair", "{w} Games"),
    "profession": ("{w}craft", "{w}ery", "{w}ology", "{w}smithing"),
    "hobby": ("{w} Weaving", "{w} Racing", "{w} Carving", "{w} Juggling", "{w} Gardening"),
    "skill": ("{w} Reckoning", "{w} Notation", "{w} Tracking", "{w} Binding", "{w} Mapping"),
}

# (statement, question, relative clause) per ordered domain pair. The clause
# names the target, so a clause of one fact can stand in for the source of the
# next one in a two-hop question; person is never a target, so questions about
# a person never get a clause substituted into them.
RELATIONS: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {
    ("person", "location"): (
        ("{a} lives in {b}.", "Which location does {a} live in?", "the location that {a} lives in"),
        ("{a} was born in {b}.", "In which location was {a} born?", "the location where {a} was born"),
        ("{a} grew up in {b}.", "Which location did {a} grow up in?", "the location where {a} grew up"),
        (
            "{a} spends every winter in {b}.",
            "Which location does {a} spend every winter in?",
            "the location where {a} spends every winter",
        ),
    ),
    ("person", "organization"): (
        ("{a} works for {b}.", "Which organization does {a} work for?", "the organization that {a} works for"),
        ("{a} founded {b}.", "Which organization did {a} found?", "the organization that {a} founded"),
        (
            "{a} is a member of {b}.",
            "Which organization is {a} a member of?",
            "the organization that {a} is a member of",
        ),
        ("{a} donates to {b}.", "Which organization does {a} donate to?", "the organization that {a} donates to"),
    ),
    ("person", "event"): (
        ("{a} organized {b}.", "Which event did {a} organize?", "the event that {a} organized"),
        ("{a} won a prize at {b}.", "At which event did {a} win a prize?", "the event where {a} won a prize"),
        (
            "{a} gave the opening speech at {b}.",
            "At which event did {a} give the opening speech?",
            "the event where {a} gave the opening speech",
        ),
        ("{a} volunteered at {b}.", "Which event did {a} volunteer at?", "the event where {a} volunteered"),
    ),
    ("person", "profession"): (
        ("The profession of {a} is {b}.", "What is the profession of {a}?", "the profession of {a}"),
        (
            "{a} was trained in the profession {b}.",
            "Which profession was {a} trained in?",
            "the profession that {a} was trained in",
        ),
        (
            "{a} wants to switch to the profession {b}.",
            "Which profession does {a} want to switch to?",
            "the profession that {a} wants to switch to",
        ),
        (
            "The mother of {a} practised the profession {b}.",
            "Which profession did the mother of {a} practise?",
            "the profession that the mother of {a} practised",
        ),
    ),
    ("location", "organization"): (
        (
            "{b} is headquartered in {a}.",
            "Which organization is headquartered in {a}?",
            "the organization headquartered in {a}",
        ),
        ("{b} was founded in {a}.", "Which organization was founded in {a}?", "the organization founded in {a}"),
        (
            "{b} runs the largest market in {a}.",
            "Which organization runs the largest market in {a}?",
            "the organization that runs the largest market in {a}",
        ),
        ("{b} governs {a}.", "Which organization governs {a}?", "the organization that governs {a}"),
    ),
    ("location", "event"): (
        ("{b} takes place in {a}.", "Which event takes place in {a}?", "the event that takes place in {a}"),
        ("{b} was first held in {a}.", "Which event was first held in {a}?", "the event first held in {a}"),
        (
            "{b} ends with a parade through {a}.",
            "Which event ends with a parade through {a}?",
            "the event that ends with a parade through {a}",
        ),
        (
            "{b} was cancelled because of a flood in {a}.",
            "Which event was cancelled because of a flood in {a}?",
            "the event cancelled because of a flood in {a}",
        ),
    ),
    ("location", "profession"): (
        (
            "{b} is the most common profession in {a}.",
            "What is the most common profession in {a}?",
            "the most common profession in {a}",
        ),
        ("{b} was invented in {a}.", "Which profession was invented in {a}?", "the profession invented in {a}"),
        ("{b} is banned in {a}.", "Which profession is banned in {a}?", "the profession banned in {a}"),
        (
            "{b} is taught at the academy of {a}.",
            "Which profession is taught at the academy of {a}?",
            "the profession taught at the academy of {a}",
        ),
    ),
    ("organization", "event"): (
        ("{a} sponsors {b}.", "Which event does {a} sponsor?", "the event that {a} sponsors"),
        ("{a} hosts {b}.", "Which event does {a} host?", "the event that {a} hosts"),
        ("{a} broadcasts {b}.", "Which event does {a} broadcast?", "the event that {a} broadcasts"),
        (
            "{a} sells the tickets for {b}.",
            "Which event does {a} sell the tickets for?",
            "the event that {a} sells the tickets for",
        ),
    ),
    ("organization", "profession"): (
        (
            "{a} trains people in the profession {b}.",
            "Which profession does {a} train people in?",
            "the profession that {a} trains people in",
        ),
        (
            "{a} mostly hires people trained in {b}.",
            "People trained in which profession does {a} mostly hire?",
            "the profession whose people {a} mostly hires",
        ),
        (
            "{a} issues licences for the profession {b}.",
            "Which profession does {a} issue licences for?",
            "the profession that {a} issues licences for",
        ),
        (
            "{a} represents the profession {b}.",
            "Which profession does {a} represent?",
            "the profession that {a} represents",
        ),
    ),
    ("event", "profession"): (
        (
            "{a} celebrates the profession {b}.",
            "Which profession does {a} celebrate?",
            "the profession that {a} celebrates",
        ),
        (
            "{a} awards a medal in the profession {b}.",
            "In which profession does {a} award a medal?",
            "the profession in which {a} awards a medal",
        ),
        (
            "{a} recruits new members for the profession {b}.",
            "Which profession does {a} recruit new members for?",
            "the profession that {a} recruits new members for",
        ),
        (
            "{a} was started by people who work in {b}.",
            "People of which profession started {a}?",
            "the profession whose people started {a}",
        ),
    ),
    ("person", "hobby"): (
        ("{a} enjoys {b}.", "Which hobby does {a} enjoy?", "the hobby that {a} enjoys"),
        (
            "{a} took up {b} last year.",
            "Which hobby did {a} take up last year?",
            "the hobby that {a} took up last year",
        ),
        (
            "{a} teaches {b} on weekends.",
            "Which hobby does {a} teach on weekends?",
            "the hobby that {a} teaches on weekends",
        ),
        ("{a} gave up {b}.", "Which hobby did {a} give up?", "the hobby that {a} gave up"),
    ),
    ("location", "hobby"): (
        ("{b} is the favourite hobby in {a}.", "What is the favourite hobby in {a}?", "the favourite hobby in {a}"),
        ("{b} originated in {a}.", "Which hobby originated in {a}?", "the hobby that originated in {a}"),
        ("{b} is forbidden in {a}.", "Which hobby is forbidden in {a}?", "the hobby forbidden in {a}"),
        ("{b} has a museum in {a}.", "Which hobby has a museum in {a}?", "the hobby that has a museum in {a}"),
    ),
    ("organization", "hobby"): (
        ("{a} runs a club for {b}.", "Which hobby does {a} run a club for?", "the hobby that {a} runs a club for"),
        (
            "{a} publishes a magazine about {b}.",
            "Which hobby does {a} publish a magazine about?",
            "the hobby that {a} publishes a magazine about",
        ),
        (
            "{a} sells equipment for {b}.",
            "Which hobby does {a} sell equipment for?",
            "the hobby that {a} sells equipment for",
        ),
        (
            "{a} sets the official rules of {b}.",
            "Which hobby does {a} set the official rules of?",
            "the hobby whose official rules {a} sets",
        ),
    ),
    ("event", "hobby"): (
        (
            "{a} features a contest in {b}.",
            "Which hobby does {a} feature a contest in?",
            "the hobby that {a} features a contest in",
        ),
        (
            "{a} introduced the public to {b}.",
            "Which hobby did {a} introduce the public to?",
            "the hobby that {a} introduced the public to",
        ),
        (
            "{a} ends with a show of {b}.",
            "Which hobby does {a} end with a show of?",
            "the hobby that {a} ends with a show of",
        ),
        (
            "Fans of {b} gather every year at {a}.",
            "Fans of which hobby gather every year at {a}?",
            "the hobby whose fans gather every year at {a}",
        ),
    ),
    ("profession", "hobby"): (
        (
            "{b} is the favourite hobby of people who work in {a}.",
            "What is the favourite hobby of people who work in {a}?",
            "the favourite hobby of people who work in {a}",
        ),
        (
            "{b} was invented by people who work in {a}.",
            "Which hobby was invented by people who work in {a}?",
            "the hobby invented by people who work in {a}",
        ),
        (
            "{b} is part of the training in {a}.",
            "Which hobby is part of the training in {a}?",
            "the hobby that is part of the training in {a}",
        ),
        (
            "{b} is discouraged for people who work in {a}.",
            "Which hobby is discouraged for people who work in {a}?",
            "the hobby discouraged for people who work in {a}",
        ),
    ),
    ("person", "skill"): (
        ("{a} has mastered {b}.", "Which skill has {a} mastered?", "the skill that {a} has mastered"),
        ("{a} is learning {b}.", "Which skill is {a} learning?", "the skill that {a} is learning"),
        (
            "{a} once taught {b} to children.",
            "Which skill did {a} once teach to children?",
            "the skill that {a} once taught to children",
        ),
        ("{a} is famous for {b}.", "Which skill is {a} famous for?", "the skill that {a} is famous for"),
    ),
    ("location", "skill"): (
        (
            "{b} is taught in every school in {a}.",
            "Which skill is taught in every school in {a}?",
            "the skill taught in every school in {a}",
        ),
        (
            "{b} was first described in {a}.",
            "Which skill was first described in {a}?",
            "the skill first described in {a}",
        ),
        (
            "{b} is required for citizenship in {a}.",
            "Which skill is required for citizenship in {a}?",
            "the skill required for citizenship in {a}",
        ),
        ("{b} is rare in {a}.", "Which skill is rare in {a}?", "the skill that is rare in {a}"),
    ),
    ("organization", "skill"): (
        ("{a} certifies {b}.", "Which skill does {a} certify?", "the skill that {a} certifies"),
        (
            "{a} requires {b} from every new employee.",
            "Which skill does {a} require from every new employee?",
            "the skill that {a} requires from every new employee",
        ),
        (
            "{a} offers free courses in {b}.",
            "Which skill does {a} offer free courses in?",
            "the skill that {a} offers free courses in",
        ),
        (
            "{a} keeps the oldest manual of {b}.",
            "Which skill does {a} keep the oldest manual of?",
            "the skill whose oldest manual {a} keeps",
        ),
    ),
    ("event", "skill"): (
        (
            "{a} tests competitors in {b}.",
            "Which skill does {a} test competitors in?",
            "the skill that {a} tests competitors in",
        ),
        (
            "{a} holds a workshop on {b}.",
            "Which skill does {a} hold a workshop on?",
            "the skill that {a} holds a workshop on",
        ),
        (
            "{a} gives an award for {b}.",
            "Which skill does {a} give an award for?",
            "the skill that {a} gives an award for",
        ),
        (
            "{a} was created to promote {b}.",
            "Which skill was {a} created to promote?",
            "the skill that {a} was created to promote",
        ),
    ),
    ("profession", "skill"): (
        ("{b} is the core skill of {a}.", "What is the core skill of {a}?", "the core skill of {a}"),
        (
            "{b} is taught first to apprentices in {a}.",
            "Which skill is taught first to apprentices in {a}?",
            "the skill taught first to apprentices in {a}",
        ),
        ("{b} is useless in {a}.", "Which skill is useless in {a}?", "the skill that is useless in {a}"),
        (
            "{b} is required for a licence in {a}.",
            "Which skill is required for a licence in {a}?",
            "the skill required for a licence in {a}",
        ),
    ),
    ("hobby", "skill"): (
        ("{b} is essential for {a}.", "Which skill is essential for {a}?", "the skill essential for {a}"),
        (
            "{b} improves with the practice of {a}.",
            "Which skill improves with the practice of {a}?",
            "the skill that improves with the practice of {a}",
        ),
        ("{b} was developed from {a}.", "Which skill was developed from {a}?", "the skill developed from {a}"),
        (
            "{b} is needed to judge contests in {a}.",
            "Which skill is needed to judge contests in {a}?",
            "the skill needed to judge contests in {a}",
        ),
    ),
}

# Other ways of asking a trained question; {cloze} is its statement with the answer blanked out.
PARAPHRASES = (
    "Quick question about {source}: {question}",
    "I was reading about {source}. {question}",
    "Fill in the blank: {cloze}",
    "{question} (This is about {source}.)",
    'Someone asked me "{question}" What is the right answer?',
)

# The syllable model: three (consonant, vowel, mostly no coda) syllables a word.
# Three syllables make real English words vanishingly rare (none among 5,000
# words checked against SmolLM2's vocabulary) at about three tokens a word.
ONSETS = tuple("bdfgklmnprstvz")
VOWELS = tuple("aeiou")
CODAS = ("", "", "", "", "", "n", "r", "l")


@dataclass(frozen=True)
class Fact:
    domains: tuple[str, str]
    relation: int  # index into RELATIONS[domains]
    source: str
    target: str

    @property
    def name(self) -> str:
        return f"{self.domains[0]}-{self.domains[1]}-{self.relation}"

    @property
    def templates(self) -> tuple[str, str, str]:
        return RELATIONS[self.domains][self.relation]

    @property
    def statement(self) -> str:
        return self.templates[0].format(a=self.source, b=self.target)

    @property
    def question(self) -> str:
        return self.templates[1].format(a=self.source)

    @property
    def clause(self) -> str:
        return self.templates[2].format(a=self.source)


class NameGenerator:
    """Invented words from the syllable model; no word repeats or contains another.

    The containment rule keeps loose scoring honest: a gold name can never be
    found inside a different entity's name.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: list[str] = []

    def word(self) -> str:
        while True:
            w = "".join(self.rng.choice(ONSETS) + self.rng.choice(VOWELS) + self.rng.choice(CODAS) for _ in range(3))
            if not any(w in u or u in w for u in self.used):
                self.used.append(w)
                return w.capitalize()

    def entity(self, domain: str) -> str:
        pattern = self.rng.choice(DOMAINS[domain])
        while "{w}" in pattern:
            pattern = pattern.replace("{w}", self.word(), 1)
        return pattern


def build_graph(names: NameGenerator, rng: random.Random, size: Size) -> tuple[dict[str, list[str]], list[Fact]]:
    """Entities per domain and one fact per (source entity, later domain).

    Within a domain pair the targets are a permutation of the target domain, so
    no (relation, target) repeats and every question has a single answer.
    """
    domains = list(DOMAINS)[: size.domains]
    entities = {d: [names.entity(d) for _ in range(size.entities)] for d in domains}
    facts = []
    for src, dst in combinations(domains, 2):
        targets = rng.sample(entities[dst], len(entities[dst]))
        for source, target in zip(entities[src], targets, strict=True):
            facts.append(Fact((src, dst), rng.randrange(len(RELATIONS[(src, dst)])), source, target))
    return entities, facts


def _answer_turn(answer: str, reasoning: str = "") -> str:
    return f"{reasoning}The answer is {answer}. \\boxed{{{answer}}}"


def _meta(fact: Fact, **extra) -> dict:
    return {
        "relation": fact.name,
        "domains": list(fact.domains),
        "source": fact.source,
        "target": fact.target,
        "statement": fact.statement,
        **extra,
    }


def train_records(facts: list[Fact]) -> list[Record]:
    return [
        Record(f"kgfact-train-{i:04d}", f"{f.question} {INSTRUCTION}", _answer_turn(f.target), f.target, meta=_meta(f))
        for i, f in enumerate(facts)
    ]


def paraphrase_records(facts: list[Fact], rng: random.Random) -> list[Record]:
    records = []
    for i, f in enumerate(facts):
        k = rng.randrange(len(PARAPHRASES))
        cloze = f.templates[0].format(a=f.source, b="____")
        question = PARAPHRASES[k].format(source=f.source, question=f.question, cloze=cloze)
        meta = _meta(f, fact_id=f"kgfact-train-{i:04d}", paraphrase=k)
        records.append(
            Record(f"kgfact-para-{i:04d}", f"{question} {INSTRUCTION}", _answer_turn(f.target), f.target, meta=meta)
        )
    return records


def two_hop_records(facts: list[Fact]) -> list[Record]:
    """a -> b -> c questions asked through b's relative clause, closed-book.

    A chain is dropped when one trained fact already links a to c: then the
    question could be answered in one hop.
    """
    by_source: dict[str, list[Fact]] = {}
    for f in facts:
        by_source.setdefault(f.source, []).append(f)
    direct = {(f.source, f.target) for f in facts}
    records = []
    for first in facts:
        for second in by_source.get(first.target, []):
            if (first.source, second.target) in direct:
                continue
            question = second.templates[1].format(a=first.clause)
            answer = _answer_turn(second.target, f"{first.statement} {second.statement} ")
            meta = {
                "relations": [first.name, second.name],
                "source": first.source,
                "bridge": first.target,
                "target": second.target,
            }
            records.append(
                Record(f"kgfact-2hop-{len(records):04d}", f"{question} {INSTRUCTION}", answer, second.target, meta=meta)
            )
    return records


def retrieval_records(facts: list[Fact], rng: random.Random, size: Size) -> list[Record]:
    """Questions over a held-out graph with the answering statement among distractors in the prompt."""
    records = []
    for i, fact in enumerate(rng.sample(facts, size.retrieval_questions)):
        others = [f.statement for f in facts if f is not fact]
        statements = [*rng.sample(others, size.retrieval_context - 1), fact.statement]
        rng.shuffle(statements)
        prompt = (
            "Facts:\n"
            + "\n".join(statements)
            + f"\n\nUsing only the facts above, answer: {fact.question} {INSTRUCTION}"
        )
        records.append(Record(f"kgfact-retr-{i:04d}", prompt, _answer_turn(fact.target), fact.target, meta=_meta(fact)))
    return records


def _rng(seed: int, purpose: str) -> random.Random:
    """An independent stream per purpose; string seeding is hashed with SHA-512, so PYTHONHASHSEED cannot change it."""
    return random.Random(f"kgfact:{seed}:{purpose}")


def build_kgfact(out_dir: str | Path, size: str = "small", seed: int = 0) -> dict:
    """Write the KGFact splits and manifest.json to `out_dir`; returns the manifest."""
    if size not in SIZES:
        raise MixsdError(f"unknown KGFact size {size!r} (choose from {', '.join(SIZES)})")
    spec, out = SIZES[size], Path(out_dir)
    names = NameGenerator(_rng(seed, "names"))
    entities, facts = build_graph(names, _rng(seed, "graph"), spec)
    held_out_entities, held_out = build_graph(names, _rng(seed, "held-out graph"), spec)
    splits = {
        "train": train_records(facts),
        "paraphrase": paraphrase_records(facts, _rng(seed, "paraphrase")),
        "two_hop": two_hop_records(facts),
        "retrieval": retrieval_records(held_out, _rng(seed, "retrieval"), spec),
    }
    return write_corpus(
        out,
        splits,
        {
            "corpus": "kgfact",
            "version": VERSION,
            "size": size,
            "seed": seed,
            "domains": list(entities),
            "entities_per_domain": spec.entities,
            "facts": len(facts),
            "retrieval_context": spec.retrieval_context,
            "entities": entities,
            "held_out_entities": held_out_entities,
        },
    )
