"""The server side under load and under attack: batching, image limits, storage quotas,
logins, and the app's flags."""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
from PIL import Image, ImageFile

from appkit import SKETCH_MODEL, free_port, make_models, sketch
from conftest import ROOT, write_side_by_side
from pix2pix.images import imaging
from pix2pix.inference.batching import Batcher, batcher
from pix2pix.catalog import installed
from pix2pix.images.imaging import ImageReadError, ImageTooLarge, image_size, open_image

# ---------------------------------------------------------------------------- batching


class SlowModel:
    """Stands in for Sketch2Image: each call takes ``delay`` seconds, and records its batches.
    The "image" of an input is its number, painted into a 4x4 RGB square."""

    size = 4

    def __init__(self, delay: float = 0.05, fail_on: int | None = None):
        self.delay, self.fail_on, self.calls = delay, fail_on, []

    def prepare(self, n: int) -> SimpleNamespace:
        return SimpleNamespace(image=Image.new("RGB", (4, 4), (n, 0, 0)), hints=None)

    def _answer(self, batch: list[int], seed) -> list[Image.Image]:
        self.calls.append((tuple(batch), seed))
        time.sleep(self.delay)
        if self.fail_on in batch:
            raise RuntimeError("out of memory")
        return [Image.new("RGB", (4, 4), (n, 0 if seed is None else seed, 9)) for n in batch]

    def generate(self, prepared, *, seed=None, stop=None) -> Image.Image:
        return self._answer([prepared.image.getpixel((0, 0))[0]], seed)[0]

    def run(self, batch, seed=None, stop=None):
        values = [round((float(t[0, 0, 0]) + 1) * 127.5) for t in batch]
        out = self._answer(values, seed)
        return np.stack([np.asarray(o, np.float32).transpose(2, 0, 1) / 127.5 - 1 for o in out])


