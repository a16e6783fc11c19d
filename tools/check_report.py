"""Check a lab report in a real browser: render report.html in headless Chromium at a phone's
width and fail on broken images or a page wider than the screen.

    python tools/check_report.py runs/lab/report/report.html                 # 420 px, all <details> open
    python tools/check_report.py runs/lab/report/report.html --screenshot shot.png

Chromium (Debian: ``apt-get install chromium fonts-noto-cjk``) loads a copy of the page with a
small script appended that opens every folded section, waits for the images, and writes what it
measured into the page, which ``--dump-dom`` prints: images that did not decode, the page's width
against the window's, the elements that stick out, and the page's height (closed, as a reader
first sees it) in screens of 800 px at 1280 px wide. Exit status 1 when an image is broken or the
page overflows, 2 when no browser is found.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SCREEN = 800  # px of one screen, at 1280 px wide
PROBE = """
<script>
(() => {
  const closed = document.documentElement.scrollHeight;
  document.querySelectorAll("details").forEach(d => { d.open = true; });
  const width = window.innerWidth;
  const broken = [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt);
  const wide = [...document.body.querySelectorAll("*")]
    .filter(e => !e.closest(".scroll, pre") && e.getBoundingClientRect().right > width + 1)
    .slice(0, 10).map(e => e.tagName.toLowerCase() + (e.className ? "." + e.className : "") + ": "
                            + (e.textContent || e.alt || "").trim().slice(0, 60));
  const host = window.parent.document;  // the page runs in a frame of the width asked for
  const out = host.createElement("pre");
  out.id = "check-result";
  out.textContent = JSON.stringify({width, scrollWidth: document.documentElement.scrollWidth,
                                    images: document.images.length, broken, wide, closedHeight: closed,
                                    openHeight: document.documentElement.scrollHeight});
  host.body.appendChild(out);
})();
</script>
"""
# Chromium's headless window is at least 500 px wide, so the page is measured in a frame of the
# width asked for (a phone's 420 px fits no window); the frame is as tall as a phone's screen.
FRAME = '<!DOCTYPE html><html><body style="margin:0"><iframe src="page.html" width="{w}" height="{h}" ' \
        'style="border:0"></iframe></body></html>'



def find_browser(name: str | None = None) -> str | None:
    if name:
        return shutil.which(name) or (name if Path(name).is_file() else None)
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def _run(browser: str, args: list[str], profile: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
             "--hide-scrollbars", f"--user-data-dir={profile}"]
    return subprocess.run([browser, *flags, *args], capture_output=True, text=True, timeout=180)


def measure(page: Path, browser: str, width: int) -> dict:
    """What the probe measured in ``page`` at ``width`` px wide, plus the closed page's height at
    1280 px."""
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "page.html"
        text = page.read_text(encoding="utf-8")
        probe.write_text(text.replace("</body>", PROBE + "</body>") if "</body>" in text else text + PROBE,
                         encoding="utf-8")
        result = {}
        for w, h in ((width, 900), (1280, SCREEN)):
            frame = Path(tmp) / f"frame-{w}.html"
            frame.write_text(FRAME.format(w=w, h=h), encoding="utf-8")
            run = _run(browser, [f"--window-size={max(w, 500) + 20},{h + 20}", "--virtual-time-budget=10000",
                                 "--allow-file-access-from-files", "--dump-dom", frame.as_uri()],
                       str(Path(tmp) / f"profile-{w}"))
            found = re.search(r'<pre id="check-result">(.*?)</pre>', run.stdout, re.S)
            if not found:
                raise SystemExit(f"the browser gave no result (exit {run.returncode}): {run.stderr.strip()[-500:]}")
            data = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<")
                              .replace("&gt;", ">"))
            result = data if w == width else {**result, "screens": data["closedHeight"] / SCREEN,
                                              "screens_open": data["openHeight"] / SCREEN}
        return result


def screenshot(page: Path, browser: str, out: Path, width: int, height: int) -> None:
    """The top ``height`` px of the page in a frame ``width`` px wide (the window around it is wider)."""
    with tempfile.TemporaryDirectory() as tmp:
        frame = Path(tmp) / "frame.html"
        frame.write_text(FRAME.replace('src="page.html"', f'src="{page.resolve().as_uri()}"').format(w=width, h=height),
                         encoding="utf-8")
        _run(browser, [f"--window-size={max(width, 500)},{height}", "--virtual-time-budget=10000",
                       "--allow-file-access-from-files", f"--screenshot={out.resolve()}", frame.as_uri()],
             str(Path(tmp) / "profile"))


def check(page: Path, browser: str, width: int = 420) -> list[str]:
    """The problems found (empty: the page passes) and a line of figures printed."""
    m = measure(page, browser, width)
    print(f"{page}: window {m['width']} px, page {m['scrollWidth']} px wide; {m['images']} images, "
          f"{len(m['broken'])} broken; {m['screens']:.1f} screens at 1280x{SCREEN} "
          f"({m['screens_open']:.1f} with every section open)")
    problems = [f"broken image: {alt}" for alt in m["broken"]]
    if m["scrollWidth"] > m["width"] + 1:
        problems.append(f"the page is {m['scrollWidth']} px wide in a {m['width']} px window: "
                        + "; ".join(m["wide"]))
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("--width", type=int, default=420, help="Window width in CSS pixels (a phone: 420).")
    parser.add_argument("--browser", help="The Chromium binary (default: the first of chromium, google-chrome ...).")
    parser.add_argument("--screenshot", type=Path, help="Also save a screenshot of the page's top at --width.")
    args = parser.parse_args()
    browser = find_browser(args.browser)
    if browser is None:
        print("no Chromium found (apt-get install chromium)", file=sys.stderr)
        raise SystemExit(2)
    problems = check(args.page, browser, args.width)
    if args.screenshot:
        screenshot(args.page, browser, args.screenshot, args.width, 2400)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
