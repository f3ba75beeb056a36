"""The app without a browser: its handlers, and a live server driven with gradio_client."""

from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image, ImageDraw

from appkit import LABEL_MODEL, SKETCH_MODEL, AppProcess, free_port, make_models, shipped, sketch
from conftest import ROOT, write_side_by_side
from demo import handlers, models, run_storage, training, training_data, training_view
from demo.canvas import colour_layer, data_url, drawing
from demo.settings import Settings
from demo.ui import QUEUE_OPTIONS, build_demo, launch_options

OUTPUT = ROOT / "test-output"
ERROR_TRACES = ("Traceback", 'File "', "Error:")  # what a leaked stack trace would contain


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A runs folder with the tiny models, used as PIX2PIX_RUNS for the whole module; no
    shipped models (an empty PIX2PIX_WEIGHTS), so what the tests see does not depend on them."""
    path = tmp_path_factory.mktemp("runs")
    make_models(path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PIX2PIX_RUNS", str(path))
        mp.setenv("PIX2PIX_WEIGHTS", str(tmp_path_factory.mktemp("no-weights")))
        yield path


@pytest.fixture
def settings(tmp_path, runs):
    return Settings(default_model=SKETCH_MODEL, data_roots=[tmp_path / "datasets"])


def png(tmp_path: Path, image: Image.Image, name: str) -> Path:
    image.save(tmp_path / name)
    return tmp_path / name


# ---------------------------------------------------------------------------- handlers


def test_build_demo_has_the_api_and_keeps_the_page_events_private(settings):
    demo = build_demo(settings)
    assert isinstance(demo, gr.Blocks)
    public = sorted(fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public")
    assert public == ["generate", "list_models"]


def test_the_canvas_follows_the_model(runs):
    entries = models.available()
    labels = models.canvas(models.find(entries, LABEL_MODEL))
    assert labels["setup"]["fill"] == "#0000ff"  # background_label 2, the facade wall
    assert [c["name"] for c in labels["setup"]["palette"]] == ["background", "facade", "window", "door", "balcony"]
    assert labels["setup"]["pen"] != "#0000ff" and labels["generate"]
    pen = models.canvas(models.find(entries, SKETCH_MODEL))
    assert pen["setup"] == {"fill": "#ffffff", "pen": "#000000", "size": models.PEN_SIZE, "palette": [],
                            "hints": False, "key": "sketch", "model": SKETCH_MODEL,  # the model it posts to
                            "classes": []}  # told no class: no "It shows" picker
    assert not pen["generate"] and labels["setup"]["model"] == LABEL_MODEL
    assert models.pick(entries, LABEL_MODEL) == LABEL_MODEL and models.pick([], None) is None
    assert models.pick(entries, "nope") == entries[0].name
    assert "No model is installed" in models.describe(None)


def drawn(image: Image.Image) -> dict:
    """The value the page's canvas sends after a stroke."""
    return {"png": data_url(image), "stroke": 1}


def test_the_canvas_sends_one_png():
    assert np.array_equal(np.asarray(drawing(drawn(sketch()))), np.asarray(sketch()))
    assert drawing({"setup": {}}) is None and drawing(None) is None
    for bad in ("data:image/png;base64,!!!", "data:text/html;base64,PGI+", "data:image/png;base64,aGVsbG8="):
        with pytest.raises(gr.Error, match="could not be read"):
            drawing({"png": bad})


def test_drawing_gives_a_result_and_an_empty_canvas_only_a_hint(runs):
    result, status, last = handlers.draw(drawn(sketch()), SKETCH_MODEL, 0)
    assert result.size == (256, 256) and "ms" in status and last[1] is result and last[0].size == (256, 256)
    for empty in (None, {"setup": {}}, drawn(Image.new("RGB", (512, 512), "white"))):
        assert handlers.draw(empty, SKETCH_MODEL, 0) == (None, handlers.DRAW_HINT, None)
        assert handlers.draw(empty, SKETCH_MODEL, 0, explicit=True)[1].startswith("The canvas is empty")
    # a variation is another image, the same seed the same one
    def variation(seed):
        return np.asarray(handlers.draw(drawn(sketch()), SKETCH_MODEL, seed)[0])

    assert np.array_equal(variation(3), variation(3))
    assert not np.array_equal(variation(3), np.asarray(result))
    assert not np.array_equal(variation(3), variation(4))
    assert np.array_equal(variation(-2), np.asarray(result)) and np.array_equal(variation("3"), variation(3))
    with pytest.raises(gr.Error, match="no model called 'nope'"):
        handlers.draw(drawn(sketch()), "nope", 0)
    for bad in ("abc", 2.5, True, float("nan"), 2**40, [1]):
        with pytest.raises(gr.Error, match="Variation must be a whole number"):
            handlers.draw(drawn(sketch()), SKETCH_MODEL, bad)


