"""`train(config)`: check inputs, build the TRL trainer for the method, train, save a loadable model.

`mixsd` and `sft` go through `trl.SFTTrainer` on pre-tokenised rows (see
`data.py`); `opsd` through `trl.experimental.sdft.SDFTTrainer`, whose frozen
teacher is the base model shown the fact through our expert prompt.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PrinterCallback, Trainer, TrainerCallback

from mixsd import models
from mixsd.chat import PromptFormat, format_of, save_format, settle, use_format
from mixsd.errors import MixsdError
from mixsd.evaluation.cache import model_fingerprint
from mixsd.io import exclusive, remove_partial_writes
from mixsd.ranks import Ranks
from mixsd.targets.prompts import load_template
from mixsd.train import data
from mixsd.train.callbacks import EpochSnapshots, ProgressBar, TrainLog
from mixsd.train.card import write_card
from mixsd.train.config import KL_ALPHA, TrainConfig

CHECKPOINTS = "checkpoints"
EPOCHS = "epochs"  # --save-every-epoch: OUT/epochs/epoch-001, ... and the run's settings (train.json)
LOG = "train_log.jsonl"


@dataclass
class Run:
    """A trainer ready to start, and what `train` needs to finish the job."""

    config: TrainConfig
    out: Path
    base_path: str
    tokenizer: object
    report: data.DataReport
    trainer: Trainer


def prepare(config: TrainConfig, callbacks: Sequence[TrainerCallback] = ()) -> Run:
    """Validate settings, output dir and data (no model loaded yet), then load the model and build the trainer."""
    template = load_template(config.expert_template)
    out = _prepare_output(config)
    if config.method == "mixsd":
        completions, report = data.read_targets(config.data)
    else:
        records, report = data.read_corpus(config.data)
    recorded = PromptFormat.from_json(report.prompt_format) if report.prompt_format else None
    fmt = settle(recorded, config.prompt_format, f"the targets file {config.data}")

    base_path = models.resolve(config.model)
    if config.method == "opsd" and base_path.endswith(".gguf"):
        # SDFT reloads its frozen teacher from the student's directory.
        raise MixsdError(
            "opsd needs a model directory, not a .gguf file: use an alias or a converted directory", path=base_path
        )
    ranks = Ranks.from_env()
    model, tokenizer = models.load(config.model, dtype="float32", device=ranks.device())  # each rank its own GPU
    use_format(tokenizer, fmt)
    if config.lora is None:
        freeze_other_layers(model, config.layers)
    if config.method == "opsd":
        max_prompt = config.max_length - config.max_completion_length
        dataset = data.opsd_dataset(records, tokenizer, template, max_prompt, report)
    else:
        if config.method == "sft":
            completions = data.answer_completions(records, tokenizer)
        if config.replay:
            replay = data.replay_completions(
                model,
                tokenizer,
                config.replay,
                config.seed,
                max_new_tokens=config.replay_max_new_tokens,
                model_id=model_fingerprint(config.model),
            )
            completions, report.replay = completions + replay, len(replay)
        dataset = data.supervised_dataset(completions, tokenizer, config.max_length, report)

    trainer = _build_trainer(config, out, model, tokenizer, dataset, template)
    trainer.remove_callback(PrinterCallback)
    snapshots = [EpochSnapshots(out / EPOCHS, tokenizer, config)] if config.save_every_epoch else []
    ours = [TrainLog(out / LOG), ProgressBar(), *snapshots] if ranks.main else []  # files and bar: rank 0 only
    for callback in (*ours, *callbacks):
        trainer.add_callback(callback)
    return Run(config=config, out=out, base_path=base_path, tokenizer=tokenizer, report=report, trainer=trainer)


def train(config: TrainConfig, callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train and save to `config.out`; return that directory."""
    if config.method == "memit":
        from mixsd.train.memit import train as edit

        with exclusive(config.out):
            return edit(config)
    ranks = Ranks.from_env()
    with exclusive(config.out), _one_progress_bar():
        run = prepare(config, callbacks)
        if ranks.main:
            processes = f", {ranks.world} processes" if ranks.world > 1 else ""
            print(f"mixsd train: {config.method} on {run.report.summary()}{processes}", flush=True)
        started = time.monotonic()
        checkpoint = last_checkpoint(run.out / CHECKPOINTS) if config.resume else None
        run.trainer.train(resume_from_checkpoint=checkpoint)
        _save_model(run, ranks)
        if ranks.main:
            _finish(run, started)
        ranks.barrier()  # every rank returns once the model is saved
    return run.out


