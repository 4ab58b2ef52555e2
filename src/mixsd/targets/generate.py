"""`mixsd targets`: turn a corpus into verified MixSD training targets, resumably.

Records stream into `OUT.partial` as they finish (one flushed line each, after
a header that fingerprints the settings); a restarted run with the same
settings skips what is there. At the end the targets are written to OUT in
input order, atomically, with a summary next to it in `OUT.report.json`.
Under `accelerate launch` with N processes, rank r does every N-th record into
`OUT.rank{r}-of-{N}.partial` and rank 0 writes OUT: the same bytes as one process.
"""

from __future__ import annotations

import glob
import hashlib
import json
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tqdm.auto import tqdm

from mixsd import __version__
from mixsd.answers import extract, matches
from mixsd.chat import prompt_ids, stop_ids, use_format
from mixsd.data.records import Record, read_records
from mixsd.errors import MixsdError
from mixsd.io import atomic_open, dumps_line, exclusive, file_sha256, write_json, write_jsonl
from mixsd.ranks import Ranks
from mixsd.targets.config import TargetConfig
from mixsd.targets.engine import DecodeConfig, Job, MixedDecoder, Result
from mixsd.targets.prompts import expert_prompt, load_template
from mixsd.targets.rows import InvalidTarget, TargetRow


@dataclass
class TargetReport:
    out: str
    records: int = 0
    written: int = 0
    verified: int = 0
    unverified: list[str] = field(default_factory=list)
    gold_fallback: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    resumed: int = 0
    attempts: int = 0
    tokens: int = 0
    mean_naive_fraction: float = 0.0
    by_lam: dict[str, int] = field(default_factory=dict)  # targets per lam that wrote them ("gold": the fallback)
    seconds: float = 0.0


def fingerprint(config: TargetConfig, data_sha: str, template: str, model_id: str) -> str:
    """Everything that changes a target's bytes; a partial file from other settings must not be resumed."""
    keys = ("lam", "temperature", "top_k", "max_new_tokens", "retries", "seed", "extract", "strict", "on_fail")
    material = {k: getattr(config, k) for k in keys} | {"data": data_sha, "template": template, "model": model_id}
    material |= config.prompt_format.key()  # nothing for the default, so partial files of earlier versions resume
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _partials(out: Path) -> list[Path]:
    """Partial files of interrupted runs: OUT.partial, or one per rank (OUT.rank0-of-2.partial, ...)."""
    return sorted(out.parent.glob(f"{glob.escape(out.name)}.partial")) + sorted(
        out.parent.glob(f"{glob.escape(out.name)}.rank*-of-*.partial")
    )


def _read_partials(out: Path, stamp: str) -> dict[str, TargetRow]:
    """Finished rows of interrupted runs, by record id, whatever process count made them; a torn last line is
    dropped. Every rank reads every partial file, so a job resumes with another process count too."""
    done = {}
    for path in _partials(out):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        header = json.loads(lines[0]) if lines and lines[0].startswith("{") else {}
        if header.get("mixsd_partial") != stamp:
            raise MixsdError(
                "an interrupted run with different settings left this file; delete it or rerun with the same settings",
                path=path,
            )
        for line in lines[1:]:
            try:
                row = TargetRow.from_json(json.loads(line))
            except (json.JSONDecodeError, InvalidTarget):
                break  # killed mid-write
            done[row.id] = row
    return done


