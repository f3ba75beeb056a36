"""What the browser scripts share: ``app.py`` served on a loopback port, a page of it in
headless Chromium, and a stroke drawn on its canvas with the mouse.

    with served_app(7899, "--model", "fashion") as url, opened_page(url) as page:
        stroke(page, [(0.2, 0.5), (0.8, 0.5)])
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


class AppFailed(RuntimeError):
    """app.py exited, or its model was not ready in time; the message holds its log."""


@contextlib.contextmanager
def served_app(port: int, *args: str, ready_s: float = 120, training: bool = False):
    """``app.py --port PORT --no-training ARGS`` (with ``training``: the Fine-tune tab stays;
    runs and data in a temporary folder unless ARGS name them), its URL once the default
    model is warmed up; stopped on exit."""
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "app.log"
        cmd = [sys.executable, "app.py", "--port", str(port), *([] if training else ["--no-training"]), *args]
        if "--runs" not in args:
            cmd += ["--runs", str(Path(tmp) / "runs"), "--data-root", str(Path(tmp) / "data")]
        with open(log, "w") as f:
            app = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + ready_s
            while " ready " not in log.read_text():
                if app.poll() is not None or time.time() > deadline:
                    raise AppFailed(log.read_text())
                time.sleep(0.5)
            yield f"http://127.0.0.1:{port}/"
        finally:
            app.terminate()
            app.wait(30)


@contextlib.contextmanager
def opened_page(url: str, init_script: str | None = None):
    """A page of the app in headless Chromium, once its canvas is there (``init_script``: run
    first in the page, before the app's own scripts)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 1100})
            if init_script:
                page.add_init_script(init_script)
            page.goto(url)
            page.wait_for_selector("#sketch canvas", timeout=60_000)
            page.wait_for_timeout(3000)  # the app's own set-up of the canvas
            yield page
        finally:
            browser.close()


def stroke(page, points: list[tuple[float, float]], steps: int = 4) -> float:
    """Draw through ``points`` (fractions of the canvas); the page's clock at the mouse-up (ms)."""
    box = page.locator("#sketch canvas").bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=steps)
    up = page.evaluate("performance.now()")
    page.mouse.up()
    return up


SHOWN_AS_DATA_URL = """async (src) => {
  const blob = await (await fetch(src)).blob();
  return await new Promise((done) => { const r = new FileReader(); r.onload = () => done(r.result); r.readAsDataURL(blob); });
}"""


def shown_bytes(page, src: str) -> bytes:
    """The bytes behind an image the page shows (a blob URL only the page can read)."""
    import base64

    return base64.b64decode(page.evaluate(SHOWN_AS_DATA_URL, src).split(",", 1)[1])
