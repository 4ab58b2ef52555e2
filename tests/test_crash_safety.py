"""Kill -9 at a random point, rerun the same command: the output equals an uninterrupted run's, and no final path
ever holds a partial file. Also: a full disk loses nothing, and a second command on the same output is refused."""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mixsd.cli import main

SEED = int(os.environ.get("MIXSD_CRASH_SEED", "0"))  # the kill points; vary it to explore more of them


def spawn(argv: list[str], log: Path, **popen) -> subprocess.Popen:
    """`python -m mixsd ARGV` in a child process, as a user would start it."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "mixsd", *argv], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, **popen
    )


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], log: Path, timeout: float = 240) -> None:
    """SIGKILL `proc` as soon as `ready()` holds; fail if it finished (or failed) first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"finished before the kill point (exit {proc.returncode}):\n{log.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"kill point not reached in {timeout} s:\n{log.read_text()[-2000:]}")
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def no_partial_files(root: Path) -> list[Path]:
    """Temporary files of an atomic write, which a kill may leave beside (never at) a final path."""
    return [p for p in root.rglob(".*.tmp")]


@pytest.fixture
def facts(zib_facts) -> Path:
    return zib_facts(24)


def test_targets_killed_then_rerun_equal_an_uninterrupted_run(facts, tiny_model_dir, tmp_path):
    def argv(out: Path) -> list[str]:
        return ["targets", "--data", str(facts), "--out", str(out), "--model", tiny_model_dir, "--lam", "0.5"]

    whole = tmp_path / "whole" / "t.jsonl"
    assert main([*argv(whole), "--batch-size", "3"]) == 0
    out = tmp_path / "killed" / "t.jsonl"
    partial = out.with_name("t.jsonl.partial")
    after = random.Random(SEED).randint(1, 16)  # finished rows in the partial file when the kill comes
    log = tmp_path / "log"
    proc = spawn([*argv(out), "--batch-size", "2"], log)
    kill_when(proc, lambda: partial.is_file() and partial.read_bytes().count(b"\n") > after, log)
    assert not out.exists()  # only the partial file, never a half-written final one
    assert main([*argv(out), "--batch-size", "4"]) == 0  # batch size differs too: the bytes may not
    assert out.read_bytes() == whole.read_bytes()
    assert not partial.exists() and not no_partial_files(tmp_path)


def train_argv(facts: Path, out: Path, model: str) -> list[str]:
    return ["train", "--method", "sft", "--data", str(facts), "--out", str(out), "--model", model]


TRAIN = ["--max-steps", "12", "--batch-size", "2", "--save-steps", "2", "--no-bf16"]


