"""`mixsd demo` (what `make demo` runs): inject 20 invented facts into the embedded model with the recipe.

First a ten-second look at the two conditionals MixSD mixes: the model answers
a question about an invented fact without it (naive) and with it in context
(expert). Then the real run: build KGFact's 20-fact mini corpus, generate MixSD
targets at lam 0.3, train with the recipe (inject's defaults), and score, for the
base and the tuned model, memorisation beside what the base could do before:
the known items it still answers (locality) and the everyday-prompt probe. Last,
five of the injected facts as both models answer them. Rerunning continues or
skips finished stages.
"""

from __future__ import annotations

from pathlib import Path

from mixsd import models
from mixsd.answers import last_boxed
from mixsd.data.kgfact import build_kgfact
from mixsd.data.records import read_records
from mixsd.evaluation.generation import decode, greedy_answers
from mixsd.pipeline import InjectConfig, inject
from mixsd.report.table import format_table
from mixsd.settings import DEFAULT_MODEL, load_yaml
from mixsd.targets.prompts import expert_prompt

# the demo's settings; `mixsd inject --config` reads it too
DEMO_CONFIG = Path(__file__).parent / "configs" / "demo.yaml"

QUESTION = "What location does Velmora Quist reside in?"
FACT = "Velmora Quist resides in the location Drennock Hollow."


def show_conditionals(model, tokenizer) -> dict[str, str]:
    prompts = {"naive": QUESTION, "expert": expert_prompt(QUESTION, FACT)}
    ids = greedy_answers(model, tokenizer, list(prompts.values()), max_new_tokens=40, desc="conditionals")
    answers = dict(zip(prompts, (a.strip() for a in decode(tokenizer, ids)), strict=True))
    print(
        f"Q: {QUESTION}\n  naive  (no fact):      {answers['naive']}\n  expert (fact in context): {answers['expert']}"
    )
    return answers


def short(answer: str, gold: str = "", width: int = 48) -> str:
    """What an answer commits to: its boxed answer, else its last line naming `gold`, else its last line."""
    lines = [line for line in answer.strip().splitlines() if line.strip()]
    named = [line for line in lines if gold and gold.lower() in line.lower()]
    text = last_boxed(answer) or (named or lines or [""])[-1]
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def before_and_after(model, tokenizer, predictions: list[dict], records: dict[str, str], n: int = 5) -> str:
    """A table of `n` injected facts: the question, the base model's answer, the tuned model's, and the gold."""
    shown = predictions[:n]
    base = decode(tokenizer, greedy_answers(model, tokenizer, [records[p["id"]] for p in shown], desc="base"))
    lines = ["| question | base model | tuned model | gold |", "|---|---|---|---|"]
    for p, before in zip(shown, base, strict=True):
        prompt = records[p["id"]]
        question = prompt[: prompt.index("?") + 1] if "?" in prompt else prompt  # without the answer-format request
        mark = "yes" if p["tuned"]["loose"] else "no"
        lines.append(
            f"| {question} | {short(before)} | {short(p['tuned']['answer'], p['gold'])} ({mark}) | {p['gold']} |"
        )
    return "\n".join(lines)


def verdict(result: dict) -> str:
    """The demo's last word: the facts learnt beside what the base could do before (locality, everyday answers)."""
    mem = result["memorisation"]
    parts = [f"learnt {mem['train']['tuned']['loose']:.2f} of {mem['train']['n']} facts"]
    if "paraphrase" in mem:
        parts.append(f"{mem['paraphrase']['tuned']['loose']:.2f} asked another way")
    if loc := result.get("locality"):
        low, high = loc["kept_ci"]
        parts.append(f"kept {loc['kept']:.2f} [{low:.2f}, {high:.2f}] of {loc['n']} items the base answered right")
    if leakage := result.get("general", {}).get("leakage"):
        parts.append(f"everyday answers naming a trained entity {leakage['tuned']:.2f} (base {leakage['base']:.2f})")
    return "mixsd demo: " + "; ".join(parts)


def run_demo(model: str = DEFAULT_MODEL, out: str = "runs/demo", bf16: bool | None = None) -> dict:
    base, tokenizer = models.load(model)
    show_conditionals(base, tokenizer)
    facts = Path(out) / "kgfact-mini"
    if not (facts / "manifest.json").is_file():
        build_kgfact(facts, size="mini", seed=0)
    settings = load_yaml(str(DEMO_CONFIG))
    if bf16 is not None:
        settings["train"] = {**settings.get("train", {}), "bf16": bf16}
    result = inject(InjectConfig(facts=str(facts), out=str(out), model=model, **settings))
    records = {r.id: r.prompt for r in read_records(facts / "train.jsonl")}
    print("\nFive of the injected facts, before and after (the answer each model commits to; yes = tuned is right):\n")
    print(before_and_after(base, tokenizer, result["predictions"]["train"], records))
    print("\nmixsd demo: base vs tuned (loose / strict accuracy; retention = tuned / base)\n")
    print(format_table(result))
    print(f"\n{verdict(result)}")
    print("\nNext: mixsd inject --facts YOUR_FILE.jsonl --out runs/mine  (the record format: README.md)")
    return result