def _row(
    record: Record, result: Result, tokenizer, config: TargetConfig, lam: float, *, verified: bool, gold: bool
) -> TargetRow:
    """The output line of a finished record: `result`'s sampled ids at `lam`, or the ground truth (`gold`) after
    `result` failed."""
    attempts = result.job.attempt + 1
    if gold:
        ids = tokenizer.encode(record.answer, add_special_tokens=False) + [tokenizer.eos_token_id]
        text, naive_fraction, finish = record.answer, 0.0, "gold"
    else:
        ids = result.token_ids
        body = ids[:-1] if result.finish_reason == "stop" else ids
        text = tokenizer.decode(body, skip_special_tokens=True)
        naive_fraction = sum(result.from_naive) / len(ids)
        finish = result.finish_reason
    return TargetRow(
        id=record.id,
        prompt=record.prompt,
        text=text,
        token_ids=ids,
        lam=lam,
        seed=config.seed,
        attempts=attempts,
        verified=verified,
        source="gold" if gold else "mixsd",
        naive_fraction=round(naive_fraction, 6),
        finish_reason=finish,
        gold=record.gold,
        extracted=extract(text, config.extract),
        prompt_format=None if config.prompt_format.is_default else config.prompt_format.to_json(),
    )


def generate_targets(config: TargetConfig, model=None, tokenizer=None) -> TargetReport:
    """Generate, verify and write the targets of `config.data`; pass `model`/`tokenizer` to reuse loaded ones.

    Under `accelerate launch` each process does every N-th record and rank 0 writes OUT (`mixsd.ranks`).
    """
    from mixsd import models

    started, ranks = time.time(), Ranks.from_env()
    data_path, out = Path(config.data), Path(config.out)
    records = read_records(data_path)
    if not records:
        raise MixsdError("no records to generate targets for", path=data_path)
    with exclusive(out):  # held by rank 0 for the whole job
        template = load_template(config.expert_template)
        if model is None:
            device = config.device or ranks.device()
            model, tokenizer = models.load(config.model, dtype=config.dtype, device=device)
        use_format(tokenizer, config.prompt_format)
        data_sha = file_sha256(data_path)
        stamp = fingerprint(config, data_sha, template, str(getattr(model, "name_or_path", config.model)))
        mine = ranks.share(records)
        finished = _read_partials(out, stamp)
        done = {r.id: finished[r.id] for r in mine if r.id in finished}
        report = TargetReport(out=str(out), records=len(mine), resumed=len(done))
        todo, queue = _jobs(mine, done, model, tokenizer, config, template, report)
        # (Re)write this rank's partial file with its header and the intact rows; finished rows are appended.
        suffix = ".partial" if ranks.world == 1 else f".rank{ranks.rank}-of-{ranks.world}.partial"
        partial = out.with_name(out.name + suffix)
        write_jsonl(partial, [{"mixsd_partial": stamp, "version": __version__}, *(r.to_json() for r in done.values())])
        _decode_and_verify(todo, queue, done, partial, model, tokenizer, config, report)
        lines = {r.id: dumps_line(done[r.id].to_json()) for r in mine if r.id in done}
        parts = ranks.gather({"lines": lines, "skipped": report.skipped, "resumed": report.resumed})
        if ranks.main:
            _write(out, records, parts, report, config, started)
        ranks.barrier()  # every rank returns once OUT is there
    return report


def _write(
    out: Path, records: list[Record], parts: list[dict], report: TargetReport, config: TargetConfig, started: float
) -> None:
    """OUT in input order from every rank's rows, its report, and no partial file left."""
    lines = {k: v for part in parts for k, v in part["lines"].items()}
    with atomic_open(out) as f:
        f.writelines(lines[r.id] for r in records if r.id in lines)
    for path in _partials(out):
        path.unlink()
    order = {r.id: i for i, r in enumerate(records)}
    report.records, report.resumed = len(records), sum(part["resumed"] for part in parts)
    report.skipped = sorted((s for part in parts for s in part["skipped"]), key=lambda s: order[s["id"]])
    rows = [TargetRow.from_json(json.loads(lines[r.id])) for r in records if r.id in lines]
    _summarise(report, rows, started)
    write_json(out.with_name(out.name + ".report.json"), asdict(report) | {"config": asdict(config)})


