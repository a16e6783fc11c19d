"""Golden outputs of the shipped models: the same seed gives the same text and JSON, release after
release. Recorded with ``POETGEN_RECORD_GOLDEN=1 pytest tests/test_golden.py``; a change that must
alter them (a new decoding order, a retrained model) re-records them and says so."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from poetgen.cli import app

GOLDEN = Path(__file__).parent / "golden" / "outputs.json"
RECORD = os.environ.get("POETGEN_RECORD_GOLDEN") == "1"
POEM = "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n白日依山尽，黄河入海流。\n青山\n"

CASES = {
    "write-prefix": ["write", "青山", "--seed", "1", "--json"],
    "write-acrostic": ["write", "春夏秋冬", "--acrostic", "--form", "五绝", "--seed", "2", "--json"],
    **{f"write-{form}": ["write", "明月", "--form", form, "-n", "2", "--seed", "3", "--json"]
       for form in ("五绝", "七绝", "五律", "七律")},
    "write-top-k": ["write", "--form", "五绝", "--top-k", "20", "--top-p", "0.9", "--temp", "0.7", "--seed", "4",
                    "--json"],
    "write-greedy": ["write", "秋风", "--greedy", "--seed", "0", "--json"],
    "names-russian": ["names", "--lang", "Russian", "-n", "5", "--seed", "1", "--json"],
    "names-start": ["names", "--lang", "Irish", "-n", "4", "--start", "Mc", "--seed", "2", "--json"],
    "names-all": ["names", "--lang", "all", "--seed", "3", "--json"],
    "names-greedy": ["names", "--lang", "Japanese", "-n", "1", "--greedy", "--json"],
    "classify": ["classify", "Dovesky", "Jackson", "Hou", "Nguyen", "O'Brien", "--json"],
    "check": ["check", "床前明月光，疑是地上霜。举头望明月，低头思故乡。", "--json"],
    "score": ["score", "{poem}", "--json"],
}


def _run(name: str, tmp: Path) -> object:
    poem = tmp / "poem.txt"
    poem.write_text(POEM, encoding="utf-8")
    args = [a.replace("{poem}", str(poem)) for a in CASES[name]]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _close(got: object, want: object, where: str = "") -> None:
    """Equal, with floats to 1e-6 relative (summation order may differ between code paths), and to
    one unit in the sixth decimal: probabilities are printed rounded to six, and another CPU's
    last bit can move the rounding."""
    if isinstance(want, float) and isinstance(got, (int, float)):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1.5e-6), f"{where}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            _close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _close(g, w, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.fixture(scope="module")
def golden() -> dict:
    if RECORD:
        return {}
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_seed_same_output(name: str, golden: dict, tmp_path: Path) -> None:
    got = _run(name, tmp_path)
    if RECORD:
        data = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
        data[name] = got
        GOLDEN.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return
    _close(got, golden[name], name)
