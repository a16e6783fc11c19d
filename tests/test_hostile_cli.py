"""Hostile use, round three (issue 30), front ends: bounded work for long inputs, labels that look
like markup, terminal widths, closed streams and pipes, options that do not apply or conflict,
odd paths, misleading messages and commands that fail half-way. Each test pins one case of the
issue and fails on the code before it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from poetgen.checkpoint import load_checkpoint
from poetgen.verse import is_cjk
from tests.cli_run import (
    ENV,
    build_the_command_once,  # noqa: F401  (a fixture: applies to this module)
    one_error_line,
    run,
)
from tests.test_hostile_train import edit, tampered

TRAIN = ["train", "--corpus", "names", "--hidden", "16", "--embed", "8", "--layers", "1", "--batch-size", "8",
         "--max-steps", "2", "--quiet"]


def process(*args: str, env: dict | None = None, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from poetgen.repl.console import main; main()", *args],
                            env={**os.environ, **ENV, "OMP_NUM_THREADS": "1", **(env or {})}, **popen)


# ---------------------------------------------------------------------------------------------
# 1, 2. Long heads with many keywords, and a long mood, take bounded time and memory

PEAK = """
import resource, sys
from poetgen.repl.console import main
try:
    main()
finally:
    sys.stderr.write(f"\\npeak-kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}\\n")
