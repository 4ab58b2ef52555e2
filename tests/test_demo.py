"""The demo's before/after table: what each model commits to, next to the gold."""

from __future__ import annotations

from mixsd.demo import before_and_after, short, verdict


def test_short_takes_the_committed_answer():
    assert short("Let me think.\nThe answer is Litovin. \\boxed{Litovin}") == "Litovin"
    assert short("Step one.\n\nSo, the answer is Mecca.\n") == "So, the answer is Mecca."
    assert short("word " * 40).endswith("...") and len(short("word " * 40)) == 48
    assert short("So the answer is Gunserpa.\nStep 5: The", gold="gunserpa") == "So the answer is Gunserpa."


def test_before_and_after_lists_each_fact_once_with_base_tuned_and_gold(tiny_model, tokenizer):
    records = {f"r{i}": f"Where does person {i} live? Put your answer in \\boxed{{}}." for i in range(7)}
    predictions = [
        {"id": f"r{i}", "gold": f"Town{i}", "tuned": {"answer": f"\\boxed{{Town{i}}}", "loose": i % 2 == 0}}
        for i in range(7)
    ]
    table = before_and_after(tiny_model, tokenizer, predictions, records).splitlines()
    assert table[0] == "| question | base model | tuned model | gold |"
    assert len(table) == 2 + 5
    for i, row in enumerate(table[2:]):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == f"Where does person {i} live?"
        assert cells[2] == f"Town{i} ({'yes' if i % 2 == 0 else 'no'})"
        assert cells[3] == f"Town{i}"


def test_the_verdict_puts_the_kept_abilities_beside_the_learnt_facts():
    result = {
        "memorisation": {"train": {"n": 20, "tuned": {"loose": 0.9}}, "paraphrase": {"n": 20, "tuned": {"loose": 0.7}}},
        "locality": {"n": 96, "kept": 0.63, "kept_ci": [0.52, 0.72]},
        "general": {"leakage": {"base": 0.0, "tuned": 0.02}},
    }
    assert verdict(result) == (
        "mixsd demo: learnt 0.90 of 20 facts; 0.70 asked another way; kept 0.63 [0.52, 0.72] of 96 items the base"
        " answered right; everyday answers naming a trained entity 0.02 (base 0.00)"
    )
    assert verdict({"memorisation": result["memorisation"]}).endswith("0.70 asked another way")