def test_without_models_the_canvas_says_so_quietly(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_RUNS", str(tmp_path))
    monkeypatch.setenv("PIX2PIX_WEIGHTS", str(tmp_path))
    for explicit in (False, True):
        assert handlers.draw(drawn(sketch()), None, 0, explicit=explicit) == (None, models.NO_MODEL, None)


def test_label_maps_are_snapped_not_normalized(runs):
    canvas = Image.new("RGB", (512, 512), (0, 0, 250))  # near the facade colour
    canvas.paste((10, 90, 250), (100, 100, 200, 200))  # near the window colour
    seen, result = handlers.run(handlers.load_model(LABEL_MODEL), canvas)
    assert {c for _, c in seen.getcolors()} == {(0, 0, 255), (0, 85, 255)}
    assert result.size == (256, 256)


def test_upload_shows_what_the_model_sees(tmp_path, runs):
    photo = Image.new("RGB", (1200, 700), (90, 90, 95))  # light lines on a dark board, off-centre
    lines = sketch("bag", 300).convert("L").point(lambda v: 255 - v)
    photo.paste((235, 235, 235), (800, 50), mask=lines)
    shown = handlers.upload(png(tmp_path, photo, "board.png"), SKETCH_MODEL)
    (original, seen, result), (download, status, offer, _) = [Image.open(f) for f in shown[:3]], shown[3:]
    assert seen.size == result.size == (256, 256) and max(original.size) <= 512 and download.visible
    assert np.asarray(seen)[0, 0].tolist() == [255, 255, 255]  # dark board -> white paper
    assert "1200×700" in status and "looks like" not in status and not offer.visible


def test_a_photo_or_a_drawing_of_the_wrong_kind_is_told_and_a_photo_can_become_an_outline(tmp_path, runs):
    photo = Image.new("RGB", (300, 400), "white")
    ImageDraw.Draw(photo).rounded_rectangle((60, 80, 240, 330), radius=40, fill=(150, 40, 60))  # a red bag
    status, offer, switch = handlers.upload(png(tmp_path, photo, "bag.jpg"), SKETCH_MODEL)[4:]
    assert "looks like a photo" in status and offer.visible
    canvas, picker, tabs = handlers.outline_for_canvas(str(tmp_path / "bag.jpg"), SKETCH_MODEL)
    assert picker.value == SKETCH_MODEL and tabs.selected == "draw" and canvas["generate"]
    outline = drawing({"png": canvas["image"]})
    assert outline.size == (512, 512)  # padded, not stretched
    ink = np.argwhere(np.asarray(outline.convert("L")) < 128)
    assert len(ink) > 200 and (ink.max(0) - ink.min(0))[0] > (ink.max(0) - ink.min(0))[1]  # taller than wide
    status, offer, _ = handlers.upload(png(tmp_path, sketch("shoe"), "shoe.png"), LABEL_MODEL)[4:]
    assert "looks like a line drawing" in status and LABEL_MODEL in status and not offer.visible
    assert not switch.visible


def test_a_label_map_given_to_a_sketch_model_is_named_and_the_label_model_offered(tmp_path, runs):
    labels = Image.new("RGB", (256, 256), (0, 0, 255))  # a facade's wall, windows, a door: flat colours
    d = ImageDraw.Draw(labels)
    for x in range(30, 230, 50):
        d.rectangle((x, 40, x + 25, 90), fill=(0, 170, 255))
        d.rectangle((x, 120, x + 25, 170), fill=(0, 170, 255))
    d.rectangle((110, 190, 150, 256), fill=(170, 0, 0))
    status, offer, switch = handlers.upload(png(tmp_path, labels, "facade.png"), SKETCH_MODEL)[4:]
    assert "looks like a colour label map" in status and "a photo" not in status and not offer.visible
    assert switch.visible and switch.value == f"Use {LABEL_MODEL}"


@pytest.mark.parametrize("name, data, message", [
    ("notes.txt", b"hello", "not a supported image type"),
    ("broken.png", b"\x89PNG\r\n\x1a\n garbage", "unreadable image|not an image"),
    ("fake.jpg", b"hello", "not an image"),
])
def test_bad_uploads_get_a_sentence(tmp_path, runs, name, data, message):
    """In the status line, where it stays until the next input; the pictures are cleared."""
    import re

    (tmp_path / name).write_bytes(data)
    original, seen, result, _, status, offer, switch = handlers.upload(tmp_path / name, SKETCH_MODEL)
    assert re.search(message, status) and status.startswith("⚠") and original is seen is result is None
    assert not any(t in status for t in ERROR_TRACES) and not offer.visible and not switch.visible


def test_upload_leaves_a_pages_notes_out_and_says_so_unless_kept(tmp_path, runs):
    from pages import annotated_page

    path = png(tmp_path, annotated_page(), "page.png")
    *_, status, _, _ = handlers.upload(path, SKETCH_MODEL)
    assert "left out 2 text blocks, a border, a swatch and 6 specks" in status and "Keep everything" in status
    *_, status, _, _ = handlers.upload(path, SKETCH_MODEL, None, True)
    assert "left out" not in status


def test_upload_size_limit(tmp_path, runs):
    big = png(tmp_path, sketch(), "big.png")
    assert "larger than" in handlers.upload(big, SKETCH_MODEL, max_mb=big.stat().st_size / 2**20 / 2)[4]


# ---------------------------------------------------------------------------- fine-tune handlers


def test_check_data_in_a_root_and_refusal_outside(settings, tmp_path):
    write_side_by_side(settings.data_roots[0] / "shapes", 6)
    assert training_data.data_folders(settings) == [("datasets/shapes", str(settings.data_roots[0] / "shapes"))]
    summary, checked, name, start_from = training_data.check_folder(settings, "shapes", False, "")
    assert "side-by-side" in summary and "6 train" in summary and checked.endswith("shapes")
    assert name.startswith("shapes-") and start_from.value == SKETCH_MODEL  # a sketch model to fine-tune
    (tmp_path / "elsewhere").mkdir()
    # a failed check is a sentence where the summary goes; nothing is marked as an error
    summary, checked, name, start_from = training_data.check_folder(settings, str(tmp_path / "elsewhere"), False, "x")
    assert summary.startswith("⚠") and "outside the folders" in summary and checked is None and name == "x"
    summary, *_ = training_data.check_folder(settings, str(settings.data_roots[0]), False, "")
    assert "No usable training pairs" in summary and "tick *Photos only*" in summary and "--" not in summary


def test_check_zip_extracts_into_the_uploads_folder(settings, tmp_path):
    import zipfile

    write_side_by_side(tmp_path / "mine" / "pairs", 4)
    with zipfile.ZipFile(tmp_path / "pairs.zip", "w") as z:
        for f in (tmp_path / "mine" / "pairs").iterdir():
            z.write(f, f"pairs/{f.name}")
    picker, summary, checked, name, _, usage, _ = training.check_zip(settings, str(tmp_path / "pairs.zip"), False,
                                                                     "mine")
    assert Path(checked).parent.parent == settings.uploads and Path(checked).name == "pairs"
    assert picker.value == checked and "4 train" in summary and name == "mine" and "**Uploads** " in usage
    # the same zip again at once (the same second): a folder of its own
    again = training.check_zip(settings, str(tmp_path / "pairs.zip"), False, "mine")[2]
    assert again != checked and Path(again).name == "pairs" and Path(checked).is_dir()
    (tmp_path / "evil.zip").write_bytes(b"not a zip")
    _, summary, checked, *_ = training.check_zip(settings, str(tmp_path / "evil.zip"), False, "")
    assert "not a zip file" in summary and checked is None
    # after a reload the folder list offers the zipped folder from inside, where its pairs are
    assert (f"uploads/{Path(again).parent.name}/pairs", again) in training_data.data_folders(settings)


def test_fine_tune_from_an_installed_model(settings):
    """Start runs in the background, a second start is refused, and the new model keeps
    the metadata of the one it started from."""
    write_side_by_side(settings.data_roots[0] / "shapes", 4)
    _, checked, *_ = training_data.check_folder(settings, "shapes", False, "")
    form = dict(photos_only=False, init=SKETCH_MODEL, unit="steps", length=2, lr=2e-4, batch_size=1,
                direction="AtoB", val_fraction=0.25, ngf=32, ndf=8, input_kind="auto")
    progress, timer = training.start(settings, checked, name="tuned", **form)
    assert timer.active and "run-status" in progress
    with pytest.raises(gr.Error, match="already in progress"):
        training.start(settings, checked, name="tuned2", **form)
    assert settings.jobs.wait(240)
    outputs = training.poll(settings, None)
    assert "now in the model pickers" in outputs[0] and not outputs[5].active
    entry = models.find(models.available(), "tuned")
    assert entry.info.input_kind == "sketch" and entry.info.description == f"{SKETCH_MODEL} fine-tuned on shapes"
    assert entry.config.ngf == 8  # the architecture of the model it started from, not the form's
    with pytest.raises(gr.Error, match="Check data"):
        training.start(settings, None, name="other", **form)


@pytest.mark.parametrize("name", ["", "a/b", "../up", "with space", ".hidden", "x" * 65])
def test_run_names_are_checked(runs, name):
    with pytest.raises(gr.Error, match="name"):
        run_storage._run_dir(name)


def test_a_run_name_that_exists_is_refused(runs):
    with pytest.raises(gr.Error, match="already exists"):
        run_storage._run_dir(SKETCH_MODEL)


def test_progress_display():
    from pix2pix.training.progress import MonitorState

    assert training_view.progress_html(MonitorState()) == training_view.IDLE
    running = training_view.progress_html(MonitorState(status="running", step=5, total=20, eta_s=75, images_per_s=2.5))
    assert "width:25.0%" in running and "1 min 15 s" in running and "step 5 / 20" in running
    done = training_view.progress_html(MonitorState(status="finished", step=20, total=20, message="Finished.",
                                               run_dir=Path("runs/mine"), model_dir=Path("runs/mine/model")))
    assert "width:100.0%" in done and "<b>mine</b> is now in the model pickers" in done
    plot = training_view.loss_plot([{"step": s, "G_GAN": 1.0 + s, "G_L1": 0.5, "D_real": 0.7, "D_fake": 0.6}
                                    for s in (1, 2, 3)])
    assert plot.startswith("<svg") and plot.count("<path") == 4 and "step 3" in plot
    assert f'stroke="{training_view.LOSS_COLOURS["G_L1"]}"' in plot
    assert training_view.loss_plot([]) == training_view.NO_LOSSES
    assert "PSNR 14.2 dB" in training_view.metrics_text({"l1": 0.2, "psnr": 14.2, "ssim": 0.5, "n": 3})


# ---------------------------------------------------------------------------- live server


API_MAX_MB = 1  # the live server's sketch limit: small, so that testing it sends little


@pytest.fixture(scope="module")
def client(runs, tmp_path_factory):
    settings = Settings(default_model=SKETCH_MODEL, data_roots=[tmp_path_factory.mktemp("datasets")],
                        max_sketch_mb=API_MAX_MB, max_zip_mb=4)
    demo = build_demo(settings)
    demo.queue(**QUEUE_OPTIONS).launch(server_port=free_port(), prevent_thread_lock=True, quiet=True,
                                       **launch_options(settings))
    try:
        yield Client(demo.local_url, verbose=False)
    finally:
        demo.close()


def test_api_lists_the_models(client):
    listed = {m["name"]: m for m in client.predict(api_name="/list_models")}
    assert listed[SKETCH_MODEL] == {"name": SKETCH_MODEL, "description": "Test sketch model",
                                    "input_kind": "sketch", "shipped": False}
    assert listed[LABEL_MODEL]["input_kind"] == "labels"


def test_api_generate_depends_on_the_input(client, tmp_path):
    shoe = client.predict(handle_file(png(tmp_path, sketch("shoe"), "shoe.png")), SKETCH_MODEL, -1,
                          api_name="/generate")
    bag = client.predict(handle_file(png(tmp_path, sketch("bag"), "bag.png")), SKETCH_MODEL, -1, api_name="/generate")
    shoe, bag = Image.open(shoe), Image.open(bag)
    assert shoe.size == bag.size == (256, 256)
    assert np.abs(np.asarray(shoe, float) - np.asarray(bag, float)).mean() > 0.1
    default = Image.open(client.predict(handle_file(tmp_path / "shoe.png"), "", -1, api_name="/generate"))
    assert np.array_equal(np.asarray(default), np.asarray(shoe))  # empty model name: the app's default


def text_file(folder: Path) -> Path:
    (folder / "notes.txt").write_text("hi")
    return folder / "notes.txt"


@pytest.mark.parametrize("make, model, message", [
    (lambda p: png(p, sketch(), "s.png"), "nope", "There is no model called 'nope'"),
    (lambda p: png(p, Image.new("RGB", (300, 200), "white"), "blank.png"), SKETCH_MODEL, "blank.png looks blank"),
    (text_file, SKETCH_MODEL, "not an image"),
])
def test_api_errors_are_plain_sentences(client, tmp_path, make, model, message):
    with pytest.raises(Exception, match=message) as e:
        client.predict(handle_file(make(tmp_path)), model, -1, api_name="/generate")
    assert not any(t in str(e.value) for t in ERROR_TRACES[:2])


@pytest.mark.slow  # a real app.py process
def test_cold_start_of_app_py(tmp_path, monkeypatch):
    """``python app.py`` serves its page quickly and the shipped default model answers."""
    monkeypatch.delenv("PIX2PIX_WEIGHTS", raising=False)  # the real weights/, not the module's empty one
    with AppProcess(tmp_path / "app.log", "--runs", str(tmp_path / "no-runs")) as app:
        seconds = app.wait_serving()
        print(f"\ncold start of app.py to HTTP 200: {seconds:.2f} s")
        OUTPUT.mkdir(exist_ok=True)
        (OUTPUT / "cold_start.json").write_text(json.dumps({"seconds_to_http_200": round(seconds, 2)}) + "\n")
        assert shipped("fashion"), "the default model weights/fashion is missing"
        app.wait_log("model fashion ready")
        client = Client(app.url, verbose=False)
        out = client.predict(handle_file(png(tmp_path, sketch(), "s.png")), "", -1, api_name="/generate")
        assert Image.open(out).size == (256, 256)
    assert seconds < 30  # generous for a loaded CI box; the measured figure is printed above


@pytest.mark.slow  # a real app.py process
def test_app_starts_without_any_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_WEIGHTS", str(tmp_path / "no-weights"))
    with AppProcess(tmp_path / "app.log", "--runs", str(tmp_path / "no-runs")) as app:
        app.wait_serving()
        app.wait_log("no model is installed")
        client = Client(app.url, verbose=False)
        assert client.predict(api_name="/list_models") == []
        with pytest.raises(Exception, match="No model is installed"):
            client.predict(handle_file(png(tmp_path, sketch(), "s.png")), "", -1, api_name="/generate")


# ---------------------------------------------------------------------------- hostile arguments


def bomb_png(path: Path, side: int) -> Path:
    """A valid PNG of side x side white pixels, a few hundred KB: a decompression bomb."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    packer = zlib.compressobj(1)
    row = b"\0" + b"\xff" * (3 * side)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = side.to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def files(folder: Path) -> dict:
    """Odd files for the API, by name."""
    made = {"blank": png(folder, Image.new("RGB", (300, 200), "white"), "blank.png"), "text": text_file(folder)}
    made["eps"] = folder / "drawing.png"  # PostScript under an image name: never handed to Ghostscript
    made["eps"].write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    made["empty"] = folder / "empty.png"
    made["empty"].write_bytes(b"")
    made["bomb"] = bomb_png(folder / "bomb.png", 5000)  # 25 megapixels
    return made


@pytest.mark.parametrize("kind, seed, model, message", [
    ("sketch", 2**64, SKETCH_MODEL, r"seed 18446744073709551616 is too large: use -1 .* 4,294,967,295"),
    ("sketch", 2**70, SKETCH_MODEL, "seed 1180591620717411303424 is too large"),
    ("sketch", 1e300, SKETCH_MODEL, r"seed 1e\+300 is too large"),
    ("sketch", "abc", SKETCH_MODEL, "seed must be -1 for the model's usual result.*got 'abc'"),
    ("sketch", [1], SKETCH_MODEL, r"seed must be .*got \[1\]"),
    ("sketch", 1.5, SKETCH_MODEL, "seed must be .*got 1.5"),
    ("sketch", True, SKETCH_MODEL, "seed must be .*got True"),
    ("sketch", -1, "x" * 4096, "There is no model called 'xxxxxxxx.*…. Available models"),
    ("sketch", -1, "a\0b", r"There is no model called 'a\\x00b'"),
    ("sketch", -1, [1], r"There is no model called '\[1\]'"),
    ("blank", -1, SKETCH_MODEL, "blank.png looks blank: there are no lines in it"),
    ("text", -1, SKETCH_MODEL, "notes.txt is not an image file"),
    ("eps", -1, SKETCH_MODEL, "drawing.png is not an image file"),
    ("empty", -1, SKETCH_MODEL, "empty.png is not an image file"),
    ("bomb", -1, SKETCH_MODEL, r"bomb.png is 5000×5000 pixels \(25 megapixels\); images may have at most 24"),
])
def test_every_bad_argument_gets_its_own_sentence(client, tmp_path, capfd, caplog, kind, seed, model, message):
    """What the API answers, and that the server logs no traceback for a user's mistake."""
    path = png(tmp_path, sketch(), "s.png") if kind == "sketch" else files(tmp_path)[kind]
    with pytest.raises(Exception, match=message) as e:
        client.predict(handle_file(path), model, seed, api_name="/generate")
    assert len(str(e.value)) < 400 and "went wrong" not in str(e.value)
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.exc_info]


