"""The `mat-jax` command line's one error convention (mat_jax/cli.py): exit codes, one error line, --traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from mat_jax import cli
from mat_jax.commands import UsageError
from mat_jax.convert.errors import ConversionError
from mat_jax.train.loop import NonFiniteLossError
from mat_jax.weights.errors import CheckpointError

README = cli.__file__.rsplit("/mat_jax/", 1)[0] + "/README.md"


@pytest.mark.parametrize(
    "error, code",
    [
        (UsageError("--x must be > 0"), 2),
        (NonFiniteLossError("3 consecutive iterations"), 3),
        (CheckpointError("a.pt: 2 missing keys"), 1),
        (ConversionError("b.npz has no net 'D'"), 1),
        (FileNotFoundError(2, "No such file or directory", "c.png"), 1),
        (ValueError("mask m.png is 8x8"), 1),
        (KeyError("bug"), None),
        (TypeError("bug"), None),
    ],
)
def test_exit_code_of_each_error_kind(error, code):
    assert cli.exit_code(error) == code


def test_error_line_names_the_file():
    assert cli.error_line("inpaint", FileNotFoundError(2, "No such file or directory", "c.png")) == (
        "mat-jax inpaint: error: c.png: No such file or directory"
    )
    line = cli.error_line("convert", CheckpointError("a.pt: 2 missing keys"))
    assert line == "mat-jax convert: error: a.pt: 2 missing keys"


def test_every_subcommand_is_registered():
    parser = cli.build_parser()
    choices = next(a for a in parser._actions if a.dest == "command").choices
    expected = ["train", "info", "demo", "inpaint", "serve", "eval", "eval-weights", "eval-folders", "convert"]
    expected += ["masks", "prepare-data", "sweep", "compare"]
    assert sorted(choices) == sorted(expected)


def test_library_error_is_one_line_and_exit_1(tmp_path, capsys):
    assert cli.main(["convert", str(tmp_path / "missing.pt"), str(tmp_path / "out.npz")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mat-jax convert: error: ") and "missing.pt" in err[0]
    assert not (tmp_path / "out.npz").exists()


def test_usage_errors_exit_2(tmp_path, capsys):
    assert cli.main(["convert"]) == 2  # argparse: missing positional arguments
    assert "the following arguments are required" in capsys.readouterr().err
    assert cli.main(["masks", "--count", "0", "--out", str(tmp_path / "m")]) == 2  # a command's UsageError
    assert capsys.readouterr().err.strip() == "mat-jax masks: error: --count must be >= 1, got 0"
    assert cli.main(["nope"]) == 2
    capsys.readouterr()
    assert cli.main(["train", "--config", "configs/tiny.py", "--workdir", str(tmp_path), "--config.train.nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mat-jax train: error: ") and "no config field 'train.nope'" in err[0]
    assert cli.main(["--help"]) == 0 and "exit status" in capsys.readouterr().out.lower()


def test_train_non_finite_exits_3(tmp_path, capsys, monkeypatch):
    from mat_jax.train import loop

    def diverge(config, workdir):
        raise NonFiniteLossError("3 consecutive iterations (3..5) had a non-finite loss")

    monkeypatch.setattr(loop, "train", diverge)
    assert cli.main(["train", "--config", "configs/tiny.py", "--workdir", str(tmp_path)]) == 3
    assert "mat-jax train: error: 3 consecutive iterations" in capsys.readouterr().err


def test_traceback_flag_and_bugs_keep_their_traceback(tmp_path, monkeypatch):
    with pytest.raises(ConversionError):
        cli.main(["--traceback", "convert", str(tmp_path / "missing.pt"), str(tmp_path / "o.npz")])
    from mat_jax.commands import info

    def bug(args):
        raise KeyError("a bug, not an input error")

    monkeypatch.setattr(info, "run", bug)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["info"])


def test_hugepage_reexec_only_for_real_command_lines(monkeypatch):
    from mat_jax import runtime

    calls = []
    monkeypatch.setattr(runtime, "reexec_with_hugepage_malloc", lambda: calls.append(1))
    assert cli.main(["train", "--help"]) == 0 and calls == []  # an in-process call
    assert cli.main(["train", "--help"], reexec=True) == 0 and calls == [1]
    assert cli.main(["info", "--help"], reexec=True) == 0 and calls == [1]  # not a long-running command


def test_module_entry_points():
    env = {**os.environ, "MAT_JAX_HUGEPAGE_MALLOC": "0"}
    for argv, expect in ((["mat_jax", "--help"], "prepare-data"), (["mat_jax.train", "--help"], "--workdir")):
        out = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, env=env)
        assert out.returncode == 0 and expect in out.stdout, out.stderr


def test_readme_documents_the_exit_codes():
    rows = dict(re.findall(r"^\| `(\d)` \| (.+?) \|$", open(README).read(), re.M))
    assert sorted(int(k) for k in rows) == [
        cli.EXIT_OK,
        cli.EXIT_ERROR,
        cli.EXIT_USAGE,
        cli.EXIT_DIVERGED,
        cli.EXIT_PEER_LOST,
    ]