def _jobs(
    records: list[Record], done: dict, model, tokenizer, config: TargetConfig, template: str, report: TargetReport
) -> tuple[dict[str, Record], deque[Job]]:
    """One job per record still to do (by id: the records to finish); prompts that cannot fit are skipped."""
    context = getattr(model.config, "max_position_embeddings", None) or 1 << 30
    todo: dict[str, Record] = {}
    queue: deque[Job] = deque()
    for record in records:
        naive = prompt_ids(tokenizer, record.prompt)
        expert = prompt_ids(tokenizer, expert_prompt(record.prompt, record.expert_context, template))
        if len(expert) >= context:
            reason = f"expert prompt has {len(expert)} tokens, the model's context is {context}"
            report.skipped.append({"id": record.id, "reason": reason})
            continue
        todo[record.id] = record
        if record.id not in done:
            queue.append(
                Job(record.id, naive, expert, max_new_tokens=min(config.max_new_tokens, context - len(expert)))
            )
    return todo, queue


def _decode_and_verify(
    todo: dict[str, Record],
    queue: deque[Job],
    done: dict[str, TargetRow],
    partial: Path,
    model,
    tokenizer,
    config: TargetConfig,
    report: TargetReport,
) -> None:
    """Decode the queue; each finished target is verified, retried with fresh coins, or appended to the partial.

    With `--on-fail lower-lam` a target that still fails goes down the lam schedule, each level with its own
    retries; attempts are numbered on across levels, so each record's coins depend on it alone, whatever the batch.
    """
    schedule = config.lam_schedule
    tokens = accepted = 0
    t0 = time.time()
    shown = Ranks.from_env().main  # one bar: rank 0's share
    bar = tqdm(total=len(todo), initial=len(done), desc="targets", unit="rec", dynamic_ncols=True, disable=not shown)
    with bar, open(partial, "a", encoding="utf-8") as sink:
        for level, lam in enumerate(schedule):
            decoder = MixedDecoder(model, DecodeConfig.of(config, lam=lam), stop_ids(tokenizer, model))
            first = {job.key: job.attempt for job in queue}  # each record's first attempt at this level
            lower: deque[Job] = deque()
            for result in decoder.run(queue):
                job = result.job
                record = todo[job.key]
                tokens += len(result.token_ids)
                text = tokenizer.decode(result.token_ids, skip_special_tokens=True)
                ok = record.gold is not None and matches(text, record.gold, mode=config.extract, strict=config.strict)
                failed = not ok and record.gold is not None
                if failed and job.attempt - first[job.key] < config.retries_at(lam):
                    # retry first, so that finished records reach the partial file early
                    queue.appendleft(replace(job, attempt=job.attempt + 1))
                    continue
                if failed and level + 1 < len(schedule):
                    lower.append(replace(job, attempt=job.attempt + 1))
                    continue
                fallback = failed and config.on_fail != "skip"
                row = _row(record, result, tokenizer, config, lam, verified=ok or fallback, gold=fallback)
                sink.write(dumps_line(row.to_json()))
                sink.flush()
                done[record.id] = row
                bar.update(1)
                accepted += ok
                elapsed = max(time.time() - t0, 1e-9)
                bar.set_postfix(
                    tgt_s=f"{(bar.n - report.resumed) / elapsed:.2f}",
                    tok_s=f"{tokens / elapsed:.0f}",
                    accept=f"{accepted / max(1, bar.n - report.resumed):.0%}",
                )
            queue = lower


def _summarise(report: TargetReport, rows: list[TargetRow], started: float) -> None:
    for row in rows:
        report.verified += row.verified and row.source == "mixsd"
        report.attempts += row.attempts
        report.tokens += len(row.token_ids)
        if row.source == "gold":
            report.gold_fallback.append(row.id)
        elif not row.verified:
            report.unverified.append(row.id)
    report.written = len(rows)
    report.by_lam = dict(Counter("gold" if r.source == "gold" else f"{r.lam:g}" for r in rows))
    report.mean_naive_fraction = round(sum(r.naive_fraction for r in rows) / max(1, len(rows)), 6)
    report.seconds = round(time.time() - started, 2)
