"""Reliability and safety across commands: bad input is one line and an exit code (never a
traceback), interrupted or failing training loses nothing, streamed classification runs in bounded
memory, and the README's "Files, network and safety" notes hold.

Models are tiny (hidden 16) and trained once per session; subprocess tests are marked ``slow``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
import unicodedata
from pathlib import Path

import pytest
import torch
import typer.main
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from poetgen import corpora
from poetgen.checkpoint import load_checkpoint, read_header
from poetgen.cli import app
from poetgen.config import TrainConfig
from poetgen.corpora import ALLOWED, clean_poem, normalize_name, to_script
from poetgen.errors import PoetgenError
from poetgen.model import ModelConfig
from poetgen.train import Trainer
from poetgen.verse import LINE_END
from poetgen.vocab import SPECIALS, UNK, CharVocab, tokenizer_from_dict

RUNNER = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}  # Rich wraps by COLUMNS; one error must stay one line

LONG = "龘" * 10_000  # a character no tiny model has seen
EMOJI = "🌸🌙"
MIXED = "青山Иван山田ﾀﾅｶ"
CONTROL = "a\x01b\x1b[31mc\x7f"
MARKUP = "Ho[/]u"  # Rich markup in user text once crashed the error printer itself
BIG = str(2**64)


def run(*args: str, input: str | bytes | None = None, env: dict | None = None):
    return RUNNER.invoke(app, list(args), input=input, env={**ENV, **(env or {})})


@pytest.fixture(autouse=True, scope="module")
def build_the_command_once():
    """CliRunner rebuilds the click command tree from the Typer app on every call (~0.3 s on a
    busy machine, and this file makes ~150 calls): build it once. Same tree, same code paths."""
    command = typer.main.get_command(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda given: command if given is app else
                      typer.main.get_command(given))
        yield


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_one_line_error(result, code: int, message: str) -> None:
    lines = error_lines(result)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an exception that escaped


def weights(path: Path) -> dict[str, torch.Tensor]:
    _, tensors = read_header(path)
    return {k: v for k, v in tensors.items() if not k.startswith("_")}


# ---------------------------------------------------------------------------------------------
# Fixtures: three tiny models and a few awkward files


def tiny_config(data: Path, corpus: str, task: str, **overrides) -> TrainConfig:
    base = {"max_steps": 4, "batch_size": 8, "threads": 1, "eval_every": 4}
    return TrainConfig(corpus=corpus, task=task, data_dir=str(data),
                       model=ModelConfig(task=task, embed=8, hidden=16, layers=1), **{**base, **overrides})


@pytest.fixture(scope="session")
def models(tiny_models: dict[str, Path]) -> dict[str, Path]:
    return tiny_models


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("files")
    text = root / "text.txt"
    text.write_text("白日依山尽\n", encoding="utf-8")
    binary = root / "binary.bin"
    binary.write_bytes(b"\x00\x01\x02\xff" * 64)
    latin1 = root / "latin1.txt"
    latin1.write_bytes("Müller\n".encode("latin-1"))
    damaged = root / "damaged-run"
    damaged.mkdir()
    (damaged / "metrics.jsonl").write_text('{"step": 1}\n{oops\n{"step": 3}\n')
    empty_dir = root / "empty"
    empty_dir.mkdir()
    return {"text": text, "binary": binary, "latin1": latin1, "damaged": damaged, "dir": empty_dir}


# ---------------------------------------------------------------------------------------------
# Bad input, command by command: (arguments, stdin, exit code, part of the one-line message).
# {poems} {names} {classify} {data} and {text} {binary} {latin1} {damaged} {dir} are filled in.

BAD_INPUT = [
    # corpus list / info / prepare / download (download never reaches the network here)
    (["corpus", "list", "--data-dir", ""], None, 2, "the path is empty"),
    (["corpus", "list", "--data-dir", LONG], None, 2, "File name too long"),
    (["corpus", "list", "--data-dir", "{text}"], None, 2, "is a file, not a folder"),
    (["corpus", "info", ""], None, 2, "give a corpus"),
    (["corpus", "info", EMOJI, "--data-dir", "{data}"], None, 2, "unknown corpus '🌸🌙'"),
    (["corpus", "info", LONG], None, 2, "File name too long"),
    (["corpus", "info", "[/]"], None, 2, "corpus file [/] does not exist"),
    (["corpus", "info", "{binary}"], None, 2, "is not UTF-8 text"),
    (["corpus", "info", "tang", "--script", "klingon", "--data-dir", "{data}"], None, 2, "unknown script"),
    (["corpus", "prepare", CONTROL, "--data-dir", "{data}"], None, 2, "unknown corpus"),
    (["corpus", "prepare", "tang", "--data-dir", "{dir}"], None, 2, "corpus 'tang' not found"),
    (["corpus", "download", "tnag", "--data-dir", "{dir}"], None, 2, "did you mean 'tang'"),
    (["corpus", "download", "tang", "--url", "", "--data-dir", "{dir}"], None, 2, "--url is empty"),
    (["corpus", "download", "tang", "--sha256", "zz", "--data-dir", "{dir}"], None, 2, "64 hexadecimal digits"),
    (["corpus", "download", "tang", "--data-dir", "{text}/sub"], None, 1, "cannot create data folder"),
    # train: every check happens before a step is taken
    (["train", "--corpus", "", "--data-dir", "{data}"], None, 2, "give a corpus"),
    (["train", "--corpus", MIXED, "--data-dir", "{data}"], None, 2, "unknown corpus"),
    (["train", "--corpus", "{binary}"], None, 2, "is not UTF-8 text"),
    (["train", "--model", LONG, "--data-dir", "{data}"], None, 2, "unknown model '龘龘"),
    (["train", "--hidden", "0", "--data-dir", "{data}"], None, 2, "--hidden must be between"),
    (["train", "--hidden", BIG, "--data-dir", "{data}"], None, 2, "--hidden must be between"),
    (["train", "--dropout", "1.5", "--data-dir", "{data}"], None, 2, "--dropout must be in [0, 1)"),
    (["train", "--lr", "inf", "--data-dir", "{data}"], None, 2, "--lr must be a positive number"),
    (["train", "--lr", "nan", "--data-dir", "{data}"], None, 2, "--lr must be a positive number"),
    (["train", "--max-steps", "-1", "--data-dir", "{data}"], None, 2, "--max-steps must not be negative"),
    (["train", "--max-time", "-1", "--data-dir", "{data}"], None, 2, "--max-time must be"),
    (["train", "--max-time", "nan", "--data-dir", "{data}"], None, 2, "--max-time must be"),
    (["train", "--patience", "-1", "--data-dir", "{data}"], None, 2, "--patience must not be negative"),
    (["train", "--clip", "nan", "--data-dir", "{data}"], None, 2, "--clip must be"),
    (["train", "--seed", BIG, "--data-dir", "{data}"], None, 2, "--seed must be between"),
    (["train", "--epochs", "many", "--data-dir", "{data}"], None, 2, "Invalid value for '--epochs'"),
    (["train", "--device", "tpu", "--data-dir", "{data}"], None, 2, "unknown device 'tpu'"),
    (["train", "--precision", "fp8", "--data-dir", "{data}"], None, 2, "unknown precision"),
    (["train", "--tokenizer", "bpe", "--data-dir", "{data}"], None, 2, "unknown tokenizer"),
    (["train", "--form", "八绝", "--data-dir", "{data}"], None, 2, "unknown form '八绝'"),
    (["train", "--out", "", "--data-dir", "{data}"], None, 2, "the path is empty"),
    # write (and --acrostic)
    (["write", "白日" * 5000, "-c", "{poems}"], None, 2, "the prefix is longer than a 七律"),
    (["write", LONG, "-c", "{poems}"], None, 2, "the model never saw '龘'"),
    (["write", EMOJI, "-c", "{poems}"], None, 2, "may hold only Chinese characters"),
    (["write", MIXED, "-c", "{poems}"], None, 2, "may hold only Chinese characters"),
    (["write", CONTROL, "-c", "{poems}"], None, 2, "may hold only Chinese characters"),
    (["write", "白日", "--mood", EMOJI, "-c", "{poems}"], None, 2, "the mood may hold only"),
    (["write", "白日", "--form", "八绝", "-c", "{poems}"], None, 2, "unknown form"),
    (["write", "白日", "--script", "", "-c", "{poems}"], None, 2, "unknown script"),
    (["write", "白日", "--rhyme-scheme", "pingshiu", "-c", "{poems}"], None, 2, "did you mean 'pingshui'"),
    (["write", "白日", "-n", "0", "-c", "{poems}"], None, 2, "between 1 and"),
    (["write", "白日", "-n", "99999999999", "-c", "{poems}"], None, 2, "between 1 and"),
    (["write", "白日", "-n", "many"], None, 2, "Invalid value for '--num'"),
    (["write", "白日", "--temp", "-1", "-c", "{poems}"], None, 2, "--temp must be a number >= 0"),
    (["write", "白日", "--temp", "nan", "-c", "{poems}"], None, 2, "--temp must be"),
    (["write", "白日", "--top-k", "-1", "-c", "{poems}"], None, 2, "--top-k must be"),
    (["write", "白日", "--top-p", "inf", "-c", "{poems}"], None, 2, "--top-p must be in (0, 1]"),
    (["write", "白日", "--seed", BIG, "-c", "{poems}"], None, 2, "--seed must be between"),
    (["write", "白日", "--seed", "-1", "-c", "{poems}"], None, 2, "--seed must be between"),
    (["write", "白日", "--nope"], None, 2, "No such option: --nope"),
    (["write", "白日", "-c", ""], None, 2, "the path is empty"),
    (["write", "白日", "-c", "/nonexistent/poetgen.safetensors"], None, 2, "does not exist"),
    (["write", "白日", "-c", LONG], None, 2, "File name too long"),
    (["write", "白日", "-c", "{text}"], None, 2, "not a poetgen checkpoint"),
    (["write", "白日", "-c", "{dir}"], None, 2, "no best.safetensors in run folder"),
    (["write", "白日", "-c", "{names}"], None, 2, "needs a poem language model"),
    (["write", "", "--acrostic", "-c", "{poems}"], None, 2, "give the head characters"),
    (["write", EMOJI, "--acrostic", "-c", "{poems}"], None, 2, "acrostic heads may hold only"),
    (["write", "白，日", "--acrostic", "-c", "{poems}"], None, 2, "cannot start a line"),
    (["write", "白日" * 100, "--acrostic", "-c", "{poems}"], None, 2, "at most 64 head characters"),
    # check
    (["check", ""], None, 2, "the poem is empty"),
    (["check"], None, 2, "Missing argument"),
    (["check", "床前明月光", "--scheme", "x"], None, 2, "unknown rhyme scheme"),
    # eval
    (["eval", "-c", "{poems}", "--samples", "0"], None, 2, "samples must be between"),
    (["eval", "-c", "{poems}", "--seed", BIG], None, 2, "--seed must be between"),
    (["eval", "-c", "{classify}"], None, 2, "corpus 'names' not found"),  # no data folder: said so
    (["eval", "-c", "{binary}"], None, 2, "not a poetgen checkpoint"),
    # names
    (["names", "--lang", "", "-c", "{names}"], None, 2, "give a language"),
    (["names", "--lang", "rus", "--guidance", "50", "-c", "{names}"], None, 2, "--guidance must be between 0 and 20"),
    (["names", "--lang", "rus", "--rerank", "-1", "-c", "{names}"], None, 2, "--rerank must be between 0 and 20"),
    (["names", "--lang", EMOJI, "-c", "{names}"], None, 2, "unknown language"),
    (["names", "--lang", "Russian", "--start", MIXED, "-c", "{names}"], None, 2, "letters the model never saw"),
    (["names", "--lang", "Russian", "--start", "Ab" * 5000, "-c", "{names}"], None, 2, "not shorter than"),
    (["names", "--lang", "Russian", "-n", "-1", "-c", "{names}"], None, 2, "between 1 and 1000"),
    (["names", "-n", "0", "-c", "{names}"], None, 2, "between 1 and 1000"),
    (["names", "--temp", "-0.1", "-c", "{names}"], None, 2, "--temp must be a number >= 0"),
    (["names", "-c", "{poems}"], None, 2, "needs a names language model"),
    # classify
    (["classify", "", "-c", "{classify}"], None, 2, "name 1 is empty"),
    (["classify", EMOJI, "-c", "{classify}"], None, 2, "has no letters"),
    (["classify", "Hou", "--top", "0", "-c", "{classify}"], None, 2, "--top must be at least 1"),
    (["classify", "-f", "/nonexistent.txt", "-c", "{classify}"], None, 2, "does not exist"),
    (["classify", "-f", "{latin1}", "-c", "{classify}"], None, 2, "not UTF-8"),
    (["classify", "Hou", "-f", "{text}", "-c", "{classify}"], None, 2, "not both"),
    (["classify", "-", "-c", "{classify}"], b"Hou\xff\n", 2, "not UTF-8"),
    (["classify", "Hou", "-c", "{poems}"], None, 2, "needs a names classifier"),
    # score
    (["score", "", "-c", "{poems}"], None, 2, "give a text file to score"),
    (["score", LONG, "-c", "{poems}"], None, 2, "File name too long"),
    (["score", "{dir}", "-c", "{poems}"], None, 2, "is a folder, not a text file"),
    (["score", "{binary}", "-c", "{poems}"], None, 2, "binary file"),
    (["score", "-", "-c", "{poems}"], "\n \n", 2, "nothing to score"),
    (["score", "-", "--category", EMOJI, "-c", "{poems}"], "白日\n", 2, "unknown category"),
    (["score", "-", "-c", "{classify}"], "Hou\n", 2, "only language models score text"),
    # compare: refused before any model trains
    (["compare", "--models", "", "--data-dir", "{data}"], None, 2, "--models is empty"),
    (["compare", "--models", "lstm,lstn", "--data-dir", "{data}"], None, 2, "unknown model spec"),
    (["compare", "--steps", "0", "--data-dir", "{data}"], None, 2, "step budget must be at least 1"),
    (["compare", "--seconds", "nan", "--data-dir", "{data}"], None, 2, "time budget"),
    (["compare", "--seed", BIG, "--data-dir", "{data}"], None, 2, "--seed must be between"),
    (["compare", "--out", "{text}", "--data-dir", "{data}"], None, 2, "is a file"),
    (["compare", "--out", "{text}/sub", "--data-dir", "{data}"], None, 2, "is a file, not a folder"),
    # report and plot
    (["report", ""], None, 2, "the path is empty"),
    (["report", "/nonexistent-run"], None, 2, "is not a folder"),
    (["report", "{dir}"], None, 2, "is not a training run"),
    (["report", "{poems}", "--out", "{text}"], None, 2, "is a file"),
    (["plot", ""], None, 2, "the path is empty"),
    (["plot", LONG], None, 2, "File name too long"),
    (["plot", "{dir}"], None, 2, "no metrics.jsonl"),
    (["plot", "{damaged}"], None, 2, "line 2 is not JSON"),
    # the command line itself
    (["no-such-command"], None, 2, "No such command"),
]
if Path("/proc/self/mem").exists():  # a file that exists but cannot be read, even by root
    BAD_INPUT += [
        (["corpus", "info", "/proc/self/mem"], None, 1, "cannot read /proc/self/mem"),
        (["classify", "-f", "/proc/self/mem", "-c", "{classify}"], None, 1, "cannot read /proc/self/mem"),
        (["score", "/proc/self/mem", "-c", "{poems}"], None, 1, "cannot read /proc/self/mem"),
        (["write", "白日", "-c", "/proc/self/mem"], None, 2, "not a poetgen checkpoint"),
    ]


def fill(args: list[str], models: dict[str, Path], files: dict[str, Path], data: Path) -> list[str]:
    values = {**{k: str(v) for k, v in models.items()}, **{k: str(v) for k, v in files.items()}, "data": str(data)}
    return [a.format(**values) if "{" in a else a for a in args]


@pytest.mark.parametrize(("args", "stdin", "code", "message"), BAD_INPUT,
                         ids=[f"{i}-{' '.join(a)[:40]}" for i, (a, *_) in enumerate(BAD_INPUT)])
def test_bad_input_is_one_line_with_the_right_exit_code(models, files, tiny_data, args, stdin, code, message):
    result = run(*fill(args, models, files, tiny_data), input=stdin)
    assert_one_line_error(result, code, message)
    assert result.stdout == ""


def test_long_messages_are_shortened(models):
    result = run("names", "--lang", LONG, "-c", str(models["names"]))
    assert_one_line_error(result, 2, "unknown language")
    assert len(error_lines(result)[0]) < 600 and "…" in result.stderr


@pytest.mark.parametrize("text", [EMOJI, CONTROL, MIXED, MARKUP, LONG])
def test_check_gives_a_verdict_for_any_text(text: str):
    """Not a poem is not an error: `check` says which rules fail (exit 0)."""
    result = run("check", text, "--json")
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["form"] == "other" and not verdict["rules"]["form"]


def test_odd_names_are_reported_not_crashed(models):
    result = run("classify", "Иванов", MARKUP, "hou", "-c", str(models["classify"]), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["Иванов", MARKUP, "hou"]
    assert rows[0]["unknown_chars"] == list(dict.fromkeys("Иванов"))  # Latin-only model: said, not hidden
    assert all(abs(sum(p for _, p in r["top"]) - 1) < 1e-3 for r in rows)  # three languages: all of them
    table = run("classify", MARKUP, "-c", str(models["classify"]))
    assert table.exit_code == 0 and MARKUP in table.stdout  # shown as typed, not read as markup


def test_generation_accepts_the_documented_edge_values(models):
    poem = run("write", "", "-c", str(models["poems"]), "--seed", "1", "--json")  # no prefix: allowed
    assert poem.exit_code == 0, poem.output
    assert len(json.loads(poem.stdout)[0]["text"]) in (24, 32, 48, 64)
    names = run("names", "--lang", "rus", "--start", "", "-n", "3", "-c", str(models["names"]), "--seed", "0",
                "--json")
    assert names.exit_code == 0, names.output
    assert len(json.loads(names.stdout)) <= 3


def test_scoring_text_outside_the_vocabulary_warns_and_counts_it(models):
    result = run("score", "-", "-c", str(models["poems"]), input=f"{EMOJI}白日[/]\n")
    assert result.exit_code == 0, result.output
    assert "not scored" in result.stderr and "[/]" in result.stderr


@pytest.mark.parametrize(("args", "exception"), [
    (["corpus", "info", "tnag"], PoetgenError),
    (["corpus", "info", LONG], OSError),
    (["write", EMOJI, "-c", "{poems}"], PoetgenError),
])
def test_debug_raises_instead(models, files, tiny_data, args, exception):
    """--debug lets the exception through, so Python prints its traceback (see test_cli for the
    subprocess view)."""
    result = run("--debug", *fill(args, models, files, tiny_data))
    assert isinstance(result.exception, exception), result.output
    plain = run(*fill(args, models, files, tiny_data))
    assert plain.exit_code in (1, 2) and isinstance(plain.exception, SystemExit)


@pytest.mark.slow
def test_errors_in_a_real_process(models, tmp_path: Path):
    """The same contract through `python -m poetgen`: stderr one line, no traceback; --debug shows it.
    Undecodable bytes in argv (PEP 383 surrogates) are refused in one line too."""
    env = {**os.environ, "COLUMNS": "80", "OMP_NUM_THREADS": "1"}
    commands = {
        "surrogate": [b"write", b"\xff\xfe", b"-c", str(models["poems"]).encode()],
        "toolong": ["corpus", "info", LONG],
        "usage": ["write", "--num", "many"],
        "debug": ["--debug", "corpus", "info", LONG],
    }
    procs = {k: subprocess.Popen([sys.executable, "-m", "poetgen", *args], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=env, cwd=tmp_path) for k, args in commands.items()}
    done = {k: (p.communicate(timeout=300), p.returncode) for k, p in procs.items()}
    for key in ("surrogate", "toolong", "usage"):
        (_, err), code = done[key]
        lines = [line for line in err.decode().splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (key, err.decode())
    assert b"valid UTF-8" in done["surrogate"][0][1]
    (_, err), code = done["debug"]
    assert code == 1 and b"Traceback" in err and b"OSError" in err


# ---------------------------------------------------------------------------------------------
# Fuzzing: text normalisation and the character tokenizer never crash, and their invariants hold

CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
MESSY = st.text(st.one_of(CJK, st.sampled_from(list("，。？！；,.?!;:：、（）()《》[]「」□ 　0123456789０\n\t")),
                          st.characters()), max_size=40)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MESSY, max_size=6))
def test_clean_poem_output_is_clean_and_stable(paragraphs):
    text = clean_poem(paragraphs)
    if text is not None:
        assert ALLOWED.match(text) and text[-1] in LINE_END
        assert clean_poem([text]) == text  # cleaning is idempotent


@given(st.lists(st.one_of(st.integers(), st.none(), st.lists(st.text(max_size=3))), min_size=1, max_size=3))
def test_clean_poem_skips_damaged_records(paragraphs):
    assert clean_poem(paragraphs) is None


@settings(max_examples=200)
@given(st.text())
def test_normalize_name_is_idempotent_nfc_and_trimmed(raw):
    name = normalize_name(raw)
    assert name == name.strip() and unicodedata.is_normalized("NFC", name)
    assert normalize_name(name) == name


@settings(max_examples=150, deadline=None)
@given(st.one_of(MESSY, st.text()), st.sampled_from(["simplified", "traditional"]))
def test_to_script_never_crashes(text, script):
    out = to_script(text, script)
    assert isinstance(out, str)
    if script == "simplified":
        assert to_script(out, "simplified") == out  # simplifying simplified text changes nothing


@given(st.text(CJK, max_size=5), st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1,
                                         max_size=3))
def test_to_script_passes_undecodable_bytes_through(han, surrogates):
    mixed = han + surrogates + han
    assert to_script(mixed, "simplified") == to_script(han, "simplified") + surrogates + to_script(han, "simplified")


@settings(max_examples=150)
@given(st.lists(st.text(max_size=12), max_size=8), st.text(max_size=30))
def test_char_vocab_round_trip_and_unknowns(texts, probe):
    vocab = CharVocab.build(texts)
    assert vocab.tokens[:4] == list(SPECIALS) and len(set(vocab.tokens)) == len(vocab.tokens)
    ids = vocab.encode(probe)
    assert len(ids) == len(probe) and all(0 <= i < len(vocab) for i in ids)
    known = "".join(ch for ch in probe if ch in vocab.index)
    assert vocab.decode(ids) == known  # unknown characters become <unk>, which decodes to nothing
    assert vocab.unknown(probe) == list(dict.fromkeys(ch for ch in probe if ch not in vocab.index))
    assert ids.count(UNK) == sum(ch not in vocab.index for ch in probe)
    for text in texts:
        assert vocab.decode(vocab.encode(text)) == text
    assert CharVocab.build(list(reversed(texts))).tokens == vocab.tokens  # ids do not depend on order
    assert tokenizer_from_dict(json.loads(json.dumps(vocab.to_dict()))).tokens == vocab.tokens


@given(st.one_of(st.none(), st.integers(), st.lists(st.text(max_size=3), max_size=6),
                 st.dictionaries(st.sampled_from(["kind", "tokens", "model"]),
                                 st.one_of(st.text(max_size=8), st.lists(st.text(max_size=2), max_size=6)))))
def test_malformed_vocabulary_in_a_checkpoint_is_refused_cleanly(data):
    with contextlib.suppress(PoetgenError):
        tokenizer = tokenizer_from_dict(data)
        assert len(tokenizer.index) == len(tokenizer.tokens)


# ---------------------------------------------------------------------------------------------
# Interrupted training loses nothing

TRAIN = ["--corpus", "tang", "--max-steps", "30", "--eval-every", "1", "--batch-size", "8", "--hidden", "16",
         "--embed", "8", "--layers", "1", "--dropout", "0.2", "--epochs", "1000", "--seed", "3", "--quiet"]

# `poetgen train`, started ahead of time: imports first, then (WAIT_FOR_GO) a line on stdin before
# main() runs, so a resumed run can begin the moment the previous one dies. With KILL_AT_SAVE=N it
# SIGKILLs itself part-way through writing its Nth checkpoint file.
TRAIN_PROCESS = textwrap.dedent("""
    import os, signal, sys
    import safetensors.torch as st
    import poetgen.checkpoint as ck
    import poetgen.train
    from poetgen.repl.console import main
    if os.environ.get("KILL_AT_SAVE"):
        real, calls = ck.write_safetensors, []
        def write_safetensors(tensors, path, metadata):
            calls.append(path)
            if len(calls) == int(os.environ["KILL_AT_SAVE"]):
                data = st.save(tensors, metadata=metadata)
                with open(path, "wb") as fh:
                    fh.write(data[: int(len(data) * float(os.environ["KILL_FRACTION"]))])
                os.kill(os.getpid(), signal.SIGKILL)
            return real(tensors, path, metadata)
        ck.write_safetensors = write_safetensors
    if os.environ.get("WAIT_FOR_GO"):
        sys.stdin.readline()
    sys.argv = ["poetgen", *sys.argv[1:]]
    main()
