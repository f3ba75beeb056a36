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
import math
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr
from PIL import Image, ImageOps

from pix2pix.images.page import Page

from . import models
from .canvas import SIZE as CANVAS_SIZE
from .canvas import colour_layer, drawing
from .errors import user_errors

log = logging.getLogger(__name__)

UPLOAD_TYPES = (".png", ".jpg", ".jpeg", ".webp")
DRAW_HINT = "Draw on the canvas: the result follows every stroke."
SEED_MAX = 2**32 - 1  # the API's largest variation seed (torch takes 64 bits; 32 are plenty)
SEED_RULE = f"-1 for the model's usual result, or a whole number from 0 to {SEED_MAX:,} for a variation"
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
    from pix2pix.inference.infer import get_model

    folder = installed(name or "")
    if folder is None:  # only now list what there is, for the message
        entries = models.available()
        if not entries:
            raise NoModelInstalled()
        known = ", ".join(e.name for e in entries)
        raise gr.Error(f"There is no model called {shown(name)}. Available models: {known}.", print_exception=False)
    return get_model(folder)


def shown(value, limit: int = 60) -> str:
    """A user's value as a message quotes it: its repr, cut to about ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def run(model, image: Image.Image, seed: int | None = None, hints: Image.Image | None = None, stop=None, *,
        keep_everything: bool = False, left_out: dict | None = None, what=None) -> tuple[Image.Image, Image.Image]:
    """(what the model sees, its result) for any drawing, label map or photo of a sketch,
    and colour hints painted over it (RGBA, same size; only hint models use them). What was
    left out of a page (notes, a border...; none with ``keep_everything``) goes into ``left_out``.
    ``what``: what the drawing shows, for a class model (see :func:`told`).

    Requests that reach the model together are run as one batch (see
    :mod:`pix2pix.inference.batching`); each gets the image it would get alone (to within rounding)."""
    from pix2pix.inference.batching import batcher
    from pix2pix.training.priority import interactive

    with interactive():  # the app's own fine-tune waits meanwhile
        prepared = model.prepare(image, hints, keep_everything=keep_everything, what=told(model, what))
        if left_out is not None:
            left_out.update(prepared.left_out)
        return prepared.image, batcher(model).generate(prepared, seed=seed, stop=stop)


AUTO = "Auto"  # the class picker's "not told": the model guesses from the drawing


def told(model, what) -> str:
    """The class a class model is told: one of its classes, or "" (Auto, nothing, or a model
    that is told none); anything else is refused with a sentence that lists them."""
    if not getattr(model, "classes", None) or what is None or (
            isinstance(what, str) and what.strip().lower() in ("", AUTO.lower())):
        return ""
    name = what.strip().lower() if isinstance(what, str) else None
    if name not in model.classes:
        raise gr.Error(f"{model.info.name or 'This model'} can be told {', '.join(model.classes)} (or Auto); "
                       f"not {shown(what)}.", print_exception=False)
    return name


def _seed(variation) -> int | None:
    """The variation control: 0 (or nothing, or negative) is the deterministic output."""
    if variation is None or (isinstance(variation, str) and not variation.strip()):
        return None
    try:
        number = float(variation)
    except (TypeError, ValueError):
        number = math.nan
    if isinstance(variation, bool) or not math.isfinite(number) or not number.is_integer() or number > SEED_MAX:
        raise gr.Error(f"Variation must be a whole number from 0 to {SEED_MAX:,}; got {shown(variation)}.",
                       print_exception=False)
    return int(number) if number > 0 else None


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
    from pix2pix.images.imaging import sample_grid

    return save_png(sample_grid([(left, right)]), "sketch_and_result.png")


def _download(seen: Image.Image | None = None, result: Image.Image | None = None) -> gr.DownloadButton:
    """The side-by-side download button: hidden until there is a result."""
    if seen is None or result is None:
        return gr.DownloadButton(value=None, visible=False)
    return gr.DownloadButton(value=side_by_side(seen, result), visible=True)


@user_errors
def draw(value: dict | None, model_name, variation, *, explicit: bool = False, stop=None):
    """A drawing from the canvas (its value: PNG data URLs) -> (result or None, status line,
    (model input, result) or None). Nothing drawn yet, or no model installed, is no error but
    a status line; ``explicit`` (the Generate button) says so for an empty canvas too.
    ``stop()`` says when the page has sent a newer drawing: this one then ends early."""
    from pix2pix.images.sketch import EMPTY_MESSAGE, SketchError

    image = drawing(value)
    try:
        if image is None:  # nothing drawn yet
            raise SketchError(EMPTY_MESSAGE)
        model = load_model(api_model(model_name, None))  # none named: the default
        start = time.perf_counter()
        seen, result = run(model, image, _seed(variation), colour_layer(value), stop,
                           what=value.get("what") if isinstance(value, dict) else None)
    except NoModelInstalled:
        return None, models.NO_MODEL, None
    except SketchError as e:
        if str(e) != EMPTY_MESSAGE:
            raise
        return None, (EMPTY_MESSAGE if explicit else DRAW_HINT), None
    ms = (time.perf_counter() - start) * 1000
    return result, f"{model.size}×{model.size} px, the model's resolution (shown scaled) · {ms:.0f} ms", (seen, result)


def _open_upload(path, *, max_mb: float, types: tuple[str, ...] | None = UPLOAD_TYPES,
                 missing: str = "Choose an image file first.") -> Image.Image:
    """A user's image file, checked (type, size on disk, pixels from its header) before it is decoded."""
    from pix2pix.images.imaging import open_image

    if path is None:
        raise gr.Error(missing, print_exception=False)
    path = Path(path)
    if types and path.suffix.lower() not in types:
        raise gr.Error(
            f"{path.name} is not a supported image type: use PNG, JPEG or WebP.", print_exception=False
        )
    if path.stat().st_size > max_mb * 1024 * 1024:
        raise gr.Error(f"{path.name} is larger than {max_mb:g} MB, the limit for a sketch.", print_exception=False)
    return open_image(path)


