"""The prepared GPU check runs end to end where no GPU is: its CPU fallback, CI-sized."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_gpu_check_smoke_writes_every_figure(shared_corpora: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path / "out"), "PYTHON": sys.executable, "POETGEN_DATA": str(shared_corpora),
           "OMP_NUM_THREADS": "2"}
    done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--smoke"], capture_output=True,
                          text=True, env=env, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = (tmp_path / "out" / "gpu_check.txt").read_text(encoding="utf-8")
    for section in ("== machine", "== pytest -m gpu", "textbook size", "shipped Tang model's size", "== Tang preset"):
        assert section in report, section
    assert report.count("ratio (b)/(a) useful chars/s") == 2
    assert "val loss" in report and "nats/char" in report
