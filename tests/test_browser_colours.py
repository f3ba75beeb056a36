"""The Draw tab's second pass in a real browser: the colour brush steers a hint model's
result, the drawing survives switching models, the shortcuts work wherever focus is on the
tab, and an uploaded photo is recognised and can become an outline to edit."""

from __future__ import annotations

import base64
import io
import re
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from appkit import HINT_MODEL, LABEL_MODEL, AppProcess, make_models, shipped, train_hint_model
from test_browser import (NEW_RESULT, OUTPUT, RESULT_SRC, browser, pick, record_figures, shot,  # noqa: F401
                          stroke)  # browser is a fixture

from playwright.sync_api import expect  # noqa: E402 - after test_browser's skip without Chromium

pytestmark = pytest.mark.slow  # a real app in headless Chromium, and a model trained for it
ON = re.compile(r"\bon\b")  # the active tool
CIRCLE = [(0.25 + 0.25 * np.cos(t), 0.5 + 0.25 * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 25)]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("colours")
    make_models(tmp / "runs")
    train_hint_model(tmp / "runs")  # follows red and blue hints
    with AppProcess(tmp / "app.log", "--runs", str(tmp / "runs"), "--data-root", str(tmp / "data"),
                    "--model", HINT_MODEL, "--no-training") as proc:
        proc.wait_serving()
        proc.wait_log(" ready ")
        yield proc


@pytest.fixture
def page(app, browser):  # noqa: F811 - the fixture imported above
    page = browser.new_page(viewport={"width": 1360, "height": 1100})
    page.goto(app.url)
    expect(page.locator("#draw-model input")).not_to_have_value("", timeout=30_000)
    yield page
    page.close()


def result_after(page, action) -> np.ndarray:
    """Do ``action``, wait for the new result on the page to settle (results of the drawing
    so far arrive while the pen moves; the last is the finished drawing's), and fetch it as
    an RGB array."""
    before = page.evaluate(RESULT_SRC)
    action()
    page.wait_for_function(NEW_RESULT, arg=before, timeout=30_000)
    deadline, src = time.time() + 30, None
    while time.time() < deadline and src != page.evaluate(RESULT_SRC):
        src = page.evaluate(RESULT_SRC)
        page.wait_for_timeout(700)  # no newer result for this long: settled
    return np.asarray(Image.open(io.BytesIO(shown_bytes(page, src))).convert("RGB"), float)


def shown_bytes(page, src: str) -> bytes:
    """The bytes behind the page's result image (a blob URL, which only the page can read)."""
    data_url = page.evaluate("""async (src) => {
      const blob = await (await fetch(src)).blob();
      return await new Promise((done) => { const r = new FileReader(); r.onload = () => done(r.result); r.readAsDataURL(blob); });
    }""", src)
    return base64.b64decode(data_url.split(",", 1)[1])


def redness(result: np.ndarray) -> float:
    """Red minus blue in the middle of the result: where the hints are painted."""
    h, w = result.shape[:2]
    middle = result[int(0.35 * h): int(0.65 * h), int(0.35 * w): int(0.65 * w)]
    return float((middle[..., 0] - middle[..., 2]).mean())


def paint(page, swatch: str) -> None:
    page.locator(f"#sketch [data-swatch='{swatch}']").click()
    stroke(page, [(0.16, 0.42), (0.34, 0.42), (0.16, 0.48), (0.34, 0.5), (0.16, 0.55), (0.34, 0.58)])  # a scribble


def test_colour_strokes_steer_the_result_and_undo_covers_them(page):
    colours = page.locator("#sketch .sk-colours")
    expect(colours).to_be_visible()
    plain = result_after(page, lambda: stroke(page, CIRCLE))
    red = result_after(page, lambda: paint(page, "#d62828"))
    shot(page, "colours_red")
    undone = result_after(page, lambda: page.locator("#sketch [data-action=undo]").click())
    blue = result_after(page, lambda: paint(page, "#1d4ed8"))
    shot(page, "colours_blue")
    print(f"\nred minus blue in the middle: none {redness(plain):.0f}, red hint {redness(red):.0f}, "
          f"blue hint {redness(blue):.0f}")
    assert redness(red) > redness(plain) + 25 and redness(blue) < redness(plain) - 25
    assert np.abs(undone - plain).mean() < 1  # the colour stroke was undone, the drawing kept
    cleared = result_after(page, lambda: page.locator("#sketch [data-action=clearcolours]").click())
    assert np.abs(cleared - plain).mean() < 1

    # Another kind of model hides the colour tools; coming back brings the drawing back.
    pick(page, "#draw-model", LABEL_MODEL)
    expect(colours).to_be_hidden()
    expect(page.locator("#sketch .sk-active")).to_have_text("Brush: window")
    page.wait_for_function("() => document.querySelector('#result img')?.naturalWidth === 256")  # the wall
    back = result_after(page, lambda: pick(page, "#draw-model", HINT_MODEL))
    expect(colours).to_be_visible()
    assert np.abs(back - plain).mean() < 1
    expect(page.locator("#sketch [data-action=undo]")).to_be_enabled()


