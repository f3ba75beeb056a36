"""The app in a real browser: draw, upload, fine-tune, paint a label map.

Headless Debian Chromium drives ``python app.py`` on a free port. Screenshots of each step
go to ``test-output/browser/``, and the stroke-to-result latency (median and p90 over ten
strokes; also while a fine-tune runs, and the results a second while the pen is down) is
printed and written there as JSON (``stroke_latency.json``). Without Chromium the tests are skipped,
except under ``CI=true``, where that is a failure.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import time
from pathlib import Path

import pytest

from appkit import LABEL_MODEL, SKETCH_MODEL, AppProcess, make_models, shipped, sketch
from conftest import ROOT, write_side_by_side

pytestmark = pytest.mark.slow  # a real app in headless Chromium
CHROMIUM = Path("/usr/bin/chromium")
OUTPUT = ROOT / "test-output" / "browser"
STROKES = 10
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
RESULT_SRC = "() => document.querySelector('#result img')?.src ?? null"
# The result <img> has a new picture and has decoded it: what the user sees.
NEW_RESULT = """(before) => {
  const img = document.querySelector('#result img');
  return img && img.src !== before && img.complete && img.naturalWidth > 0;
}"""

if not CHROMIUM.exists():
    message = f"{CHROMIUM} is missing (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message, allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """The app with tiny models in a temporary runs folder and a data root of its own.

    The default model is the shipped fashion model when installed; otherwise a stand-in
    with its architecture (ngf 32, random weights), so the timing means the same."""
    tmp = tmp_path_factory.mktemp("app")
    make_models(tmp / "runs", sketch_ngf=32)
    write_side_by_side(tmp / "data" / "shapes", 6)
    args = ["--runs", str(tmp / "runs"), "--data-root", str(tmp / "data")]
    if not shipped("fashion"):
        args += ["--model", SKETCH_MODEL]
    with AppProcess(tmp / "app.log", *args) as proc:
        proc.wait_serving()
        proc.wait_log(" ready ")  # the default model is loaded and warmed up
        yield proc


@pytest.fixture(scope="module")
def browser():
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(app, browser):
    page = browser.new_page(viewport={"width": 1360, "height": 1100})
    page.goto(app.url)
    expect(page.locator("#draw-model input")).not_to_have_value("", timeout=30_000)  # the page has loaded
    yield page
    page.close()


def shot(page, name: str) -> None:
    page.screenshot(path=OUTPUT / f"{name}.png", full_page=True)


def stroke(page, points: list[tuple[float, float]], page_clock: bool = False) -> float:
    """Draw through ``points`` (fractions of the canvas); returns the time of the mouse-up
    (``page_clock``: the page's performance.now(), in ms)."""
    box = page.locator("#sketch canvas").bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=4)
    released = page.evaluate("performance.now()") if page_clock else time.perf_counter()
    page.mouse.up()
    return released


def settled_ms(page, released: float, quiet_ms: int = 700) -> float:
    """Milliseconds from ``released`` (page clock) to the last result shown once no newer
    one has come for ``quiet_ms``: the finished drawing's result."""
    count = -1
    while count != page.evaluate("window.__shown.length"):
        count = page.evaluate("window.__shown.length")
        page.wait_for_timeout(quiet_ms)
    return page.evaluate("window.__shown.at(-1)") - released


def pick(page, picker: str, name: str) -> None:
    page.locator(f"{picker} input").click()
    page.get_by_role("option", name=name, exact=False).first.click()


SHOE = [[(0.15, 0.65), (0.2, 0.5), (0.45, 0.42)], [(0.45, 0.42), (0.55, 0.28), (0.7, 0.3)],
        [(0.7, 0.3), (0.85, 0.55), (0.85, 0.68)], [(0.15, 0.68), (0.85, 0.68)],
        [(0.12, 0.72), (0.88, 0.72)], [(0.5, 0.4), (0.56, 0.45)], [(0.54, 0.36), (0.6, 0.41)],
        [(0.58, 0.32), (0.64, 0.37)], [(0.3, 0.55), (0.45, 0.58)], [(0.7, 0.45), (0.8, 0.5)]]


def stroke_times(page, strokes: list, each=None) -> list[float]:
    """Draw ``strokes`` one by one; for each, ms from the mouse-up to its result on screen.

    Results of the drawing so far may arrive while the pen moves (and even just after it is
    lifted): the time counted is from the mouse-up to the last result, the finished
    stroke's, by the page's own clock. ``each(i)`` runs after stroke i's result."""
    page.evaluate("""() => {
      window.__shown = [];  // the time each result image finished loading
      document.querySelector('#result').addEventListener('load', () => window.__shown.push(performance.now()), true);
    }""")
    times = []
    for i, points in enumerate(strokes):
        before = page.evaluate(RESULT_SRC)
        released = stroke(page, points, page_clock=True)
        page.wait_for_function(NEW_RESULT, arg=before, timeout=30_000)
        times.append(settled_ms(page, released))
        if each:
            each(i)
    return times


