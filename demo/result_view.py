"""The Draw tab's result: an image box that shows what the canvas's own requests bring back.

The canvas posts each drawing to ``POST /api/v1/draw`` (:mod:`demo.rest`) and announces the
answer on the page as a ``pix2pix:result`` event; this box shows it: the image (with
download and full-screen buttons), the status line and the sketch + result download. No
Gradio event sits between a stroke and its result, so nothing waits for a queue round trip
or a file fetch.

The event's ``detail``: ``{"url": blob URL, "png": URL}`` (a new result, shown as a JPEG; the
download button fetches it as PNG), ``{"clear": true}`` (no result), ``{"status": text,
"error": bool}`` (the line below the image), ``{"pair": URL}`` (the download of the model
input beside the result), in any combination.
"""

from __future__ import annotations

import html

import gradio as gr

from .canvas import STATIC

TEMPLATE = """
<div class="rv">
  <div class="rv-head"><span class="rv-label">Result</span>
    <a class="rv-download" download="result.png" title="Download the result" hidden>Download</a>
    <button type="button" class="rv-full" title="Full screen" hidden>Full screen</button></div>
  <div class="rv-frame"><p class="rv-empty">The result appears here.</p></div>
  <p id="draw-status" class="rv-status" data-hint="{hint}">{hint}</p>
  <a id="pair" class="rv-pair" download="sketch_and_result.png" hidden>Download sketch + result</a>
</div>
"""


def result_view(hint: str, **kwargs) -> gr.HTML:
    """The box, its status line starting on ``hint`` (what to do first)."""
    return gr.HTML(
        "",
        html_template=TEMPLATE.replace("{hint}", html.escape(hint)),
        css_template=(STATIC / "result.css").read_text(),
        js_on_load=(STATIC / "result.js").read_text(),
        apply_default_css=False,
        **kwargs,
    )