def test_good_seeds_and_an_empty_model_work(client, tmp_path):
    path = handle_file(png(tmp_path, sketch(), "s.png"))
    usual = np.asarray(Image.open(client.predict(path, "", None, api_name="/generate")))
    for seed in (-1, -7, "-1", "", -2**70):
        assert np.array_equal(np.asarray(Image.open(client.predict(path, "", seed, api_name="/generate"))), usual)
    varied = [np.asarray(Image.open(client.predict(path, SKETCH_MODEL, s, api_name="/generate")))
              for s in (5, 5.0, "5", 4_294_967_295)]
    assert np.array_equal(varied[0], varied[1]) and np.array_equal(varied[0], varied[2])
    assert not np.array_equal(varied[0], usual) and not np.array_equal(varied[0], varied[3])


def post_upload(url: str, name: str, size: int) -> tuple[int, str]:
    import httpx

    r = httpx.post(url + "gradio_api/upload", files={"files": (name, b"\0" * size)}, timeout=60)
    return r.status_code, r.text


def test_only_a_zip_may_be_larger_than_a_sketch(client, tmp_path, capfd):
    """Gradio's one upload limit is the zip's: the sketch limit stops other files as they stream in."""
    big = int((API_MAX_MB + 0.5) * 2**20)
    status, text = post_upload(client.src, "huge.png", big)
    assert status == 413 and f"{API_MAX_MB} MB for an image; only a .zip" in text
    assert post_upload(client.src, "data.zip", big)[0] == 200
    assert post_upload(client.src, "small.png", 1000)[0] == 200
    assert post_upload(client.src, "data.zip", 5 * 2**20)[0] == 413  # beyond the zip limit (4 MB here)
    (tmp_path / "big.png").write_bytes(b"\0" * big)
    with pytest.raises(Exception, match="413|maximum allowed size"):
        client.predict(handle_file(tmp_path / "big.png"), "", -1, api_name="/generate")
    assert "Traceback" not in capfd.readouterr().err


