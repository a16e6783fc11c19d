"""Hostile use, round two: a finished run resumed, tampered checkpoints, odd terminals and closed
streams, temp files left by a kill, and the misleading messages a probing user found. Each test
pins one defect of that round (README, "Files, network and safety").

Models are the session's shared tiny ones; runs trained here are a few steps of hidden 16.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from poetgen.checkpoint import load_checkpoint, read_header
from poetgen.config import TrainConfig
from poetgen.errors import PoetgenError
from poetgen.model import ModelConfig
from poetgen.train import Trainer
from tests.cli_run import (
    ENV,
    build_the_command_once,  # noqa: F401  (a fixture: applies to this module)
    one_error_line,
    run,
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def steps_of(run_dir: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


TRAIN = ["train", "--corpus", "names", "--task", "lm", "--hidden", "16", "--embed", "8", "--layers", "1",
         "--batch-size", "8", "--max-steps", "12", "--eval-every", "4", "--quiet"]


def tiny_trainer(data: Path, out: Path, resume: bool = False, **overrides) -> Trainer:
    settings = {"max_steps": 12, "batch_size": 8, "threads": 1, "eval_every": 4, **overrides}
    cfg = TrainConfig(corpus="names", task="lm", data_dir=str(data),
                      model=ModelConfig(task="lm", embed=8, hidden=16, layers=1), **settings)
    return Trainer(cfg, out, resume=resume)


# ---------------------------------------------------------------------------------------------
# 1. A finished run resumed is a no-op; an interrupt after the last step says the run is complete


def test_resuming_a_finished_run_trains_nothing_and_says_so(tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    args = [*TRAIN, "--data-dir", str(tiny_data), "--out", str(out)]
    assert run(*args).exit_code == 0
    before = {name: digest(out / name) for name in ("best.safetensors", "last.safetensors")}
    evaluated = steps_of(out)
    assert evaluated[-1] == 12
    again = run(*args, "--resume")
    assert again.exit_code == 0, again.output
    assert "already complete" in again.stderr and "step 12 of 12" in again.stderr
    assert steps_of(out) == evaluated
    assert {name: digest(out / name) for name in before} == before
    longer = run(*[a if a != "12" else "16" for a in args], "--resume")  # a larger budget continues
    assert longer.exit_code == 0, longer.output
    assert steps_of(out)[:len(evaluated)] == evaluated and steps_of(out)[-1] == 16


def test_ctrl_c_during_the_last_step_completes_the_run(tiny_data: Path, tmp_path: Path):
    trainer = tiny_trainer(tiny_data, tmp_path / "run")
    # no KeyboardInterrupt: the step that was under way was the last
    record = trainer.fit(log=lambda event: event["step"] == 12 and os.kill(os.getpid(), signal.SIGINT))
    assert record["step"] == 12 and trainer.finished and trainer.done() == "step 12 of 12"
    assert read_header(tmp_path / "run" / "last.safetensors")[0]["state"]["step"] == 12
    assert steps_of(tmp_path / "run")[-1] == 12


def test_ctrl_c_after_the_run_ended_says_it_is_complete(tiny_data: Path, tmp_path: Path, monkeypatch):
    def interrupted(run: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("poetgen.cli.train._plot_quietly", interrupted)
    result = run(*TRAIN, "--data-dir", str(tiny_data), "--out", str(tmp_path / "run"))
    assert result.exit_code == 130
    assert "the run is complete (step 12 of 12)" in result.stderr and "--resume" not in result.stderr


def test_the_first_record_after_an_interrupt_averages_the_same_steps(tiny_data: Path, tmp_path: Path):
    reference = tiny_trainer(tiny_data, tmp_path / "reference")
    reference.fit()
    cut = tiny_trainer(tiny_data, tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        cut.fit(log=lambda event: event["step"] == 6 and os.kill(os.getpid(), signal.SIGINT))
    tiny_trainer(tiny_data, tmp_path / "cut", resume=True).fit()
    records = [[json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
               for folder in (tmp_path / "reference", tmp_path / "cut")]
    assert [r["step"] for r in records[1]] == [r["step"] for r in records[0]]
    for want, got in zip(*records, strict=True):
        assert got["train_loss"] == pytest.approx(want["train_loss"], rel=1e-6)
        assert got["val_loss"] == pytest.approx(want["val_loss"], rel=1e-6)


# ---------------------------------------------------------------------------------------------
# 2, 3, 10, 13. Tampered checkpoints are refused, with the file's name, before anything is allocated


def tampered(source: Path, dest: Path, meta=None, header=None) -> Path:
    """A copy of checkpoint ``source`` with its JSON header edited (what a tamperer would do):
    ``meta(poetgen_metadata) -> new metadata``, ``header(safetensors_header)`` edits in place."""
    data = source.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    head = json.loads(data[8:8 + size])
    if meta is not None:
        head["__metadata__"]["poetgen"] = json.dumps(meta(json.loads(head["__metadata__"]["poetgen"])))
    if header is not None:
        header(head)
    raw = json.dumps(head).encode()
    raw += b" " * (-len(raw) % 8)
    dest.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + size:])
    return dest


def with_config(**change):
    return lambda m: {**m, "config": {**m["config"], **change}}


def test_a_config_claiming_a_huge_model_is_refused_before_it_is_built(models, tmp_path: Path, monkeypatch):
    import poetgen.checkpoint as checkpoint

    built = []
    real = checkpoint.build_model

    def spy(config):
        built.append(str(torch.get_default_device()))
        return real(config)

    monkeypatch.setattr(checkpoint, "build_model", spy)
    for n, change in enumerate([{"hidden": 8192, "layers": 8192}, {"hidden": 8192}, {"embed": 4096}]):
        path = tampered(models["names"] / "best.safetensors", tmp_path / f"huge{n}.safetensors", with_config(**change))
        with pytest.raises(PoetgenError, match=rf"{path.name}: weights do not match the config"):
            load_checkpoint(path)
    assert set(built) <= {"meta"}  # shapes were compared on the meta device only


def test_a_weight_stored_in_a_dtype_the_config_does_not_imply_is_refused(models, tmp_path: Path):
    def to_int(head: dict) -> None:
        name = next(k for k, v in head.items() if k != "__metadata__" and v["dtype"] == "F32")
        head[name]["dtype"] = "I32"  # same size: only the header says it is no longer a float

    path = tampered(models["names"] / "best.safetensors", tmp_path / "int.safetensors", header=to_int)
    result = run("names", "--lang", "Russian", "--checkpoint", str(path))
    one_error_line(result, 2, "which the config does not imply")
    assert "int.safetensors" in result.stderr


@pytest.mark.parametrize("meta, message", [
    (lambda m: [m], "metadata is not a JSON object"),
    (lambda m: {**m, "corpus": "names"}, "'corpus' should be an object"),
    (lambda m: {**m, "categories": {"a": 1}}, "'categories' should be a list"),
    (lambda m: {**m, "config": [1, 2]}, "'config' should be an object"),
    (lambda m: {**m, "config": {**m["config"], "hidden": "x"}}, "model config is invalid"),
    (lambda m: {k: v for k, v in m.items() if k != "tokenizer"}, "incomplete (no 'tokenizer')"),
])
def test_metadata_of_the_wrong_shape_is_one_line_naming_the_file(models, tmp_path: Path, meta, message):
    path = tampered(models["names"] / "best.safetensors", tmp_path / "bad.safetensors",
                    lambda m: {**meta(m), "format": m["format"]} if isinstance(meta(m), dict) else meta(m))
    for command in (["names", "--lang", "Russian"], ["score", "-"]):
        result = run(*command, "--checkpoint", str(path), input="Ivanov\n")
        line = one_error_line(result, 2, message)
        assert "bad.safetensors" in line


def test_a_tampered_config_is_the_files_fault_not_an_option(models, tmp_path: Path):
    path = tampered(models["names"] / "best.safetensors", tmp_path / "t.safetensors", with_config(hidden=99999))
    line = one_error_line(run("names", "--lang", "Russian", "--checkpoint", str(path)), 2,
                          "the checkpoint's model config is invalid")
    assert "t.safetensors" in line and "--hidden" not in line


# ---------------------------------------------------------------------------------------------
# 7, 8. Resume: temp files of a kill are cleared; options that may not change are refused by name


def test_resume_clears_every_temp_file_a_killed_save_can_leave(tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    args = [*TRAIN, "--data-dir", str(tiny_data), "--out", str(out)]
    assert run(*[a if a != "12" else "4" for a in args]).exit_code == 0
    stale = [".tmpQ3xZ9a", ".last.safetensors.k2j4h1.tmp", ".best.safetensors.abcdef.tmp", ".metrics.jsonl.x1y2z3.tmp"]
    for name in stale:
        (out / name).write_bytes(b"\0" * 1024)
    (out / ".tmp-notes").write_text("not a temp file of ours")  # someone else's: kept
    assert run(*args, "--resume").exit_code == 0
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".tmp-notes"]


def test_checkpoints_are_written_without_a_temp_file_of_safetensors(tiny_data: Path, tmp_path: Path, monkeypatch):
    """A kill mid-save can only leave our own temp file (``.NAME.*.tmp``), which resume clears."""
    import safetensors.torch

    def no_file_writer(*args, **kwargs):
        raise AssertionError("safetensors' file writer makes a temp file of its own")

    monkeypatch.setattr(safetensors.torch, "save_file", no_file_writer)
    result = run(*TRAIN, "--data-dir", str(tiny_data), "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    load_checkpoint(tmp_path / "run")


@pytest.mark.parametrize("option, value", [("--dropout", "0.3"), ("--weight-decay", "0.5"), ("--lr", "0.5")])
def test_resume_refuses_a_changed_setting_and_names_it(tiny_data: Path, tmp_path: Path, option: str, value: str):
    out = tmp_path / "run"
    args = [*TRAIN, "--data-dir", str(tiny_data), "--out", str(out)]
    assert run(*[a if a != "12" else "4" for a in args]).exit_code == 0
    line = one_error_line(run(*args, "--resume", option, value), 2, "--resume:")
    assert option.lstrip("-").replace("-", "_") in line and value in line


def test_resume_accepts_a_new_budget_and_cadence(tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    args = [*TRAIN, "--data-dir", str(tiny_data), "--out", str(out)]
    assert run(*[a if a != "12" else "4" for a in args]).exit_code == 0
    result = run(*[a if a != "4" else "3" for a in args], "--resume", "--max-time", "600")
    assert result.exit_code == 0, result.output
    assert steps_of(out)[-1] == 12


# ---------------------------------------------------------------------------------------------
# 4, 11. Standard input is read as strictly as --file; a closed one is one line


def test_stdin_with_invalid_utf8_is_refused_as_a_file_is(models, tmp_path: Path):
    data = b"Smith\n\xff\xfeabc\n"
    (tmp_path / "names.txt").write_bytes(data)
    for args, stdin in ((["classify", "-"], data), (["classify", "--file", str(tmp_path / "names.txt")], None)):
        for json_flag in ([], ["--json"]):
            result = run(*args, *json_flag, "--checkpoint", str(models["classify"]), input=stdin)
            assert result.exit_code == 2, result.output
            assert "line 2 is not UTF-8 text" in result.stderr
            assert "\ufffd" not in result.stdout and "\udcff" not in result.stdout


@pytest.mark.parametrize("what", ["folder", "missing"])
def test_a_names_file_that_is_not_a_file_says_what_it_is(models, tmp_path: Path, what: str):
    path = tmp_path / "names"
    if what == "folder":
        path.mkdir()
    line = one_error_line(run("classify", "--file", str(path), "--checkpoint", str(models["classify"])), 2,
                          "is a folder, not a text file" if what == "folder" else "does not exist")
    assert str(path) in line


def test_a_device_or_pipe_is_read_like_a_file(models):
    result = run("classify", "--file", os.devnull, "--checkpoint", str(models["classify"]))
    assert result.exit_code == 0 and result.stdout == "", result.output  # no names: nothing to say


def test_score_refuses_a_line_it_would_take_minutes_over(models):
    line = one_error_line(run("score", "-", "--checkpoint", str(models["names"]), input="a" * 2_000_000 + "\n"), 2,
                          "line 1 has 2,000,000 characters")
    assert "split the input into lines" in line


def poetgen_process(shell_redirect: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``poetgen ARGS`` in a real process whose streams the shell redirects (``<&-``, ``>&-``)."""
    script = f'exec "$0" -c "from poetgen.repl.console import main; main()" "$@" {shell_redirect}'
    return subprocess.run(["sh", "-c", script, sys.executable, *args], capture_output=True, text=True,
                          env={**os.environ, **ENV, **env}, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("command", [["classify", "-"], ["score", "-"]])
def test_a_closed_stdin_is_one_line(models, command: list[str]):
    result = poetgen_process("<&-", *command, "--checkpoint", str(models["names" if command[0] == "score"
                                                                              else "classify"]))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: stdin is closed: pipe text in, or give a file"


# ---------------------------------------------------------------------------------------------
# 5, 6. Output never depends on the terminal's width, and output that cannot be written is an error


def test_a_width_of_zero_still_prints_results_and_errors(models):
    poems = str(models["poems"])
    result = run("write", "白日", "--json", "--seed", "1", "--checkpoint", poems, env={"COLUMNS": "0"})
    assert result.exit_code == 0 and json.loads(result.stdout)[0]["text"].startswith("白日")
    one_error_line(run("write", "白日hello", "--checkpoint", poems, env={"COLUMNS": "0"}), 2, "prefix")


@pytest.mark.parametrize("columns", ["1", "20"])
def test_a_narrow_terminal_gets_plain_lines_not_a_cut_table(models, columns: str):
    env = {"COLUMNS": columns}
    wide = json.loads(run("write", "白日", "--json", "--seed", "1", "--checkpoint", str(models["poems"])).stdout)
    poem = run("write", "白日", "--seed", "1", "--checkpoint", str(models["poems"]), env=env)
    assert poem.exit_code == 0
    assert [line for line in poem.stdout.splitlines()][:len(wide[0]["lines"])] == [
        line + mark for line, mark in zip(wide[0]["lines"], "，。，。，。，。", strict=False)]
    names = run("classify", "Ivanov", "Tanaka", "--checkpoint", str(models["classify"]), env=env)
    assert names.exit_code == 0 and "…" not in names.stdout
    assert names.stdout.splitlines()[0].startswith("Ivanov: ") and "%" in names.stdout
    check = run("check", "白日依山尽，黄河入海流。欲穷千里目，更上一层楼。", env=env)
    assert "1 白日依山尽 仄仄平平仄" in check.stdout and "…" not in check.stdout
    as_json = run("classify", "Ivanov", "--json", "--checkpoint", str(models["classify"]), env=env)
    assert as_json.stdout == run("classify", "Ivanov", "--json", "--checkpoint", str(models["classify"])).stdout


@pytest.mark.slow
def test_output_that_cannot_be_written_is_an_error(models):
    args = ("classify", "Ivanov", "--checkpoint", str(models["classify"]))
    closed = poetgen_process(">&-", *args)
    assert closed.returncode == 1
    assert closed.stderr.strip() == "error: standard output is closed: nothing could be written"
    if os.path.exists("/dev/full"):
        full = poetgen_process("> /dev/full", *args)
        assert full.returncode == 1
        assert full.stderr.strip() == "error: cannot write standard output: No space left on device"
    piped = poetgen_process("| head -c 1", *args)  # a reader that leaves early is not an error
    assert "Traceback" not in piped.stderr


# ---------------------------------------------------------------------------------------------
# 9. Thread counts are bounded


@pytest.mark.parametrize("threads", ["100000", "20000", "0", "-1", "two"])
def test_an_impossible_thread_count_is_one_line(models, threads: str):
    result = run("classify", "Ivanov", "--checkpoint", str(models["classify"]), env={"POETGEN_THREADS": threads})
    one_error_line(result, 2, "POETGEN_THREADS must be a whole number from 1 to")


# ---------------------------------------------------------------------------------------------
# 12, 13. Bad input files are usage errors (2), and messages say what is really wrong


def test_a_names_file_that_is_not_utf8_is_a_usage_error(tiny_data: Path, tmp_path: Path):
    data = tmp_path / "data"
    (data / "names").mkdir(parents=True)
    for path in (tiny_data / "names").iterdir():
        (data / "names" / path.name).write_bytes(path.read_bytes())
    with (data / "names" / "Polish.txt").open("ab") as fh:
        fh.write(b"Abc\n\xff\xfe\n")
    for args in (["corpus", "info", "names"], [*TRAIN, "--out", str(tmp_path / "run")]):
        line = one_error_line(run(*args, "--data-dir", str(data)), 2, "is not UTF-8 text (byte")
        assert "Polish.txt" in line
    assert not (tmp_path / "run").exists()


def test_a_binary_metrics_file_is_a_usage_error(models, tmp_path: Path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("best.safetensors", "config.json"):
        (run_dir / name).write_bytes((models["names"] / name).read_bytes())
    (run_dir / "metrics.jsonl").write_bytes(bytes(range(256)))
    for command in (["plot", str(run_dir)], ["report", str(run_dir), "--out", str(tmp_path / "report")]):
        one_error_line(run(*command), 2, "metrics.jsonl is not UTF-8 text")


def test_an_unwritable_out_is_refused_before_any_training(tiny_data: Path, tmp_path: Path):
    (tmp_path / "a-file").write_text("")
    place = tmp_path / "a-file" / "out"
    for command in (["compare", "--models", "rnn,lstm", "--steps", "2"], ["train", *TRAIN[1:]]):
        result = run(*command, "--corpus", "names", "--data-dir", str(tiny_data), "--out", str(place))
        one_error_line(result, 2, "cannot write to --out")
        assert "is a file, not a folder" in result.stderr


def test_out_that_is_a_file_is_named_as_such(tiny_data: Path, tmp_path: Path):
    (tmp_path / "F").write_text("")
    line = one_error_line(run(*TRAIN, "--data-dir", str(tiny_data), "--out", str(tmp_path / "F")), 2,
                          "cannot write to --out")
    assert "is a file, not a folder" in line and "File exists" not in line


def test_a_data_folder_that_is_a_file_says_so(tmp_path: Path):
    (tmp_path / "afile").write_text("")
    one_error_line(run("corpus", "info", "names", "--data-dir", str(tmp_path / "afile")), 2,
                   "is a file, not a folder")
    one_error_line(run("corpus", "info", "names", env={"POETGEN_DATA": str(tmp_path / "afile")}), 2,
                   "POETGEN_DATA points to")


def test_an_empty_folder_as_corpus_is_named_a_folder(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    line = one_error_line(run("train", "--corpus", str(tmp_path / "empty"), "--out", str(tmp_path / "run")), 2,
                          "is a folder")
    assert "does not exist" not in line
    assert not (tmp_path / "run").exists()  # options that fail leave no empty --out behind


def test_validation_errors_leave_no_empty_out_folder(tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    one_error_line(run(*TRAIN, "--data-dir", str(tiny_data), "--out", str(out), "--label-smoothing", "0.2"), 2,
                   "label-smoothing")
    one_error_line(run(*TRAIN, "--data-dir", str(tiny_data / "nothing"), "--out", str(out)), 2, "does not exist")
    assert not out.exists()


@pytest.mark.slow
def test_utf8_arguments_under_a_non_utf8_locale_name_the_locale(models):
    env = {"LC_ALL": "POSIX", "LANG": "", "PYTHONUTF8": "0", "PYTHONIOENCODING": ""}
    result = poetgen_process("", "write", "青山", "--checkpoint", str(models["poems"]), **env)
    assert result.returncode == 2
    assert "is UTF-8 text, but the locale's encoding is" in result.stderr and "PYTHONUTF8=1" in result.stderr


# ---------------------------------------------------------------------------------------------
# 14. An explicit form is a promise the acrostic keeps, or refuses


@pytest.mark.parametrize("heads, form, fits", [
    ("春夏秋冬", "七律", "4 heads fit 七绝"), ("春夏秋冬" * 4, "五绝", "16 heads fit 五古"),
    ("青山", "五绝", "2 heads fit 五古"), ("春夏秋冬春夏秋冬", "五绝", "8 heads fit 五律")])
def test_an_acrostic_that_cannot_fill_the_form_is_refused(models, heads: str, form: str, fits: str):
    line = one_error_line(run("write", heads, "--acrostic", "--form", form, "--checkpoint", str(models["poems"])),
                          2, f"--form {form} has")
    assert fits in line


def test_an_acrostic_that_fills_its_form_keeps_it(models):
    result = run("write", "春夏秋冬", "--acrostic", "--form", "五绝", "--json", "--checkpoint", str(models["poems"]))
    poem = json.loads(result.stdout)[0]
    assert poem["form"] == "五绝" and [line[0] for line in poem["lines"]] == list("春夏秋冬")


# ---------------------------------------------------------------------------------------------
# Minor: a REPL setting that would break every later command is refused when set


def test_the_repl_refuses_a_mood_no_poem_could_take(models):
    from io import StringIO

    from rich.console import Console

    from poetgen.repl import Models, Repl

    out, err = StringIO(), StringIO()
    repl = Repl(Models({"poems": models["poems"]}), Console(file=out, width=200), Console(file=err, width=200))
    repl.execute("set mood 😀")
    assert "the mood may hold only Chinese characters" in err.getvalue() + out.getvalue()
    repl.execute("set mood 秋思")
    repl.execute("write 白日 --seed 1")
    assert "白日" in out.getvalue()


def test_theme_errors_name_the_option_as_typed(models):
    line = one_error_line(run("write", "--theme", "秋,月,山,江,花", "--form", "五绝", "--checkpoint",
                              str(models["poems"])), 2, "--theme has 5 keywords")
    assert "room for 4" in line
    one_error_line(run("write", "--theme", ",", "--checkpoint", str(models["poems"])), 2, "--theme needs")
