"""Training end to end with the tiny random model on CPU: loss, labels, resume, saving, model card, bad input."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from train_testdata import make_records, target_row
from transformers import AutoModelForCausalLM, TrainerCallback

from mixsd import models
from mixsd.errors import MixsdError
from mixsd.io import write_jsonl
from mixsd.train import TrainConfig, train
from mixsd.train.run import prepare


def config(tiny_model_dir, data, out, **kw) -> TrainConfig:
    """A few steps on one repeated batch: 4 records, batch 4."""
    defaults = dict(model=tiny_model_dir, max_steps=6, batch_size=4, lr=3e-3, save_steps=0, seed=1)
    return TrainConfig(data=str(data), out=str(out), **(defaults | kw))


def logged_losses(out) -> list[float]:
    return [json.loads(line)["loss"] for line in (out / "train_log.jsonl").read_text().splitlines() if '"loss"' in line]


@pytest.mark.parametrize("method", ["mixsd", "sft"])
def test_supervised_loss_decreases(tiny_model_dir, targets_file, corpus_file, tmp_path, method):
    data = targets_file if method == "mixsd" else corpus_file
    out = train(config(tiny_model_dir, data, tmp_path / "out", method=method))
    losses = logged_losses(out)
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.5
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size == 49152


def test_opsd_pulls_the_student_toward_the_teacher(tiny_model_dir, corpus_file, tmp_path):
    """A student moved away from the frozen base teacher gets pulled back: the distillation loss falls.

    (Unperturbed, a random tiny model's student and teacher already agree up
    to the context's tiny effect, so there would be nothing to learn.)
    """
    run = prepare(
        config(
            tiny_model_dir,
            corpus_file,
            tmp_path / "out",
            method="opsd",
            max_steps=8,
            batch_size=2,
            max_completion_length=8,
        )
    )
    noise = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in run.trainer.model.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=noise))
    run.trainer.train()
    losses = [row["loss"] for row in run.trainer.state.log_history if "loss" in row]
    assert len(losses) == 8 and losses[-1] < 0.75 * losses[0]


def test_mixsd_trains_on_exactly_the_stored_ids(tiny_model_dir, tokenizer, tmp_path):
    """Labels are the sampled ids, even where they differ from a re-tokenisation of the decoded text."""
    records = make_records(3)
    rows = [target_row(r, tokenizer) for r in records]
    sampled = [
        [tokenizer.convert_tokens_to_ids(t) for t in ("The", "Ġans", "wer")] + [tokenizer.eos_token_id],
        rows[1]["mixsd"]["token_ids"],
        [17, 18, 19],
    ]
    for row, ids in zip(rows, sampled, strict=True):
        row["mixsd"]["token_ids"] = ids
    write_jsonl(tmp_path / "t.jsonl", rows)
    run = prepare(config(tiny_model_dir, tmp_path / "t.jsonl", tmp_path / "out"))
    labels = sorted([x for x in row if x != -100] for row in run.trainer.train_dataset["labels"])
    assert labels == sorted(sampled)


class Interrupt(TrainerCallback):
    """Stop the process mid-run, after a checkpoint, as a kill would."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 3:
            raise KeyboardInterrupt


def test_resumed_run_ends_with_the_same_weights(tiny_model_dir, targets_file, tmp_path):
    records_8 = tmp_path / "t8.jsonl"
    rows = [json.loads(line) for line in targets_file.read_text().splitlines()]
    write_jsonl(records_8, rows + [{**row, "id": f"{row['id']}-again"} for row in rows])
    settings = dict(max_steps=5, batch_size=2, save_steps=2)  # 4 steps per epoch: the resume crosses an epoch
    whole = train(config(tiny_model_dir, records_8, tmp_path / "whole", **settings))
    with pytest.raises(KeyboardInterrupt):
        train(config(tiny_model_dir, records_8, tmp_path / "split", **settings), callbacks=[Interrupt()])
    assert (tmp_path / "split" / "checkpoints" / "checkpoint-2").is_dir()
    split = train(config(tiny_model_dir, records_8, tmp_path / "split", resume=True, **settings))
    a, b = load_file(whole / "model.safetensors"), load_file(split / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [json.loads(line)["step"] for line in (split / "train_log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 5]  # five steps once each, then the summary
    assert not (split / "checkpoints").exists()


def test_lora_is_merged_for_plain_transformers(tiny_model_dir, targets_file, tmp_path, tokenizer):
    out = train(config(tiny_model_dir, targets_file, tmp_path / "out", lora=4, max_steps=2))
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert set(merged.state_dict()) == set(base.state_dict())
    changed = [k for k, v in merged.state_dict().items() if not torch.equal(v, base.state_dict()[k])]
    assert any("q_proj" in k for k in changed) and not any("embed" in k for k in changed)
    model, tok = models.load(str(out))
    assert tok.eos_token_id == tokenizer.eos_token_id


def test_lora_epoch_snapshots_are_merged_models_and_training_goes_on(tiny_model_dir, targets_file, tmp_path):
    """Each epoch's snapshot is merged into a copy: the last equals the final model, an earlier one differs."""
    out = train(config(tiny_model_dir, targets_file, tmp_path / "out", lora=4, max_steps=None, epochs=2))
    snapshots = train(
        config(tiny_model_dir, targets_file, tmp_path / "snap", lora=4, max_steps=None, epochs=2, save_every_epoch=True)
    )
    final = load_file(out / "model.safetensors")
    last = load_file(snapshots / "epochs" / "epoch-002" / "model.safetensors")
    first = load_file(snapshots / "epochs" / "epoch-001" / "model.safetensors")
    assert set(last) == set(final) and all(torch.equal(last[k], final[k]) for k in final)
    assert any(not torch.equal(first[k], final[k]) for k in final)


def test_save_adapter_writes_an_adapter_that_loads(tiny_model_dir, targets_file, tmp_path):
    out = train(
        config(tiny_model_dir, targets_file, tmp_path / "out", lora=4, use_dora=True, save_adapter=True, max_steps=2)
    )
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"], adapter["use_dora"]) == (4, 8, True)
    model, _ = models.load(str(out))
    assert any("lora" in name for name, _ in model.named_parameters())


def test_model_card_and_log(tiny_model_dir, targets_file, tmp_path):
    from mixsd.io import file_sha256

    out = train(config(tiny_model_dir, targets_file, tmp_path / "out", max_steps=2))
    card = (out / "README.md").read_text()
    for expected in (
        f"| base model | {tiny_model_dir} |",
        "| method | mixsd |",
        "| lam | 0.3 |",
        file_sha256(targets_file),
        "| records | 4 of 4 records used |",
        '"lr": 0.003',
        "- trl ",
    ):
        assert expected in card
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "loss" in row] == [1, 2]


def test_only_the_listed_layers_train(tiny_model_dir, targets_file, tmp_path):
    out = train(config(tiny_model_dir, targets_file, tmp_path / "out", max_steps=2, train_layers="1"))
    tuned, base = load_file(out / "model.safetensors"), load_file(f"{tiny_model_dir}/model.safetensors")
    changed = {k for k in base if not torch.equal(tuned[k], base[k])}
    assert changed and all(k.startswith("model.layers.1.") for k in changed)
    lora = train(config(tiny_model_dir, targets_file, tmp_path / "lora", lora=4, max_steps=2, train_layers="0"))
    changed = {k for k, v in load_file(lora / "model.safetensors").items() if not torch.equal(v, base[k])}
    assert changed and all(k.startswith("model.layers.0.") for k in changed)


def test_self_replay_trains_the_base_models_own_answers_beside_the_facts(tiny_model_dir, targets_file, tmp_path):
    run = prepare(config(tiny_model_dir, targets_file, tmp_path / "out", replay=6, replay_max_new_tokens=4))
    assert run.report.replay == 6 and run.report.used == 10  # 4 facts + 6 replay rows
    assert "4 of 4 records used, 6 self-replay answers beside them" in run.report.summary()
    again = prepare(config(tiny_model_dir, targets_file, tmp_path / "again", replay=6, replay_max_new_tokens=4))
    assert run.trainer.train_dataset["input_ids"] == again.trainer.train_dataset["input_ids"]  # cached, the same


def test_replay_prompts_come_from_datasets_no_evaluation_reads():
    from mixsd.evaluation import benchmarks, general
    from mixsd.train.data import REPLAY_SOURCES, replay_prompts

    read = [str(c) for c in benchmarks.task_configs().values()] + [d for d, _, _ in general.SOURCES.values()]
    for directory, _ in REPLAY_SOURCES.values():
        dataset = directory.split("/")[1] if directory.startswith("tau/") else directory.split("/")[0]
        assert not any(dataset in ref for ref in read), dataset
    prompts = replay_prompts(200)
    assert len(set(prompts)) == 200
    assert not set(prompts) & {p["prompt"] for p in general.load_prompts(200)}


def test_warm_up_and_decay_shape_the_learning_rate(tiny_model_dir, targets_file, tmp_path):
    out = train(config(tiny_model_dir, targets_file, tmp_path / "out", lr_schedule="linear", warmup_ratio=0.5))
    rates = [json.loads(line)["learning_rate"] for line in (out / "train_log.jsonl").read_text().splitlines()[:-1]]
    peak = rates.index(max(rates))
    assert rates[0] < rates[peak] and 1 <= peak <= 3 and rates[-1] < rates[peak]
    assert max(rates) == pytest.approx(3e-3, rel=0.34)


@pytest.fixture
def no_model_load(monkeypatch):
    """Bad input must fail before the (slow) model load."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models, "load", refuse)


@pytest.mark.usefixtures("no_model_load")
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(method="sft"), "targets file: train on it with --method mixsd"),
        (dict(method="opsd", rollouts=3), "must be a multiple of rollouts"),
        (dict(lr=0), "lr must be positive"),
        (dict(save_adapter=True), "need --lora"),
        (dict(resume=True), "nothing to resume"),
        (dict(kl="sideways"), "--kl must be one of forward, reverse, jsd"),
        (dict(expert_template="no placeholders"), "must contain {question}"),
        (dict(method="opsd", no_system_prompt=True), "prompt flags are for mixsd and sft"),
        (dict(train_layers="3-x"), "--train-layers must be like"),
        (dict(lr_schedule="cyclic"), "--lr-schedule must be one of"),
        (dict(warmup_ratio=1.0), "--warmup-ratio must be in"),
    ],
)
def test_bad_settings_fail_before_loading(tiny_model_dir, targets_file, tmp_path, change, message):
    with pytest.raises(MixsdError, match=message):
        train(config(tiny_model_dir, targets_file, tmp_path / "out", **change))


@pytest.mark.usefixtures("no_model_load")
def test_bad_paths_fail_before_loading(tiny_model_dir, targets_file, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(MixsdError, match="cannot write the output directory"):
        train(config(tiny_model_dir, targets_file, tmp_path / "file" / "out"))
    with pytest.raises(MixsdError, match="no such file"):
        train(config(tiny_model_dir, tmp_path / "missing.jsonl", tmp_path / "out"))
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "config.json").write_text("{}")
    with pytest.raises(MixsdError, match="already holds a training run"):
        train(config(tiny_model_dir, targets_file, tmp_path / "done"))