def record_strokes(name: str, times: list[float], **extra) -> dict:
    """Print the median and p90 of ``times`` and keep them as ``name`` in stroke_latency.json."""
    median, p90 = statistics.median(times), sorted(times)[int(0.9 * (len(times) - 1) + 0.5)]
    print(f"\n{name}: stroke-to-result over {len(times)} strokes: median {median:.0f} ms, p90 {p90:.0f} ms")
    return record_figures(name, {"strokes": len(times), "median_ms": round(median, 1), "p90_ms": round(p90, 1),
                                 "all_ms": [round(t, 1) for t in times], **extra})


def record_figures(name: str, figures: dict) -> dict:
    """Keep ``figures`` under ``name`` in test-output/browser/stroke_latency.json (the other
    entries stay: several tests fill it)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / "stroke_latency.json"
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        found = {}
    path.write_text(json.dumps({**found, name: figures}, indent=2) + "\n")
    return figures


def test_drawing_updates_the_result_after_every_stroke(page):
    """Ten strokes of a shoe; each one's result is waited for and timed from the mouse-up."""

    def screenshot(i):
        if i in (0, STROKES - 1):
            shot(page, f"draw_{i + 1:02d}_strokes")

    times = stroke_times(page, SHOE[:STROKES], each=screenshot)
    model = "fashion" if shipped("fashion") else f"{SKETCH_MODEL} (ngf 32, random weights)"
    record_strokes("idle", times, model=model)
    expect(page.locator("#draw-status")).to_contain_text("ms")
    expect(page.locator("#pair")).to_be_visible()

    # Undo takes the last stroke away and the result follows; Clear empties both.
    before = page.evaluate(RESULT_SRC)
    page.locator("#sketch [data-action=undo]").click()
    page.wait_for_function(NEW_RESULT, arg=before, timeout=30_000)
    page.locator("#sketch [data-action=clear]").click()
    expect(page.locator("#result img")).to_have_count(0, timeout=30_000)
    expect(page.locator("#draw-status")).to_contain_text("Draw on the canvas")
    shot(page, "draw_cleared")


def test_an_example_loads_into_the_canvas(page):
    page.locator("#examples button.thumbnail-item").first.click()
    expect(page.locator("#result img")).to_have_count(1, timeout=30_000)
    shot(page, "draw_example")


def test_upload_shows_what_the_model_sees_and_the_result(page, tmp_path):
    page.get_by_role("tab", name="Upload").click()
    lines = sketch("bag", 300).convert("L").point(lambda v: 255 - v)  # light lines on a dark board, off-centre
    from PIL import Image

    photo = Image.new("RGB", (1400, 900), (60, 60, 66))
    photo.paste((230, 230, 230), (950, 80), mask=lines)
    photo.save(tmp_path / "board.jpg", quality=90)
    page.locator("#upload-file input[type=file]").set_input_files(tmp_path / "board.jpg")
    expect(page.locator("#upload-seen img")).to_have_count(1, timeout=30_000)
    expect(page.locator("#upload-result img")).to_have_count(1, timeout=30_000)
    expect(page.locator("#upload-status")).to_contain_text("1400×900")
    expect(page.locator("#upload-status")).not_to_contain_text("looks like")
    shot(page, "upload_result")

    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    page.locator("#upload-file button[aria-label='Clear']").first.click()
    page.locator("#upload-file input[type=file]").set_input_files(tmp_path / "broken.png")
    status = page.locator("#upload-status")
    expect(status).to_contain_text("broken.png is not an image file", timeout=30_000)
    page.wait_for_timeout(7_000)  # longer than a toast would stay: the sentence stays
    expect(status).to_contain_text("broken.png is not an image file")
    assert "Traceback" not in status.inner_text()
    expect(page.locator(".toast-body")).to_have_count(0)  # the status line says it, once
    shot(page, "upload_broken_file")


def test_label_model_paints_with_its_palette(page):
    name = "facades" if shipped("facades") else LABEL_MODEL
    pick(page, "#draw-model", name)
    palette = page.locator("#sketch .sk-palette button")
    expect(palette).to_have_count(12 if name == "facades" else 5)
    expect(page.locator("#result img")).to_have_count(1, timeout=30_000)  # a bare wall already
    labels = palette.all_inner_texts()
    for label, points in ((labels[2], [(0.2, 0.2), (0.4, 0.2), (0.4, 0.35)]), (labels[3], [(0.5, 0.6), (0.5, 0.9)])):
        palette.filter(has_text=label).click()
        before = page.evaluate(RESULT_SRC)
        stroke(page, points)
        page.wait_for_function(NEW_RESULT, arg=before, timeout=30_000)
    shot(page, "labels_painted")