""")


def train_process(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRAIN_PROCESS, "train", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def go(proc: subprocess.Popen) -> None:
    proc.stdin.write(b"go\n")
    proc.stdin.flush()


def evaluations(run_dir: Path) -> int:
    try:
        return (run_dir / "metrics.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def signal_at(proc: subprocess.Popen, run_dir: Path, evals: int, sig: int) -> None:
    """Send ``sig`` once the run has logged ``evals`` evaluations, plus a random fraction of a step."""
    deadline = time.monotonic() + 300
    while evaluations(run_dir) < evals:
        assert proc.poll() is None, f"finished before the signal: {proc.communicate()[1].decode()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(random.uniform(0, 0.05))
    proc.send_signal(sig)


def assert_checkpoints_loadable(run_dir: Path) -> None:
    names = sorted(p.name for p in run_dir.glob("*.safetensors"))
    assert "last.safetensors" in names, sorted(p.name for p in run_dir.iterdir())
    for name in names:
        assert name in ("best.safetensors", "last.safetensors"), name  # a temp file never takes their name
        load_checkpoint(run_dir / name)
    assert load_checkpoint(run_dir).path.name == "best.safetensors"


@pytest.mark.slow
def test_kills_and_ctrl_c_lose_nothing_and_resume_to_the_same_weights(tiny_data: Path, tmp_path: Path):
    """SIGKILL part-way through a checkpoint write, SIGKILL at a random moment, then Ctrl-C (exit
    130, `last` saved): each time `--resume` continues, and the run ends with the weights of an
    uninterrupted run (CPU, same seed, dropout on)."""
    rng = random.Random()
    args = [*TRAIN, "--data-dir", str(tiny_data)]
    cut, ref = tmp_path / "cut", tmp_path / "reference"
    first = train_process([*args, "--out", str(cut)], KILL_AT_SAVE=str(rng.randint(4, 10)),
                          KILL_FRACTION=str(rng.uniform(0.05, 0.95)))
    second = train_process([*args, "--out", str(cut), "--resume"], WAIT_FOR_GO="1")
    third = train_process([*args, "--out", str(cut), "--resume"], WAIT_FOR_GO="1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 in the subprocesses: the same arithmetic
    try:
        # 0. the uninterrupted reference, in this process, while the others start up
        reference = run("train", *args, "--out", str(ref))
        assert reference.exit_code == 0, reference.output

        # 1. killed part-way through writing a checkpoint file: the old ones stay whole
        first.communicate(timeout=300)
        assert first.returncode == -signal.SIGKILL
        assert list(cut.glob(".*.safetensors.*.tmp")), "the kill should have left a half-written temp file"
        assert_checkpoints_loadable(cut)

        # 2. resumed, then killed at a random moment
        before = evaluations(cut)
        go(second)
        signal_at(second, cut, before + rng.randint(2, 6), signal.SIGKILL)
        second.communicate(timeout=300)
        assert second.returncode == -signal.SIGKILL
        assert_checkpoints_loadable(cut)

        # 3. resumed, then Ctrl-C: `last` is saved at a step boundary and the exit code is 130
        before = evaluations(cut)
        go(third)
        signal_at(third, cut, before + rng.randint(2, 6), signal.SIGINT)
        _, err = third.communicate(timeout=300)
        assert third.returncode == 130, err.decode()[-2000:]
        lines = [line for line in err.decode().splitlines() if line.strip()]
        assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0], lines
        step = read_header(cut / "last.safetensors")[0]["state"]["step"]
        assert 0 < step < 30

        # 4. resumed to the end, in this process
        finished = run("train", *args, "--out", str(cut), "--resume")
        assert finished.exit_code == 0, finished.output
    finally:
        torch.set_num_threads(threads)
        for proc in (first, second, third):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert not list(cut.glob(".*.tmp")), "stale temp files are cleared on resume"
    steps = [json.loads(line)["step"] for line in (cut / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 30  # no torn or repeated records
    want, got = weights(ref / "last.safetensors"), weights(cut / "last.safetensors")
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


def test_nan_loss_stops_with_one_line_and_exit_1(tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    result = run("train", "--corpus", "tang", "--data-dir", str(tiny_data), "--lr", "1e30", "--clip", "0",
                 "--schedule", "constant", "--eval-every", "1", "--batch-size", "8", "--hidden", "16", "--embed",
                 "8", "--layers", "1", "--max-steps", "20", "--quiet", "--out", str(out))
    assert_one_line_error(result, 1, "loss became")
    assert "at step" in result.stderr
    # it diverged at once: no checkpoint to promise (a run with one says which step it kept)
    assert "no checkpoint was written" in result.stderr and not (out / "last.safetensors").exists()
    for line in (out / "metrics.jsonl").read_text().splitlines() if (out / "metrics.jsonl").exists() else []:
        record = json.loads(line)  # strict JSON: no NaN ever reaches the metrics
        assert all(v == v for v in record.values() if isinstance(v, float))
    for name in ("best", "last"):
        if (out / f"{name}.safetensors").exists():
            assert all(torch.isfinite(t).all() for t in weights(out / f"{name}.safetensors").values())


# ---------------------------------------------------------------------------------------------
# Disk and data faults

TINY_TRAIN = ["--corpus", "tang", "--max-steps", "4", "--eval-every", "2", "--batch-size", "8", "--hidden", "16",
              "--embed", "8", "--layers", "1", "--quiet"]


def writes_blocked(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("")
    except OSError:
        return True
    (folder / "probe").unlink()
    return False


@contextlib.contextmanager
def mounted_tmpfs(where: Path, options: str):
    """A tiny or read-only tmpfs when we may mount (root with CAP_SYS_ADMIN); else None."""
    where.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                                 capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):  # no mount(8) here
        mounted = False
    try:
        yield where if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], capture_output=True, timeout=30)


def test_out_on_a_read_only_location(tiny_data: Path, tmp_path: Path):
    """chmod does not stop root, so also try a read-only tmpfs mount; a path under a regular file
    is unwritable for everyone."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    places = [tmp_path / "a-file" / "run"]
    (tmp_path / "a-file").write_text("")
    try:
        with mounted_tmpfs(tmp_path / "ro", "ro,size=64k") as read_only:
            if writes_blocked(locked):  # not as root
                places.append(locked / "run")
            if read_only is not None:  # as root
                places.append(read_only / "run")
            for place in places:
                result = run("train", *TINY_TRAIN, "--data-dir", str(tiny_data), "--out", str(place))
                assert_one_line_error(result, 2, "cannot write to --out")
                assert not place.exists()
    finally:
        locked.chmod(0o755)