def test_an_example_with_colour_hints_brings_them_to_a_hint_model(tmp_path, monkeypatch):
    """``x.hints.png`` beside an example is its colour layer: not an example of its own, and
    loaded into the canvas with the sketch (the page shows it only for a hint model)."""
    from appkit import HINT_MODEL, make_hint_model
    from demo import gallery

    make_hint_model(tmp_path / "runs")
    monkeypatch.setenv("PIX2PIX_RUNS", str(tmp_path / "runs"))
    folder = tmp_path / "examples"
    folder.mkdir()
    sketch("shoe").save(folder / f"{HINT_MODEL}_red_shoe.png")
    Image.new("RGBA", (512, 512), (214, 40, 40, 255)).save(folder / f"{HINT_MODEL}_red_shoe.hints.png")
    sketch("bag").save(folder / f"{HINT_MODEL}_bag.png")
    examples = gallery.list_examples(folder)
    assert [p.name for p in examples] == [f"{HINT_MODEL}_bag.png", f"{HINT_MODEL}_red_shoe.png"]
    assert gallery.caption(examples[1]) == f"red shoe ({HINT_MODEL})"
    load = gallery.loader(examples)
    plain, _, _ = load(None, gr.SelectData(None, {"index": 0, "value": None}))
    hinted, _, _ = load(None, gr.SelectData(None, {"index": 1, "value": None}))
    assert plain["image_hints"] is None and plain["setup"]["hints"]
    assert hinted["image"].startswith("data:image/png;base64,") and hinted["image_hints"].startswith("data:image/png;base64,")
    assert drawing({"png": hinted["image"]}).size == (512, 512)
    layer = colour_layer({"hints": hinted["image_hints"]})
    assert layer.getpixel((256, 256)) == (214, 40, 40, 255)


