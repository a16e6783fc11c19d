"""The training thread policy: --threads, else $POETGEN_THREADS, else half the usable cores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import train_tiny
from typer.testing import CliRunner

from poetgen.cli import app
from poetgen.config import default_training_threads, training_threads, usable_cores
from poetgen.errors import PoetgenError

ENV = {"COLUMNS": "120", "NO_COLOR": "1"}


def test_the_default_is_half_the_usable_cores_from_one_to_four():
    assert [default_training_threads(c) for c in (1, 2, 3, 4, 8, 16, 64)] == [1, 1, 1, 2, 4, 4, 4]
    assert 1 <= usable_cores() and default_training_threads() == default_training_threads(usable_cores())


def test_an_option_beats_the_environment_which_beats_the_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("POETGEN_THREADS", raising=False)
    assert training_threads(0) == default_training_threads() and training_threads(3) == 3
    monkeypatch.setenv("POETGEN_THREADS", "2")
    assert training_threads(0) == 2 and training_threads(1) == 1
    monkeypatch.setenv("POETGEN_THREADS", "two")
    with pytest.raises(PoetgenError, match="POETGEN_THREADS must be a whole number"):
        training_threads(0)


def test_training_sets_torch_to_the_policy(tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("POETGEN_THREADS", "2")
    try:
        train_tiny(tiny_data, tmp_path / "run", "names", "classify", threads=0, max_steps=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("command", ["train", "compare", "lab"])
def test_every_training_command_takes_threads_and_refuses_nonsense(command: str, tmp_path: Path):
    result = CliRunner().invoke(app, [command, "--threads", "100000", "--out", str(tmp_path / "x")], env=ENV)
    assert result.exit_code == 2 and "--threads must be a whole number from 1 to" in result.output
    assert not (tmp_path / "x").exists()
    assert "--threads" in CliRunner().invoke(app, [command, "--help"], env=ENV).output