def _run_file(model, image: Image.Image, name: str, seed: int | None,
              hints: Image.Image | None = None, **page) -> tuple[Image.Image, Image.Image]:
    """:func:`run` for an uploaded file: a blank one is named as a file, not as the canvas."""
    from pix2pix.images.sketch import EMPTY_MESSAGE, SketchError

    try:
        return run(model, image, seed, hints, **page)
    except SketchError as e:
        if str(e) != EMPTY_MESSAGE:
            raise
        raise gr.Error(f"{name} looks blank: there are no lines in it for the model to follow.",
                       print_exception=False) from None


def _preview(image: Image.Image, side: int = 512) -> Image.Image:
    """A small RGB copy for the page: a 24-megapixel photo need not travel back to the browser."""
    from pix2pix.images.imaging import to_rgb

    preview = to_rgb(image).copy()
    preview.thumbnail((side, side))
    return preview


def _open_hints(path, model, *, max_mb: float) -> tuple[Image.Image | None, str]:
    """An uploaded colour-hint image (RGBA, the sketch's size) and a word on it for the status."""
    if path is None:
        return None, ""
    if not model.takes_hints:
        return None, f" · {model.info.name or 'this model'} takes no colour hints: {Path(path).name} was not used"
    hints = _open_upload(path, max_mb=max_mb, missing="")
    if "A" not in hints.getbands() and not (hints.mode == "P" and "transparency" in hints.info):
        raise gr.Error(f"{Path(path).name} has no transparency: colour hints are a PNG or WebP that is "
                       "transparent except where you painted colour.", print_exception=False)
    return hints, f" · colour hints from {Path(path).name}"


MISMATCH = {
    "labels": "This looks like a colour label map, not a sketch: {labels} takes label maps.",
    "photo": "This looks like a photo, not a sketch: the model expects an outline drawing. "
             "*Turn it into an outline* draws one from it, to edit in the Draw tab.",
    "drawing": "This looks like a line drawing, but {name} takes a colour label map (flat areas of its label "
               "colours): paint one in the Draw tab.",
}


def _notice(model, image: Image.Image) -> tuple[str, bool, str | None]:
    """A line on an input of the wrong kind, whether to offer to turn it into an outline, and
    the installed model that takes a label map, for a label map given to a sketch model."""
    from pix2pix.images.inputs import mismatch

    kind = mismatch(image, model.info.input_kind, [tuple(c.color) for c in model.info.palette])
    if kind is None:
        return "", False, None
    labels = models.fitting("labels") if kind == "labels" else None
    if kind == "labels" and labels == models.SCRATCH:
        return "", False, None  # no model here takes one: nothing to suggest
    text = MISMATCH[kind].format(name=model.info.name or "this model", labels=f"*{labels}*")
    return "  \n⚠ " + text, kind == "photo", labels


@user_errors
def _upload(path, model_name, hints_path=None, keep_everything: bool = False, what=None, max_mb: float = 20):
    if path is None:
        return None, None, None, _download(), "", gr.Button(visible=False), gr.Button(visible=False)
    image = _open_upload(path, max_mb=max_mb)
    model = load_model(model_name)
    hints, said = _open_hints(hints_path, model, max_mb=max_mb)
    start, left_out = time.perf_counter(), {}
    seen, result = _run_file(model, image, Path(path).name, None, hints,
                             keep_everything=bool(keep_everything), left_out=left_out, what=what)
    ms = (time.perf_counter() - start) * 1000
    page = Page(None, left_out).sentence()
    status = (f"{Path(path).name}: {image.width}×{image.height} → {model.size}×{model.size} in {ms:.0f} ms"
              + (f"; {page} (tick *Keep everything on the page* to keep them)" if page else "") + said)
    notice, offer, labels = _notice(model, image)
    # Files, not images: gradio writes a returned image into its cache in place, so a second
    # identical answer could truncate the file while the first user is still fetching it.
    named = ((_preview(image), "upload.png"), (seen, "model_input.png"), (result, "result.png"))
    pictures = [save_png(im, name) for im, name in named]
    switch = gr.Button(f"Use {labels}", visible=True) if labels else gr.Button(visible=False)
    return *pictures, _download(seen, result), status + notice, gr.Button(visible=offer), switch