def test_the_canvas_route_answers_a_drawing_with_its_result(runs):
    """POST /api/v1/draw, the page's path where its socket cannot open: the handler's result
    (shown as JPEG, downloaded as the exact PNG), the status line and a sketch + result
    download; nothing drawn is a 204 with the hint; mistakes are sentences; with --auth only a
    signed-in page (Gradio's login cookie) or Basic credentials get in."""
    import base64
    import io
    from urllib.parse import unquote

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from demo import rest

    app = FastAPI()
    app.tokens, app.cookie_id = {"tok": "ann"}, "c1"  # as Gradio keeps its signed-in pages
    rest.mount(app, Settings(default_model=SKETCH_MODEL, auth=(("ann", "s3cret"),)))
    client = TestClient(app)
    body = {**drawn(sketch()), "model": "", "variation": 0}
    assert client.post(rest.DRAW_ROUTE, json=body).status_code == 401
    client.cookies.set("access-token-c1", "nope")
    assert client.post(rest.DRAW_ROUTE, json=body).status_code == 401
    client.cookies.set("access-token-c1", "tok")
    r = client.post(rest.DRAW_ROUTE, json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg" and "ms" in unquote(r.headers["x-status"])
    stages = dict(part.split(";dur=") for part in r.headers["server-timing"].split(", "))  # for the page's clock
    assert set(stages) == {"read", "draw", "png"} and all(float(ms) >= 0 for ms in stages.values())
    want = np.asarray(handlers.draw(drawn(sketch()), SKETCH_MODEL, 0)[0])
    shown = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), float)
    assert np.abs(shown - want).mean() < 4  # JPEG at quality 92 (this random model draws noise, its worst case)
    png = client.get(f"{rest.DRAW_ROUTE}/result/{r.headers['x-pair']}")
    assert png.headers["content-type"] == "image/png" and "result.png" in png.headers["content-disposition"]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.content)).convert("RGB")), want)
    assert client.get(f"{rest.DRAW_ROUTE}/result/unknown").status_code == 404
    pair = client.get(f"{rest.DRAW_ROUTE}/pair/{r.headers['x-pair']}")
    assert pair.status_code == 200 and Image.open(io.BytesIO(pair.content)).size == (512, 256)
    assert "sketch_and_result.png" in pair.headers["content-disposition"]
    assert client.get(f"{rest.DRAW_ROUTE}/pair/unknown").status_code == 404
    # a page's drawing older than one it has sent since is not made (409), a newer one is
    assert client.post(rest.DRAW_ROUTE, json={**body, "page": "p1", "seq": 5}).status_code == 200
    assert client.post(rest.DRAW_ROUTE, json={**body, "page": "p1", "seq": 3}).status_code == 409
    assert client.post(rest.DRAW_ROUTE, json={**body, "page": "p2", "seq": 3}).status_code == 200
    app = FastAPI()  # no --model and none named: the first installed model, as the page's picker shows
    rest.mount(app, Settings())
    assert TestClient(app).post(rest.DRAW_ROUTE, json={"png": body["png"]}).status_code == 200

    r = client.post(rest.DRAW_ROUTE, json={"png": None, "explicit": True})
    assert r.status_code == 204 and unquote(r.headers["x-status"]).startswith("The canvas is empty")
    for sent, message in [({**body, "model": "nope"}, "no model called 'nope'"),
                          ({**body, "variation": "abc"}, "Variation must be"),
                          ({"png": "data:text/html;base64,PGI+"}, "could not be read"),
                          ([1, 2], "could not be read")]:
        r = client.post(rest.DRAW_ROUTE, json=sent)
        assert r.status_code == 400 and message in r.json()["error"], r.text
    r = client.post(rest.DRAW_ROUTE, content=b"{" + b" " * (2 * rest.MAX_PNG_CHARS + 8192) + b"}")
    assert r.status_code == 400 and "larger than this canvas" in r.json()["error"]
    client.cookies.clear()
    basic = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret").decode()}
    assert client.post(rest.DRAW_ROUTE, json=body, headers=basic).status_code == 200


