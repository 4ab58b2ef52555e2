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

import yaml

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


# demo: half of small's entities (50 facts, shorter retrieval contexts); mini (20 facts): what `make demo` trains
# with the recipe's 14 epochs and still fits 15 minutes on a 2-core CPU
SIZES = {
    "mini": Size(5, 2, 10, 5),
    "demo": Size(5, 5, 20, 10),
    "small": Size(5, 10, 50, 25),
    "large": Size(7, 25, 100, 50),
}

# The sentence templates are data; kgfact.yaml explains {w}, {a}, {b} and the paraphrase fields.
_TEMPLATES = yaml.safe_load(Path(__file__).with_name("kgfact.yaml").read_text(encoding="utf-8"))
# name patterns per domain, the paper's first seven domains in its order
DOMAINS: dict[str, tuple[str, ...]] = {domain: tuple(patterns) for domain, patterns in _TEMPLATES["domains"].items()}
# (statement, question, relative clause) per ordered (source, target) domain pair
RELATIONS: dict[tuple[str, str], tuple[tuple[str, str, str], ...]] = {
    tuple(pair.split(" -> ")): tuple(tuple(relation) for relation in relations)
    for pair, relations in _TEMPLATES["relations"].items()
}
PARAPHRASES: tuple[str, ...] = tuple(_TEMPLATES["paraphrases"])

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
        self.used: set[str] = set()
        self.inside: set[str] = set()  # every substring of a used word at least as long as the shortest word

    def word(self) -> str:
        # Sets, not a scan of every word so far: a scan made a 10,000-fact corpus quadratic in its entities.
        shortest = 3 * 2  # three syllables of at least an onset and a vowel
        while True:
            w = "".join(self.rng.choice(ONSETS) + self.rng.choice(VOWELS) + self.rng.choice(CODAS) for _ in range(3))
            pieces = {w[i:j] for i in range(len(w)) for j in range(i + shortest, len(w) + 1)}
            if w not in self.inside and not pieces & self.used:
                self.used.add(w)
                self.inside |= pieces
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


def answer_turn(answer: str, reasoning: str = "") -> str:
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
        Record(f"kgfact-train-{i:04d}", f"{f.question} {INSTRUCTION}", answer_turn(f.target), f.target, meta=_meta(f))
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
            Record(f"kgfact-para-{i:04d}", f"{question} {INSTRUCTION}", answer_turn(f.target), f.target, meta=meta)
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
            answer = answer_turn(second.target, f"{first.statement} {second.statement} ")
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
        shown = "\n".join(statements)
        prompt = f"Facts:\n{shown}\n\nUsing only the facts above, answer: {fact.question} {INSTRUCTION}"
        records.append(Record(f"kgfact-retr-{i:04d}", prompt, answer_turn(fact.target), fact.target, meta=_meta(fact)))
    return records


def _rng(seed: int, purpose: str) -> random.Random:
    """An independent stream per purpose; string seeding is hashed with SHA-512, so PYTHONHASHSEED cannot change it."""
    return random.Random(f"kgfact:{seed}:{purpose}")


def build_kgfact(out_dir: str | Path, size: str = "small", seed: int = 0) -> dict:
    """Write the KGFact splits and manifest.json to `out_dir`; returns the manifest."""
    if size not in SIZES:
        raise MixsdError(f"unknown KGFact size {size!r} (choose from {', '.join(SIZES)})")
    spec = SIZES[size]
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
        out_dir,
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
