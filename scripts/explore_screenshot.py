"""The README's picture of `vaekit explore`: the served page of a run, in headless Chromium, after a
pointer move on the pad, a drawn stroke and a slider change.

    python scripts/explore_screenshot.py runs/c docs/images/explore.png
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys

from playwright.sync_api import sync_playwright

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def main(run: str, out: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "vaekit", "explore", run, "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://\S+)", proc.stdout.readline()).group(1)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1250})
            page.goto(url)
            page.wait_for_selector("body[data-ready]", timeout=60000)
            box = page.locator("#draw").bounding_box()
            x, y, w, h = box["x"], box["y"], box["width"], box["height"]
            page.mouse.move(x + 0.35 * w, y + 0.25 * h)  # a "7"
            page.mouse.down()
            for px, py in [(0.5, 0.22), (0.68, 0.25), (0.6, 0.45), (0.52, 0.62), (0.47, 0.8)]:
                page.mouse.move(x + px * w, y + py * h, steps=4)
            page.mouse.up()
            page.wait_for_function("() => window.vaekit.state.drawn !== null")
            page.evaluate("() => { const s = document.getElementById('s0'); s.value = 1.2; s.dispatchEvent(new Event('input')); }")
            pad = page.locator("#pad").bounding_box()
            page.mouse.move(pad["x"] + 0.62 * pad["width"], pad["y"] + 0.4 * pad["height"])
            page.wait_for_timeout(500)
            page.screenshot(path=out, full_page=True)
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
