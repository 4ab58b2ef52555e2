"""Trainer callbacks: a loss log on disk, a progress bar with loss and tokens/s, and per-epoch snapshots."""

from __future__ import annotations

import copy
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from tqdm.auto import tqdm
from transformers import TrainerCallback

from mixsd.io import dumps_line, read_jsonl, write_json, write_jsonl
from mixsd.models import save_into


class TrainLog(TrainerCallback):
    """Append every log (loss per step) to a JSONL file as training goes.

    A resumed run first forgets the lines written after its checkpoint, so the
    log reads as one uninterrupted run.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_begin(self, args, state, control, **kwargs):
        kept = []
        if state.global_step and self.path.is_file():
            kept = [row for _, row in read_jsonl(self.path, skip_bad=True) if row.get("step", 0) <= state.global_step]
        write_jsonl(self.path, kept)

    def on_log(self, args, state, control, logs=None, **kwargs):
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(dumps_line({"step": state.global_step, **(logs or {})}))


class ProgressBar(TrainerCallback):
    """One tqdm bar over optimiser steps with the latest loss and the token rate.

    Tokens are the trained sequences' tokens for SFTTrainer (its `num_tokens`)
    and the generated rollout tokens for SDFT (its `completions/mean_length`).
    """

    def __init__(self) -> None:
        self.bar = None
        self.tokens = 0.0
        self.start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step", dynamic_ncols=True)
        self.start = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "num_tokens" in logs:
            self.tokens = logs["num_tokens"]
        elif "completions/mean_length" in logs:
            self.tokens += (
                logs["completions/mean_length"] * args.per_device_train_batch_size * args.gradient_accumulation_steps
            )
        if "loss" in logs:
            rate = self.tokens / max(time.monotonic() - self.start, 1e-9)
            self.bar.set_postfix(loss=f"{logs['loss']:.4f}", tok_s=f"{rate:.0f}", refresh=False)

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()


class EpochSnapshots(TrainerCallback):
    """Keep the model after every epoch in ROOT/epoch-001, ... (weights, LoRA merged, and tokenizer; no optimiser
    state), with the run's settings in ROOT/train.json: the trajectory that `mixsd eval --checkpoints` scores."""

    def __init__(self, root: str | Path, tokenizer, config):
        self.root, self.tokenizer, self.config = Path(root), tokenizer, config

    def on_train_begin(self, args, state, control, **kwargs):
        write_json(self.root / "train.json", asdict(self.config))

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        dest = self.root / f"epoch-{round(state.epoch):03d}"
        tmp = dest.with_name(f".{dest.name}")
        if self.config.lora is not None:  # a full model, for `eval --checkpoints`: merged into a copy, which
            model = copy.deepcopy(model).merge_and_unload()  # costs one model's memory while it is saved
        save_into(model, self.tokenizer, tmp, with_format=True)
        write_json(tmp / "state.json", {"epoch": state.epoch, "step": state.global_step})
        if dest.exists():  # a resumed run passing this epoch again
            shutil.rmtree(dest)
        tmp.replace(dest)