def checkpoint_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "safetensors" in p.name) if folder.exists() else []


def test_a_full_disk_leaves_nothing_half_written(tiny_data: Path, tmp_path: Path, monkeypatch):
    """On a 8 KiB tmpfs when we may mount one (the real error safetensors raises), else with the
    checkpoint writer failing the way safetensors does: exit 1, one line, no checkpoint, no temp
    file and no metrics record for the evaluation that could not be saved."""
    with mounted_tmpfs(tmp_path / "small", "size=8k") as small:
        if small is None:
            from safetensors import SafetensorError

            def disk_full(*args, **kwargs):
                raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

            monkeypatch.setattr("poetgen.checkpoint.write_safetensors", disk_full)
            small = tmp_path / "small"
        out = small / "run"
        result = run("train", *TINY_TRAIN, "--data-dir", str(tiny_data), "--out", str(out))
        assert_one_line_error(result, 1, "No space left on device")
        assert "cannot write checkpoint" in result.stderr
        assert checkpoint_files(out) == []
        assert not (out / "metrics.jsonl").exists() or (out / "metrics.jsonl").read_text() == ""


def test_a_disk_that_fills_up_mid_run_keeps_the_previous_checkpoints(tiny_data: Path, tmp_path: Path, monkeypatch):
    from poetgen import checkpoint

    real = checkpoint.write_safetensors
    calls = []

    def fills_up(tensors, path, metadata):
        calls.append(path)
        if len(calls) > 2:  # best + last of the first evaluation fit; nothing after
            with open(path, "wb") as fh:
                fh.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, metadata)

    monkeypatch.setattr("poetgen.checkpoint.write_safetensors", fills_up)
    out = tmp_path / "run"
    result = run("train", *TINY_TRAIN, "--data-dir", str(tiny_data), "--out", str(out))
    assert_one_line_error(result, 1, "No space left on device")
    assert checkpoint_files(out) == ["best.safetensors", "last.safetensors"]
    for name in ("best", "last"):
        assert read_header(out / f"{name}.safetensors")[0]["state"]["step"] == 2
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [2]