def test_shortcuts_work_wherever_focus_is_on_the_tab(page):
    stroke(page, CIRCLE)
    expect(page.locator("#sketch [data-action=undo]")).to_be_enabled(timeout=10_000)
    page.locator("#header").click()  # focus away from the canvas
    page.keyboard.press("Control+z")
    expect(page.locator("#sketch [data-action=undo]")).to_be_disabled()
    page.keyboard.press("Control+Shift+z")
    expect(page.locator("#sketch [data-action=undo]")).to_be_enabled()
    page.keyboard.press("e")
    expect(page.locator("#sketch [data-action=eraser]")).to_have_class(ON)
    page.keyboard.press("b")
    expect(page.locator("#sketch [data-action=pen]")).to_have_class(ON)
    size = page.locator("#sketch .sk-size")
    start = int(size.input_value())
    page.keyboard.press("]")
    assert int(size.input_value()) == start + 2
    page.locator("#sketch [data-action=colour]").click()
    page.keyboard.press("e")
    expect(page.locator("#sketch [data-action=uncolour]")).to_have_class(ON)
    assert "(B)" in page.locator("#sketch [data-action=pen]").get_attribute("title")


def test_an_uploaded_photo_is_told_and_becomes_an_outline_in_the_canvas(page, tmp_path):
    photo = Image.new("RGB", (300, 400), "white")
    ImageDraw.Draw(photo).rounded_rectangle((60, 80, 240, 330), radius=40, fill=(150, 40, 60))
    photo.save(tmp_path / "bag.jpg", quality=92)
    drawn_before = page.evaluate(INK_COUNT)
    page.get_by_role("tab", name="Upload").click()
    page.locator("#upload-file input[type=file]").set_input_files(tmp_path / "bag.jpg")
    expect(page.locator("#upload-status")).to_contain_text("looks like a photo", timeout=30_000)
    shot(page, "upload_photo_notice")
    before = page.evaluate(RESULT_SRC)
    page.locator("#to-outline").click()
    expect(page.locator("#sketch canvas")).to_be_visible(timeout=30_000)  # the Draw tab, opened
    page.wait_for_function(NEW_RESULT, arg=before, timeout=30_000)
    ink = page.evaluate(INK_COUNT)
    assert ink > 500  # the outline is on the canvas, ready to edit
    expect(page.locator("#sketch [data-action=clear]")).to_be_enabled()
    shot(page, "outline_in_canvas")
    page.locator("#sketch [data-action=undo]").click()  # one undoable step: the drawing before comes back
    page.wait_for_function(f"() => ({INK_COUNT})() === {drawn_before}", timeout=10_000)


INK_COUNT = """() => {
  const c = document.querySelector('#sketch canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++;
  return n;
}"""


def canvas_colour(page, fx: float, fy: float) -> list[int]:
    return page.evaluate("""([fx, fy]) => {
      const c = document.querySelector('#sketch canvas');
      return [...c.getContext('2d').getImageData(Math.floor(fx * c.width), Math.floor(fy * c.height), 1, 1).data.slice(0, 3)];
    }""", [fx, fy])