def ask_together(b: Batcher, model: SlowModel, requests: list[tuple[int, int | None]]) -> list:
    """Every (input, seed) from a thread of its own, at once; their answers (or errors) in order."""
    answers = [None] * len(requests)
    start = threading.Barrier(len(requests))

    def ask(i, n, seed):
        start.wait()
        try:
            answers[i] = b.generate(model.prepare(n), seed=seed).getpixel((0, 0))
        except Exception as e:  # noqa: BLE001 - what the caller would see
            answers[i] = e

    threads = [threading.Thread(target=ask, args=(i, n, s), daemon=True) for i, (n, s) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a caller never got its answer"
    return answers


@pytest.fixture
def numpy_outputs(monkeypatch):
    """SlowModel.run answers numpy arrays, not tensors."""
    import pix2pix.inference.batching as batching

    monkeypatch.setattr(batching, "to_pil", lambda t: Image.fromarray(
        np.clip((np.asarray(t).transpose(1, 2, 0) + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8)))


def test_concurrent_requests_share_batches_and_get_their_own_answers(numpy_outputs):
    model = SlowModel()
    b = Batcher(model, max_batch=4)
    answers = ask_together(b, model, [(n, None) for n in range(10, 22)])
    assert answers == [(n, 0, 9) for n in range(10, 22)]
    assert b.images == 12 and b.batches < 12  # some went together
    assert max(len(batch) for batch, _ in model.calls) <= 4


def test_a_request_its_caller_gave_up_on_is_dropped_and_the_others_answered(numpy_outputs):
    from pix2pix.errors import Superseded

    model = SlowModel(delay=0.2)
    b = Batcher(model, max_batch=8)
    gave_up = threading.Event()
    answers = {}

    def ask(n, stop=None):
        try:
            answers[n] = b.generate(model.prepare(n), stop=stop).getpixel((0, 0))
        except Superseded as e:
            answers[n] = e

    first = threading.Thread(target=ask, args=(1,))
    first.start()
    time.sleep(0.05)  # 1 is running: 2 and 3 wait for their turn, and 2's caller gives up
    waiting = [threading.Thread(target=ask, args=(2, gave_up.is_set)), threading.Thread(target=ask, args=(3,))]
    for t in waiting:
        t.start()
    gave_up.set()
    for t in (first, *waiting):
        t.join(10)
    assert isinstance(answers[2], Superseded) and answers[1] == (1, 0, 9) and answers[3] == (3, 0, 9)
    assert all(2 not in batch for batch, _ in model.calls)  # never run


def test_a_lone_request_waits_for_nothing():
    model = SlowModel(delay=0)
    b = Batcher(model)
    start = time.perf_counter()
    assert b.generate(model.prepare(7)).getpixel((0, 0)) == (7, 0, 9)
    assert time.perf_counter() - start < 0.5 and model.calls == [((7,), None)]


def test_seeded_requests_run_alone_and_keep_their_seed(numpy_outputs):
    model = SlowModel()
    b = Batcher(model, max_batch=8)
    answers = ask_together(b, model, [(1, 5), (2, None), (3, 6), (4, None), (5, 5)])
    assert answers == [(1, 5, 9), (2, 0, 9), (3, 6, 9), (4, 0, 9), (5, 5, 9)]
    for batch, seed in model.calls:
        assert seed is None or len(batch) == 1


def test_an_error_reaches_every_caller_of_its_batch_and_no_one_else(numpy_outputs):
    model = SlowModel(delay=0.1, fail_on=3)
    b = Batcher(model, max_batch=8)
    answers = ask_together(b, model, [(n, None) for n in range(1, 7)])
    failed = {n for n, a in zip(range(1, 7), answers) if isinstance(a, RuntimeError)}
    together = next(set(batch) for batch, _ in model.calls if 3 in batch)
    assert failed == together and 3 in failed
    assert all(a == (n, 0, 9) for n, a in zip(range(1, 7), answers) if n not in failed)
    assert b.generate(model.prepare(8)).getpixel((0, 0)) == (8, 0, 9)  # the batcher still works


def test_a_real_model_gives_the_same_images_batched(tmp_path):
    """The app's path: concurrent requests through the batcher equal one-at-a-time results."""
    from pix2pix.inference.infer import Sketch2Image

    make_models(tmp_path)
    model = Sketch2Image.load(tmp_path / SKETCH_MODEL / "model")
    inputs = [model.prepare(sketch(k)) for k in ("shoe", "bag", "circle", "shoe")]
    alone = [np.asarray(model.generate(p), int) for p in inputs]
    b = batcher(model)
    assert batcher(model) is b
    got = [None] * 4
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, b.generate(inputs[i]))) for i in range(4)]
    model._lock.acquire()  # hold the model so that all four queue up and go as one batch
    for t in threads:
        t.start()
    time.sleep(0.3)
    model._lock.release()
    for t in threads:
        t.join(60)
    assert b.batches <= 2 and b.images == 4
    for g, a in zip(got, alone):
        assert np.abs(np.asarray(g, int) - a).max() <= 1  # identical on the CPUs we measured


# ---------------------------------------------------------------------------- image limits


def png_of(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, "white").save(path)
    return path


def test_images_over_the_pixel_limit_are_refused_from_the_header(tmp_path, monkeypatch):
    big = png_of(tmp_path / "big.png", (200, 100))
    monkeypatch.setattr(imaging, "MAX_PIXELS", 200 * 100 - 1)

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    for read in (open_image, image_size):
        with pytest.raises(ImageTooLarge, match=r"big.png is 200×100 pixels .* at most 0.019999 megapixels"):
            read(big)
    assert issubclass(ImageTooLarge, ImageReadError)


def test_pils_own_bomb_guard_says_the_same(tmp_path, monkeypatch):
    """Beyond Pillow's own limit the header is refused inside Image.open: the same sentence."""
    big = png_of(tmp_path / "huge.png", (300, 200))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    for read in (open_image, image_size):
        with pytest.raises(ImageTooLarge, match="huge.png has far more than 24 megapixels"):
            read(big)


def test_the_stated_limit_takes_a_24_megapixel_photo():
    """6000x4000 passes the check (decoding it is not needed to know)."""
    assert 6000 * 4000 <= imaging.MAX_PIXELS < 6000 * 4001
    assert "6000×4000" in imaging.LIMIT_EXAMPLE


