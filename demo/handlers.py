"""Inference handlers: plain functions from widget values to images, testable without a page.

Every path is the same: image -> the cached model's ``prepare`` (sketches normalized, label
maps snapped to the palette) -> its ``generate`` -> image. The library is imported inside
the functions, so that building the page does not load torch.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import logging
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
from PIL import Image

from . import models
from .canvas import drawing
from .errors import user_errors

log = logging.getLogger(__name__)

UPLOAD_TYPES = (".png", ".jpg", ".jpeg", ".webp")
DRAW_HINT = "Draw on the canvas: the result follows every stroke."
# Images for the page are written to a ring of slots: gradio copies each file into its own
# cache as soon as the handler returns, so only the last few need to exist.
_SLOTS = 64
_slot = itertools.count()


@functools.cache
def _files_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="pix2pix-app-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class NoModelInstalled(gr.Error):
    """Nothing in weights/ or runs/ yet: the app runs, but cannot generate."""

    def __init__(self):
        super().__init__(models.NO_MODEL.replace("**", "").replace("`", ""), print_exception=False)


def load_model(name: str | None):
    """The cached model called ``name``, if it is one of the installed models.

    Names only (no paths): the API must not load arbitrary folders on the server.
    """
    from pix2pix.catalog import installed
    from pix2pix.infer import get_model

    folder = installed(name or "")
    if folder is None:  # only now list what there is, for the message
        entries = models.available()
        if not entries:
            raise NoModelInstalled()
        known = ", ".join(e.name for e in entries)
        raise gr.Error(f"There is no model called {name!r}. Available models: {known}.", print_exception=False)
    return get_model(folder)


def run(model, image: Image.Image, seed: int | None = None) -> tuple[Image.Image, Image.Image]:
    """(what the model sees, its result) for any drawing, label map or photo of a sketch."""
    seen = model.prepare(image)
    return seen, model.generate(seen, seed=seed)


def _seed(variation) -> int | None:
    """The variation control: 0 (or nothing, or negative) is the deterministic output."""
    return int(variation) if variation is not None and int(variation) > 0 else None


def save_png(image: Image.Image, name: str) -> Path:
    """A PNG file for the page, named as the user will download it.

    Fast compression: these are made after every stroke, where gradio's own PNG encoding
    of a returned image would take about twice as long.
    """
    path = _files_dir() / str(next(_slot) % _SLOTS) / name
    path.parent.mkdir(exist_ok=True)
    image.save(path, compress_level=1)
    return path


def side_by_side(left: Image.Image, right: Image.Image) -> Path:
    """The model input and its result in one PNG, as pix2pix data sets store pairs."""
    from pix2pix.imaging import sample_grid

    return save_png(sample_grid([(left, right)]), "sketch_and_result.png")


def _download(seen: Image.Image | None = None, result: Image.Image | None = None) -> gr.DownloadButton:
    """The side-by-side download button: hidden until there is a result."""
    if seen is None or result is None:
        return gr.DownloadButton(value=None, visible=False)
    return gr.DownloadButton(value=side_by_side(seen, result), visible=True)


def _cleared(status: str = DRAW_HINT):
    """Draw tab outputs with no result: (result, status, last pair)."""
    return None, status, None


def _draw(value: dict | None, model_name, variation, *, explicit: bool):
    from pix2pix.sketch import EMPTY_MESSAGE, SketchError

    image = drawing(value)
    try:
        if image is None:  # nothing drawn yet
            raise SketchError(EMPTY_MESSAGE)
        model = load_model(model_name)
        start = time.perf_counter()
        seen, result = run(model, image, _seed(variation))
    except NoModelInstalled:
        if explicit:
            raise
        return _cleared(models.NO_MODEL)  # said once beside the canvas, not after every stroke
    except SketchError as e:
        if str(e) != EMPTY_MESSAGE:
            raise
        if explicit:
            gr.Warning(str(e))
        return _cleared()
    ms = (time.perf_counter() - start) * 1000
    return save_png(result, "result.png"), f"{model.size}×{model.size} in {ms:.0f} ms", (seen, result)


@user_errors
def draw_live(canvas: dict | None, model_name, variation):
    """After each stroke: (result file, status line, (model input, result) for the download).
    An empty canvas is no error."""
    return _draw(canvas, model_name, variation, explicit=False)


@user_errors
def draw_generate(canvas: dict | None, model_name, variation):
    """The Generate button: as :func:`draw_live`, but an empty canvas gets a warning."""
    return _draw(canvas, model_name, variation, explicit=True)


@user_errors
def pair_download(last: tuple[Image.Image, Image.Image] | None) -> gr.DownloadButton:
    """The side-by-side download for the latest result. A step of its own, run after the
    result is on the page: a 512×256 PNG takes 10-25 ms, which each stroke need not wait for."""
    return _download(*(last or ()))


@user_errors
def switch_model(name):
    """The Draw tab's picker changed: (description, fresh canvas, result, status, last pair, download)."""
    return (*models.select_for_canvas(name), *_cleared(), _download())


