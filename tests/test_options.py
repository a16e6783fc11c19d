"""The sampling options are declared once: the library owns every default (``poetgen.defaults``),
the CLI's help states it, a command left without an option writes what it writes with the stated
default spelt out, and the shell and the lab say the same."""

from __future__ import annotations

import ast
import json
import re
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from poetgen import defaults
from poetgen.checkpoint import load_checkpoint
from poetgen.repl import Repl
from poetgen.repl.commands import setting_help
from poetgen.repl.models import Models
from tests.cli_run import run

STATED = {  # option → the words its help states its default in
    "--temp": r"Sampling temperature \(0 = greedy; default ([0-9.]+)\)",
    "--top-k": r"Keep the k most likely tokens \(0 = off; default ([0-9]+)\)",
    "--top-p": r"Nucleus sampling mass in \(0, 1\] \(1 = off; default ([0-9.]+)\)",
    "--candidates": r"most fluent \(1 to [0-9]+; default ([0-9]+)",
    "--num": r"How many (?:poems|names) \((?:sampled as one batch; )?default ([0-9]+)",
    "--guidance": r"Push each letter towards the language \(0 = plain sampling; default ([0-9.]+)\)",
    "--rerank": r"Prefer whole names that read as the language \(0 = off; default ([0-9.]+)\)",
}


def stated_defaults(command: str, options: tuple[str, ...]) -> list[str]:
    """``--option value`` for each option, the value read from ``poetgen COMMAND --help``."""
    shown = run(command, "--help")
    assert shown.exit_code == 0, shown.output
    text = re.sub(r"[\s│]+", " ", shown.stdout)  # the help as one line: wrapped cells joined
    out = []
    for option in options:
        found = re.search(STATED[option], text)
        assert found, f"{command} --help states no default for {option}"
        out += [option, found.group(1)]
    return out


def test_write_help_states_the_defaults_poems_are_written_with(models):
    """On the old code the help said 0.8 while poems were drawn at 0.9: spelt out, 0.8 wrote other poems."""
    given = stated_defaults("write", ("--temp", "--top-k", "--top-p", "--candidates", "--num"))
    assert given[given.index("--temp") + 1] == f"{defaults.POEM_TEMPERATURE:g}"
    common = ("write", "青山", "--seed", "5", "--json", "--checkpoint", str(models["poems"]))
    left_out, spelt_out = run(*common), run(*common, *given)
    assert left_out.exit_code == 0 and spelt_out.exit_code == 0, (left_out.output, spelt_out.output)
    assert json.loads(left_out.stdout) == json.loads(spelt_out.stdout)


def test_names_help_states_the_defaults_names_are_drawn_with(models):
    given = stated_defaults("names", ("--temp", "--top-k", "--top-p", "--num", "--guidance", "--rerank"))
    assert given[given.index("--temp") + 1] == f"{defaults.NAME_TEMPERATURE:g}"
    common = ("names", "Russian", "--seed", "3", "--json", "--checkpoint", str(models["names"]))
    left_out, spelt_out = run(*common), run(*common, *given)
    assert left_out.exit_code == 0 and spelt_out.exit_code == 0, (left_out.output, spelt_out.output)
    assert json.loads(left_out.stdout) == json.loads(spelt_out.stdout)
    assert len(json.loads(left_out.stdout)) == defaults.NAMES_PER_CALL


def test_the_shell_explains_a_setting_in_the_cli_options_words():
    shown = re.sub(r"[\s│]+", " ", run("write", "--help").stdout)
    for key, option in (("temp", "--temp"), ("candidates", "--candidates"), ("top_p", "--top-p")):
        help_text = setting_help(key)
        assert re.search(STATED[option], help_text), help_text
        # word for word what `write --help` says (prefixed "write: " where names says otherwise)
        for_write = next(part for part in help_text.split(" · ") if not part.startswith("names: "))
        assert for_write.removeprefix("write, names: ").removeprefix("write: ") in shown
    assert "'none': a random seed" in setting_help("seed")  # what only `set` reads is added


def test_the_shell_takes_what_the_cli_takes_within_the_librarys_bounds():
    """`set` refused a temperature over 100 that `--temp` took, and held its own copy of the limits."""
    shell = Repl(Models({}), Console(file=StringIO()), Console(file=StringIO()))
    assert shell.execute("set temp 500") == 0 and shell.settings.temp == 500
    assert shell.execute(f"set candidates {defaults.MAX_CANDIDATES}") == 0
    assert shell.execute(f"set candidates {defaults.MAX_CANDIDATES + 1}") == 2
    assert shell.execute(f"set n {defaults.MAX_POEMS + 1}") == 2
    assert shell.execute("set temp inf") == 2


def test_the_lab_report_states_the_temperatures_it_samples_at(models):
    from poetgen.lab.report import _names_blocks, _poem_blocks

    names = _names_blocks(load_checkpoint(models["names"]))
    poems = _poem_blocks(load_checkpoint(models["poems"]))
    assert f"temperature {defaults.NAME_TEMPERATURE:g}," in names[0].text
    assert f"temperature {defaults.POEM_TEMPERATURE:g}," in poems[0].text
    assert f"{defaults.POEM_CANDIDATES} candidates" in poems[0].text


def _strings(path: Path) -> list[str]:
    return [node.value for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


@pytest.mark.parametrize("package", ["cli", "repl"])
def test_no_front_end_writes_a_default_number_of_its_own(package: str):
    """A number after "default" in a front end's text is a second owner that can drift (the old
    `--temp` help said 0.8); front ends state defaults only through ``poetgen.defaults``."""
    root = Path(__file__).resolve().parent.parent / "poetgen" / package
    written = [(path.name, text) for path in sorted(root.glob("*.py")) for text in _strings(path)
               if re.search(r"default[s]?:? [0-9]", text)]
    assert not written, written
