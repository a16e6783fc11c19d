"""Hostile use, round three (issue 30), training and checkpoints: a second Ctrl-C, stale records,
damaged configs and resume states, NaN weights, a full disk during a resume. Each test pins one
case of the issue and fails on the code before it (README, "Files, network and safety").

Runs trained here are a few steps of hidden 16; signals are sent by the process to itself at a
known step (the ``log`` hook) or inside a known save, never after a sleep.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import struct
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file, save_file

from poetgen import checkpoint
from poetgen.checkpoint import read_header
from poetgen.config import TrainConfig
from poetgen.errors import PoetgenError
from poetgen.model import ModelConfig
from poetgen.train import Trainer
from tests.cli_run import (
    build_the_command_once,  # noqa: F401  (a fixture: applies to this module)
    one_error_line,
    run,
)

TRAIN = ["train", "--corpus", "names", "--task", "lm", "--hidden", "16", "--embed", "8", "--layers", "1",
         "--batch-size", "8", "--eval-every", "4", "--quiet"]


def trainer(data: Path, out: Path, resume: bool = False, **overrides) -> Trainer:
    settings = {"max_steps": 12, "batch_size": 8, "threads": 1, "eval_every": 4, "lr": 1e-2, "warmup": 2,
                **overrides}
    cfg = TrainConfig(corpus="names", task="lm", data_dir=str(data),
                      model=ModelConfig(task="lm", embed=8, hidden=16, layers=1), **settings)
    return Trainer(cfg, out, resume=resume)


def records(run_dir: Path, name: str = "metrics.jsonl") -> list[dict]:
    return [json.loads(line) for line in (run_dir / name).read_text().splitlines()]


def assert_same_run(got: Path, want: Path) -> None:
    """The same metrics records (steps and values) and bit-identical weights in ``last``."""
    assert [r["step"] for r in records(got)] == [r["step"] for r in records(want)]
    for a, b in zip(records(got), records(want), strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-9)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-9)
    mine, theirs = load_file(got / "last.safetensors"), load_file(want / "last.safetensors")
    for key in theirs:
        if not key.startswith("_train/rng"):
            torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=0, msg=key)


def tampered(source: Path, dest: Path, meta) -> Path:
    """A copy of checkpoint ``source`` whose JSON metadata ``meta(metadata)`` rewrote (as text: it
    may be JSON that Python cannot even parse back, nested 100,000 deep)."""
    data = source.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    head = json.loads(data[8:8 + size])
    text = meta(head["__metadata__"]["poetgen"])
    head["__metadata__"]["poetgen"] = "@META@"
    raw = json.dumps(head).replace('"@META@"', json.dumps(text)).encode()
    raw += b" " * (-len(raw) % 8)
    dest.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + size:])
    return dest


def edit(change: Callable[[dict], dict]) -> Callable[[str], str]:
    """A ``tampered`` edit through Python's JSON: ``change(meta)`` returns the new metadata."""
    return lambda text: json.dumps(change(json.loads(text)))


# ---------------------------------------------------------------------------------------------
# 3. A second Ctrl-C lands at the step boundary, never inside a step or a save


def test_a_second_ctrl_c_right_after_a_step_still_resumes_to_the_same_run(tiny_data: Path, tmp_path: Path):
    trainer(tiny_data, tmp_path / "reference").fit()
    twice = trainer(tiny_data, tmp_path / "cut")

    def ctrl_c_twice(event: dict) -> None:  # step 8 is done, its evaluation and save are still to come
        if event["step"] == 8:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        twice.fit(log=ctrl_c_twice)
    # the evaluation of step 8 was not lost
    assert [r["step"] for r in records(tmp_path / "cut")] == [r["step"] for r in records(tmp_path / "reference")
                                                              if r["step"] <= 8]
    assert read_header(tmp_path / "cut" / "last.safetensors")[0]["state"]["step"] == 8
    trainer(tiny_data, tmp_path / "cut", resume=True).fit()
    assert_same_run(tmp_path / "cut", tmp_path / "reference")


def test_a_second_ctrl_c_inside_a_save_does_not_cut_it(tiny_data: Path, tmp_path: Path, monkeypatch):
    trainer(tiny_data, tmp_path / "reference").fit()
    real = checkpoint.write_safetensors

    def interrupted_twice(tensors, path, metadata):
        if ".last." in Path(path).name and json.loads(metadata["poetgen"])["state"]["step"] == 8:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return real(tensors, path, metadata)

    monkeypatch.setattr(checkpoint, "write_safetensors", interrupted_twice)
    with pytest.raises(KeyboardInterrupt):
        trainer(tiny_data, tmp_path / "cut").fit()
    monkeypatch.setattr(checkpoint, "write_safetensors", real)
    assert [r["step"] for r in records(tmp_path / "cut")][-1] == 8
    trainer(tiny_data, tmp_path / "cut", resume=True).fit()
    assert_same_run(tmp_path / "cut", tmp_path / "reference")


