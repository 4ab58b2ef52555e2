"""Every command that reads a file, fed the files people really have: each bad one gives exit code 2 and one line
naming the file (and the line, where there is one), never a traceback; the odd-but-fine ones are accepted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixsd.cli import main
from mixsd.data.records import read_records

GOOD = {"id": "a", "prompt": "What is the capital of Brelmark? Put the answer in \\boxed{}.", "answer": "\\boxed{Osk}"}
GOOD2 = {"id": "b", "prompt": "Who founded Osk? Put the answer in \\boxed{}.", "answer": "\\boxed{Tavi}"}


def lines(*objs: object) -> bytes:
    return b"".join((o if isinstance(o, bytes) else json.dumps(o).encode()) + b"\n" for o in objs)


# name -> (file content, or None for no file / "dir" for a directory; the line named, if any; words in the message)
BAD_JSONL: dict[str, tuple[bytes | str | None, int | None, str]] = {
    "empty file": (b"", None, "no"),
    "only blank lines": (b"\n  \n\r\n\n", None, "no"),
    "malformed JSON on line 3": (lines(GOOD, GOOD2) + b'{"prompt": "q", \n', 3, "malformed JSON"),
    "not an object": (lines(GOOD, [1, 2]), 2, "expected a JSON object"),
    "wrong type": (lines(GOOD, {"prompt": 3, "answer": "x"}), 2, "must be a string"),
    "missing field": (lines(GOOD, {"prompt": "q"}), 2, "missing field"),
    "empty field": (lines(GOOD, {"prompt": "  ", "answer": "x"}), 2, "empty prompt"),
    "duplicate id": (lines(GOOD, GOOD2, {**GOOD2, "prompt": "again"}), 3, "duplicate id 'b'"),
    "non-UTF-8 bytes": (lines(GOOD) + b'{"prompt": "caf\xe9", "answer": "x"}\n', 2, "not UTF-8"),
    "a directory": ("dir", None, "is a directory"),
    "no such path": (None, None, "no such file"),
}


def command(name: str, tiny: str, path: Path, out: Path) -> list[str]:
    """The argv of each file-reading command, given the hostile file."""
    return {
        "data import": ["data", "import", str(path), "--out", str(out / "facts.jsonl")],
        "targets": ["targets", "--data", str(path), "--out", str(out / "t.jsonl"), "--model", tiny],
        "train sft": ["train", "--data", str(path), "--method", "sft", "--out", str(out / "m"), "--model", tiny],
        "eval": ["eval", "--facts", str(path), "--model", tiny, "--base", tiny, "--suite", "none", "--out", str(out)],
        "inject": ["inject", "--facts", str(path), "--out", str(out / "run"), "--model", tiny],
    }[name]


@pytest.fixture
def facts_ok(tmp_path) -> Path:
    path = tmp_path / "ok.jsonl"
    path.write_bytes(lines(GOOD, GOOD2))
    return path


def run(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def place(content: bytes | str | None, path: Path) -> None:
    if content == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)


def assert_one_line_error(code: int, err: str, path: Path, line: int | None, words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    where = f"{path}:{line}: " if line is not None else f"{path}"
    assert err.startswith(f"mixsd: error: {where}"), err
    assert words in err, err


@pytest.mark.parametrize("case", BAD_JSONL)
@pytest.mark.parametrize("name", ["data import", "targets", "train sft", "eval", "inject"])
def test_bad_fact_files_are_one_line_errors(name, case, tmp_path, tiny_model_dir, capsys):
    content, line, words = BAD_JSONL[case]
    path = tmp_path / "facts.jsonl"
    place(content, path)
    out = tmp_path / "out"
    if content == "dir" and name in ("eval", "inject"):  # a facts directory is valid input there: an empty one is not
        words = {"eval": "no split files here", "inject": "a facts directory needs train.jsonl"}[name]
    code, err = run(command(name, tiny_model_dir, path, out), capsys)
    assert_one_line_error(code, err, path, line, words)


BAD_SOURCES = {
    "empty CSV": ("simpleqa.csv", b"", None, "empty CSV file"),
    "empty JSON": ("mquake.json", b"", None, "no cases to convert"),
    "non-UTF-8 CSV": ("simpleqa.csv", b"problem,answer\n\xff,1\n", None, "not UTF-8"),
    "malformed JSON list": ("mquake.json", b'[{"case_id":', 1, "malformed JSON"),
    "a directory": ("simpleqa.csv", "dir", None, "is a directory"),
    "no such path": ("mquake.json", None, None, "no such file"),
}


@pytest.mark.parametrize("case", BAD_SOURCES)
def test_bad_benchmark_sources_are_one_line_errors(case, tmp_path, capsys):
    name, content, line, words = BAD_SOURCES[case]
    path = tmp_path / name
    place(content, path)
    code, err = run(["data", path.stem, str(path), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_error(code, err, path, line, words)


BAD_TARGETS = {
    "empty file": (b"", None, "no records"),
    "malformed JSON": (b'{"id": \n', 1, "malformed JSON"),
    "not a target row": (lines({"x": 1}), 1, "not a MixSD target"),
    "a corpus, not targets": (lines(GOOD), 1, "this is a corpus record"),
    "non-UTF-8 bytes": (b"\xff\xfe\n", 1, "not UTF-8"),
    "a directory": ("dir", None, "is a directory"),
}


@pytest.mark.parametrize("case", BAD_TARGETS)
def test_bad_targets_files_are_one_line_errors(case, tmp_path, tiny_model_dir, capsys):
    content, line, words = BAD_TARGETS[case]
    path = tmp_path / "targets.jsonl"
    place(content, path)
    argv = ["train", "--data", str(path), "--method", "mixsd", "--out", str(tmp_path / "m"), "--model", tiny_model_dir]
    assert_one_line_error(*run(argv, capsys), path, line, words)


@pytest.mark.parametrize("case", ["empty file", "malformed JSON on line 3", "non-UTF-8 bytes", "a directory"])
@pytest.mark.parametrize("name", ["nll", "eval --targets"])
def test_bad_files_for_the_target_nll_are_one_line_errors(name, case, tmp_path, tiny_model_dir, facts_ok, capsys):
    content, line, words = BAD_JSONL[case]
    path = tmp_path / "targets.jsonl"
    place(content, path)
    argv = {
        "nll": ["nll", "--model", tiny_model_dir, str(path)],
        "eval --targets": ["eval", "--model", tiny_model_dir, "--facts", str(facts_ok), "--targets", str(path)],
    }[name]
    assert_one_line_error(*run(argv, capsys), path, line, words)


def test_duplicate_target_ids_are_refused(tmp_path, tiny_model_dir, capsys):
    row = {
        "id": "a",
        "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
        "mixsd": {"token_ids": [1, 2], "lam": 0.3, "seed": 0, "verified": True},
    }
    path = tmp_path / "targets.jsonl"
    path.write_bytes(lines(row, row))
    argv = ["train", "--data", str(path), "--method", "mixsd", "--out", str(tmp_path / "m"), "--model", tiny_model_dir]
    assert_one_line_error(*run(argv, capsys), path, 2, "duplicate id 'a'")


BAD_JSON = {
    "empty file": (b"", 1, "malformed JSON"),
    "malformed JSON": (b'{"schema": 1,\n "memorisation": }\n', 2, "malformed JSON"),
    "not an object": (b"[1, 2]\n", None, "expected a JSON object"),
    "non-UTF-8 bytes": (b'{"a": "\xff"}', None, "not UTF-8"),
    "wrong types": (b'{"memorisation": 5}\n', None, "'memorisation' must be an object"),
    "nothing in common": (b'{"schema": 1}\n', None, "share no scored items"),
    "a directory": ("dir", None, "is a directory"),
    "no such path": (None, None, "no such file"),
}


@pytest.mark.parametrize("case", BAD_JSON)
def test_bad_eval_json_for_compare_is_a_one_line_error(case, tmp_path, capsys):
    content, line, words = BAD_JSON[case]
    path = tmp_path / "eval.json"
    place(content, path)
    code, err = run(["compare", str(path), str(path)], capsys)
    if content in (None, "dir"):  # a directory is taken as a run directory holding an eval.json
        words = "no such file (give an eval.json or a run directory"
    assert_one_line_error(code, err, path, line, words)


BAD_YAML = {
    "empty file": (b"", None, "expected a mapping"),
    "malformed YAML": (b"methods: [sft\nlam: 0.3\n", None, "not valid YAML"),
    "not a mapping": (b"- 1\n- 2\n", None, "expected a mapping"),
    "unknown key": (b"facts: f.jsonl\nlamda: 0.3\n", None, "lamda"),
    "wrong type": (b"facts: f.jsonl\nlam: [1, 2]\n", None, "lam: expected float, got [1, 2]"),
    "wrong type in the grid": (b"facts: f.jsonl\ngrid: [{method: mixsd, lam: high}]\n", None, "expected float"),
    "grid not a list": (b"facts: f.jsonl\ngrid: {method: sft}\n", None, "'grid' must be a list"),
    "non-UTF-8 bytes": (b"facts: caf\xe9\n", None, "not UTF-8"),
    "a directory": ("dir", None, "is a directory"),
    "no such path": (None, None, "no such file"),
}


@pytest.mark.parametrize("case", BAD_YAML)
@pytest.mark.parametrize("name", ["sweep", "inject"])
def test_bad_yaml_configs_are_one_line_errors(name, case, tmp_path, capsys):
    content, line, words = BAD_YAML[case]
    if {"wrong type": "sweep", "wrong type in the grid": "inject", "grid not a list": "inject"}.get(case) == name:
        words = "unknown key"  # a key of the other command's file
    path = tmp_path / "config.yaml"
    place(content, path)
    code, err = run([name, "--config", str(path), "--out", str(tmp_path / "out")], capsys)
    assert_one_line_error(code, err, path, line, words)


def test_report_of_a_run_with_a_broken_eval_json(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "eval.json").write_bytes(b'{"memorisation": {"train": {"n": 1,\n')
    code, err = run(["report", str(run_dir)], capsys)
    assert_one_line_error(code, err, run_dir / "eval.json", None, "malformed JSON")


# The odd files that are fine: read as their plain twin.
ACCEPTED: dict[str, Callable[[bytes], bytes]] = {
    "UTF-8 BOM": lambda b: b"\xef\xbb\xbf" + b,
    "CRLF line endings": lambda b: b.replace(b"\n", b"\r\n"),
    "blank lines between": lambda b: b.replace(b"\n", b"\n\n  \n"),
}


@pytest.mark.parametrize("case", ACCEPTED)
def test_odd_but_valid_files_read_like_their_plain_twin(case, tmp_path, capsys):
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(lines(GOOD, GOOD2))
    odd = tmp_path / "odd.jsonl"
    odd.write_bytes(ACCEPTED[case](plain.read_bytes()))
    assert read_records(odd) == read_records(plain)
    assert main(["data", "import", str(odd), "--out", str(tmp_path / "o.jsonl")]) == 0
    assert main(["data", "import", str(plain), "--out", str(tmp_path / "p.jsonl")]) == 0
    assert (tmp_path / "o.jsonl").read_bytes() == (tmp_path / "p.jsonl").read_bytes()


def test_unknown_keys_are_kept_and_misspelt_ones_refused(tmp_path, capsys):
    path = tmp_path / "facts.jsonl"
    path.write_bytes(lines({**GOOD, "source": "wiki", "tags": ["geo"]}))
    assert read_records(path)[0].meta == {"source": "wiki", "tags": ["geo"]}
    path.write_bytes(lines({**GOOD, "contxt": "Osk is the capital."}))
    code, err = run(["data", "import", str(path), "--out", str(tmp_path / "o.jsonl")], capsys)
    assert_one_line_error(code, err, path, 1, "did you mean 'context'?")


def test_a_ten_megabyte_line_is_read(tmp_path):
    path = tmp_path / "facts.jsonl"
    long = "word " * 2_000_000
    path.write_bytes(lines(GOOD, {"id": "long", "prompt": long, "answer": "x"}))
    records = read_records(path)
    assert len(records[1].prompt) == 10_000_000


def test_a_prompt_longer_than_the_context_is_a_counted_skip(tmp_path, tiny_model_dir, capsys):
    """The tiny model's context is 1024 tokens; a 3000-word prompt cannot fit and is skipped, and said so."""
    path = tmp_path / "facts.jsonl"
    path.write_bytes(lines(GOOD, {"id": "long", "prompt": "word " * 3000, "answer": "\\boxed{x}"}))
    out = tmp_path / "t.jsonl"
    argv = ["targets", "--data", str(path), "--out", str(out), "--model", tiny_model_dir, "--max-new-tokens", "4"]
    assert main(argv) == 0
    report = json.loads(out.with_name("t.jsonl.report.json").read_text())
    assert [s["id"] for s in report["skipped"]] == ["long"]
    assert "the model's context is 1024" in report["skipped"][0]["reason"]
    assert "1 skipped" in capsys.readouterr().out
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a"]


