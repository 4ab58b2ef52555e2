"""The sandbox that runs model-written code: whatever the code does, the item fails, nothing outside
changes, and the evaluation goes on."""

from __future__ import annotations

import os

import pytest

from mixsd.evaluation.sandbox import run


def test_a_passing_and_a_failing_program():
    assert run("def f(x):\n    return x + 1\n\nassert f(1) == 2\nprint('ok')") == (True, "passed")
    assert run("assert 1 == 2") == (False, "exit 1")
    assert run("open('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read() == 'x'")[0]


def test_the_child_inherits_no_secrets(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "secret")
    assert run("import os\nassert 'HF_TOKEN' not in os.environ")[0]


@pytest.mark.parametrize(
    ("program", "why", "timeout_s"),
    [
        ("while True:\n    pass", "timeout", 2),
        ("import time\ntime.sleep(60)", "timeout", 2),
        # filling the 1 GiB address-space cap took over 2 s on a loaded CI machine: time enough to hit the cap
        ("x = []\nwhile True:\n    x.append(bytearray(10**7))", "exit 1", 30),
        ("import sys\nsys.exit(0)", "exit 1", 2),
        ("import os\nos._exit(0)", "exited before its end", 2),
        ("raise SystemExit", "exit 1", 2),
    ],
    ids=["loop", "sleep", "allocate", "sys.exit", "os._exit", "SystemExit"],
)
def test_runaway_programs_fail(program, why, timeout_s):
    assert run(program, timeout_s=timeout_s) == (False, why)


@pytest.mark.parametrize(
    "template",
    [
        "open({path!r}, 'w').write('x')",
        "import os\nos.system('touch {path}')",
        "import subprocess\nsubprocess.run(['touch', {path!r}])",
        "import os\nos.rename({keep!r}, {path!r})",
        "import shutil\nshutil.rmtree({folder!r})",
        "import os\nos.remove({keep!r})",
        "import pathlib\npathlib.Path({path!r}).write_text('x')",
        "import os\nos.fork()\nopen({path!r}, 'w')",
    ],
    ids=["open", "os.system", "subprocess", "rename", "rmtree", "remove", "pathlib", "fork"],
)
def test_nothing_outside_the_sandbox_changes(tmp_path, template):
    folder = tmp_path / "outside"
    folder.mkdir()
    keep = folder / "keep.txt"
    keep.write_text("kept")
    path = folder / "written.txt"
    passed, _ = run(template.format(path=str(path), keep=str(keep), folder=str(folder)))
    assert not passed
    assert sorted(os.listdir(folder)) == ["keep.txt"] and keep.read_text() == "kept"
