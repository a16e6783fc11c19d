"""The interactive shell, cheapest first: in-process with prompt_toolkit's pipe input and a Rich
console writing to a string; then piped stdin through a subprocess (the scriptable mode); then a
real pseudo-terminal through pexpect for what only a terminal has (Ctrl-C, Ctrl-D, the prompt).

Three tiny models (poems, names generator, names classifier) are trained once per session in a
few seconds: their output is gibberish, but it goes through the same library calls as the real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput
from rich.console import Console

from poetgen.repl import COMMANDS, Models, Repl, run_repl

REPO = Path(__file__).resolve().parent.parent
CTRL_D = "\x04"


@pytest.fixture(scope="session")
def models(tiny_models: dict[str, Path]) -> dict[str, Path]:
    """The shared tiny models, named as ``run_repl`` takes them."""
    return {"poems": tiny_models["poems"], "names": tiny_models["names"], "classifier": tiny_models["classify"]}


def drive(keys: str, models: dict[str, Path] | None = None, width: int = 100, **kwargs) -> tuple[int, str]:
    """Type ``keys`` into the terminal-mode REPL (prompt_toolkit pipe input); return (code, output)."""
    buffer = StringIO()
    console = Console(file=buffer, width=width, force_terminal=False, highlight=False)
    with create_pipe_input() as inp:
        inp.send_text(keys)
        code = run_repl(**(models or {}), history_file=kwargs.pop("history_file", None), input=inp,
                        output=DummyOutput(), console=console, **kwargs)
    return code, buffer.getvalue()


@pytest.fixture(autouse=True)
def _history_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POETGEN_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def no_bundled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend no model ships with the package."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr("poetgen.paths.bundled", lambda name: empty)


# ---------------------------------------------------------------------------------------------
# In-process: prompt_toolkit pipe input


def test_write_shows_a_poem_panel_and_loads_the_model_once(models, monkeypatch: pytest.MonkeyPatch):
    import poetgen.checkpoint

    calls = []
    real = poetgen.checkpoint.load_for
    monkeypatch.setattr(poetgen.checkpoint, "load_for", lambda *a, **k: calls.append(a) or real(*a, **k))
    code, out = drive("write 青山\rwrite 明月 -n 2\rcheck\r" + CTRL_D, models)
    assert code == 0
    assert out.count("╭") == 3  # three poem panels
    assert "青山" in out and "明月" in out
    assert "rhyme chars" in out  # `check` alone checks the last poem written
    assert [a[0] for a in calls] == ["poems"]  # loaded lazily, once, and kept


def test_unknown_command_suggests_and_the_session_goes_on(models):
    code, out = drive("wirte 青山\rhelp\r" + CTRL_D, models)
    assert code == 0
    assert "unknown command 'wirte' (did you mean 'write'?)" in out
    assert "acrostic HEADS" in out  # help ran after the mistake


def test_bad_arguments_are_one_line_each(models):
    code, out = drive("set tmp 1\rset temp warm\rwrite --bogus\rset form 六绝\rnames Klingon -n 3\rshow models\r"
                      + CTRL_D, models)
    assert code == 0
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 5, out
    assert "did you mean 'temp'" in errors[0]
    assert "expected a temperature" in errors[1]
    assert "No such option: --bogus" in errors[2]
    assert "unknown value '六绝'" in errors[3]
    assert "unknown language 'Klingon'" in errors[4]
    assert "loaded" in out  # show models ran: the names model loaded for the Klingon attempt


def test_settings_change_what_is_shown_and_used(models, monkeypatch: pytest.MonkeyPatch):
    import poetgen.poems.write

    seen = {}
    real = poetgen.poems.write.write_poems

    def spy(ck, prefix, **kwargs):
        seen.update(kwargs)
        return real(ck, prefix, **kwargs)

    monkeypatch.setattr(poetgen.poems.write, "write_poems", spy)
    keys = ("set temp 0.5\rset top-k 8\rset top_p 0.9\rset seed 3\rset form 五绝\rset rhyme off\r"
            "set script traditional\rshow settings\rwrite 长\r" + CTRL_D)
    code, out = drive(keys, models)
    assert code == 0
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line[:1].isalpha() and " " in line}
    assert rows["temp"] == "0.5" and rows["top_k"] == "8" and rows["top_p"] == "0.9" and rows["seed"] == "3"
    assert rows["form"] == "五绝" and rows["rhyme"] == "off" and rows["script"] == "traditional"
    sampling = seen["sampling"]
    assert (sampling.temperature, sampling.top_k, sampling.top_p, sampling.seed) == (0.5, 8, 0.9, 3)
    assert seen["form"] == "五绝" and seen["rhyme"] is False and seen["script"] == "traditional"
    assert "長" in out  # the poem came back in traditional characters


def test_the_shell_speaks_the_cli_grammar(models):
    """A line typed in the shell means what it means after `poetgen`: same options, same defaults."""
    from typer.testing import CliRunner

    from poetgen.cli import app

    line = f"names Russian -n 5 --seed 7 --json -c {models['names']}"
    code, out = drive(f"{line}\rwrite 青山 --form 五律 --temp 0.9 --seed 1 --json\r" + CTRL_D, models, width=300)
    assert code == 0
    cli = CliRunner().invoke(app, line.split(), env={"COLUMNS": "300"})
    assert cli.exit_code == 0, cli.output
    decoder, starts = json.JSONDecoder(), [i for i in range(len(out)) if out.startswith("\n[", i)]
    names, poems = (decoder.raw_decode(out, i + 1)[0] for i in starts)
    assert names == json.loads(cli.stdout)  # the same names: the same default temperature
    assert poems[0]["form"] == "五律"


def test_names_and_classify_render(models):
    code, out = drive("names rus -n 4\rclassify Hou Jackson\r" + CTRL_D, models)
    assert code == 0
    assert "Russian" in out  # the names panel's title
    assert "Jackson" in out and "%" in out and "█" in out  # the table with probability bars


def test_missing_model_is_named_and_other_commands_still_work(models, no_bundled):
    code, out = drive("write 青山\rnames Russian -n 2\rmodels\r" + CTRL_D, {"names": models["names"]})
    assert code == 0
    assert "no poem model" in out and "load PATH" in out
    assert "Russian" in out  # names still work
    assert "missing" in out  # `models` says which one


def test_load_detects_the_kind(models, no_bundled):
    keys = f"load {models['classifier']}\rclassify Ivanov\rload /nonexistent/x.safetensors\r" + CTRL_D
    code, out = drive(keys, {})
    assert code == 0
    assert "loaded names classifier model" in out
    assert "Ivanov" in out
    assert "does not exist" in out


def test_an_unexpected_exception_is_one_line(models, monkeypatch: pytest.MonkeyPatch):
    def boom(repl, args):
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(COMMANDS["models"], "handler", boom)
    code, out = drive("models\rhelp quit\r" + CTRL_D, models)
    assert code == 0
    assert "internal error: RuntimeError: disk on fire" in out
    assert "second line" not in out and "Traceback" not in out
    assert "leave" in out


def test_quit_and_exit_return_zero(models):
    assert drive("quit\r")[0] == 0
    assert drive("exit\r")[0] == 0


def test_history_is_written_to_the_given_file(tmp_path: Path):
    history = tmp_path / "h" / "history"
    drive("help\rshow settings\r" + CTRL_D, history_file=history)
    text = history.read_text(encoding="utf-8")
    assert "+help" in text and "+show settings" in text


def test_completion_offers_commands_settings_forms_and_languages():
    r = Repl(Models({}), Console(file=StringIO()), Console(file=StringIO()))
    completer = r.completer()

    def words(text: str) -> set[str]:
        return {c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))}

    assert {"write", "acrostic"} <= words("")
    assert words("wr") == {"write"}
    assert "五律" in words("set form ")
    assert {"水调歌头", "水龙吟"} <= words("write --form 水") and "浣溪沙" in words("write --form ")
    assert "traditional" in words("set script ")
    assert words("names Rus") == {"Russian"}
    assert "top_k" in words("set to")


def test_toolbar_shows_models_and_settings():
    r = Repl(Models({}), Console(file=StringIO()), Console(file=StringIO()))
    r.execute("set temp 0.6")
    r.execute("set form 七律")
    text = "".join(part for _, part in r.toolbar())
    assert "poems bundled" in text and "temp 0.6" in text and "form 七律" in text and "top-k off" in text


# ---------------------------------------------------------------------------------------------
# Piped stdin: scriptable, no escape codes


def repl_code(models: dict[str, Path]) -> str:
    args = ", ".join(f"{k}={str(v)!r}" for k, v in models.items())
    return f"import sys; from poetgen.repl import run_repl; sys.exit(run_repl({args}))"


def child_env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "100", "TERM": "xterm", "POETGEN_CACHE": str(tmp_path / "cache"),
            "PROMPT_TOOLKIT_NO_CPR": "1", "OMP_NUM_THREADS": "1", "PYTHONIOENCODING": "utf-8"}


@pytest.mark.slow
def test_piped_stdin_runs_line_by_line(models, tmp_path: Path):
    script = "write 青山\nset script traditional\nwrite 长风\nnames Russian -n 3\n"
    done = subprocess.run([sys.executable, "-c", repl_code(models)], input=script, capture_output=True, text=True,
                          env=child_env(tmp_path), timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "poetgen>" not in done.stdout
    assert "青山" in done.stdout and "長風" in done.stdout and "Russian" in done.stdout
    assert done.stderr == ""


@pytest.mark.slow
def test_piped_stdin_reports_errors_on_stderr_and_keeps_going(models, tmp_path: Path):
    script = "wirte 青山\nnames Russian -n 2\n"
    done = subprocess.run([sys.executable, "-c", repl_code(models)], input=script, capture_output=True, text=True,
                          env=child_env(tmp_path), timeout=240, cwd=REPO)
    assert done.returncode == 2  # the first failure's code: a usage error
    assert "did you mean 'write'?" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert "Russian" in done.stdout


# ---------------------------------------------------------------------------------------------
# A real pseudo-terminal


@pytest.fixture
def pty(models, tmp_path: Path):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, ["-c", repl_code(models)], env=child_env(tmp_path), cwd=str(REPO),
                          encoding="utf-8", codec_errors="replace", timeout=120, dimensions=(40, 100))
    child.expect_exact("poetgen>")
    yield child
    if child.isalive():
        child.terminate(force=True)


@pytest.mark.slow
def test_pty_write_typo_settings_and_ctrl_d(pty):
    pty.sendline("write 青山")
    pty.expect("青山")
    pty.expect("╰")
    pty.expect_exact("poetgen>")
    pty.sendline("wirte")
    pty.expect_exact("did you mean 'write'?")
    pty.expect_exact("poetgen>")
    pty.sendline("set temp 0.5")
    pty.expect_exact("poetgen>")
    pty.sendline("show settings")
    pty.expect(r"temp\s+0\.5")
    pty.expect_exact("poetgen>")
    pty.sendcontrol("d")
    pty.expect(pytest.importorskip("pexpect").EOF)
    pty.close()
    assert pty.exitstatus == 0


@pytest.mark.slow
def test_pty_ctrl_c_cancels_generation(pty):
    pty.sendline("names Russian -n 1")  # load the model first, so Ctrl-C lands in generation
    pty.expect("╰")  # the names panel's last border: output, not the echo of the typed line
    pty.expect_exact("poetgen>")
    pty.sendline("names all -n 1000 --novel")  # seconds of work, even for a tiny model
    pty.expect_exact("drawing names")  # generation has begun
    pexpect = pytest.importorskip("pexpect")
    for _ in range(10):  # a loaded machine may hold the first ^C back; never a fixed sleep
        pty.sendintr()
        if pty.expect_exact(["interrupted", pexpect.TIMEOUT], timeout=5) == 0:
            break
    else:
        pytest.fail("Ctrl-C did not interrupt the generation")
    pty.expect_exact("poetgen>")
    pty.sendline("names Russian -n 2")  # the session is still usable
    pty.expect("Russian")
    pty.expect_exact("poetgen>")
    pty.sendline("quit")
    pty.expect(pytest.importorskip("pexpect").EOF)
    pty.close()
    assert pty.exitstatus == 0


@pytest.mark.slow
def test_poetgen_without_a_command_opens_the_shell(tmp_path: Path):
    done = subprocess.run([sys.executable, "-m", "poetgen"], input="help\nquit\nhelp\n", capture_output=True,
                          text=True, env=child_env(tmp_path), timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("acrostic HEADS") == 1  # `quit` stopped the script