def test_a_data_scan_skips_and_lists_an_image_over_the_limit(tmp_path, monkeypatch):
    from pix2pix.training.data import scan

    write_side_by_side(tmp_path / "data", 3, size=16)
    png_of(tmp_path / "data" / "huge.png", (64, 32))  # a side-by-side pair, but over the (lowered) limit
    monkeypatch.setattr(imaging, "MAX_PIXELS", 64 * 32 - 1)
    result = scan(tmp_path / "data")
    assert result.count("train") == 3
    assert [f for f, _ in result.skipped] == ["huge.png"]


def test_only_known_formats_are_decoded(tmp_path):
    eps = tmp_path / "sketch.png"
    eps.write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    for read in (open_image, image_size):
        with pytest.raises(ImageReadError, match="not an image file"):
            read(eps)
    for fmt, ext in (("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp"), ("GIF", "gif"),
                     ("TIFF", "tif")):
        Image.new("RGB", (8, 6), "red").save(tmp_path / f"x.{ext}", format=fmt)
        assert open_image(tmp_path / f"x.{ext}").size == (8, 6) == image_size(tmp_path / f"x.{ext}")


def test_exif_orientation_is_still_applied(tmp_path):
    img = Image.new("RGB", (8, 4), "white")
    exif = img.getexif()
    exif[0x0112] = 6  # rotated 90° clockwise
    img.save(tmp_path / "r.jpg", exif=exif)
    assert open_image(tmp_path / "r.jpg").size == (4, 8)


@pytest.mark.parametrize("mode, values", [("I;16", (0, 65535)), ("I", (0, 65535)), ("I", (0, 200)),
                                          ("F", (0.0, 1.0)), ("F", (0.0, 300.0))])