def test_an_internal_error_is_one_line_unless_debug(monkeypatch, capsys):
    import mixsd.cli

    def boom(args):
        raise KeyError("oops")

    monkeypatch.setattr(mixsd.cli, "cmd_models", boom)
    code, err = run(["models"], capsys)
    assert code == 1 and err.count("\n") == 1 and "KeyError" in err and "--debug" in err
    with pytest.raises(KeyError):
        main(["--debug", "models"])


def test_a_reader_that_leaves_is_not_an_error():
    """`mixsd report DIR | head`: the pipe closes before mixsd writes; no traceback, no error line."""
    child = subprocess.Popen([sys.executable, "-m", "mixsd", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()
    err = child.stderr.read()
    assert child.wait(timeout=120) == 1 and err == b""


# Fuzzing: random JSON shapes and bytes through the other readers; the only failure allowed is the documented one.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 70000) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
target_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "messages": st.lists(
            st.fixed_dictionaries(
                {}, optional={"role": st.sampled_from(["user", "assistant", 3]), "content": json_values}
            ),
            max_size=3,
        )
        | json_values,
        "mixsd": st.fixed_dictionaries(
            {}, optional={"token_ids": st.lists(st.integers(-2, 5), max_size=3) | json_values, "verified": json_values}
        )
        | json_values,
    },
)
fuzz = settings(  # MIXSD_FUZZ_EXAMPLES=2000 for a longer hunt than CI's
    max_examples=int(os.environ.get("MIXSD_FUZZ_EXAMPLES", "60")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@fuzz
@given(st.lists(target_like | json_values, min_size=1, max_size=4))
def test_random_target_rows_read_or_fail_cleanly(tmp_path, objs):
    from mixsd.errors import MixsdError
    from mixsd.train.data import read_targets

    path = tmp_path / "t.jsonl"
    path.write_bytes(lines(*objs))
    try:
        completions, report = read_targets(path)
    except MixsdError as e:
        assert str(e).startswith(f"{path}:")
        return
    assert completions and all(c.ids for c in completions)


@fuzz
@given(
    st.dictionaries(st.sampled_from(["schema", "memorisation", "retention", "benchmarks", "general", "x"]), json_values)
)
def test_random_eval_json_reads_or_fails_cleanly(tmp_path, obj):
    from mixsd.errors import MixsdError
    from mixsd.evaluation.schema import EvalResult

    try:
        EvalResult.from_json(obj, tmp_path / "eval.json")
    except MixsdError as e:
        assert str(e).startswith(f"{tmp_path / 'eval.json'}:")


@fuzz
@given(
    st.binary(max_size=60)
    | st.dictionaries(st.sampled_from(["facts", "lam", "lora", "train", "method"]), json_values).map(
        lambda d: json.dumps(d).encode()
    )
)
def test_random_inject_configs_parse_or_fail_cleanly(tmp_path, content):
    from mixsd.cli import parse
    from mixsd.errors import MixsdError
    from mixsd.pipeline import InjectConfig
    from mixsd.settings import from_args

    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    try:
        args = parse(["inject", "--config", str(path), "--out", str(tmp_path / "o")])
        from_args(InjectConfig, args)
    except MixsdError as e:
        assert str(e).startswith(f"{path}") or str(e).startswith("missing --facts"), str(e)
    except SystemExit as e:  # argparse: a required value still missing
        assert e.code == 2
