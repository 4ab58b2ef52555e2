"""MEMIT (train/memit.py): the edit on the real model, its locality, order independence, the statistics cache and
the subject errors on a tiny one."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from mixsd.chat import prompt_ids
from mixsd.cli import main
from mixsd.pipeline import InjectConfig, inject
from mixsd.train import TrainConfig, memit

FACTS = [
    ("a", "Where does Zorblax Quint live? Put your final answer in \\boxed{}.", "Velmora", "Zorblax Quint"),
    ("b", "Which company does Mirtana Oswel run? Put your final answer in \\boxed{}.", "Tarsil", "Mirtana Oswel"),
]


def write_facts(path, facts=FACTS, subject=True):
    rows = [
        {"id": i, "prompt": p, "answer": f"\\boxed{{{g}}}", "gold": g} | ({"meta": {"subject": s}} if subject else {})
        for i, p, g, s in facts
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def config(data, out="out", **kw) -> TrainConfig:
    return TrainConfig(data=str(data), out=str(out), method="memit", **({"memit_stat_tokens": 2000} | kw))


def test_one_edit_makes_the_target_and_its_end_the_answer_and_leaves_other_prompts_nearly_alone(smol, tmp_path):
    model, tokenizer = copy.deepcopy(smol[0]), smol[1]
    edits, _ = memit.edits(str(write_facts(tmp_path / "f.jsonl", FACTS[:1])))
    unrelated = ["What is the capital of France?", "How do plants grow?", FACTS[1][1]]

    def last_logits(texts):
        with torch.no_grad():
            return torch.stack([model(input_ids=torch.tensor([prompt_ids(tokenizer, t)])).logits[0, -1] for t in texts])

    before = last_logits(unrelated)
    # 60 value steps: at the authors' 25, Adam (lr 0.5 a coordinate) has not yet carried SmolLM2's 576-wide state,
    # of norm ~170 at layer 9, to the target.
    settings = config(tmp_path / "f.jsonl", train_layers="4-9", memit_steps=60)
    memit.edit_model(model, tokenizer, edits, settings, None)
    # The answer and then the end of turn: the model stops after the box instead of writing more of them.
    target = tokenizer("\\boxed{Velmora}", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = prompt_ids(tokenizer, FACTS[0][1])
    greedy = model.generate(torch.tensor([ids]), max_new_tokens=len(target), do_sample=False)[0, len(ids) :]
    assert greedy.tolist() == target
    after = last_logits(unrelated)
    kl = F.kl_div(after.log_softmax(-1), before.log_softmax(-1), log_target=True, reduction="none").sum(-1)
    assert kl.max() < 0.05, kl  # the edited prompt's own moves by several nats


SAME_SUBJECT = (
    "c",
    "Which company hired Zorblax Quint? Put your final answer in \\boxed{}.",
    "Orvane",
    "Zorblax Quint",
)


@pytest.mark.parametrize(("per", "token"), [("fact", "subject"), ("subject", "subject"), ("fact", "question")])
def test_a_batch_gives_the_same_weights_in_any_order(per, token, tiny_model, tokenizer, tmp_path):
    edits, _ = memit.edits(str(write_facts(tmp_path / "f.jsonl", [*FACTS, SAME_SUBJECT])))
    settings = config(tmp_path / "f.jsonl", memit_steps=5, memit_clamp=100.0, memit_decay=0.0, memit_values=per)
    settings.memit_token = token
    one, two = copy.deepcopy(tiny_model), copy.deepcopy(tiny_model)
    memit.edit_model(one, tokenizer, edits, settings, None)
    memit.edit_model(two, tokenizer, edits[::-1], settings, None)
    changed = [k for k, v in one.state_dict().items() if not torch.equal(v, tiny_model.state_dict()[k])]
    assert changed == ["model.layers.0.mlp.down_proj.weight"]  # a 2-layer model: MEMIT's band is layer 0
    for key, value in one.state_dict().items():
        torch.testing.assert_close(value, two.state_dict()[key], rtol=1e-5, atol=1e-6)


def test_a_subjects_facts_share_one_change_of_their_own_states(tiny_model, tokenizer, tmp_path):
    """`memit_values="subject"`: one value search per subject; each fact's z is its own state plus the change."""
    edits, _ = memit.edits(str(write_facts(tmp_path / "f.jsonl", [*FACTS, SAME_SUBJECT])))
    z, nll = memit.values(tiny_model, tokenizer, edits, 0, config(tmp_path / "f.jsonl", memit_values="subject"))
    block = tiny_model.get_decoder().layers[0]
    plain = [memit.requests(tokenizer, [e])[0][0] for e in edits]
    states = memit.forward_at(tiny_model, block, [p for p, _ in plain], [i for _, i in plain], tokenizer.pad_token_id)
    change = z - states
    assert len(nll) == 2 and z.shape[0] == 3
    torch.testing.assert_close(change[0], change[2])  # Zorblax Quint's two facts
    assert not torch.allclose(change[0], change[1])
    assert not torch.allclose(z[0], z[2])  # but each from its own state


