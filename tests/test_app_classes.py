"""A class model in the app: the Draw tab's canvas and the Upload tab offer "It shows" (Auto
and the model's classes) for it alone, and the canvas, the upload, the generate API and the
plain HTTP route all tell the model what was picked."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import gradio as gr
from appkit import CLASS_MODEL, SKETCH_MODEL, make_class_model, make_models, sketch
from demo import handlers, models
from demo.canvas import data_url
from demo.settings import Settings


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs")
    make_models(path)
    make_class_model(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIX2PIX_RUNS", str(path))
        mp.setenv("PIX2PIX_WEIGHTS", str(tmp_path_factory.mktemp("no-weights")))
        yield path


def drawn(model: str, what=None) -> np.ndarray:
    value = {"png": data_url(sketch("shoe")), "hints": None, "what": what}
    return np.asarray(handlers.draw(value, model, 0)[0], float)


def test_the_picker_is_offered_for_a_class_model_only(runs):
    entries = models.available()
    assert models.canvas(models.find(entries, CLASS_MODEL))["setup"]["classes"] == ["shoe", "bag"]
    assert models.canvas(models.find(entries, SKETCH_MODEL))["setup"]["classes"] == []
    picker = models.class_picker(CLASS_MODEL)
    assert picker.visible and picker.value == handlers.AUTO and [c[0] for c in picker.choices] == ["Auto", "shoe", "bag"]
    assert models.class_picker(SKETCH_MODEL).visible is False


def test_what_is_picked_reaches_the_model(runs):
    auto, shoe, bag = drawn(CLASS_MODEL), drawn(CLASS_MODEL, "shoe"), drawn(CLASS_MODEL, "Bag")
    for untold in (handlers.AUTO, "auto", ""):
        assert np.array_equal(drawn(CLASS_MODEL, untold), auto)
    assert np.count_nonzero(shoe != bag) > 2000 and np.count_nonzero(shoe != auto) > 2000
    assert np.array_equal(drawn(SKETCH_MODEL, "shoe"), drawn(SKETCH_MODEL))  # a model told nothing ignores it
    with pytest.raises(gr.Error, match=r"can be told shoe, bag \(or Auto\); not 'hat'"):
        handlers.draw({"png": data_url(sketch("shoe")), "what": "hat"}, CLASS_MODEL, 0)


def test_the_upload_tab_the_api_and_the_http_route_tell_the_class(runs, tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from demo import rest

    path = tmp_path / "shoe.png"
    sketch("shoe").save(path)

    def uploaded(what):
        return np.asarray(Image.open(handlers.upload(str(path), CLASS_MODEL, None, False, what)[2]), float)

    assert np.array_equal(uploaded("bag"), drawn(CLASS_MODEL, "bag"))
    assert not np.array_equal(uploaded("bag"), uploaded(handlers.AUTO))
    assert "not 'hat'" in handlers.upload(str(path), CLASS_MODEL, None, False, "hat")[4]
    api = np.asarray(Image.open(handlers.api_generate(str(path), CLASS_MODEL, -1, None, "bag")), float)
    assert np.array_equal(api, uploaded("bag"))
    assert {"name": CLASS_MODEL, "classes": ["shoe", "bag"]}.items() <= \
        next(m for m in handlers.api_list_models() if m["name"] == CLASS_MODEL).items()
    app = FastAPI()
    rest.mount(app, Settings(default_model=CLASS_MODEL))
    client = TestClient(app)
    r = client.post(rest.ROUTE, files={"sketch": ("shoe.png", path.read_bytes(), "image/png")}, data={"what": "bag"})
    assert r.status_code == 200
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), float), api)
    r = client.post(rest.ROUTE, files={"sketch": ("shoe.png", path.read_bytes(), "image/png")}, data={"what": "hat"})
    assert r.status_code == 400 and "not 'hat'" in r.json()["error"]
    r = client.post(rest.ROUTE, files={"sketch": ("x.png", b"not a picture", "image/png")}, data={"what": "hat"})
    assert "not 'hat'" in r.json()["error"]  # checked before the file is decoded
