"""Colour hints in the app: the canvas offers the colour brush to hint models only, and the
Draw tab, the Upload tab and the API all pass a painted hint layer to the model."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

import gradio as gr
from appkit import HINT_MODEL, LABEL_MODEL, SKETCH_MODEL, free_port, make_hint_model, make_models, sketch
from demo import handlers, models
from demo.canvas import colour_layer, data_url
from demo.settings import Settings
from demo.ui import QUEUE_OPTIONS, build_demo, launch_options


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs")
    make_models(path)
    make_hint_model(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIX2PIX_RUNS", str(path))
        mp.setenv("PIX2PIX_WEIGHTS", str(tmp_path_factory.mktemp("no-weights")))
        yield path


def red_blob(size: int = 512) -> Image.Image:
    """A hint layer: a red patch inside the drawn circle of ``sketch("circle")``, transparent elsewhere."""
    layer = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    ImageDraw.Draw(layer).ellipse((220, 220, 290, 290), fill=(220, 20, 20, 255))
    return layer


def canvas_value(hints: Image.Image | None = None) -> dict:
    return {"png": data_url(sketch("circle")), "hints": data_url(hints) if hints else None, "stroke": 1}


def test_the_colour_brush_is_for_hint_models_only_and_labels_start_on_window(runs):
    entries = models.available()
    assert models.canvas(models.find(entries, HINT_MODEL))["setup"]["hints"] is True
    plain = models.canvas(models.find(entries, SKETCH_MODEL))["setup"]
    assert plain["hints"] is False and plain["key"] == "sketch"
    labels = models.canvas(models.find(entries, LABEL_MODEL))["setup"]
    assert labels["hints"] is False and labels["pen"] == "#0055ff"  # window, not the background class
    assert labels["key"].startswith("labels:") and labels["key"] != plain["key"]


def test_painted_colours_reach_a_hint_model_and_are_ignored_by_others(runs):
    def result(model, hints):
        return np.asarray(handlers.draw(canvas_value(hints), model, 0)[0], float)

    assert np.count_nonzero(result(HINT_MODEL, red_blob()) != result(HINT_MODEL, None)) > 500
    assert np.array_equal(result(SKETCH_MODEL, red_blob()), result(SKETCH_MODEL, None))
    assert colour_layer(canvas_value()) is None and colour_layer(None) is None
    with pytest.raises(gr.Error, match="colours painted could not be read"):
        colour_layer({"png": data_url(sketch()), "hints": "data:image/png;base64,!!"})


def test_the_upload_tab_takes_a_hint_image_and_says_what_it_did(runs, tmp_path):
    sketch("circle").save(tmp_path / "circle.png")
    red_blob().save(tmp_path / "hints.png")
    with_hints = handlers.upload(str(tmp_path / "circle.png"), HINT_MODEL, str(tmp_path / "hints.png"))
    without = handlers.upload(str(tmp_path / "circle.png"), HINT_MODEL, None)
    assert "colour hints from hints.png" in with_hints[4]
    assert not np.array_equal(np.asarray(Image.open(with_hints[2])), np.asarray(Image.open(without[2])))
    ignored = handlers.upload(str(tmp_path / "circle.png"), SKETCH_MODEL, str(tmp_path / "hints.png"))
    assert "takes no colour hints" in ignored[4]
    red_blob().convert("RGB").save(tmp_path / "flat.jpg")
    refused = handlers.upload(str(tmp_path / "circle.png"), HINT_MODEL, str(tmp_path / "flat.jpg"))
    assert "no transparency" in refused[4] and refused[2] is None  # said in the status line, which stays
    red_blob(100).save(tmp_path / "small.png")
    refused = handlers.upload(str(tmp_path / "circle.png"), HINT_MODEL, str(tmp_path / "small.png"))
    assert "colour hints are 100x100 but the sketch is 512x512" in refused[4]


@pytest.mark.slow
def test_the_api_needs_only_the_sketch_and_takes_hints(runs, tmp_path):
    settings = Settings(default_model=HINT_MODEL, data_roots=[tmp_path / "datasets"])
    demo = build_demo(settings)
    demo.queue(**QUEUE_OPTIONS).launch(server_port=free_port(), prevent_thread_lock=True, quiet=True,
                                       **launch_options(settings))
    try:
        client = Client(demo.local_url, verbose=False)
        sketch("circle").save(tmp_path / "circle.png")
        red_blob().save(tmp_path / "hints.png")
        plain = np.asarray(Image.open(client.predict(handle_file(tmp_path / "circle.png"), api_name="/generate")))
        hinted = client.predict(handle_file(tmp_path / "circle.png"), hints=handle_file(tmp_path / "hints.png"),
                                api_name="/generate")
        assert plain.shape == (256, 256, 3) and not np.array_equal(np.asarray(Image.open(hinted)), plain)
    finally:
        demo.close()
