"""`mixsd train` on the command line: flags reach TrainConfig; bad input is one line and exit code 2."""

from __future__ import annotations

import pytest

from mixsd.cli import main


def test_cli_trains_with_lora_flags(tiny_model_dir, targets_file, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "train",
            "--model",
            tiny_model_dir,
            "--data",
            str(targets_file),
            "--method",
            "mixsd",
            "--out",
            str(out),
            "--lora",
            "4",
            "--rslora",
            "--max-steps",
            "1",
            "--batch-size",
            "2",
            "--save-steps",
            "0",
            "--seed",
            "3",
        ]
    )
    assert code == 0
    card = (out / "README.md").read_text()
    assert "LoRA r=4, alpha=8, rsLoRA scaling, all linear layers; merged into the weights" in card
    assert '"seed": 3' in card and '"batch_size": 2' in card
    assert f"saved to {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json\n", "bad.jsonl:1: malformed JSON"),
        ('{"id": "a", "prompt": "q", "answer": "a"}\n', "bad.jsonl:1: this is a corpus record"),
    ],
)
def test_cli_bad_data_is_one_line_and_exit_2(tiny_model_dir, tmp_path, capsys, line, message):
    (tmp_path / "bad.jsonl").write_text(line)
    code = main(
        [
            "train",
            "--model",
            tiny_model_dir,
            "--data",
            str(tmp_path / "bad.jsonl"),
            "--method",
            "mixsd",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
