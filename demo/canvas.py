"""The Draw tab's canvas: a plain HTML canvas that sends one PNG per stroke.

Why not ``gr.Sketchpad``: after each stroke it exports background, layer and composite
from WebGL, uploads each of them twice and only then queues the event. Measured on the
project's 2-core box in headless Chromium, that was about 2.4 s from releasing the mouse
to seeing the result. This canvas sends a single data URL with the event (about 10 KB for
a line drawing): about 0.2 s on the same box, most of it the model itself.

Python talks to it through its value: ``{"setup": {...}, "image": data URL or None,
"generate": bool}`` resets it for a model (pen or label colours, background fill, brush
size, optionally a picture to start from); the page sends back ``{"png": data URL}``.
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

TEMPLATE = f"""
<div class="sk">
  <div class="sk-tools">
    <button type="button" data-action="pen" title="Pen">Pen</button>
    <button type="button" data-action="eraser" title="Eraser">Eraser</button>
    <label>Size <input class="sk-size" type="range" min="1" max="64" value="6"></label>
    <span class="sk-sep"></span>
    <button type="button" data-action="undo" title="Undo (Ctrl+Z)">↶ Undo</button>
    <button type="button" data-action="redo" title="Redo (Ctrl+Shift+Z)">↷ Redo</button>
    <button type="button" data-action="clear" title="Clear the canvas">Clear</button>
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
    png = value.get("png") if isinstance(value, dict) else None
    if not isinstance(png, str):
        return None
    if not png.startswith(PNG_PREFIX) or len(png) > MAX_PNG_CHARS:
        raise gr.Error("The drawing could not be read.", print_exception=False)
    try:
        with Image.open(io.BytesIO(base64.b64decode(png[len(PNG_PREFIX):], validate=True))) as image:
            return image.convert("RGB")
    except (binascii.Error, UnidentifiedImageError, OSError):
        raise gr.Error("The drawing could not be read.", print_exception=False) from None