def test_deep_greyscale_is_converted_in_bands_as_before(mode, values):
    """16-bit and float images -> 8 bits, a band of rows at a time, exactly as the whole-array
    formula: scaled by the actual bit depth, rounded half up."""
    rng = np.random.default_rng(0)
    lo, hi = values
    dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
    arr = (rng.random((37, 11)) * (hi - lo) + lo).astype(dtype)
    img = Image.fromarray(arr.astype(np.uint16) if mode == "I;16" else arr, None if mode == "I;16" else mode)
    ref = arr.astype(np.float32)
    if mode == "I;16" or (mode == "I" and ref.max() > 255):
        ref = ref / 257.0
    elif mode == "F" and ref.max() <= 1.0:
        ref = ref * 255.0
    expected = np.clip(ref + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(np.asarray(imaging._to_8bit(img, rows=5)), expected)
    assert np.array_equal(np.asarray(imaging.to_rgb(img))[..., 0], expected)


def test_model_names_too_long_for_a_file_system_are_unknown():
    assert installed("x" * 4096) is None and installed("é" * 200) is None and installed("a\0b") is None


# ---------------------------------------------------------------------------- storage and runs


@pytest.fixture
def app_settings(tmp_path, monkeypatch):
    from demo.settings import Settings

    monkeypatch.setenv("PIX2PIX_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PIX2PIX_WEIGHTS", str(tmp_path / "no-weights"))
    return Settings(default_model=SKETCH_MODEL, data_roots=[tmp_path / "datasets"])


def zip_of(tmp_path: Path, n: int = 3, name: str = "pairs.zip") -> Path:
    import zipfile

    write_side_by_side(tmp_path / "src" / name, n, size=16)
    with zipfile.ZipFile(tmp_path / name, "w") as z:
        for f in (tmp_path / "src" / name).iterdir():
            z.write(f, f"pairs/{f.name}")
    return tmp_path / name


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_a_full_uploads_folder_makes_room_or_refuses(app_settings, tmp_path):
    from demo import training

    first = Path(training.check_zip(app_settings, str(zip_of(tmp_path)), False, "")[2]).parent
    size = sum(f.stat().st_size for f in first.rglob("*") if f.is_file())
    app_settings.upload_quota_gb = 1.5 * size / 1e9  # room for one such upload, not two
    refused = training.check_zip(app_settings, str(zip_of(tmp_path)), False, "")  # the first is too new to go
    assert re.search(r"take .* of the .* this server keeps for them.*Delete old uploads", refused[1]) and refused[2] is None
    (first / "marker").touch()
    age(first, 7200)
    second = Path(training.check_zip(app_settings, str(zip_of(tmp_path)), False, "")[2]).parent
    assert second.is_dir() and not (first / "marker").exists()  # (second may reuse the freed name)
    assert len(list(app_settings.uploads.iterdir())) == 1
    app_settings.upload_quota_gb = size / 2 / 1e9
    refused = training.check_zip(app_settings, str(zip_of(tmp_path)), False, "")
    assert re.search("unpacks to .* more than the", refused[1]) and refused[2] is None
    assert second.is_dir()


def test_storage_shows_usage_and_deletes_after_a_question(app_settings, tmp_path):
    from demo import run_storage, training, training_data

    make_models(tmp_path / "runs")
    checked = training.check_zip(app_settings, str(zip_of(tmp_path)), False, "")[2]
    usage, choices = run_storage.storage(app_settings)
    assert "**Uploads** " in usage and " of 10.0 GB (1)" in usage and "**Runs** " in usage and "20.0 GB (2)" in usage
    values = [v for _, v in choices.choices]
    upload = next(v for v in values if v.startswith("upload/"))
    assert f"run/{SKETCH_MODEL}" in values
    with pytest.raises(gr.Error, match="Choose an upload or a run"):
        run_storage.ask_delete(app_settings, None)
    question, row, renaming = run_storage.ask_delete(app_settings, f"run/{SKETCH_MODEL}")
    assert f"Delete the run **{SKETCH_MODEL}**" in question and "leaves the model pickers" in question and row.visible
    assert not renaming.visible  # one question at a time
    out = run_storage.delete(app_settings, f"run/{SKETCH_MODEL}", checked)
    assert not (tmp_path / "runs" / SKETCH_MODEL).exists() and not out[2].visible
    assert out[4] is not None and not isinstance(out[4], str)  # the checked data was not this run: kept
    out = run_storage.delete(app_settings, upload, checked)
    assert not Path(checked).exists() and out[4] == training_data.NO_DATA and out[5] is None
    with pytest.raises(gr.Error, match="not the name|no "):
        run_storage.delete(app_settings, "run/../../etc", None)
    with pytest.raises(gr.Error, match="Choose an upload or a run"):
        run_storage.delete(app_settings, "weights/fashion", None)


class RunningJobs:
    """settings.jobs while a run is in progress (none is started)."""

    running = True

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def snapshot(self):
        return SimpleNamespace(run_dir=self.run_dir)


def test_what_the_running_run_uses_cannot_be_deleted_or_evicted(app_settings, tmp_path):
    from demo import run_storage, training

    make_models(tmp_path / "runs")
    checked = training.check_zip(app_settings, str(zip_of(tmp_path)), False, "")[2]
    app_settings._jobs = RunningJobs(tmp_path / "runs" / SKETCH_MODEL)
    app_settings.training_data = Path(checked)
    for choice in (f"run/{SKETCH_MODEL}", f"upload/{Path(checked).parent.name}"):
        with pytest.raises(gr.Error, match="in use by the run in progress"):
            run_storage.ask_delete(app_settings, choice)
    age(Path(checked).parent, 7200)
    app_settings.upload_quota_gb = 1.5 * sum(f.stat().st_size for f in Path(checked).rglob("*")) / 1e9
    assert "Delete old uploads" in training.check_zip(app_settings, str(zip_of(tmp_path, name="other.zip")), False, "")[1]
    assert Path(checked).is_dir()


def test_no_run_starts_beyond_the_runs_quota(app_settings, tmp_path):
    from demo import models, training

    make_models(tmp_path / "runs")
    app_settings.runs_quota_gb = 1e-6
    with pytest.raises(gr.Error, match=r"runs take .* of the 1 KB .*delete old runs"):
        training.start(app_settings, str(tmp_path), False, models.SCRATCH, "steps", 1, 2e-4, 1, "AtoB", 0.1,
                       "new-run", 8, 8, "auto")


@pytest.mark.parametrize("path, message", [("a\0b", "NUL"), ("x" * 5000, "at most 1,024")])
def test_data_folder_paths_no_file_system_holds(app_settings, path, message):
    from demo import training_data

    summary, checked, *_ = training_data.check_folder(app_settings, path, False, "")
    assert message in summary and checked is None


def test_the_limits_are_stated_in_the_fine_tune_tab(app_settings):
    from demo import run_storage

    text = run_storage.limits_text(app_settings)
    assert "1,024 MB" in text and "2.1 GB" in text and "50,000 files" in text and "10.0 GB" in text


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="thread priorities are a Linux feature")
def test_the_training_thread_gets_a_lower_priority():
    from demo import training

    done = threading.Event()
    thread = threading.Thread(target=done.wait, name=training.TRAINING_THREAD, daemon=True)
    thread.start()
    try:
        before = os.getpriority(os.PRIO_PROCESS, thread.native_id)
        training._lower_training_priority()
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == min(19, before + training.TRAINING_NICENESS)
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.getpriority(os.PRIO_PROCESS, 0)
    finally:
        done.set()