def upload(path, model_name, hints_path=None, keep_everything: bool = False, what=None, max_mb: float = 20):
    """Upload tab: (the upload, what the model sees, result, side-by-side download, status
    line, the "turn it into an outline" button, the "use the label-map model" button); the
    three pictures as PNG files. ``hints_path``: an optional colour-hint image;
    ``keep_everything``: frame the whole page (notes, border and all), not the drawing alone;
    ``what``: what it shows, for a class model (Auto: it guesses).
    A file that cannot be used is a sentence in the status line, which stays until the next
    input, with the pictures cleared: no toast that fades, no error badges."""
    try:
        return _upload(path, model_name, hints_path, keep_everything, what, max_mb=max_mb)
    except gr.Error as e:
        hidden = gr.Button(visible=False)
        return None, None, None, _download(), f"⚠ {e.message}", hidden, hidden


@user_errors
def outline_for_canvas(path, model_name, max_mb: float = 20):
    """"Turn it into an outline": the uploaded photo's outline, opened in the Draw tab's
    canvas with the same model: (canvas, Draw tab picker, tabs)."""
    from pix2pix.images.outlines import photo_to_outline
    from pix2pix.images.imaging import to_rgb

    from .canvas import data_url

    photo = to_rgb(_open_upload(path, max_mb=max_mb))
    photo.thumbnail((1024, 1024))  # plenty for a 512 px canvas, and quick on a 24 MP photo
    outline = ImageOps.pad(photo_to_outline(photo), (CANVAS_SIZE, CANVAS_SIZE), color="white")  # no stretching
    entries = models.available()
    picker = models.picker(entries, model_name)
    return models.canvas(models.find(entries, model_name), data_url(outline)), picker, gr.Tabs(selected="draw")


def api_seed(value) -> int | None:
    """The API's ``seed``: -1 (any negative, or nothing) is the deterministic result, 0 to
    SEED_MAX a variation. Anything else is refused with a sentence naming the parameter."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    whole = isinstance(number, int) or (isinstance(number, float) and math.isfinite(number) and number.is_integer())
    if isinstance(value, bool) or not whole:
        raise gr.Error(f"seed must be {SEED_RULE}; got {shown(value)}.", print_exception=False)
    if number > SEED_MAX:
        raise gr.Error(f"seed {shown(value)} is too large: use {SEED_RULE}.", print_exception=False)
    return None if number < 0 else int(number)


def api_model(value, default: str | None) -> str:
    """The API's ``model``: an installed model's name; empty is the app's default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        name = models.pick(models.available(), default)
        if name is None:
            raise NoModelInstalled()
        return name
    return str(value)


@user_errors
def api_generate(sketch, model: str | None = None, seed=None, hints=None, what=None, *, default: str | None = None,
                 max_mb: float = 20) -> Path:
    """API: a sketch (or label map) image file in, the generated 256×256 image out.

    An empty ``model`` is the app's default model; ``seed`` -1 (or any negative, or none)
    gives the deterministic result, 0 to SEED_MAX a variation; ``hints`` an optional
    colour-hint image for hint models (RGBA, the sketch's size); ``what`` what the sketch
    shows, for a class model (one of its classes; empty or Auto: it guesses). Every argument
    is checked before the image is decoded, and each bad one gets its own sentence.
    """
    return save_png(api_image(sketch, model, seed, hints, what, default=default, max_mb=max_mb), "result.png")


def api_image(sketch, model: str | None = None, seed=None, hints=None, what=None, *, default: str | None = None,
              max_mb: float = 20) -> Image.Image:
    """:func:`api_generate`'s result as an image (for the plain HTTP route, which sends it itself)."""
    seed = api_seed(seed)
    name = api_model(model, default)
    if sketch is None:  # before a model is loaded for it
        raise gr.Error("No sketch was sent: give an image file as the first argument (sketch).",
                       print_exception=False)
    loaded = load_model(name)
    told(loaded, what)  # checked before the image is decoded
    image = _open_upload(sketch, max_mb=max_mb, types=None)
    layer = _open_hints(hints, loaded, max_mb=max_mb)[0] if hints is not None else None
    return _run_file(loaded, image, Path(sketch).name, seed, layer, what=what)[1]


@user_errors
def api_list_models() -> list[dict]:
    """API: every installed model, shipped first."""
    return [
        {"name": e.name, "description": e.info.description, "input_kind": e.info.input_kind, "shipped": e.shipped,
         **({"classes": list(e.config.classes)} if e.config.classes else {})}
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
        from pix2pix.inference.infer import Prepared

        model.generate(Prepared(Image.new("RGB", (model.size, model.size), "white")))
        log.info("model %s ready (%s, %s) in %.1f s", name, model.device, model.precision, time.time() - start)
    except Exception:  # the app must come up regardless; the handlers report errors per request
        log.exception("warming up the model failed")