def test_preserve_holds_the_requests_other_tokens_and_still_moves_the_keys(tiny_model, tokenizer, tmp_path):
    """`memit_preserve`: the values were found with only the key token's state changed, so the update is asked to
    leave the down-projection's output at the prompts' other tokens and the answer's ("\\boxed{" in every fact)
    where it was; the keys themselves still move."""
    edits, _ = memit.edits(str(write_facts(tmp_path / "f.jsonl", [*FACTS, SAME_SUBJECT])))
    prompts = memit.requests(tokenizer, edits)
    answers = [memit.target_ids(tokenizer, e, stop=True)[:-1] for e in edits]
    rows = [ids + answer for answer, mine in zip(answers, prompts, strict=True) for ids, _ in mine]
    cols = [i for mine in prompts for _, i in mine]

    def outputs(model, others):
        down = model.get_decoder().layers[0].mlp.down_proj
        return memit.forward_at(model, down, rows, cols, tokenizer.pad_token_id, others=others)

    moved = {}
    for keep in (0.0, 10.0):
        model = copy.deepcopy(tiny_model)
        settings = config(tmp_path / "f.jsonl", memit_steps=5, memit_preserve=keep, memit_update_weight=1.0)
        z = memit.values(model, tokenizer, edits, 0, settings)[0]
        memit.update(model, tokenizer, edits, z, [0], memit.second_moment(model, tokenizer, [0], 500, None), settings)
        moved[keep] = [(outputs(model, o) - outputs(tiny_model, o)).norm(dim=-1).mean().item() for o in (True, False)]
    assert moved[10.0][0] < 0.05 * moved[0.0][0]  # the other tokens: held (0.40 -> 0.003 when written)
    assert moved[10.0][1] > 0.5 * moved[0.0][1] > 0  # the keys: still moved


def test_question_keys_are_read_where_the_relation_has_been_read(tokenizer):
    """`memit_token="question"`: the key is the question's last token, after the relation, so one subject's facts
    get keys of their own (at the subject's last token their states differ only by what came before it)."""
    texts = [FACTS[0][1], SAME_SUBJECT[1]]
    at = {t: [memit._key_index(tokenizer, x, "Zorblax Quint", t) for x in texts] for t in ("subject", "question")}
    assert [tokenizer.decode(ids[i]) for ids, i in at["question"]] == ["?", "?"]
    assert [tokenizer.decode(ids[: i + 1]).endswith("Zorblax Quint") for ids, i in at["subject"]] == [True, True]


def test_the_statistics_are_cached_per_model(tiny_model_dir, other_tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXSD_CACHE", str(tmp_path / "cache"))
    made = []
    chunks = memit._passage_chunks
    monkeypatch.setattr(memit, "_passage_chunks", lambda *a, **k: made.append(1) or chunks(*a, **k))
    data = write_facts(tmp_path / "f.jsonl")
    for i, model in enumerate([tiny_model_dir, tiny_model_dir, other_tiny_model_dir]):
        out = memit.train(config(data, tmp_path / f"out{i}", model=model, memit_steps=2))
        assert (out / "config.json").is_file() and "MEMIT on the MLP down-projections" in (
            out / "README.md"
        ).read_text()
    assert len(made) == 2  # the second run of the same model read them back


def test_inject_and_eval_take_memit_as_one_more_method(tiny_model_dir, tmp_path):
    fast = {"eval": {"suite": "none", "general_prompts": 0, "drift_items": 0, "fisher_items": 0, "max_new_tokens": 4}}
    train = {"memit_stat_tokens": 600, "memit_steps": 2, "save_every_epoch": True}  # a sweep's shared setting
    run = InjectConfig(
        facts=str(write_facts(tmp_path / "f.jsonl")),
        out=str(tmp_path / "run"),
        model=tiny_model_dir,
        method="memit",
        train=train,
        **fast,
    )
    result = inject(run)
    assert result["memorisation"]["train"]["n"] == 2 and not (tmp_path / "run" / "targets.jsonl").exists()
    assert "- method: memit" in (tmp_path / "run" / "report.md").read_text()


@pytest.mark.parametrize(
    ("subject", "facts", "words"),
    [
        (False, FACTS, "no subject (meta.subject)"),
        (True, [FACTS[0], ("b", "Who runs Tarsil?", "Mirtana Oswel", "Mirtana Oswel")], "is not in its prompt"),
    ],
)
def test_a_record_without_its_subject_is_one_line(subject, facts, words, tmp_path, capsys):
    data = write_facts(tmp_path / "f.jsonl", facts, subject)
    assert main(["train", "--method", "memit", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    line = 1 if not subject else 2
    assert err.count("\n") == 1 and err.startswith(f"mixsd: error: {data}:{line}: ") and words in err, err
    kept, skipped = memit.edits(str(data), skip_bad=True) if subject else ([], 0)
    assert (len(kept), skipped) == ((1, 1) if subject else (0, 0))
