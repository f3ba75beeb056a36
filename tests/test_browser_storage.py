"""The Fine-tune tab's Storage in a real browser: usage against the quotas, and deleting
a run only after the question is answered."""

from __future__ import annotations

import pytest

from appkit import SKETCH_MODEL, AppProcess, make_models
from test_browser import browser, pick, shot  # noqa: F401 - browser is a fixture

from playwright.sync_api import expect  # noqa: E402 - after test_browser's skip without Chromium

pytestmark = pytest.mark.slow  # a real app in headless Chromium


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("storage")
    make_models(tmp / "runs")
    (tmp / "runs" / "old-run" / "checkpoints").mkdir(parents=True)
    (tmp / "runs" / "old-run" / "checkpoints" / "last.pt").write_bytes(b"\0" * 300_000)
    with AppProcess(tmp / "app.log", "--runs", str(tmp / "runs"), "--data-root", str(tmp / "data"),
                    "--model", SKETCH_MODEL, "--runs-quota", "5") as proc:
        proc.wait_serving()
        proc.tmp = tmp
        yield proc


@pytest.fixture
def storage(app, browser):  # noqa: F811 - the fixture imported above
    page = browser.new_page(viewport={"width": 1360, "height": 1100})
    page.goto(app.url)
    page.get_by_role("tab", name="Fine-tune").click()
    page.locator("#storage").get_by_text("Storage").click()
    expect(page.locator("#storage-usage")).to_contain_text("of 5.0 GB (3)", timeout=30_000)
    yield page
    page.close()


def test_a_run_is_deleted_only_after_the_question(app, storage):
    page, old = storage, app.tmp / "runs" / "old-run"
    expect(page.locator("#storage")).to_contain_text("1,024 MB")  # the limits are stated
    pick(page, "#storage-item", "run · old-run")
    page.locator("#storage-delete").click()
    expect(page.locator("#storage-question")).to_contain_text("Delete the run old-run (300 KB) for good?")
    page.locator("#storage-cancel").click()
    expect(page.locator("#storage-confirm")).to_be_hidden()
    assert old.is_dir()

    page.locator("#storage-delete").click()
    expect(page.locator("#storage-confirm")).to_be_visible()
    shot(page, "storage_question")
    page.locator("#storage-confirm").click()
    expect(page.locator("#storage-usage")).to_contain_text("of 5.0 GB (2)", timeout=30_000)
    expect(page.locator("#storage-confirm")).to_be_hidden()
    assert not old.exists() and (app.tmp / "runs" / SKETCH_MODEL).is_dir()
    shot(page, "storage_deleted")
