"""What the hostile-input tests share: running the CLI in-process with a pinned width, the
command built once per module, and the one-line error check."""

from __future__ import annotations

import pytest
import typer.main
import typer.testing
from typer.testing import CliRunner

from poetgen.cli import app

RUNNER = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def run(*args: str, input: str | bytes | None = None, env: dict | None = None):
    return RUNNER.invoke(app, list(args), input=input, env={**ENV, **(env or {})})


@pytest.fixture(autouse=True, scope="module")
def build_the_command_once():
    """Typer builds the click command at every invoke; these modules invoke it hundreds of times."""
    command = typer.main.get_command(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda given: command if given is app else
                      typer.main.get_command(given))
        yield


def one_error_line(result, code: int, message: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == code, (result.exit_code, result.output)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]