# ---------------------------------------------------------------------------------------------
# 4. A run that died before its first checkpoint leaves nothing a new run appends to; the
#    divergence message promises a checkpoint only where there is one


def test_a_fresh_run_starts_the_records_of_a_dead_run_over(tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "train.jsonl").write_text(json.dumps({"step": 1, "wall_s": 0.1, "train_loss": 1e34,
                                                 "train_objective": 1e34}) + "\n")
    (out / "config.json").write_text("{}")
    result = run(*TRAIN, "--max-steps", "8", "--data-dir", str(tiny_data), "--out", str(out))
    assert result.exit_code == 0, result.output
    steps = [r["step"] for r in records(out, "train.jsonl")]
    assert steps == sorted(set(steps)) and all(r["train_loss"] < 100 for r in records(out, "train.jsonl"))
    assert json.loads((out / "config.json").read_text())["max_steps"] == 8


def test_divergence_names_the_checkpoint_kept_or_says_there_is_none(tiny_data: Path, tmp_path: Path):
    cut = trainer(tiny_data, tmp_path / "run")

    def diverge(event: dict) -> None:  # after the checkpoint of step 4, the weights go bad
        if event["step"] == 5:
            with torch.no_grad():
                for p in cut.model.parameters():
                    p.fill_(math.nan)

    with pytest.raises(PoetgenError, match=r"the last good checkpoint \(step 4\) is kept in"):
        cut.fit(log=diverge)
    assert read_header(tmp_path / "run" / "last.safetensors")[0]["state"]["step"] == 4
    early = trainer(tiny_data, tmp_path / "early")
    with pytest.raises(PoetgenError, match="no checkpoint was written") as caught:
        early.fit(log=lambda event: event["step"] == 1 and [p.data.fill_(math.nan) for p in early.model.parameters()])
    assert "last good checkpoint" not in str(caught.value)


def test_a_folder_with_only_a_best_checkpoint_is_not_overwritten(models, tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "best.safetensors").write_bytes((models["names"] / "best.safetensors").read_bytes())
    line = one_error_line(run(*TRAIN, "--max-steps", "4", "--data-dir", str(tiny_data), "--out", str(out)), 2,
                          "holds the best.safetensors of an earlier run")
    assert str(out) in line


# ---------------------------------------------------------------------------------------------
# 5. Damaged configs and resume states: one line naming the file and the field, exit 2


def with_config(**change):
    return edit(lambda m: {**m, "config": {**m["config"], **change}})