def _socket_answer(socket) -> tuple[dict, bytes]:
    """One answer on the draw socket: (its JSON header, the image bytes)."""
    data = socket.receive_bytes()
    size = int.from_bytes(data[:4], "big")
    return json.loads(data[4:4 + size]), data[4 + size:]


def test_the_canvas_socket_answers_each_drawing_and_drops_stale_ones(runs, monkeypatch):
    """/api/v1/draw/socket, the page's own path: each drawing's answer carries its number, the
    result (the same as over a request), the status line and a download token; mistakes are
    sentences and leave the socket open; a drawing overtaken by a newer one is not finished;
    with --auth the handshake needs a signed-in page."""
    import io
    import threading

    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from demo import rest

    app = FastAPI()
    app.tokens, app.cookie_id = {"tok": "ann"}, "c1"
    rest.mount(app, Settings(default_model=SKETCH_MODEL, auth=(("ann", "s3cret"),)))
    client = TestClient(app)
    body = {**drawn(sketch()), "model": "", "variation": 0}
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(rest.DRAW_SOCKET) as socket:
        socket.receive_bytes()  # refused: not signed in
    client.cookies.set("access-token-c1", "tok")
    with client.websocket_connect(rest.DRAW_SOCKET) as socket:
        socket.send_text(json.dumps({**body, "seq": 1}))
        header, image = _socket_answer(socket)
        assert header["seq"] == 1 and header["code"] == 200 and "ms" in header["status"]
        assert set(header["timing"]) == {"draw", "png"}
        want = np.asarray(handlers.draw(drawn(sketch()), SKETCH_MODEL, 0)[0])
        assert np.abs(np.asarray(Image.open(io.BytesIO(image)).convert("RGB"), float) - want).mean() < 4
        assert client.get(f"{rest.DRAW_ROUTE}/result/{header['pair']}").status_code == 200
        for seq, sent, message in [(2, "{not json", "could not be read"), (3, json.dumps({**body, "model": "nope", "seq": 3}), "no model called 'nope'"),
                                   (4, "x" * (rest.MAX_DRAWING_BYTES + 1), "larger than this canvas")]:
            socket.send_text(sent)
            header, image = _socket_answer(socket)
            assert header["code"] == 400 and message in header["error"] and image == b"", header
        socket.send_text(json.dumps({"png": None, "explicit": True, "seq": 5}))
        header, _ = _socket_answer(socket)
        assert header == {"seq": 5, "code": 204, "status": header["status"]} and header["status"].startswith("The canvas is empty")

        # A drawing still being made when a newer one comes stops and is answered 409.
        started, release = threading.Event(), threading.Event()
        real = handlers.draw

        def slow_draw(*args, stop=None, **kwargs):
            started.set()
            release.wait(10)
            return real(*args, stop=stop, **kwargs)

        monkeypatch.setattr(handlers, "draw", slow_draw)
        socket.send_text(json.dumps({**body, "seq": 6}))
        assert started.wait(10)
        socket.send_text(json.dumps({**body, "seq": 7}))
        release.set()
        answers = dict(((h := _socket_answer(socket)[0])["seq"], h["code"]) for _ in range(2))
        assert answers == {6: 409, 7: 200}