"""


def peak_run(*args: str) -> tuple[subprocess.CompletedProcess, int]:
    result = subprocess.run([sys.executable, "-c", PEAK, *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, **ENV, "OMP_NUM_THREADS": "1"})
    return result, int(result.stderr.rsplit("peak-kib", 1)[1])


def vocabulary(models: dict[str, Path]) -> str:
    return "".join(t for t in load_checkpoint(models["poems"]).tokenizer.tokens if len(t) == 1 and is_cjk(t))


@pytest.mark.slow
def test_forty_heads_and_six_keywords_are_placed_in_bounded_work(models):
    chars = vocabulary(models)
    heads, theme = chars[:40], ",".join([chars[40:42], chars[42:44], chars[44:46], chars[46:48], chars[48], chars[49]])
    result, peak = peak_run("write", heads, "--acrostic", "--theme", theme, "--json", "--seed", "1",
                            "--checkpoint", str(models["poems"]))
    assert result.returncode in (0, 2), result.stderr  # a poem, or a one-line refusal: never a MemoryError
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    assert peak < 1_500_000, f"{peak} KiB"  # 3.5 GB and more before the placement was polynomial


@pytest.mark.slow
def test_a_forty_thousand_character_mood_for_ten_poems_is_bounded(models):
    chars = vocabulary(models)[:40]
    result, peak = peak_run("write", chars[:2], "-n", "10", "--mood", (chars * 1000)[:40_000], "--json", "--seed",
                            "1", "--checkpoint", str(models["poems"]))
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 10
    assert peak < 1_500_000, f"{peak} KiB"  # 3.2 GB tried before the mood was fed in windows


def test_a_mood_is_read_once_for_all_the_poems(models, monkeypatch):
    from poetgen.poems.write import write_poems
    from poetgen.sample import Sampling

    ck = load_checkpoint(models["poems"])
    chars = vocabulary(models)[:40]
    mood = (chars * 100)[:4000]
    fed = []
    real = type(ck.model).features

    def counted(self, tokens, *args, **kwargs):  # the real model runs; only the tokens it reads are counted
        fed.append(tokens.numel())
        return real(self, tokens, *args, **kwargs)

    monkeypatch.setattr(type(ck.model), "features", counted)
    write_poems(ck, chars[:2], n=10, mood=mood, sampling=Sampling(seed=1), candidates=1)  # the poems' own tokens: few
    assert sum(fed) < 2 * len(mood)  # time grows with the mood, not with the mood × the poems (10× before)


# ---------------------------------------------------------------------------------------------
# 6. Labels from a checkpoint are text, never Rich markup


def marked_up(meta: dict) -> dict:
    labels = list(meta["categories"])
    labels[0], labels[1] = "[/]", "[red]Russian"
    return {**meta, "categories": labels}


@pytest.mark.parametrize("kind, command", [("classify", ["classify", "Ivanov"]), ("names", ["names", "--lang", "all"]),
                                           ("names", ["names", "[/]", "-n", "2"])])
def test_labels_that_look_like_markup_are_printed_as_text(models, tmp_path: Path, kind: str, command: list[str]):
    path = tampered(models[kind] / "best.safetensors", tmp_path / "labels.safetensors", edit(marked_up))
    result = run(*command, "--seed", "1", "--checkpoint", str(path)) if kind == "names" else \
        run(*command, "--checkpoint", str(path))
    assert result.exit_code == 0, result.output
    assert "[/]" in result.stdout and ("[red]Russian" in result.stdout or command[1] == "[/]")


def test_style_labels_are_printed_as_text(tiny_data: Path, tmp_path: Path):
    from tests.conftest import train_tiny

    styled = train_tiny(tiny_data, tmp_path / "styled", "tang", styles=2, max_steps=2)
    path = tampered(styled / "best.safetensors", tmp_path / "styles.safetensors",
                    edit(lambda m: {**m, "styles": [["[/]", m["styles"][0][1]], *m["styles"][1:]]}))
    result = run("write", "--style", "list", "--checkpoint", str(path))
    assert result.exit_code == 0, result.output
    assert "[/]" in result.stdout


# ---------------------------------------------------------------------------------------------
# 7. JSON never holds a bare NaN


def test_json_output_has_null_where_a_number_is_not_finite():
    from poetgen.cli import base

    with base.embedded(Console(file=(buffer := StringIO()), width=80), Console(file=StringIO()), None):
        base.emit_json([{"nll": float("nan"), "ppl": float("inf"), "ok": 1.5}])
    assert json.loads(buffer.getvalue()) == [{"nll": None, "ppl": None, "ok": 1.5}]  # strict JSON


# ---------------------------------------------------------------------------------------------
# 8. The width is clamped: names and poems always reach the output, and never in megabytes


def test_a_one_column_terminal_still_shows_the_names(models):
    names = run("names", "Russian", "-n", "3", "--seed", "1", "--checkpoint", str(models["names"]),
                env={"COLUMNS": "1"})
    wanted = json.loads(run("names", "Russian", "-n", "3", "--seed", "1", "--json", "--checkpoint",
                            str(models["names"])).stdout)
    assert names.exit_code == 0 and all(name in names.stdout for name in wanted)
    every = run("names", "--lang", "all", "--seed", "1", "--checkpoint", str(models["names"]), env={"COLUMNS": "1"})
    table = json.loads(run("names", "--lang", "all", "--seed", "1", "--json", "--checkpoint",
                           str(models["names"])).stdout)
    assert every.exit_code == 0
    for language, drawn in table.items():
        assert f"{language}: {', '.join(drawn)}" in every.stdout


def test_a_width_of_zero_still_prints_the_help():
    result = run("--help", env={"COLUMNS": "0"})
    assert result.exit_code == 0 and "Usage" in result.stdout and "write" in result.stdout


def test_a_huge_width_does_not_pad_a_poem_into_megabytes(models):
    result = run("write", "白日", "--seed", "1", "--checkpoint", str(models["poems"]), env={"COLUMNS": "99999999"})
    assert result.exit_code == 0 and "白日" in result.stdout
    assert len(result.stdout) < 100_000


# ---------------------------------------------------------------------------------------------
# 9. The shell with a closed stdin


def test_the_shell_with_a_closed_stdin_is_one_line(monkeypatch, capsys):
    from poetgen.repl import run_repl

    monkeypatch.setattr(sys, "stdin", None)
    assert run_repl() == 2
    err = capsys.readouterr().err
    assert err.strip().startswith("error: stdin is closed") and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# 10, 11. Options that are out of range or do not apply are refused before --out is made


@pytest.mark.parametrize("options, message", [
    (["--task", "classify", "--ngram", "-1"], "--ngram must be between 0 and 16"),
    (["--task", "lm", "--ngram", "3"], "--ngram applies to classifiers only"),
    (["--task", "lm", "--bidirectional"], "--bidirectional applies to classifiers only"),
    (["--task", "classify", "--tie"], "--tie applies to language models only"),
    (["--task", "classify", "--adaptive"], "--adaptive applies to language models only"),
])
def test_options_that_do_not_apply_are_refused(tiny_data: Path, tmp_path: Path, options: list[str], message: str):
    one_error_line(run(*TRAIN, *options, "--data-dir", str(tiny_data), "--out", str(tmp_path / "run")), 2, message)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# 12. Paths that are not UTF-8


def test_an_out_path_that_is_not_utf8_is_refused_at_once(tiny_data: Path, tmp_path: Path):
    out = str(tmp_path) + "/run\udcff"
    one_error_line(run(*TRAIN, "--data-dir", str(tiny_data), "--out", out), 2, "--out path given is not valid UTF-8")
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_at_a_path_that_is_not_utf8_says_so(models, tmp_path: Path):
    path = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/model\xff.safetensors"))
    path.write_bytes((models["names"] / "best.safetensors").read_bytes())
    line = one_error_line(run("names", "Russian", "--checkpoint", str(path)), 2, "is not valid UTF-8: rename the file")
    assert "not a poetgen checkpoint" not in line  # it may well be one: only its name is the trouble


# ---------------------------------------------------------------------------------------------
# 13, 14. classify's streaming formats are said and honoured; a language given twice is refused


def test_classify_says_it_streams_json_lines_and_honours_top_in_tsv(models):
    help_text = " ".join(run("classify", "--help", env={"COLUMNS": "300"}).stdout.split())
    assert "JSON Lines" in help_text
    rows = run("classify", "-", "--top", "2", "--checkpoint", str(models["classify"]), input="Ivanov\nTanaka\n")
    assert rows.exit_code == 0
    for line in rows.stdout.splitlines():
        cells = line.split("\t")
        assert len(cells) == 6 and cells[-1] in ("sure", "unsure")  # name, 2 × (language, p), verdict
    default = run("classify", "-", "--checkpoint", str(models["classify"]), input="Ivanov\n")
    assert len(default.stdout.strip().split("\t")) == 4  # as before: name, language, p, verdict


def test_a_language_given_twice_is_refused(models):
    line = one_error_line(run("names", "Russian", "--lang", "Japanese", "--checkpoint", str(models["names"])), 2,
                          "give the language once")
    assert "Russian" in line and "Japanese" in line
    assert run("names", "Russian", "--lang", "rus", "-n", "2", "--checkpoint", str(models["names"])).exit_code == 0


# ---------------------------------------------------------------------------------------------
# 15. --form 五古 is a promise: four heads make a four-line 古体, not a 五绝


def test_an_acrostic_asked_as_gu_ti_is_written_and_labelled_gu_ti(models):
    from poetgen.poems.forms import form_of

    written = run("write", "春夏秋冬", "--acrostic", "--form", "五古", "--json", "--seed", "1", "--checkpoint",
                  str(models["poems"]))
    poem = json.loads(written.stdout)[0]
    assert poem["form"] == "五古" and [line[0] for line in poem["lines"]] == list("春夏秋冬")
    assert not form_of("五古", 5, 4).tones  # written free of the 平仄 pattern a 五绝 binds
    shown = run("write", "春夏秋冬", "--acrostic", "--form", "五古", "--seed", "1", "--checkpoint",
                str(models["poems"]))
    assert shown.exit_code == 0 and "五古" in shown.stdout and "五绝" not in shown.stdout
    assert "三平尾" not in shown.stdout  # a rule of regulated verse, which 古体 never promised
    assert json.loads(run("write", "春夏秋冬", "--acrostic", "--json", "--seed", "1", "--checkpoint",
                          str(models["poems"])).stdout)[0]["form"] == "七绝"  # no form asked: a 绝句 as before


# ---------------------------------------------------------------------------------------------
# 16. Messages say what is really wrong


@pytest.mark.parametrize("what, message", [("fifo", "is a FIFO (named pipe)"), ("device", "is a device"),
                                           ("loop", "is a symbolic link loop"),
                                           ("dangling", "is a symbolic link to")])
def test_a_checkpoint_that_is_no_file_says_what_it_is(tmp_path: Path, what: str, message: str):
    path = tmp_path / "model.safetensors"
    if what == "fifo":
        os.mkfifo(path)
    elif what == "device":
        path = Path(os.devnull)
    elif what == "loop":
        path.symlink_to(tmp_path / "other")
        (tmp_path / "other").symlink_to(path)
    else:
        path.symlink_to(tmp_path / "nothing")
    line = one_error_line(run("names", "Russian", "--checkpoint", str(path)), 2, message)
    assert "does not exist" not in line or what == "dangling"


def test_a_dangling_out_link_is_named_not_file_exists(tiny_data: Path, tmp_path: Path):
    (tmp_path / "run").symlink_to(tmp_path / "gone")
    line = one_error_line(run(*TRAIN, "--data-dir", str(tiny_data), "--out", str(tmp_path / "run")), 2,
                          "is a symbolic link to")
    assert "File exists" not in line


def test_a_two_dimensional_seen_tensor_is_named_as_such(models, tmp_path: Path):
    from safetensors.torch import load_file, save_file

    from poetgen.checkpoint import read_header

    meta, _ = read_header(models["names"] / "best.safetensors")
    tensors = dict(load_file(models["names"] / "best.safetensors"))
    tensors["_seen"] = tensors["_seen"][: len(tensors["_seen"]) // 2 * 2].reshape(2, -1).clone()
    save_file(tensors, tmp_path / "seen.safetensors", {"poetgen": json.dumps(meta)})
    one_error_line(run("names", "Russian", "--checkpoint", str(tmp_path / "seen.safetensors")), 2,
                   "should be a 1-D int64 tensor, not a 2-D int64 one")


def test_compare_says_nothing_is_ready_before_a_corpus_error(tmp_path: Path):
    result = run("compare", "--corpus", "nope", "--models", "rnn", "--steps", "2", "--out", str(tmp_path / "cmp"))
    one_error_line(result, 2, "unknown corpus 'nope'")
    assert "ready" not in result.stderr


def test_eval_names_its_option_as_typed(models):
    from poetgen.cli.base import FLAGS
    from poetgen.errors import PoetgenError
    from poetgen.poems.evaluate import evaluate_poems

    one_error_line(run("eval", "--samples", "-5", "--checkpoint", str(models["classify"])), 2,
                   "--samples must be between 1 and 100000, got -5")
    with pytest.raises(PoetgenError) as caught:  # the library's own check, as any front end reaching it spells it
        evaluate_poems(load_checkpoint(models["poems"]), samples=-5)
    assert caught.value.named(FLAGS) == "--samples must be between 1 and 100000, got -5"


def test_a_start_is_quoted_as_it_was_typed(models):
    from tests.conftest import TINY_NAMES

    line = one_error_line(run("names", "Russian", "--start", "[bold]", "--checkpoint", str(models["names"])), 2,
                          "--start '[bold]' has letters the model never saw: [ ]")
    assert "[Bold]" not in line  # the case we fold it to is ours, not what was typed
    long = (TINY_NAMES["Russian"][0].lower() * 30)[:30]  # letters the model knows, typed in lower case
    one_error_line(run("names", "Russian", "--start", long, "--checkpoint", str(models["names"])), 2,
                   f"--start '{long}' is not shorter than the maximum name length")
    one_error_line(run("names", "Russian", "--start", "Ab\tc", "--checkpoint", str(models["names"])), 2,
                   "never saw: U+0009")  # a tab is named, not shown as blank space


# ---------------------------------------------------------------------------------------------
# 17. Exit codes: a reader that leaves early, a bad URL, a bad WORLD_SIZE


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--help"], ["corpus", "list"], ["classify", "-"], ["score", "-"]])
def test_a_pipe_closed_by_its_reader_is_a_quiet_success(models, tiny_data: Path, tmp_path: Path, args: list[str]):
    extra = {"classify": ["--checkpoint", str(models["classify"])], "score": ["--checkpoint", str(models["names"])],
             "corpus": ["--data-dir", str(tiny_data)]}.get(args[0], [])
    (tmp_path / "names.txt").write_text("Ivanov\n" * 2000)
    with (tmp_path / "names.txt").open("rb") as names:
        proc = process(*args, *extra, stdin=names, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        proc.stdout.close()  # `| head -c0`: the reader is gone before the first byte is written
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    assert err.decode().strip() == ""


def test_a_url_that_is_not_one_is_a_usage_error(tmp_path: Path):
    one_error_line(run("corpus", "download", "names", "--url", "not a url", "--data-dir", str(tmp_path / "d")), 2,
                   "--url must be an http://")
    assert not (tmp_path / "d").exists()


def test_a_world_size_that_is_not_a_number_is_named(tiny_data: Path, tmp_path: Path):
    one_error_line(run(*TRAIN, "--data-dir", str(tiny_data), "--out", str(tmp_path / "run"),
                       env={"WORLD_SIZE": "abc"}), 2, "WORLD_SIZE must be a whole number")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# 18. Commands that fail leave no folders behind


def test_a_failed_report_leaves_no_out_folder(models, tmp_path: Path):
    from tests.test_hostile_train import nan_copy

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("metrics.jsonl", "config.json"):
        (run_dir / name).write_bytes((models["classify"] / name).read_bytes())
    nan_copy(models["classify"] / "best.safetensors", run_dir / "best.safetensors")
    one_error_line(run("report", str(run_dir), "--out", str(tmp_path / "report")), 2, "holds NaN")
    assert not (tmp_path / "report").exists()


def test_a_compare_that_cannot_start_leaves_no_folder(tiny_data: Path, tmp_path: Path):
    one_error_line(run("compare", "--corpus", "names", "--data-dir", str(tiny_data), "--models",
                       "tutorial-rnn,tutorial-rnn:custom", "--steps", "2", "--batch-size", "8", "--out",
                       str(tmp_path / "cmp")), 2, "--cell does not apply")
    one_error_line(run("compare", "--corpus", "names", "--data-dir", str(tiny_data), "--models", "rnn,gru",
                       "--steps", "2", "--batch-size", "4096", "--out", str(tmp_path / "cmp")), 2, "--batch-size")
    assert not (tmp_path / "cmp").exists()


# ---------------------------------------------------------------------------------------------
# Doubtful, decided (README): no tone known, and greedy names that are all in the training data


def test_check_says_when_no_tone_was_known():
    result = run("check", "hello")
    assert result.exit_code == 0 and "no character here has a known tone" in result.stdout


def test_names_that_find_nothing_are_a_failure(models):
    from poetgen.checkpoint import load_checkpoint
    from poetgen.errors import PoetgenError
    from poetgen.names.generate import generate_names
    from poetgen.sample import Sampling
    from tests.conftest import TINY_NAMES

    ck = load_checkpoint(models["names"])

    def greedy_is_seen(start: str) -> bool:  # greedy decoding from `start` gives a training name
        try:
            return ck.has_seen(generate_names(ck, "Russian", 1, start=start, sampling=Sampling(temperature=0.0))[0])
        except PoetgenError:
            return False

    start = next((name[:5] for name in TINY_NAMES["Russian"] if greedy_is_seen(name[:5])), None)
    if start is None:
        pytest.skip("the tiny model's greedy names are all new ones: nothing to refuse")
    line = one_error_line(run("names", "Russian", "--start", start, "--novel", "--greedy", "--checkpoint",
                              str(models["names"])), 1, "no new Russian names found")
    assert "greedy" in line