def test_label_maps_get_a_rectangle_and_a_fill(page):
    pick(page, "#draw-model", LABEL_MODEL)
    page.wait_for_function("() => document.querySelector('#result img')?.naturalWidth === 256")  # the bare wall
    expect(page.locator("#sketch [data-action=rect]")).to_be_visible()
    page.locator("#sketch .sk-palette button").filter(has_text="window").click()
    page.locator("#sketch [data-action=rect]").click()
    result_after(page, lambda: stroke(page, [(0.2, 0.2), (0.5, 0.45)]))
    assert canvas_colour(page, 0.35, 0.3) == [0, 85, 255]  # window, inside the box
    assert canvas_colour(page, 0.7, 0.7) == [0, 0, 255]  # still wall outside it
    page.locator("#sketch .sk-palette button").filter(has_text="balcony").click()
    page.keyboard.press("f")
    result_after(page, lambda: stroke(page, [(0.8, 0.8)]))  # a click on the wall fills the wall
    assert canvas_colour(page, 0.7, 0.7) == [255, 85, 0] and canvas_colour(page, 0.05, 0.95) == [255, 85, 0]
    assert canvas_colour(page, 0.35, 0.3) == [0, 85, 255]  # the window box is not wall: untouched
    shot(page, "labels_rect_and_fill")
    pick(page, "#draw-model", HINT_MODEL)
    expect(page.locator("#sketch [data-action=rect]")).to_be_hidden()


def test_a_stale_error_leaves_when_a_result_arrives(page, tmp_path):
    page.get_by_role("tab", name="Upload").click()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    page.locator("#upload-file input[type=file]").set_input_files(tmp_path / "broken.png")
    status = page.locator("#upload-status")
    expect(status).to_contain_text("broken.png is not an image file", timeout=30_000)
    page.locator("#upload-file button[aria-label='Clear']").first.click()
    from appkit import sketch

    sketch("circle").save(tmp_path / "circle.png")
    page.locator("#upload-file input[type=file]").set_input_files(tmp_path / "circle.png")
    expect(page.locator("#upload-result img")).to_have_count(1, timeout=30_000)
    expect(status).not_to_contain_text("broken.png", timeout=1_000)  # with the result, not later
    expect(status).not_to_contain_text("⚠")


def test_the_result_follows_the_pen_while_it_is_down(page):
    """A slow stroke (2 s with the pen down) gets results before the pen is lifted, and
    the last result is the finished drawing's."""
    page.evaluate("""() => {
      window.__results = 0;  // result images loaded
      document.querySelector('#result').addEventListener('load', () => window.__results++, true);
    }""")
    box = page.locator("#sketch canvas").bounding_box()
    points = [(box["x"] + box["width"] * (0.2 + 0.6 * t / 40), box["y"] + box["height"] * (0.3 + 0.4 * (t % 8) / 8))
              for t in range(41)]
    page.mouse.move(*points[0])
    page.mouse.down()
    down = time.perf_counter()
    for x, y in points[1:]:
        page.mouse.move(x, y)
        page.wait_for_timeout(50)
    during, seconds = page.evaluate("window.__results"), time.perf_counter() - down
    before_up = page.evaluate(RESULT_SRC)
    page.mouse.up()
    print(f"\nresults while the pen was down for {seconds:.1f} s: {during} ({during / seconds:.1f} per second)")
    record_figures("pen down", {"results": during, "seconds": round(seconds, 2), "per_s": round(during / seconds, 1)})
    assert during >= 4  # several updates while drawing (>= 2 per second on a busy 2-core box)
    page.wait_for_function(NEW_RESULT, arg=before_up, timeout=30_000)  # and one for the finished stroke


@pytest.mark.skipif(not shipped("fashion"), reason="the shipped fashion model is not installed")
def test_an_example_with_colours_brings_its_colour_layer_and_a_coloured_result(page):
    """The gallery's "red sneaker": the sketch and its red strokes land in the canvas (the
    colour layer, which Clear colours removes) and the shipped model makes the shoe red."""
    pick(page, "#draw-model", "fashion")  # the app opens on the hint model, which also takes outlines
    expect(page.locator("#draw-model input")).to_have_value(re.compile(r"^fashion\b"))
    thumb = page.locator("#examples button.thumbnail-item", has_text="red sneaker")
    red = result_after(page, lambda: thumb.click())
    expect(page.locator("#draw-model input")).to_have_value(re.compile(r"^fashion\b"))
    shot(page, "colours_example")
    reddish = page.evaluate("""() => {
      const c = document.querySelector('#sketch canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 150 && d[i + 1] < 140 && d[i + 2] < 140) n++;
      return n;
    }""")
    assert reddish > 2000  # three red strokes over the shoe, shown half-transparent
    plain = result_after(page, lambda: page.locator("#sketch [data-action=clearcolours]").click())
    print(f"\nred minus blue in the middle: example {redness(red):.0f}, colours cleared {redness(plain):.0f}")
    assert redness(red) > redness(plain) + 40