# ---------------------------------------------------------------------------- flags and logins


def app_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("app_main", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("argv, refused", [
    ([], False),
    (["--host", "0.0.0.0"], True),
    (["--share"], True),
    (["--host", "192.168.1.5", "--auth", "ann:secret"], False),
    (["--host", "0.0.0.0", "--no-training"], False),
    (["--host", "0.0.0.0", "--allow-anonymous-training"], False),
    (["--host", "::1"], False),
])
def test_training_is_not_offered_to_the_network_without_a_login(argv, refused):
    app = app_module()
    args = app.parse_args(argv)
    if refused:
        with pytest.raises(SystemExit, match="refusing to listen .* --auth USER:PASSWORD"):
            app.check_exposure(args, app.logins(args))
    else:
        app.check_exposure(args, app.logins(args))


def test_logins_from_flags_and_a_file(tmp_path):
    app = app_module()
    (tmp_path / "logins").write_text("ann:s3cret:with:colons\n\n bob:pw \n")
    args = app.parse_args(["--auth", "cy:x", "--auth-file", str(tmp_path / "logins")])
    assert app.logins(args) == (("cy", "x"), ("ann", "s3cret:with:colons"), ("bob", "pw"))
    for bad in (["--auth", "nopassword"], ["--auth", ":x"], ["--auth-file", str(tmp_path / "missing")]):
        with pytest.raises(SystemExit):
            app.logins(app.parse_args(bad))
    args = app.parse_args(["--upload-quota", "2.5", "--runs-quota", "7"])
    assert (args.upload_quota, args.runs_quota) == (2.5, 7.0)


def test_with_a_login_nothing_answers_without_it(tmp_path, monkeypatch):
    import httpx
    from gradio_client import Client

    from demo.settings import Settings
    from demo.ui import QUEUE_OPTIONS, build_demo, launch_options

    monkeypatch.setenv("PIX2PIX_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PIX2PIX_WEIGHTS", str(tmp_path / "no-weights"))
    settings = Settings(data_roots=[tmp_path / "datasets"], auth=(("ann", "s3cret"),))
    demo = build_demo(settings)
    demo.queue(**QUEUE_OPTIONS).launch(server_port=free_port(), prevent_thread_lock=True, quiet=True,
                                       **launch_options(settings))
    try:
        assert httpx.get(demo.local_url + "config").status_code == 401
        assert httpx.post(demo.local_url + "gradio_api/queue/join", json={"fn_index": 0}).status_code == 401
        with pytest.raises(Exception):
            Client(demo.local_url, verbose=False)
        assert Client(demo.local_url, auth=("ann", "s3cret"), verbose=False).predict(api_name="/list_models") == []
    finally:
        demo.close()


def test_without_training_there_is_no_fine_tune_tab(tmp_path):
    from demo.settings import Settings
    from demo.ui import build_demo, launch_options

    settings = Settings(data_roots=[tmp_path], training=False)
    demo = build_demo(settings)
    labels = [getattr(b, "label", None) for b in demo.blocks.values()]
    assert "Fine-tune" not in labels and "Draw" in labels
    assert launch_options(settings)["max_file_size"] == f"{settings.max_sketch_mb}mb"


# ---------------------------------------------------------------------------- runs and checkpoints


def _tiny_run(tmp_path: Path, **kw):
    from pix2pix.config import ModelConfig, TrainConfig
    from pix2pix.training.trainer import Trainer

    write_side_by_side(tmp_path / "data", 8)
    cfg = TrainConfig(**{"epochs": 1, "batch_size": 2, "val_fraction": 0.25, "workers": 0} | kw)
    return Trainer(tmp_path / "data", tmp_path / "run", ModelConfig(ngf=8, ndf=8, image_size=32), cfg)


@pytest.mark.parametrize("where, key, value, named", [
    ("train_config", "epochs", "10", "epochs"),
    ("train_config", "batch_size", 2.5, "batch size"),
    ("model_config", "ngf", 10**6, "ngf"),
    (None, "step", -5, "step"),
    (None, "steps_per_epoch", 0, "steps_per_epoch"),
    (None, "data", 5, "data folder"),
])
def test_a_tampered_checkpoint_is_refused_before_anything_is_built(tmp_path, where, key, value, named):
    from pix2pix.io import load_checkpoint, save_checkpoint
    from pix2pix.training.trainer import Trainer, TrainingError

    _tiny_run(tmp_path).fit()
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    state = load_checkpoint(path)
    (state[where] if where else state)[key] = value
    save_checkpoint(path, state)
    with pytest.raises(TrainingError, match="cannot be resumed") as e:
        Trainer.resume(tmp_path / "run", epochs=2)
    assert named in str(e.value).lower()


def test_a_run_folder_that_stops_taking_files_ends_in_one_clear_line(tmp_path, capsys):
    """The model folder replaced by a file mid-run (as a disk gone read-only or full would
    fail a write, even for root): the run ends with what failed and what was kept, and the
    last checkpoint still resumes."""
    import shutil

    from pix2pix.io import load_checkpoint
    from pix2pix.training.progress import Callback, RunMonitor
    from pix2pix.training.trainer import Trainer, TrainingError

    class BreakTheFolder(Callback):
        def on_step(self, ev):
            model = tmp_path / "run" / "model"
            if ev.step == 4 and model.is_dir():
                shutil.rmtree(model)
                model.write_text("not a folder")

    trainer = _tiny_run(tmp_path, epochs=3)
    monitor = RunMonitor()
    trainer.callbacks += [BreakTheFolder(), monitor]
    with pytest.raises(TrainingError) as e:
        trainer.fit()
    message = str(e.value)
    assert "could not write" in message and "checkpoint of step 3" in message and "intact" in message
    assert monitor.snapshot().status == "failed" and message in monitor.snapshot().message
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 3
    (tmp_path / "run" / "model").unlink()
    assert Trainer.resume(tmp_path / "run").fit().step == 9

    from pix2pix.cli import main
    (tmp_path / "run2").mkdir()
    (tmp_path / "run2" / "checkpoints").write_text("a file where the run's folder goes")
    assert main(["train", str(tmp_path / "data"), "--out", str(tmp_path / "run2"), "--epochs", "1", "--ngf", "8",
                 "--ndf", "8", "--size", "32", "--batch-size", "2", "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "could not write" in err


def test_model_threads_from_the_flag_else_the_users_setting_else_all_cores():
    app = app_module()
    for argv, environ, expected in (([], {}, str(app.usable_cores())), ([], {"OMP_NUM_THREADS": "3"}, "3"),
                                    (["--threads", "2"], {"OMP_NUM_THREADS": "3"}, "2")):
        app.set_model_threads(app.parse_args(argv), environ)
        assert environ["OMP_NUM_THREADS"] == expected
    with pytest.raises(SystemExit, match="--threads must be 1 or more"):
        app.set_model_threads(app.parse_args(["--threads", "0"]), {})
