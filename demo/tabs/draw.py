"""Draw tab: the canvas on the left, the live result on the right, examples below."""

from __future__ import annotations

from functools import partial

import gradio as gr

from .. import gallery, handlers, models
from ..canvas import sketch_canvas
from ..result_view import result_view
from ..settings import Settings
from . import PRIVATE


def build(demo: gr.Blocks, settings: Settings) -> tuple[gr.Dropdown, gr.HTML]:
    """Builds the tab; returns its model picker (refreshed when a fine-tune run ends) and
    its canvas (which the Upload tab can open an outline in)."""
    examples = gallery.list_examples(settings.examples_dir)
    with gr.Tab("Draw", id="draw"):
        with gr.Row(equal_height=True, elem_classes="picker-row"):
            model = gr.Dropdown(label="Model", choices=[], scale=2, elem_id="draw-model")
            about = gr.Markdown(elem_classes="about")
        # Canvas and result side by side, Generate under the result: all of it fits the first
        # screen (demo/static/canvas.js sizes both squares); on a phone, see demo/style.css.
        with gr.Row(equal_height=False, elem_classes="draw-row"):
            with gr.Column():
                canvas = sketch_canvas(models.canvas(None), elem_id="sketch")
            with gr.Column(elem_classes="result-col"):
                result_view(handlers.DRAW_HINT, elem_id="result")
                # No "Variation" control: the shipped models all but ignore the paper's test-time
                # dropout (seeds move 2-3 % of the picture), so it promised what it could not show;
                # the API keeps its seed.
                generate = gr.Button("Generate", variant="primary", elem_id="generate", elem_classes="generate-row")
        if examples:
            picks = gr.Gallery(
                gallery.items(examples), label="Examples: click one to load it into the canvas",
                columns=8, fit_columns=False, allow_preview=False, object_fit="contain", buttons=[],
                elem_id="examples",
            )

    # The canvas sends its drawings itself (demo/static/canvas.js); these two only tell it.
    generate.click(None, None, None, js="() => { document.dispatchEvent(new CustomEvent('pix2pix:generate')); }",
                   **PRIVATE)
    # .input, not .change: a picker set by code (page load, an example) must not reset the canvas.
    model.input(models.select_for_canvas, model, [about, canvas], **PRIVATE)
    demo.load(partial(models.open_canvas, settings.default_model, examples), None, [model, about, canvas], **PRIVATE)
    if examples:
        picks.select(gallery.loader(examples), model, [canvas, model, about], **PRIVATE)
    return model, canvas
