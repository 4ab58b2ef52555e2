"""`accelerate launch` with 2 CPU processes (gloo): the same targets bytes and the same training as 1 process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixsd.cli import main

SRC = str(Path(__file__).parents[1] / "src")


def launch(argv: list[str], log: Path, processes: int = 2) -> subprocess.Popen:
    """`accelerate launch --multi_gpu --num_processes N -m mixsd ARGV`, as a user runs it. Without a GPU this is
    N CPU processes over gloo (torch.distributed.run underneath); `--cpu` would start one process, as accelerate
    runs several CPU processes only through MPI."""
    with socket.socket() as s:  # a free port for the process group's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(processes)]
    launcher += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launcher += ["--main_process_port", str(port), "-m", "mixsd"]
    return subprocess.Popen([*launcher, *argv], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    assert proc.wait(timeout=timeout) == 0, log.read_text()[-3000:]


@pytest.fixture
def facts(zib_facts) -> Path:
    return zib_facts(16)


def targets_argv(facts: Path, out: Path, model: str) -> list[str]:
    return ["targets", "--data", str(facts), "--out", str(out), "--model", model, "--lam", "0.5"]


def test_two_processes_write_the_bytes_of_one(facts, tiny_model_dir, tmp_path):
    one = tmp_path / "one" / "t.jsonl"
    assert main(targets_argv(facts, one, tiny_model_dir)) == 0
    two = tmp_path / "two" / "t.jsonl"
    log = tmp_path / "log"
    finish(launch(targets_argv(facts, two, tiny_model_dir), log), log)
    assert two.read_bytes() == one.read_bytes()
    assert log.read_text().count("16 targets in") == 1  # rank 0 reports for both
    report = json.loads(two.with_name("t.jsonl.report.json").read_text())
    assert report["records"] == report["written"] == 16
    assert sorted(p.name for p in two.parent.iterdir()) == ["t.jsonl", "t.jsonl.report.json"]  # no shard left


def test_a_rank_killed_mid_run_then_relaunched_loses_and_repeats_nothing(facts, tiny_model_dir, tmp_path):
    one = tmp_path / "one" / "t.jsonl"
    assert main(targets_argv(facts, one, tiny_model_dir)) == 0
    out = tmp_path / "two" / "t.jsonl"
    partial = out.with_name("t.jsonl.rank1-of-2.partial")
    log = tmp_path / "log"
    proc = launch([*targets_argv(facts, out, tiny_model_dir), "--batch-size", "1"], log)
    deadline = time.monotonic() + 240
    while not (partial.is_file() and partial.read_bytes().count(b"\n") > 3):
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.01)
    os.kill(holder_of(partial), signal.SIGKILL)
    assert proc.wait(timeout=120) != 0  # the launcher stops the job when a rank dies
    assert not out.exists()
    log2 = tmp_path / "log2"
    finish(launch(targets_argv(facts, out, tiny_model_dir), log2), log2)
    assert out.read_bytes() == one.read_bytes()


def holder_of(partial: Path) -> int:
    """The process that has `partial` open for appending: rank 1, mid-run."""
    for pid in map(int, filter(str.isdigit, os.listdir("/proc"))):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == str(partial):
                    return pid
            except OSError:
                continue
    pytest.fail(f"no process holds {partial} open")


def losses(run: Path) -> list[float]:
    return [row["loss"] for row in map(json.loads, (run / "train_log.jsonl").read_text().splitlines()) if "loss" in row]


def test_two_process_training_follows_the_one_process_loss_curve(facts, tiny_model_dir, tmp_path):
    """The same global batch (4 = 2 ranks x 2): the same sequence of batches, gradients averaged over ranks."""

    def argv(out: Path, batch: int) -> list[str]:
        return ["train", "--method", "sft", "--data", str(facts), "--out", str(out), "--model", tiny_model_dir]

    settings = ["--max-steps", "6", "--save-steps", "0", "--no-bf16", "--lr", "1e-3"]
    one = tmp_path / "one"
    assert main([*argv(one, 4), *settings, "--batch-size", "4"]) == 0
    two = tmp_path / "two"
    log = tmp_path / "log"
    finish(launch([*argv(two, 2), *settings, "--batch-size", "2"], log), log)
    a, b = losses(one), losses(two)
    assert len(a) == len(b) == 6
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-3 * max(a), (a, b)
    assert (two / "model.safetensors").is_file() and (two / "README.md").is_file()
    assert "16 of 16 records used, 2 processes" in log.read_text()
    assert log.read_text().count("mixsd train: saved to") == 1  # rank 0 speaks for the job


def test_two_process_evaluation_gives_the_scores_of_one(
    facts, tiny_model_dir, other_tiny_model_dir, tmp_path, without_nlls
):
    """Fact questions and everyday prompts shared item by item, benchmark tasks task by task."""
    tuned = other_tiny_model_dir

    def argv(out: Path) -> list[str]:
        return [
            "eval", "--model", str(tuned), "--base", tiny_model_dir, "--facts", str(facts), "--out", str(out),
            "--suite", "mixsd_arc_easy,mixsd_piqa", "--limit", "6", "--general-prompts", "10", "--max-new-tokens",
            "6", "--general-max-new-tokens", "6", "--drift-items", "0", "--fisher-items", "0", "--bootstrap", "50",
            "--no-cache",
        ]  # fmt: skip

    assert main(argv(tmp_path / "one.json")) == 0
    log = tmp_path / "log"
    finish(launch(argv(tmp_path / "two.json"), log), log)

    def scores(path: Path) -> dict:
        result = json.loads(path.read_text())
        return {k: v for k, v in result.items() if k not in ("timing_s", "cached", "command", "config")}

    (one, nll_one), (two, nll_two) = (
        without_nlls(scores(tmp_path / "one.json")),
        without_nlls(scores(tmp_path / "two.json")),
    )
    assert one == two and nll_one == pytest.approx(nll_two, rel=1e-6)
    assert set(one["benchmarks"]) == {"mixsd_arc_easy", "mixsd_piqa"} and one["general"]["n"] == 6  # --limit caps it
    assert "2 processes share the questions" in log.read_text()
    assert log.read_text().count("every figure, the predictions and the command") == 1


def test_two_process_inject_runs_every_stage_once(facts, tiny_model_dir, tmp_path):
    """The whole pipeline under one launch: the targets of one process, one ledger, one report."""
    config = tmp_path / "inject.yaml"
    config.write_text(
        f"facts: {facts}\nmodel: {tiny_model_dir}\nlam: 0.5\n"
        "targets: {max_new_tokens: 8, retries: 0, on_fail: gold}\n"
        "train: {epochs: 1, batch_size: 2, save_steps: 0, bf16: false, replay: 0}\n"
        "eval: {suite: none, max_new_tokens: 8, general_prompts: 6, drift_items: 0, fisher_items: 0, bootstrap: 10}\n"
    )
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["inject", "--config", str(config), "--out", str(one)]) == 0
    log = tmp_path / "log"
    finish(launch(["inject", "--config", str(config), "--out", str(two)], log), log)
    assert (two / "targets.jsonl").read_bytes() == (one / "targets.jsonl").read_bytes()
    assert set(json.loads((two / "stages.json").read_text())) == {"targets:targets.jsonl", "train", "eval"}
    assert (two / "report.md").is_file() and log.read_text().count("[4/4] report") == 1