def test_corpus_deleted_mid_run_does_not_matter(tiny_data: Path, tmp_path: Path):
    """The trainer reads the whole corpus at start (the checkpoint keeps its fingerprint and the
    seen-line hashes), so deleting the raw files mid-run changes nothing."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    raw = next((data / "chinese-poetry" / "quantangshi").glob("*.json"))

    def delete_at_step_2(event: dict) -> None:
        if event["step"] == 2:
            raw.unlink()

    cfg = tiny_config(data, "tang", "lm", max_steps=6, eval_every=3)
    record = Trainer(cfg, tmp_path / "run").fit(log=delete_at_step_2)
    assert not raw.exists() and record["step"] == 6
    ck = load_checkpoint(tmp_path / "run")
    assert ck.meta["corpus"]["fingerprint"] and ck.seen


def test_corrupt_json_in_the_corpus_names_file_and_position(tiny_data: Path, tmp_path: Path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    bad = data / "chinese-poetry" / "quantangshi" / "poet.tang.1.json"
    bad.write_text('[\n  {"paragraphs": ["白日依山尽，黄河入海流。"]},\n  {"paragraphs": [oops]}\n]\n')
    for args in (["corpus", "info", "tang"], ["train", *TINY_TRAIN, "--out", str(tmp_path / "run")]):
        result = run(*args, "--data-dir", str(data))
        assert_one_line_error(result, 2, f"corrupt JSON in {bad} at line 3, column")
    assert not (tmp_path / "run").exists()


def test_a_damaged_prepared_cache_is_rebuilt(tiny_data: Path):
    first = corpora.load_corpus("names", tiny_data)
    cache = next(Path(os.environ["POETGEN_CACHE"], "prepared").glob(f"names-all-{first.fingerprint}-l*.jsonl"))
    text = cache.read_text(encoding="utf-8")
    cache.write_text(text[: text.index("\n", len(text) // 2) - 3], encoding="utf-8")  # torn mid-line
    corpora._cached_tuple.cache_clear()
    again = corpora.load_corpus("names", tiny_data)
    assert again.samples == first.samples
    assert cache.read_text(encoding="utf-8") == text


# ---------------------------------------------------------------------------------------------
# Load: a 100k-line stream through `classify -`


@pytest.mark.slow
def test_classify_streams_100k_names_in_bounded_memory(models, tmp_path: Path):
    pool = ["Abramov", "Nakamura", "Kowalski", "O'Brien", "Müller", "Hou", "Dovesky"]
    names = [f"{pool[i % len(pool)]}{'abcdefghij'[i % 10] * (i % 4)}" for i in range(100_000)]
    source, sink = tmp_path / "in.txt", tmp_path / "out.tsv"
    source.write_text("\n".join(names) + "\n", encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with source.open("rb") as stdin, sink.open("wb") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "poetgen", "classify", "-", "-c", str(models["classify"])],
                                stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak memory, not the test's
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    proc.stderr.close()
    rows = sink.read_text(encoding="utf-8").splitlines()
    assert len(rows) == len(names)
    assert [row.split("\t")[0] for row in rows] == names  # one result per input line, in order
    peak_mib = usage.ru_maxrss / 1024  # KiB on Linux
    assert peak_mib < 1536, f"peak RSS {peak_mib:.0f} MiB"


# ---------------------------------------------------------------------------------------------
# README, "Files, network and safety"


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError(errno.ENETUNREACH, "network use is not allowed in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_generation_and_scoring_never_touch_the_network(models, no_network, tmp_path: Path):
    commands = [
        ["write", "白日", "-c", str(models["poems"]), "--seed", "1"],
        ["write", "白日", "--acrostic", "--form", "五古", "-c", str(models["poems"]), "--seed", "1"],
        ["names", "--lang", "Russian", "-n", "3", "-c", str(models["names"]), "--seed", "1"],
        ["classify", "Hou", "Ivanov", "-c", str(models["classify"])],
        ["score", "-", "-c", str(models["poems"])],
        ["check", "床前明月光，疑是地上霜。举头望明月，低头思故乡。"],
    ]
    for command in commands:
        result = run(*command, input="白日依山尽\n")
        assert result.exit_code == 0, (command, result.output)
    assert no_network == []
    # the guard works: `corpus download` is the one command that does go out, and it is stopped
    result = run("corpus", "download", "names", "--data-dir", str(tmp_path), "-q")
    assert_one_line_error(result, 1, "network use is not allowed")
    assert no_network


def test_using_a_model_writes_no_files(models, tmp_path: Path, monkeypatch):
    """write / names / classify / score / check read their inputs and write nothing: not in the
    working folder, the home folder, the cache, or beside the checkpoint."""
    home, cache, work = tmp_path / "home", tmp_path / "cache", tmp_path / "work"
    for folder in (home, cache, work):
        folder.mkdir()
    monkeypatch.chdir(work)

    def snapshot() -> list[tuple[str, float]]:
        watched = [tmp_path, *models.values()]
        return sorted((str(p), p.stat().st_mtime) for root in watched for p in root.rglob("*"))

    before = snapshot()
    env = {"HOME": str(home), "POETGEN_CACHE": str(cache), "XDG_CACHE_HOME": str(home / ".cache")}
    for command in (["write", "白日", "-c", str(models["poems"]), "--seed", "1", "-n", "2"],
                    ["names", "-c", str(models["names"]), "--seed", "1"],
                    ["classify", "-", "-c", str(models["classify"])],
                    ["score", "-", "-c", str(models["poems"]), "--json"],
                    ["check", "床前明月光"]):
        result = run(*command, input="Hou\n", env=env)
        assert result.exit_code == 0 or "nothing to score" in result.stderr, (command, result.output)
    assert snapshot() == before