def test_the_plain_http_route_answers_like_the_api(runs, tmp_path):
    """POST /api/v1/generate: the same result as the generate API, each bad argument's own
    sentence as {"error"} with status 400, the logins of --auth as HTTP Basic, big bodies refused."""
    import base64
    import io

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from demo import rest

    settings = Settings(default_model=SKETCH_MODEL, auth=(("ann", "s3cret"),))
    app = FastAPI()
    rest.mount(app, settings)
    client = TestClient(app)
    path = png(tmp_path, sketch("shoe"), "shoe.png")
    files = {"sketch": ("shoe.png", path.read_bytes(), "image/png")}
    login = {"Authorization": "Basic " + base64.b64encode(b"ann:s3cret").decode()}
    assert client.post(rest.ROUTE, files=files).status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"ann:nope").decode()}
    assert client.post(rest.ROUTE, files=files, headers=wrong).status_code == 401
    r = client.post(rest.ROUTE, files=files, data={"seed": "-1"}, headers=login)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))
    want = np.asarray(Image.open(handlers.api_generate(str(path), default=SKETCH_MODEL)).convert("RGB"))
    assert np.array_equal(got, want)
    for data, sent, message in [({"seed": "abc"}, files, "seed must be"), ({"model": "nope"}, files, "no model called 'nope'"),
                                ({}, {}, "No sketch was sent"),
                                ({}, {"sketch": ("notes.txt", b"hello", "text/plain")}, "notes.txt is not an image")]:
        r = client.post(rest.ROUTE, files=sent, data=data, headers=login)
        assert r.status_code == 400 and message in r.json()["error"], r.text
    big = {"sketch": ("big.png", b"\0" * (41 * 2**20 + 10), "image/png")}
    assert client.post(rest.ROUTE, files=big, headers=login).status_code == 413


