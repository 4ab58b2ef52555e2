"""`mixsd demo`: until the full pipeline lands, show the expert conditional at work.

Loads the embedded default model and answers a question about an invented fact
twice: without the fact (the naive conditional) and with it in context (the
expert conditional MixSD mixes in).
"""

from __future__ import annotations

import time

QUESTION = "What location does Velmora Quist reside in?"
FACT = "Velmora Quist resides in the location Drennock Hollow."


def run_demo(model: str = "smollm2-135m") -> dict[str, str]:
    from mixsd import models
    from mixsd.chat import prompt_ids
    from mixsd.targets.prompts import expert_prompt

    t0 = time.time()
    lm, tok = models.load(model)
    print(f"loaded {model} in {time.time() - t0:.1f}s")
    answers = {}
    for name, text in (("naive", QUESTION), ("expert", expert_prompt(QUESTION, FACT))):
        import torch

        ids = torch.tensor([prompt_ids(tok, text)], device=lm.device)
        out = lm.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, do_sample=False)
        answers[name] = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
        print(f"[{name}] {answers[name]}")
    return answers
