"""`mixsd demo` (what `make demo` runs): inject KGFact-small into the embedded model, end to end.

First a ten-second look at the two conditionals MixSD mixes: the model answers
a question about an invented fact without it (naive) and with it in context
(expert). Then the real run: build the 100-fact corpus, generate MixSD targets
at lam 0.3, fine-tune, and score memorisation and retention for the base and
tuned model. Rerunning continues or skips finished stages.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mixsd import models
from mixsd.chat import prompt_ids
from mixsd.data.kgfact import build_kgfact
from mixsd.pipeline import InjectConfig, inject
from mixsd.report.table import format_table
from mixsd.settings import DEFAULT_MODEL, load_yaml
from mixsd.targets.prompts import expert_prompt

DEMO_CONFIG = (
    Path(__file__).parent / "configs" / "demo.yaml"
)  # the demo's settings; `mixsd inject --config` reads it too

QUESTION = "What location does Velmora Quist reside in?"
FACT = "Velmora Quist resides in the location Drennock Hollow."


def show_conditionals(model_name: str) -> dict[str, str]:
    model, tokenizer = models.load(model_name)
    answers = {}
    for name, text in (("naive", QUESTION), ("expert", expert_prompt(QUESTION, FACT))):
        ids = torch.tensor([prompt_ids(tokenizer, text)], device=model.device)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, do_sample=False)
        answers[name] = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
    print(
        f"Q: {QUESTION}\n  naive  (no fact):      {answers['naive']}\n  expert (fact in context): {answers['expert']}"
    )
    return answers


def run_demo(model: str = DEFAULT_MODEL, out: str = "runs/demo") -> dict:
    show_conditionals(model)
    facts = Path(out) / "kgfact-small"
    if not (facts / "manifest.json").is_file():
        build_kgfact(facts, size="small", seed=0)
    settings = load_yaml(str(DEMO_CONFIG))
    result = inject(InjectConfig(facts=str(facts), out=str(out), model=model, **settings))
    print("\nmixsd demo: base vs tuned (loose / strict accuracy; retention = tuned / base)\n")
    print(format_table(result))
    return result