@pytest.fixture
def one_thread():
    """The in-process runs on one thread, as `spawn`'s child: on some CPUs (AVX-512 / AMX kernels) the thread count
    changes how a matmul's sums are split, so its rounding, and a run resumed on another count differs in bits."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_train_killed_then_resumed_equals_an_uninterrupted_run(facts, tiny_model_dir, tmp_path, one_thread):
    whole = tmp_path / "whole"
    assert main([*train_argv(facts, whole, tiny_model_dir), *TRAIN]) == 0
    out = tmp_path / "killed"
    step = random.Random(SEED).choice([2, 4, 6, 8])
    log = tmp_path / "log"
    proc = spawn([*train_argv(facts, out, tiny_model_dir), *TRAIN], log)
    kill_when(proc, lambda: (out / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").is_file(), log)
    assert not (out / "model.safetensors").exists()
    # The same command refuses to overwrite the interrupted run, and says how to go on:
    assert main([*train_argv(facts, out, tiny_model_dir), *TRAIN]) == 2
    assert main([*train_argv(facts, out, tiny_model_dir), *TRAIN, "--resume"]) == 0
    assert same_weights(whole, out)
    assert not no_partial_files(tmp_path)


def sweep_yaml(tmp_path: Path, facts: Path, model: str) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(
        f"model: {model}\nfacts: {facts}\n"
        "grid:\n  - {method: sft}\n  - {method: mixsd, lam: 0.5}\n"
        "targets: {max_new_tokens: 8, retries: 0, on_fail: gold}\n"
        "train: {epochs: 2, batch_size: 4, save_steps: 3, bf16: false, replay: 0}\n"
        "eval: {suite: none, max_new_tokens: 8, drift_items: 0, fisher_items: 0, bootstrap: 10}\n"
    )
    return path


def scores(run: Path) -> dict:
    """eval.json without what differs between two runs of the same command in two places: timings, cache hits and
    paths (the model fingerprints hold paths and mtimes)."""
    result = json.loads((run / "eval.json").read_text())
    return {k: v for k, v in result.items() if k not in ("timing_s", "cached", "command", "config", "models")}


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_sweep_killed_then_rerun_equals_an_uninterrupted_run(facts, tiny_model_dir, tmp_path, one_thread):
    config = sweep_yaml(tmp_path, facts, tiny_model_dir)
    whole = tmp_path / "whole"
    assert main(["sweep", "--config", str(config), "--out", str(whole)]) == 0
    runs = sorted(p.name for p in (whole / "runs").iterdir())
    out = tmp_path / "killed"
    # Kill points across the stages of the second run: mid-targets is covered above, so mid-train or mid-eval.
    where = random.Random(SEED).choice(["model/checkpoints/checkpoint-3", "model/model.safetensors", "stages.json"])
    log = tmp_path / "log"
    proc = spawn(["sweep", "--config", str(config), "--out", str(out)], log)
    kill_when(proc, lambda: (out / "runs" / runs[1] / where).exists(), log)
    assert main(["sweep", "--config", str(config), "--out", str(out)]) == 0
    for name in runs:
        assert scores(out / "runs" / name) == scores(whole / "runs" / name), name
        assert same_weights(out / "runs" / name / "model", whole / "runs" / name / "model"), name
    assert (out / "targets" / "lam0.5.jsonl").read_bytes() == (whole / "targets" / "lam0.5.jsonl").read_bytes()
    assert not no_partial_files(tmp_path)


def test_a_full_disk_loses_no_finished_output(facts, tmp_path):
    """RLIMIT_FSIZE makes every write past 4 KiB fail as a full disk does (EFBIG instead of ENOSPC): the command
    stops with one line, the corpus it was about to replace is untouched, and no temporary file is left."""
    out = tmp_path / "kg"
    assert main(["data", "kgfact", "--size", "demo", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    log = tmp_path / "log"
    proc = spawn(["data", "kgfact", "--size", "demo", "--seed", "1", "--out", str(out)], log, preexec_fn=small_disk)
    assert proc.wait(timeout=120) == 2
    lines = log.read_text().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixsd: error: ") and "File too large" in lines[0], lines
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not no_partial_files(tmp_path)


def test_an_unwritable_output_is_one_line_and_loses_nothing(facts, tmp_path, capsys):
    (tmp_path / "file").write_text("keep")
    code = main(["data", "import", str(facts), "--out", str(tmp_path / "file" / "facts.jsonl")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(tmp_path / "file") in err
    assert (tmp_path / "file").read_text() == "keep"


def hold(output: Path, log: Path) -> subprocess.Popen:
    """Another process holding the lock of `output`, as a running command does."""
    code = f"from mixsd.io import exclusive\nwith exclusive({str(output)!r}):\n    print('held', flush=True)\n"
    code += "    import time; time.sleep(600)\n"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("command", ["targets", "train", "eval", "inject", "sweep"])
def test_a_second_command_on_the_same_output_is_refused(command, facts, tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    config = sweep_yaml(tmp_path, facts, tiny_model_dir)
    argv, locked = {
        "targets": (["targets", "--data", str(facts), "--out", str(out), "--model", tiny_model_dir], out),
        "train": (train_argv(facts, out, tiny_model_dir), out),
        "eval": (
            ["eval", "--facts", str(facts), "--model", tiny_model_dir, "--suite", "none", "--out", str(out / "e.json")],
            out / "e.json",
        ),
        "inject": (["inject", "--facts", str(facts), "--out", str(out), "--model", tiny_model_dir], out),
        "sweep": (["sweep", "--config", str(config), "--out", str(out)], out),
    }[command]
    holder = hold(locked, tmp_path / "log")
    try:
        code = main(argv)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1, err
        assert f"in use by pid {holder.pid} " in err and str(locked) in err
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_is_released_when_its_holder_is_killed(tmp_path):
    out = tmp_path / "t.jsonl"
    holder = hold(out, tmp_path / "log")
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    from mixsd.io import exclusive

    with exclusive(out):  # the lock file is still there, but the kernel dropped the lock with the process
        assert (tmp_path / ".t.jsonl.lock").read_text().startswith(f"pid {os.getpid()} ")
    assert not (tmp_path / ".t.jsonl.lock").exists()


def test_a_checkpoint_cut_off_mid_save_is_dropped_for_the_one_before(tmp_path):
    from mixsd.train.run import last_checkpoint

    for step, complete in ((2, True), (4, True), (6, False)):  # killed while writing checkpoint-6
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "model.safetensors").write_bytes(b"")
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == str(tmp_path / "checkpoint-4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert last_checkpoint(tmp_path / "none") is None


def test_checkpoints_removed_after_training_never_look_complete_if_the_removal_is_cut_off(tmp_path, monkeypatch):
    """A kill while a finished run deletes its checkpoints (CI once caught one) must not leave a checkpoint that
    holds trainer_state.json but no weights: resuming from it fails."""
    import shutil

    from mixsd.train.run import last_checkpoint, remove_checkpoints

    for step in (4, 8):
        (tmp_path / f"checkpoint-{step}").mkdir()
        for name in ("model.safetensors", "trainer_state.json"):
            (tmp_path / f"checkpoint-{step}" / name).write_text("{}")

    def killed(path, ignore_errors=False):
        (Path(path) / "checkpoint-8" / "model.safetensors").unlink()  # the weights went first, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        remove_checkpoints(tmp_path)
    monkeypatch.undo()
    assert last_checkpoint(tmp_path) is None


def test_a_resumed_training_clears_the_temporary_files_of_the_run_it_continues(tmp_path):
    """A kill while the model card was being written left `.README.md.*.tmp` in model/ (CI caught it): the resumed
    run writes the card again, so the leftovers of the cut-off one must go."""
    from mixsd.train import TrainConfig
    from mixsd.train.run import _prepare_output

    checkpoint = tmp_path / "checkpoints" / "checkpoint-3"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    (tmp_path / ".README.md.x1y2.tmp").write_text("half a card")
    (tmp_path / ".save-abc").mkdir()
    (tmp_path / "model.safetensors").write_text("kept")
    _prepare_output(TrainConfig(data="targets.jsonl", out=str(tmp_path), resume=True))
    assert not no_partial_files(tmp_path) and not list(tmp_path.glob(".save-*"))
    assert (tmp_path / "model.safetensors").read_text() == "kept" and (checkpoint / "trainer_state.json").is_file()