@pytest.mark.parametrize("kind, meta, field", [
    ("names", with_config(hidden=32.0), "hidden must be a whole number, got 32.0"),
    ("names", with_config(category_embed=-5), "category_embed must be between 1 and"),
    ("names", with_config(tie="yes"), "tie must be true or false"),
    ("poems", with_config(cutoffs=[100, 50]), "cutoffs must rise strictly"),
    ("names", lambda text: text[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ("classify", edit(lambda m: {**m, "calibration": {"temperature": "hot"}}), "calibration temperature"),
])
def test_a_damaged_config_is_one_line_naming_file_and_field(models, tmp_path: Path, kind, meta, field):
    path = tampered(models[kind] / "best.safetensors", tmp_path / "damaged.safetensors", meta)
    command = {"names": ["names", "Russian"], "poems": ["write", "白日"], "classify": ["classify", "Ivanov"]}[kind]
    line = one_error_line(run(*command, "--checkpoint", str(path)), 2, field)
    assert "damaged.safetensors" in line
    from poetgen.repl import Models, Repl

    out, err = StringIO(), StringIO()
    shell = Repl(Models({}), Console(file=out, width=200), Console(file=err, width=200))
    assert shell.execute(f"load {path}") == 2  # the shell's `load` too: not an "internal error"
    assert field in err.getvalue() and "internal error" not in err.getvalue()


def resumable(data: Path, folder: Path) -> Path:
    assert run(*TRAIN, "--max-steps", "4", "--data-dir", str(data), "--out", str(folder)).exit_code == 0
    return folder


def rewrite_last(folder: Path, change_meta=None, change_tensors=None) -> None:
    path = folder / "last.safetensors"
    meta, tensors = read_header(path)
    tensors = dict(load_file(path))
    if change_tensors:
        change_tensors(tensors)
    save_file(tensors, path, {"poetgen": json.dumps(change_meta(meta) if change_meta else meta)})


@pytest.mark.parametrize("meta, tensors, field", [
    (lambda m: {**m, "state": {**m["state"], "bogus": 1}}, None, "unknown field 'bogus'"),
    (lambda m: {**m, "state": {**m["state"], "elapsed": math.nan}}, None, "elapsed = nan"),
    (lambda m: {**m, "state": {**m["state"], "step": -5}}, None, "step = -5"),
    (lambda m: {**m, "state": {**m["state"], "batch": 10**6}}, None, "batch 1000000 of an epoch"),
    (lambda m: {**m, "optimizer_groups": m["optimizer_groups"][:1]}, None, "1 optimizer groups where the model has 2"),
    (None, lambda t: t.update({"_train/rng/torch": t["_train/rng/torch"][:-8].clone()}), "its random state is"),
    (None, lambda t: t.update({"_train/opt/0/exp_avg": torch.zeros(3)}), "optimizer tensor opt/0/exp_avg"),
])
def test_a_damaged_resume_state_is_one_line_naming_file_and_field(tiny_data: Path, tmp_path: Path, meta, tensors,
                                                                  field):
    folder = resumable(tiny_data, tmp_path / "run")
    rewrite_last(folder, meta, tensors)
    line = one_error_line(run(*TRAIN, "--max-steps", "8", "--data-dir", str(tiny_data), "--out", str(folder),
                              "--resume"), 2, "has a damaged resume state")
    assert str(folder / "last.safetensors") in line and field in line


# ---------------------------------------------------------------------------------------------
# 7. NaN weights are refused where the model is loaded


def nan_copy(source: Path, dest: Path) -> Path:
    meta, _ = read_header(source)
    tensors = dict(load_file(source))
    name = next(k for k, t in tensors.items() if t.is_floating_point())
    tensors[name][0] = math.nan
    save_file(tensors, dest, {"poetgen": json.dumps(meta)})
    return dest


@pytest.mark.parametrize("kind, command", [("poems", ["write", "白日"]), ("names", ["score", "-", "--json"]),
                                           ("poems", ["eval", "--json", "--samples", "2"])])
def test_nan_weights_are_refused(models, tmp_path: Path, kind: str, command: list[str]):
    path = nan_copy(models[kind] / "best.safetensors", tmp_path / "nan.safetensors")
    result = run(*command, "--checkpoint", str(path), input="Ivanov\n")
    line = one_error_line(result, 2, "holds NaN or infinite values")
    assert "nan.safetensors" in line and "NaN" not in result.stdout


# ---------------------------------------------------------------------------------------------
# 19. A full disk during a resume: best, last and metrics.jsonl stay at the same step


def test_a_full_disk_during_a_resume_keeps_best_last_and_metrics_together(tiny_data: Path, tmp_path: Path,
                                                                         monkeypatch):
    trainer(tiny_data, tmp_path / "reference").fit()
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C at step 6: last at 6, best and the records before
        trainer(tiny_data, tmp_path / "run").fit(log=lambda event: event["step"] == 6 and
                                                  os.kill(os.getpid(), signal.SIGINT))
    real = checkpoint.write_safetensors
    writes = []

    def fills_up(tensors, path, metadata):  # during the resume, at step 8: best fits, last does not
        step = json.loads(metadata["poetgen"])["state"]["step"]
        writes.append((Path(path).name.split(".")[1], step))
        if step == 8 and ".last." in Path(path).name:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, metadata)

    monkeypatch.setattr(checkpoint, "write_safetensors", fills_up)
    with pytest.raises(PoetgenError, match="No space left on device"):
        trainer(tiny_data, tmp_path / "run", resume=True).fit()
    assert ("best", 8) in writes  # the case that went wrong: best was written before last failed
    steps = {name: read_header(tmp_path / "run" / f"{name}.safetensors")[0]["state"]["step"]
             for name in ("best", "last")}
    evaluated = [r["step"] for r in records(tmp_path / "run")]
    assert steps["last"] == 6 and steps["best"] in evaluated and evaluated[-1] < 8
    monkeypatch.setattr(checkpoint, "write_safetensors", real)
    trainer(tiny_data, tmp_path / "run", resume=True).fit()
    assert_same_run(tmp_path / "run", tmp_path / "reference")


def test_a_record_lost_after_its_checkpoint_is_written_back_on_resume(tiny_data: Path, tmp_path: Path,
                                                                      monkeypatch):
    from poetgen.runs import RunFolder

    trainer(tiny_data, tmp_path / "reference").fit()
    real = RunFolder.append_metrics

    def full_at_8(self, record: dict) -> None:  # the checkpoints of step 8 fitted, its record did not
        if record["step"] == 8:
            raise PoetgenError("cannot write metrics.jsonl: No space left on device", code=1)
        real(self, record)

    monkeypatch.setattr(RunFolder, "append_metrics", full_at_8)
    with pytest.raises(PoetgenError):
        trainer(tiny_data, tmp_path / "run").fit()
    monkeypatch.setattr(RunFolder, "append_metrics", real)
    trainer(tiny_data, tmp_path / "run", resume=True).fit()
    assert_same_run(tmp_path / "run", tmp_path / "reference")
