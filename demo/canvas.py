"""The Draw tab's canvas: a plain HTML canvas that sends one PNG per stroke.

Why not ``gr.Sketchpad``: after each stroke it exports background, layer and composite
from WebGL, uploads each of them twice and only then queues the event. Measured on the
project's 2-core box in headless Chromium, that was about 2.4 s from releasing the mouse
to seeing the result. This canvas sends a single data URL with the event (about 10 KB for
a line drawing): about 0.2 s on the same box, most of it the model itself.

Python talks to it through its value: ``{"setup": {...}, "image": data URL or None,
"generate": bool}`` sets it up for a model (pen or label colours, background fill, brush
size, whether it takes colour hints, a key naming the kind of drawing it takes; optionally a
picture to start from; for a class model, its ``classes``, offered in an "It shows" picker);
the page sends back ``{"png": data URL, "hints": data URL or None, "what": class or ""}``.
Each kind's drawing is kept in the page when another model is picked, and comes back with a
model of that kind.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path

import gradio as gr
from PIL import Image, UnidentifiedImageError

STATIC = Path(__file__).parent / "static"
SIZE = 512  # canvas pixels; the model's input is made from this at 256
MAX_PNG_CHARS = 8_000_000  # a 512x512 PNG is far smaller; anything bigger is not from this page
PNG_PREFIX = "data:image/png;base64,"

SWATCHES = {"red": "#d62828", "orange": "#f77f00", "yellow": "#fcbf49", "green": "#2a9d8f", "blue": "#1d4ed8",
            "navy": "#1b2a4a", "pink": "#e5989b", "brown": "#7f5539", "grey": "#8d99ae", "black": "#111111"}
_SWATCH_BUTTONS = "".join(
    f'<button type="button" class="sk-swatch" data-swatch="{c}" title="{name}" style="background:{c}"></button>'
    for name, c in SWATCHES.items()
)

TEMPLATE = f"""
<div class="sk">
  <div class="sk-tools">
    <button type="button" data-action="pen" title="Pen (B)">Pen</button>
    <button type="button" data-action="eraser" title="Eraser (E)">Eraser</button>
    <button type="button" data-action="colour" class="sk-hint-tool" hidden
      title="Colour brush (C): paint the colours you want; the model follows them">Colour</button>
    <div class="sk-menu">
      <button type="button" data-action="rect" class="sk-label-tool" hidden
        title="Rectangle (R): drag to fill a box with the label">Rectangle</button>
      <button type="button" data-action="fill" class="sk-label-tool" hidden
        title="Fill (F): click to fill an area with the label">Fill</button>
      <label>Size <input class="sk-size" type="range" min="1" max="64" value="6" title="Size ([ and ])"></label>
      <button type="button" data-action="uncolour" class="sk-hint-tool" hidden
        title="Colour eraser (E while colouring)">Erase colour</button>
      <button type="button" data-action="clearcolours" class="sk-hint-tool" hidden
        title="Remove every colour, keep the drawing">Clear colours</button>
      <button type="button" data-action="clear" title="Clear the drawing">Clear</button>
    </div>
    <span class="sk-active"></span>
    <label class="sk-what-label" hidden>It shows <select class="sk-what"
      title="What the drawing shows: the model is told (Auto: it guesses)"><option value="">Auto</option></select></label>
    <span class="sk-sep"></span>
    <button type="button" data-action="undo" title="Undo (Ctrl+Z)" aria-label="Undo">↶<span class="sk-word"> Undo</span></button>
    <button type="button" data-action="redo" title="Redo (Ctrl+Shift+Z or Ctrl+Y)" aria-label="Redo">↷<span
      class="sk-word"> Redo</span></button>
    <button type="button" class="sk-more" title="More tools" aria-label="More tools" aria-haspopup="menu"
      aria-expanded="false">⋯</button>
  </div>
  <div class="sk-colours" hidden>
    <input class="sk-colour" type="color" value="#d62828" title="Pick any colour" aria-label="Hint colour">
    {_SWATCH_BUTTONS}
  </div>
  <div class="sk-palette" hidden></div>
  <canvas width="{SIZE}" height="{SIZE}" tabindex="0" aria-label="Drawing canvas"></canvas>
</div>
"""

def data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return PNG_PREFIX + base64.b64encode(buf.getvalue()).decode("ascii")


def sketch_canvas(value: dict, **kwargs) -> gr.HTML:
    """The canvas as a ``gr.HTML`` block; its ``stroke`` event fires after every change by
    the user. (A plain instance, not a subclass: gradio writes a ``.pyi`` stub beside the
    module of every component class.)"""
    return gr.HTML(
        value,
        html_template=TEMPLATE,
        css_template=(STATIC / "canvas.css").read_text(),
        js_on_load=(STATIC / "canvas.js").read_text(),
        apply_default_css=False,
        **kwargs,
    )


def drawing(value: dict | None) -> Image.Image | None:
    """The canvas value -> the drawing as an RGB image; None before anything was drawn."""
    image = _png(value, "png", "The drawing could not be read.")
    return None if image is None else image.convert("RGB")


def colour_layer(value: dict | None) -> Image.Image | None:
    """The canvas value -> its colour hints (RGBA, transparent where none was painted);
    None when the model takes none or nothing is painted."""
    image = _png(value, "hints", "The colours painted could not be read.")
    return None if image is None else image.convert("RGBA")


def _png(value: dict | None, key: str, unreadable: str) -> Image.Image | None:
    """One PNG data URL of the canvas value, decoded; only this canvas's own size is taken."""
    png = value.get(key) if isinstance(value, dict) else None
    if not isinstance(png, str):
        return None
    if not png.startswith(PNG_PREFIX) or len(png) > MAX_PNG_CHARS:
        raise gr.Error(unreadable, print_exception=False)
    try:
        with Image.open(io.BytesIO(base64.b64decode(png[len(PNG_PREFIX):], validate=True)), formats=["PNG"]) as image:
            if image.width > 4 * SIZE or image.height > 4 * SIZE:
                raise gr.Error(unreadable, print_exception=False)
            image.load()
            return image
    except (binascii.Error, UnidentifiedImageError, OSError):
        raise gr.Error(unreadable, print_exception=False) from None