def test_fine_tune_a_tiny_model_and_draw_with_it(page):
    messages = []  # the tab, its loss plot and its samples log nothing to the console
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.get_by_role("tab", name="Fine-tune").click()
    pick(page, "#data-folder", "data/shapes")
    page.locator("#check-data").click()
    expect(page.locator("#data-summary")).to_contain_text("side-by-side", timeout=30_000)
    expect(page.locator("#data-summary")).to_contain_text("6 train")
    page.locator("#unit").get_by_text("steps").click()
    page.locator("#length input").fill("3")
    page.get_by_text("Advanced").click()
    page.locator("#ngf input").fill("8")
    page.locator("#ndf input").fill("8")
    name = f"tiny-{int(time.time())}"
    page.locator("#run-name").get_by_role("textbox").fill(name)
    shot(page, "finetune_ready")
    page.locator("#start").click()
    expect(page.locator("#run-progress")).to_contain_text("now in the model pickers", timeout=180_000)
    expect(page.locator("#run-sample img")).to_have_count(1, timeout=10_000)
    shot(page, "finetune_finished")

    # A second start while nothing runs but with the same name is refused in a sentence.
    page.locator("#start").click()
    expect(page.locator(".toast-body").filter(has_text="already exists")).to_be_visible(timeout=30_000)

    page.get_by_role("tab", name="Draw").click()
    pick(page, "#draw-model", name)
    before = page.evaluate(RESULT_SRC)
    stroke(page, [(0.3, 0.3), (0.7, 0.3), (0.7, 0.7), (0.3, 0.7), (0.3, 0.3)])
    page.wait_for_function(NEW_RESULT, arg=before, timeout=30_000)
    expect(page.locator("#draw-model input")).to_have_value(re.compile(name))
    shot(page, "finetune_model_in_draw")
    assert messages == []


def test_switching_tabs_keeps_the_tab_bar_intact(page):
    """Regression: a component placed directly in gr.Tabs made the next clicked tab appear
    twice and push another one out of the bar."""
    for name in ("Upload", "Fine-tune", "Draw", "Fine-tune", "Upload"):
        page.get_by_role("tab", name=name, exact=True).click()
        expect(page.locator("[role=tablist] [role=tab]")).to_have_text(["Draw", "Upload", "Fine-tune"])


INK = """() => {  // dark pixels of the canvas the visitor sees
  const c = document.querySelector('#sketch canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] < 200) n++;
  return n;
}"""


def test_the_page_opens_on_an_example_and_nothing_put_in_is_lost(page):
    """The first minute: a drawing and its result are there at once, and Undo takes the drawing
    away like any stroke; loading an example is one undoable step too; a reload keeps the drawing."""
    if not shipped("fashion"):
        pytest.skip("the page opens on an example of the shipped fashion model")
    expect(page.locator("#result img")).to_have_count(1, timeout=30_000)  # a result with no stroke drawn
    undo = page.locator("#sketch [data-action=undo]")
    expect(undo).to_be_enabled()
    opened = page.evaluate(INK)
    assert opened > 1000
    shot(page, "first_minute")
    from demo.gallery import list_examples

    backpack = [p.stem for p in list_examples(ROOT / "demo" / "examples")].index("fashion_backpack")
    page.locator("#examples button.thumbnail-item").nth(backpack).click()  # another example replaces it...
    page.wait_for_function(f"() => ({INK})() !== {opened}", timeout=30_000)
    undo.click()  # ... and one Undo brings the first drawing back
    page.wait_for_function(f"() => ({INK})() === {opened}", timeout=30_000)
    page.reload()
    expect(page.locator("#draw-model input")).not_to_have_value("", timeout=30_000)
    page.wait_for_function(f"() => ({INK})() === {opened}", timeout=30_000)  # kept across the reload
    undo.click()  # the drawing kept is one step, too
    page.wait_for_function(f"() => ({INK})() < 10", timeout=30_000)


PIXELS = """([x0, y0, x1, y1]) => {  // the colours the visitor sees in a box of the canvas (fractions)
  const c = document.querySelector('#sketch canvas');
  const [w, h] = [c.width, c.height];
  const d = c.getContext('2d').getImageData(x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h).data;
  const seen = [];
  for (let i = 0; i < d.length; i += 4) seen.push([d[i], d[i + 1], d[i + 2]]);
  return seen;
}"""


def test_the_eraser_erases_fully_and_a_colour_shows_as_itself(page):
    page.locator("#sketch [data-action=clear]").click()
    stroke(page, [(0.2, 0.5), (0.8, 0.5)])
    page.locator("#sketch [data-action=eraser]").click()
    page.locator("#sketch .sk-size").fill("30")
    stroke(page, [(0.4, 0.5), (0.6, 0.5)])
    # along the line, across both ends of the erased stretch: black line, then paper, no grey between
    row = [px[0] for px in page.evaluate(PIXELS, [0.25, 0.5, 0.75, 0.5 + 1 / 512])]
    assert min(row) < 40 and max(row) == 255 and not [v for v in row if 60 < v < 200]
    if page.locator("#sketch [data-action=colour]").is_visible():  # a model that takes colours
        page.locator("#sketch [data-action=colour]").click()
        page.locator('#sketch [data-swatch="#fcbf49"]').click()  # yellow
        stroke(page, [(0.3, 0.2), (0.7, 0.2)])
        painted = page.evaluate(PIXELS, [0.45, 0.19, 0.55, 0.21])
        assert sum(px == [252, 191, 73] for px in painted) > 0.8 * len(painted)  # the colour as it is
