"""The Draw tab's layout in a real browser, for an outline model and a label-map model (the
one with the most rows of tools): on a 1360×900 desktop the canvas, its tools, the result and
Generate fit the first screen; on a 400×800 phone the canvas is as wide as the screen allows,
its tools are one row with the rest behind "⋯", and the result is an inset over the canvas that
stays in view while one draws. No tab logs anything to the browser's console."""

from __future__ import annotations

import re

import pytest

from appkit import LABEL_MODEL, SKETCH_MODEL, shipped
from test_browser import NEW_RESULT, RESULT_SRC, app, browser, pick, shot, stroke  # noqa: F401 - fixtures

from playwright.sync_api import expect  # noqa: E402 - after test_browser's skip without Chromium

pytestmark = pytest.mark.slow  # a real app in headless Chromium
KINDS = {"outlines": "fashion" if shipped("fashion") else SKETCH_MODEL,
         "labels": "facades" if shipped("facades") else LABEL_MODEL}
DESKTOP, PHONE = (1360, 900), (400, 800)


def open_page(app, browser, size: tuple[int, int], model: str):  # noqa: F811
    """The page at ``size`` with ``model`` picked and its result shown; its console messages
    are collected in ``page.messages``."""
    page = browser.new_page(viewport={"width": size[0], "height": size[1]})
    page.messages = []
    page.on("console", lambda m: page.messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: page.messages.append(f"error: {e}"))
    page.goto(app.url)
    expect(page.locator("#draw-model input")).not_to_have_value("", timeout=30_000)
    if not page.locator("#draw-model input").input_value().startswith(model):
        expect(page.locator("#result img")).to_have_count(1, timeout=30_000)  # the opening example's result ...
        before = page.evaluate(RESULT_SRC)
        pick(page, "#draw-model", model)
        page.wait_for_function(NEW_RESULT, arg=before, timeout=60_000)  # ... replaced by this model's
    expect(page.locator("#draw-model input")).to_have_value(re.compile(rf"^{re.escape(model)}\b"), timeout=10_000)
    expect(page.locator("#result img")).to_have_count(1, timeout=30_000)
    page.wait_for_timeout(500)  # the layout settles (the canvas is sized once the rows above are placed)
    return page


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def bottom(b: dict) -> float:
    return b["y"] + b["height"]


@pytest.mark.parametrize("kind", KINDS)
def test_on_a_desktop_canvas_tools_result_and_generate_fit_the_first_screen(app, browser, kind):  # noqa: F811
    page = open_page(app, browser, DESKTOP, KINDS[kind])
    canvas, tools, frame = box(page, "#sketch canvas"), box(page, "#sketch .sk-tools"), box(page, "#result .rv-frame")
    generate, variation = box(page, "#generate"), box(page, ".generate-row")
    print(f"\n{kind} at 1360×900: canvas {canvas['width']:.0f} px, {bottom(canvas):.0f}; "
          f"result {frame['width']:.0f} px; Generate ends at {bottom(generate):.0f}")
    assert tools["y"] >= 0 and bottom(canvas) <= DESKTOP[1]
    assert bottom(frame) <= DESKTOP[1] and bottom(generate) <= DESKTOP[1] and bottom(variation) <= DESKTOP[1]
    assert canvas["width"] >= 360 and abs(frame["width"] - canvas["width"]) <= 1  # two squares, side by side
    assert frame["x"] > canvas["x"] + canvas["width"]
    if kind == "labels":  # every tool of a label model, in at most two rows
        assert page.locator("#sketch [data-action=rect]").is_visible() and tools["height"] <= 80
    shot(page, f"layout_desktop_{kind}")
    assert page.messages == []
    page.close()


@pytest.mark.parametrize("kind", KINDS)
def test_on_a_phone_the_canvas_is_wide_and_the_result_an_inset_that_stays_in_view(app, browser, kind):  # noqa: F811
    page = open_page(app, browser, PHONE, KINDS[kind])
    canvas, tools = box(page, "#sketch canvas"), box(page, "#sketch .sk-tools")
    pen = box(page, "#sketch [data-action=pen]")
    print(f"\n{kind} at 400×800: canvas {canvas['width']:.0f} px, ends at {bottom(canvas):.0f}")
    assert canvas["width"] >= 340 and bottom(canvas) <= PHONE[1]  # all of it on the first screen
    assert tools["height"] < 2 * pen["height"]  # one row
    clear = page.locator("#sketch [data-action=clear]")
    expect(clear).to_be_hidden()  # behind "⋯" ...
    page.locator("#sketch .sk-more").click()
    expect(clear).to_be_visible()  # ... which opens it
    shot(page, f"layout_phone_{kind}_menu")
    page.locator("#sketch .sk-more").click()
    expect(clear).to_be_hidden()

    inset = box(page, "#result .rv-frame")  # over the canvas's top-right corner, small
    assert canvas["x"] <= inset["x"] and inset["x"] + inset["width"] <= canvas["x"] + canvas["width"]
    assert canvas["y"] <= inset["y"] and bottom(inset) <= canvas["y"] + canvas["height"] / 2
    assert inset["width"] <= 0.4 * canvas["width"]
    before = page.evaluate("() => document.querySelector('#result img').src")
    stroke(page, [(0.2, 0.7), (0.5, 0.85), (0.7, 0.75)])
    page.wait_for_function("(b) => document.querySelector('#result img').src !== b", arg=before, timeout=30_000)
    after = box(page, "#result .rv-frame")  # the new result is where it was, in view
    assert 0 <= after["y"] and bottom(after) <= PHONE[1]
    shot(page, f"layout_phone_{kind}")

    page.locator("#result .rv-frame").click()  # a tap enlarges it over the canvas ...
    expect(page.locator("#result")).to_have_class(re.compile(r"\bbig\b"))
    big = box(page, "#result .rv-frame")
    assert big["width"] >= 0.8 * canvas["width"]
    page.locator("#result .rv-frame").click()  # ... another shrinks it
    assert box(page, "#result .rv-frame")["width"] <= 0.4 * canvas["width"]
    assert page.messages == []
    page.close()


def test_no_tab_logs_to_the_console(app, browser):  # noqa: F811
    for size in (DESKTOP, PHONE):
        page = open_page(app, browser, size, KINDS["outlines"])
        for tab in ("Upload", "Fine-tune", "Draw"):
            page.get_by_role("tab", name=tab).click()
            page.wait_for_timeout(1_500)
        assert page.messages == [], size
        page.close()
