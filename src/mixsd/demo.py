"""`mixsd demo` (what `make demo` runs): inject KGFact-small into the embedded model, end to end.

Builds the 100-fact corpus, generates MixSD targets at lam 0.3, fine-tunes,
and scores memorisation and retention for the base and tuned model. Sized to
finish in about 20 minutes on a 2-core CPU; rerunning continues or skips
finished stages.
"""

from __future__ import annotations

from pathlib import Path

from mixsd.data.kgfact import build_kgfact
from mixsd.evaluation.run import format_table
from mixsd.pipeline import InjectConfig, inject

# Short targets keep generation and training quick; KGFact answers need far fewer tokens.
DEMO_TARGETS = {"max_new_tokens": 64}
DEMO_EVAL = {"max_new_tokens": 64}


def run_demo(model: str = "smollm2-135m", out: str = "runs/demo") -> dict:
    facts = Path(out) / "kgfact-small"
    if not (facts / "manifest.json").is_file():
        build_kgfact(facts, size="small", seed=0)
    result = inject(InjectConfig(facts=str(facts), out=str(out), model=model, method="mixsd", lam=0.3,
                                 targets=DEMO_TARGETS, eval=DEMO_EVAL))
    print("\nmixsd demo: base vs tuned (loose / strict accuracy; retention = tuned / base)\n")
    print(format_table(result))
    return result