@contextmanager
def _one_progress_bar() -> Iterator[None]:
    """Silence the per-operation bars of transformers and datasets (load, map, save) so ours stays readable."""
    import datasets
    from transformers.utils import logging as hf_logging

    was_hf, was_ds = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_hf:
            hf_logging.enable_progress_bar()
        if was_ds:
            datasets.enable_progress_bars()


def use_bf16(requested: bool | None) -> bool:
    """bf16 autocast (fp32 master weights) where the hardware computes in bf16 natively: about 3x faster
    matmuls on a CPU with AVX512-BF16 / AMX, and the paper's precision on GPUs."""
    if requested is not None:
        return requested
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def last_checkpoint(checkpoints: Path) -> str | None:
    """The newest complete checkpoint under `checkpoints`. The Trainer writes a checkpoint in place and its
    trainer_state.json last, so a directory without one was cut off mid-save (a kill): it is removed."""
    if not checkpoints.is_dir():
        return None
    found = sorted(
        (int(d.name.split("-")[1]), d) for d in checkpoints.glob("checkpoint-*") if d.name.split("-")[1].isdigit()
    )
    for _, directory in reversed(found):
        if (directory / "trainer_state.json").is_file():
            return str(directory)
        shutil.rmtree(directory, ignore_errors=True)  # every rank of a launch may get here
    return None


def remove_checkpoints(checkpoints: Path) -> None:
    """Remove a run's checkpoints, each one's trainer_state.json first: a kill mid-removal must not leave a
    directory that `last_checkpoint` takes for complete while its weights are already gone."""
    for state in checkpoints.glob("checkpoint-*/trainer_state.json"):
        state.unlink(missing_ok=True)
    shutil.rmtree(checkpoints, ignore_errors=True)


def _prepare_output(config: TrainConfig) -> Path:
    """Make sure OUT can be written and that it is a fresh run or a resumable one, before any work."""
    out = Path(config.out).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise MixsdError(f"cannot write the output directory: {e.strerror or e}", path=out) from None
    checkpoints = out / CHECKPOINTS
    last = last_checkpoint(checkpoints)
    if config.resume and last is None:
        raise MixsdError(f"nothing to resume: no checkpoint under {checkpoints}", path=out)
    if config.resume:  # the run that was cut off may have been mid-write: its temporary files go
        remove_partial_writes(out)
    finished = (out / "config.json").is_file() or (out / "adapter_config.json").is_file()
    if not config.resume and (last or finished):
        raise MixsdError(
            "already holds a training run; pass --resume to continue it, or choose another --out", path=out
        )
    return out


def _build_trainer(config: TrainConfig, out: Path, model, tokenizer, dataset, template: str) -> Trainer:
    common = dict(
        output_dir=str(out / CHECKPOINTS),
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant_with_warmup"
        if config.lr_schedule == "constant" and config.warmup_ratio
        else config.lr_schedule,
        warmup_steps=config.warmup_ratio,  # a float under 1: a share of the steps
        optim="adamw_torch",
        adam_beta1=0.9,
        adam_beta2=0.95,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        seed=config.seed,
        logging_steps=1,
        save_strategy="steps" if config.save_steps else "no",
        save_steps=config.save_steps or 1,
        save_total_limit=1,
        bf16=use_bf16(config.bf16),
        use_cpu=not torch.cuda.is_available(),
        ddp_find_unused_parameters=False,  # every trainable weight gets a gradient (LoRA: only adapters train)
        activation_checkpointing=False,  # a small model fits; recomputation would only slow the CPU down
        report_to="none",
        disable_tqdm=True,  # ProgressBar replaces the default bar and log printer
    )
    if config.method == "opsd":
        with warnings.catch_warnings():  # "trl.experimental is unstable": we pin trl and test this path
            warnings.simplefilter("ignore")
            from trl.experimental.sdft import SDFTConfig, SDFTTrainer

        args = SDFTConfig(
            **common,
            num_generations=config.rollouts,
            max_completion_length=config.max_completion_length,
            max_prompt_length=config.max_length - config.max_completion_length,
            temperature=config.temperature,
            distillation_mode="topk_logits",
            distillation_topk=config.top_k,
            distillation_alpha=KL_ALPHA[config.kl],
            teacher_model_kind="base",
            teacher_prompt_template=data.teacher_prompt_template(template),
        )
        trainer_class = SDFTTrainer
    else:
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(**common, completion_only_loss=True, max_length=None)  # rows are already cut to max_length
        trainer_class = SFTTrainer
    return trainer_class(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=_lora_config(config, model),
    )


