"""The report in a real browser (tools/check_report.py): headless Chromium at a phone's width,
no broken image, no horizontal overflow. Skipped where no Chromium is installed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, train_tiny

from poetgen.lab.report import write_report

sys.path.insert(0, str(REPO / "tools"))
from check_report import find_browser

pytestmark = [pytest.mark.slow, pytest.mark.skipif(find_browser() is None, reason="no Chromium installed")]


def test_a_report_passes_at_420_px_and_a_wide_table_would_not(tiny_data: Path, tmp_path: Path):
    runs = [train_tiny(tiny_data, tmp_path / name, "names", "classify", model={"model": model}, max_steps=20,
                       eval_every=5) for name, model in (("rnn", "rnn"), ("lstm", "lstm"))]
    page = write_report(runs, tmp_path / "report", data_dir=tiny_data).with_suffix(".html")
    tool = [sys.executable, str(REPO / "tools" / "check_report.py")]
    result = subprocess.run([*tool, str(page), "--screenshot", str(tmp_path / "shot.png")], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "window 420 px, page 420 px wide" in result.stdout and " 0 broken" in result.stdout
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"
    # the same page with its tables taken out of their scrolling boxes overflows, and one image broken
    bad = tmp_path / "bad.html"
    html = page.read_text(encoding="utf-8").replace('<div class="scroll">', "<div>")
    bad.write_text(html.replace("data:image/png;base64,", "data:image/png;base64,AAAA", 1), encoding="utf-8")
    result = subprocess.run([*tool, str(bad)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "broken image" in result.stderr and "px wide in a 420 px window" in result.stderr
