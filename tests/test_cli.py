"""The command line: help, packaging, one-line errors with the right exit codes, --debug."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poetgen.cli import app
from poetgen.sample import Sampling

RUNNER = CliRunner()
ENV = {"COLUMNS": "120", "NO_COLOR": "1"}


def run(*args: str, input: str | None = None):
    return RUNNER.invoke(app, list(args), input=input, env=ENV)


def test_help_lists_the_commands():
    result = run("--help")
    assert result.exit_code == 0
    for command in ("train", "write", "check", "eval", "names", "classify", "score", "compare", "report", "corpus",
                    "repl"):
        assert command in result.output


@pytest.mark.slow
def test_python_dash_m_works_from_the_installed_package(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "poetgen", "--version"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("poetgen ")


def test_corpus_info_prints_statistics(tiny_data: Path):
    result = run("corpus", "info", "tang", "--data-dir", str(tiny_data), "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert info["categories"]["五绝"] >= 4 and info["categories"]["七绝"] >= 4
    table = run("corpus", "info", "names", "--data-dir", str(tiny_data))
    assert table.exit_code == 0 and "Russian" in table.output and "length" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["corpus", "info", "tnag"], "did you mean 'tang'"),
        (["corpus", "info", "tang", "--data-dir", "/nonexistent/folder"], "does not exist"),
        (["train", "--model", "lstn", "--data-dir", "{data}"], "did you mean 'lstm'"),
        (["train", "--batch-size", "0", "--data-dir", "{data}"], "--batch-size must be at least 1"),
        (["train", "--corpus", "names", "--task", "clasify", "--data-dir", "{data}"], "unknown task"),
        (["train", "--label-smoothing", "1", "--task", "classify", "--corpus", "names", "--data-dir", "{data}"],
         "--label-smoothing must be in [0, 1)"),
        (["train", "--corpus", "names", "--task", "classify", "--model", "tutorial-rnn", "--ngram", "4",
          "--data-dir", "{data}"], "--ngram does not apply to the tutorial-rnn model"),
        (["write", "青山", "--temp", "-0.5"], "--temp must be a number >= 0"),
        (["write", "青山", "--top-p", "1.5"], "--top-p must be in (0, 1]"),
        (["check", "   "], "the poem is empty"),
        (["check", "床前明月光", "--scheme", "pingshiu"], "did you mean 'pingshui'"),
        (["classify"], "give at least one name"),
        (["score", "/nonexistent.txt"], "does not exist"),
        (["plot", "/nonexistent-run"], "metrics"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_data: Path, args: list[str], message: str):
    result = run(*[a.replace("{data}", str(tiny_data)) for a in args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if line.strip()]) == 1, result.output


def test_the_tutorial_rnn_takes_the_preset_without_structure_it_lacks(tiny_data: Path, tmp_path: Path):
    """The classify preset's n-grams, second direction and language model are not the tutorial's
    network: asking for that network drops them, so its config says what was trained."""
    out = tmp_path / "tutorial"
    result = run("train", "--corpus", "names", "--task", "classify", "--model", "tutorial-rnn", "--data-dir",
                 str(tiny_data), "--max-steps", "2", "--batch-size", "8", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    model = json.loads((out / "config.json").read_text())["model"]
    assert (model["model"], model["layers"], model["bidirectional"], model["ngram"], model["generative"]) == \
        ("tutorial-rnn", 1, False, 0, 0)
    assert model["hidden"] == 128  # the preset's sizes stay


def test_typer_usage_errors_exit_2():
    assert run("write", "--num", "many").exit_code == 2
    assert run("no-such-command").exit_code == 2


@pytest.mark.slow
def test_debug_shows_the_traceback(tiny_data: Path):
    env = {**os.environ, "COLUMNS": "120"}
    plain = subprocess.run([sys.executable, "-m", "poetgen", "corpus", "info", "tnag"], capture_output=True,
                           text=True, env=env, timeout=120)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    debug = subprocess.run([sys.executable, "-m", "poetgen", "--debug", "corpus", "info", "tnag"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert debug.returncode != 0 and "Traceback" in debug.stderr and "PoetgenError" in debug.stderr


def test_check_reports_form_tones_and_rhyme():
    result = run("check", "床前明月光，疑是地上霜。举头望明月，低头思故乡。", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["form"] == "五绝" and data["rules"]["form"] and data["rules"]["rhyme"]
    assert data["rhyme_chars"][-2:] == ["霜", "乡"]
    table = run("check", "床前明月光，疑是地上霜。举头望明月，低头思故乡。")
    assert "平" in table.output and "五绝" in table.output


def test_train_writes_a_run_and_the_poem_commands_use_it(tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    result = run("train", "--corpus", "tang", "--data-dir", str(tiny_data), "--max-steps", "4", "--batch-size", "8",
                 "--hidden", "16", "--embed", "8", "--layers", "1", "--eval-every", "2", "--quiet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert (out / "best.safetensors").exists() and (out / "metrics.jsonl").exists()
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"step", "epoch", "wall_s", "train_loss", "val_loss", "useful_chars_per_s"} <= set(records[-1])
    again = run("train", "--corpus", "tang", "--data-dir", str(tiny_data), "--out", str(out), "--quiet")
    assert again.exit_code == 2 and "already holds a run" in again.output
    poem = run("write", "白日", "--checkpoint", str(out), "--seed", "1", "--form", "五绝", "--json")
    assert poem.exit_code == 0, poem.output
    text = json.loads(poem.output)[0]["text"]
    assert text.startswith("白日") and len(text) == 24


def test_classify_reads_stdin_lines_and_skips_blank_ones():
    result = run("classify", "-", input="Hou\n\nIvanov\n\n")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert [r[0] for r in rows] == ["Hou", "Ivanov"] and rows[1][1] == "Russian"
    as_json = [json.loads(line) for line in run("classify", "-", "--json", input="Hou\nIvanov\n").output.splitlines()]
    assert [r[3] for r in rows] == ["unsure" if j["unsure"] else "sure" for j in as_json]  # the 4th column
    bad = run("classify", "-", input="Hou\n\n42\n")
    assert bad.exit_code == 2 and "line 3 ('42') has no letters" in bad.output


def test_compare_runs_on_a_tiny_text_file_with_a_small_batch(tmp_path: Path):
    corpus = tmp_path / "lines.txt"
    corpus.write_text("\n".join(f"第{i}行春风又绿江南岸" for i in range(30)) + "\n", encoding="utf-8")
    out = tmp_path / "cmp"
    result = run("compare", "--corpus", str(corpus), "--task", "lm", "--models", "rnn,gru", "--steps", "2",
                 "--batch-size", "4", "--out", str(out))
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert [r["label"] for r in saved["rows"]] == ["rnn", "gru"] and {r["steps"] for r in saved["rows"]} == {2}
    assert json.loads((out / "gru" / "config.json").read_text())["batch_size"] == 4


def test_a_bad_thread_count_in_the_environment_is_one_line():
    result = RUNNER.invoke(app, ["write", "青山"], env={**ENV, "POETGEN_THREADS": "two"})
    assert result.exit_code == 2 and "POETGEN_THREADS must be a whole number from 1 to" in result.output


def test_an_acrostic_of_free_length_is_shown_as_gu_ti_not_as_a_failed_form():
    result = run("write", "明月", "--acrostic", "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "七古 · punctuation ✓" in result.output
    assert "form ✗" not in result.output and "other" not in result.output
    regulated = run("write", "春夏秋冬", "--acrostic", "--seed", "2")
    assert "七绝 · form ✓" in regulated.output


def test_rhyme_group_is_shown_in_the_poem_script():
    simplified = run("check", "床前明月光，疑是地上霜。举头望明月，低头思故乡。")
    traditional = run("check", "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。")
    assert "group 下平声七阳" in simplified.output and "group 下平聲七陽" in traditional.output
    as_json = json.loads(run("check", "床前明月光，疑是地上霜。举头望明月，低头思故乡。", "--json").output)
    assert as_json["rhyme_group"] == "下平聲七陽"  # the table's own name, for lookups


def test_names_guidance_flags_reach_the_sampler():
    from poetgen.checkpoint import load_for
    from poetgen.names.generate import generate_names

    plain = run("names", "--lang", "rus", "-n", "5", "--seed", "4", "--guidance", "0", "--rerank", "0", "--json")
    assert plain.exit_code == 0, plain.output
    expected = generate_names(load_for("names", None), "Russian", 5, sampling=Sampling(temperature=0.9, seed=4),
                              guidance=0, rerank=0)
    assert json.loads(plain.output) == expected


def test_names_for_all_languages_default_to_three_but_honour_an_explicit_ten():
    fast = ["--guidance", "0", "--rerank", "0", "--seed", "2", "--json"]
    default = json.loads(run("names", "--lang", "all", *fast).output)
    ten = json.loads(run("names", "--lang", "all", "-n", "10", *fast).output)
    assert {len(v) for v in default.values()} == {3}
    assert len(ten) == 18 and {len(v) for v in ten.values()} == {10}


def test_temperature_zero_is_greedy_as_in_the_repl():
    """One rule for both front ends: temperature 0 is greedy decoding, the same as --greedy."""
    greedy = run("write", "秋风", "--greedy", "--seed", "0", "--json")
    zero = run("write", "秋风", "--temp", "0", "--seed", "0", "--json")
    assert greedy.exit_code == zero.exit_code == 0, zero.output
    assert json.loads(zero.stdout)[0]["text"] == json.loads(greedy.stdout)[0]["text"]