def _lora_config(config: TrainConfig, model):
    """Adapters on every linear layer, or on those of the `train_layers` decoder layers only."""
    if config.lora is None:
        return None
    from peft import LoraConfig

    targets: str | list[str] = "all-linear"
    if config.layers is not None:
        blocks = _blocks(model, config.layers)
        targets = [
            f"layers.{i}.{name}"
            for i in config.layers
            for name, module in blocks[i].named_modules()
            if isinstance(module, torch.nn.Linear)
        ]
    return LoraConfig(
        r=config.lora,
        lora_alpha=config.alpha,
        lora_dropout=0.0,
        target_modules=targets,
        use_rslora=config.use_rslora,
        use_dora=config.use_dora,
        task_type="CAUSAL_LM",
    )


def _blocks(model, layers: list[int]):
    """The model's decoder layers, checked against the `train_layers` indices."""
    blocks = model.get_decoder().layers
    if layers[-1] >= len(blocks):
        raise MixsdError(
            f"--train-layers goes to {layers[-1]}, but the model has {len(blocks)} layers (0-{len(blocks) - 1})"
        )
    return blocks


def freeze_other_layers(model, layers: list[int] | None) -> None:
    """Full fine-tuning of the listed decoder layers only: every other weight (embeddings, other layers, final norm,
    head) is frozen."""
    if layers is None:
        return
    blocks = _blocks(model, layers)
    model.requires_grad_(False)
    for i in layers:
        blocks[i].requires_grad_(True)


def _save_model(run: Run, ranks: Ranks) -> None:
    """Save weights (LoRA merged unless `save_adapter`) and tokenizer into OUT: by rank 0 (DDP replicas are equal),
    or by every rank together under FSDP, whose shards must be gathered."""
    if run.trainer.is_fsdp_enabled:
        run.trainer.save_model(str(run.out))
        if ranks.main:
            run.tokenizer.save_pretrained(run.out)
            save_format(run.out, format_of(run.tokenizer))
        return
    if not ranks.main:
        return
    model = run.trainer.model
    if run.config.lora is not None and not run.config.save_adapter:
        model = model.merge_and_unload()
    models.save_into(model, run.tokenizer, run.out, with_format=True)  # eval renders its prompts as training did


def _finish(run: Run, started: float) -> None:
    """The model card, the checkpoints removed (unless kept), and one line to say where the model is."""
    config, state = run.config, run.trainer.state
    losses = [row["loss"] for row in state.log_history if "loss" in row]
    stats = {
        "steps": state.global_step,
        "epochs": state.epoch or 0.0,
        "bf16": run.trainer.args.bf16,
        "loss": losses[-1] if losses else None,
        "seconds": time.monotonic() - started,
    }
    write_card(run.out, config, run.base_path, run.report, stats)
    if not config.keep_checkpoints:
        remove_checkpoints(run.out / CHECKPOINTS)
    loss = f"{stats['loss']:.4f}" if stats["loss"] is not None else "n/a"
    print(
        f"mixsd train: saved to {run.out} ({stats['steps']} steps, final loss {loss}, {stats['seconds']:.0f} s)",
        flush=True,
    )
