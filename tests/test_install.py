"""Works right after install: a wheel in a fresh virtual environment, run from an empty folder,
with no data folder, writes a poem, names and a classification from the shipped checkpoints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from poetgen.checkpoint import BUNDLED
from poetgen.paths import bundled

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_install_runs_the_shipped_models(tmp_path: Path):
    missing = [name for name in BUNDLED.values() if not (bundled("checkpoints") / name).exists()]
    if missing:
        pytest.fail(f"shipped checkpoints missing: {missing}")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(REPO)],
                   check=True, timeout=600)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    # Reuse this environment's dependencies (torch alone is hundreds of MB) through a .pth line;
    # poetgen itself must come from the wheel: an editable checkout's path hook is not carried over.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    outer = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "outer-deps.pth").write_text("\n".join(outer) + "\n")
    wheel = next(wheels.glob("poetgen-*.whl"))
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True, timeout=600)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("POETGEN_DATA", "PYTHONPATH")}
    env.update({"POETGEN_CACHE": str(tmp_path / "cache"), "HOME": str(tmp_path / "home"), "COLUMNS": "100"})
    poetgen = venv / "bin" / "poetgen"

    def run(*args: str) -> str:
        result = subprocess.run([str(poetgen), *args], cwd=empty, env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 0, result.stderr
        return result.stdout

    where = subprocess.run([str(python), "-c", "import poetgen; print(poetgen.__file__)"], cwd=empty, env=env,
                           capture_output=True, text=True, check=True).stdout
    assert str(venv) in where, "the test must exercise the installed wheel, not the checkout"
    poem = run("write", "青山", "--seed", "1")
    assert "青山" in poem
    assert len(run("names", "--lang", "Russian", "-n", "3", "--json").strip()) > 2
    assert "%" in run("classify", "Hou")
