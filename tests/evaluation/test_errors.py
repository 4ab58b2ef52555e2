"""Error breakdown of wrong held-out answers."""

from __future__ import annotations

from mixsd.answers import normalize
from mixsd.evaluation.errors import CATEGORIES, breakdown, classify

NAMES = {normalize("Relvaba"), normalize("Miminbol Society")}
PROMPT = (
    "Facts:\nDizove Ferzivu lives in Kolmar.\n\nUsing only the facts above, answer: Where does Dizove Ferzivu live?"
)
REASONING = "The facts say that Dizove Ferzivu lives in a town by the sea, so the place must be"


def test_leakage_names_an_injected_entity_not_in_the_prompt():
    assert classify(f"{REASONING} Relvaba. \\boxed{{Relvaba}}", PROMPT, "Kolmar", NAMES) == "leakage"
    assert classify("He works for the Miminbol Society.", PROMPT, "Kolmar", NAMES) == "leakage"


def test_an_entity_in_the_prompt_or_the_gold_is_not_leakage():
    names = NAMES | {normalize("Kolmar"), normalize("Dizove Ferzivu")}
    assert classify(f"{REASONING} Dizove. \\boxed{{Dizove}}", PROMPT, "Kolmar", names) == "genuine"
    assert classify("\\boxed{Kolmarx}", PROMPT, "Kolmar", names) == "collapse"


def test_format_collapse_genuine():
    assert classify(f"{REASONING} Zanzibar.", PROMPT, "Kolmar", NAMES) == "format"
    assert classify("The answer is Zanzibar. \\boxed{Zanzibar}", PROMPT, "Kolmar", NAMES) == "collapse"
    assert classify(f"{REASONING} Zanzibar. \\boxed{{Zanzibar}}", PROMPT, "Kolmar", NAMES) == "genuine"


def test_breakdown_counts_and_fractions():
    wrong = [
        ("The answer is Relvaba. \\boxed{Relvaba}", PROMPT, "Kolmar"),
        ("no idea", PROMPT, "Kolmar"),
        ("\\boxed{Zanzibar}", PROMPT, "Kolmar"),
        ("\\boxed{Zanzibar}", PROMPT, "Kolmar"),
    ]
    out = breakdown(wrong, {"Relvaba", "Miminbol Society", ""})
    assert out["wrong"] == 4
    assert out["counts"] == {"leakage": 1, "format": 1, "collapse": 2, "genuine": 0}
    assert out["fractions"]["collapse"] == 0.5
    assert list(out["counts"]) == list(CATEGORIES)
    assert breakdown([], NAMES)["fractions"] == dict.fromkeys(CATEGORIES, 0.0)