def test_an_example_keeps_a_picked_model_of_its_kind(tmp_path, monkeypatch):
    """A sketch model picked (say, a fine-tuned one), an example drawn for another sketch model
    clicked: the picked model stays; an example of another kind (a label map) brings its own."""
    from appkit import HINT_MODEL, make_hint_model
    from demo import gallery

    make_models(tmp_path / "runs")
    make_hint_model(tmp_path / "runs")
    monkeypatch.setenv("PIX2PIX_RUNS", str(tmp_path / "runs"))
    folder = tmp_path / "examples"
    folder.mkdir()
    sketch("shoe").save(folder / f"{HINT_MODEL}_shoe.png")
    Image.new("RGB", (512, 512), (0, 0, 255)).save(folder / f"{LABEL_MODEL}_wall.png")
    examples = gallery.list_examples(folder)
    load = gallery.loader(examples)
    index = [p.name for p in examples].index
    _, picker, _ = load(SKETCH_MODEL, gr.SelectData(None, {"index": index(f"{HINT_MODEL}_shoe.png"), "value": None}))
    assert picker.value == SKETCH_MODEL
    _, picker, _ = load(LABEL_MODEL, gr.SelectData(None, {"index": index(f"{HINT_MODEL}_shoe.png"), "value": None}))
    assert picker.value == HINT_MODEL  # a label model does not take a drawing: the example's own
    _, picker, _ = load(SKETCH_MODEL, gr.SelectData(None, {"index": index(f"{LABEL_MODEL}_wall.png"), "value": None}))
    assert picker.value == LABEL_MODEL
