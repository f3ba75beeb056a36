"""A class model in a real browser: the canvas's "It shows" picker appears for it alone, and
picking a class gives another result at once; the Upload tab offers the same choice."""

from __future__ import annotations

import re

import numpy as np
import pytest

from appkit import CLASS_MODEL, SKETCH_MODEL, AppProcess, make_class_model, make_models
from test_browser import SHOE, browser, pick, shot, stroke  # noqa: F401 - browser is a fixture
from test_browser_colours import result_after

from playwright.sync_api import expect  # noqa: E402 - after test_browser's skip without Chromium

pytestmark = pytest.mark.slow  # a real app in headless Chromium


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("classes")
    make_models(tmp / "runs")
    make_class_model(tmp / "runs")
    with AppProcess(tmp / "app.log", "--runs", str(tmp / "runs"), "--data-root", str(tmp / "data"),
                    "--model", CLASS_MODEL, "--no-training") as proc:
        proc.wait_serving()
        proc.wait_log(" ready ")
        yield proc


def test_it_shows_tells_the_model_and_is_there_for_a_class_model_only(app, browser):  # noqa: F811
    page = browser.new_page(viewport={"width": 1360, "height": 1100})
    try:
        page.goto(app.url)
        expect(page.locator("#draw-model input")).to_have_value(re.compile(CLASS_MODEL), timeout=30_000)
        what = page.locator("#sketch .sk-what")
        expect(what).to_be_visible()
        assert what.locator("option").all_inner_texts() == ["Auto", "shoe", "bag"]
        auto = result_after(page, lambda: [stroke(page, s) for s in SHOE])
        bag = result_after(page, lambda: what.select_option("bag"))
        assert np.count_nonzero(bag != auto) > 2000
        shot(page, "class_picker")
        assert np.array_equal(result_after(page, lambda: what.select_option("")), auto)  # Auto again
        pick(page, "#draw-model", SKETCH_MODEL)
        expect(what).to_be_hidden()
        page.get_by_role("tab", name="Upload").click()
        radio = page.locator("#upload-what")
        expect(radio).to_be_visible()
        expect(radio.get_by_label("bag")).to_be_visible()
        pick(page, "#upload-model", SKETCH_MODEL)
        expect(radio).to_be_hidden()
    finally:
        page.close()