def _open_upload(path, *, max_mb: float, types: tuple[str, ...] | None = UPLOAD_TYPES) -> Image.Image:
    from pix2pix.imaging import open_image

    if path is None:
        raise gr.Error("Choose an image file first.", print_exception=False)
    path = Path(path)
    if types and path.suffix.lower() not in types:
        raise gr.Error(
            f"{path.name} is not a supported image type: use PNG, JPEG or WebP.", print_exception=False
        )
    if path.stat().st_size > max_mb * 1024 * 1024:
        raise gr.Error(f"{path.name} is larger than {max_mb:g} MB, the limit for a sketch.", print_exception=False)
    return open_image(path)


def _preview(image: Image.Image, side: int = 512) -> Image.Image:
    """A small RGB copy for the page: a 24-megapixel photo need not travel back to the browser."""
    from pix2pix.imaging import to_rgb

    preview = to_rgb(image).copy()
    preview.thumbnail((side, side))
    return preview


@user_errors
def upload(path, model_name, variation, max_mb: float = 20):
    """Upload tab: (the upload, what the model sees, result, side-by-side download, status line)."""
    if path is None:
        return None, None, None, _download(), ""
    image = _open_upload(path, max_mb=max_mb)
    model = load_model(model_name)
    start = time.perf_counter()
    seen, result = run(model, image, _seed(variation))
    ms = (time.perf_counter() - start) * 1000
    status = f"{Path(path).name}: {image.width}×{image.height} → {model.size}×{model.size} in {ms:.0f} ms"
    return _preview(image), seen, result, _download(seen, result), status


@user_errors
def api_generate(sketch, model: str | None, seed: float | None = None, *, default: str | None = None,
                 max_mb: float = 20) -> Image.Image:
    """API: a sketch (or label map) image file in, the generated 256×256 image out.

    An empty ``model`` is the app's default model; ``seed`` None or negative gives the
    deterministic result, N >= 0 a variation.
    """
    image = _open_upload(sketch, max_mb=max_mb, types=None)
    name = model or models.pick(models.available(), default)
    seed = None if seed is None or seed < 0 else int(seed)
    return run(load_model(name), image, seed)[1]


@user_errors
def api_list_models() -> list[dict]:
    """API: every installed model, shipped first."""
    return [
        {"name": e.name, "description": e.info.description, "input_kind": e.info.input_kind, "shipped": e.shipped}
        for e in models.available()
    ]


def warm_up(wanted: str | None) -> None:
    """Load the default model and run it once, so the first stroke is as fast as the rest."""
    start = time.time()
    try:
        entries = models.available()
        name = models.pick(entries, wanted)
        if wanted and name != wanted:
            log.warning("model %r is not installed; using %s", wanted, name or "none")
        if name is None:
            log.warning("no model is installed: the app starts without one")
            return
        model = load_model(name)
        model.generate(Image.new("RGB", (model.size, model.size), "white"))
        log.info("model %s ready (%s, %s) in %.1f s", name, model.device, model.precision, time.time() - start)
    except Exception:  # the app must come up regardless; the handlers report errors per request
        log.exception("warming up the model failed")
