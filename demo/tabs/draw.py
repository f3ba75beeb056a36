"""Draw tab: the canvas on the left, the live result on the right, examples below."""

from __future__ import annotations

from functools import partial

import gradio as gr

from .. import gallery, handlers, models
from ..canvas import sketch_canvas
from ..settings import Settings
from . import CLOSE_TOASTS, INFERENCE, PRIVATE


def build(demo: gr.Blocks, settings: Settings) -> tuple[gr.Dropdown, gr.HTML]:
    """Builds the tab; returns its model picker (refreshed when a fine-tune run ends) and
    its canvas (which the Upload tab can open an outline in)."""
    examples = gallery.list_examples(settings.examples_dir)
    with gr.Tab("Draw", id="draw"):
        with gr.Row(equal_height=True, elem_classes="picker-row"):
            model = gr.Dropdown(label="Model", choices=[], scale=2, elem_id="draw-model")
            about = gr.Markdown(elem_classes="about")
        with gr.Row(equal_height=False, elem_classes="draw-row"):
            with gr.Column():
                canvas = sketch_canvas(models.canvas(None), elem_id="sketch")
                with gr.Row():
                    variation = gr.Slider(
                        0, 99, value=0, step=1, label="Variation", scale=3,
                        info="0: the model's usual output. Other values add its test-time noise with that seed.",
                    )
                    generate = gr.Button("Generate", variant="primary", scale=1, elem_id="generate")
            with gr.Column():
                result = gr.Image(
                    label="Result", format="png", interactive=False, height=540,
                    buttons=["download", "fullscreen"], elem_id="result",
                )
                status = gr.Markdown(handlers.DRAW_HINT, elem_id="draw-status")
                pair = gr.DownloadButton("Download sketch + result", visible=False, size="sm", elem_id="pair")
        if examples:
            picks = gr.Gallery(
                gallery.items(examples), label="Examples: click one to load it into the canvas",
                columns=8, fit_columns=False, allow_preview=False, object_fit="contain", buttons=[],
                elem_id="examples",
            )
        # Inside the tab: a component placed directly in gr.Tabs (even a State) breaks
        # Gradio's tab bar (the next tab clicked shows up twice and replaces another).
        last = gr.State(None)  # (model input, result) of the latest result, for the download

    inputs, shown = [canvas, model, variation], [result, status, last]
    live = {"trigger_mode": "always_last", "show_progress": "hidden", **INFERENCE, **PRIVATE}
    for event in (
        canvas.stroke(handlers.draw_live, inputs, shown, **live),
        # .input: a drag, and also a number typed into the box (with Enter or not); .release
        # alone missed typed numbers until the box lost focus.
        variation.input(handlers.draw_live, inputs, shown, **live),
        generate.click(handlers.draw_generate, inputs, shown, show_progress="minimal", **INFERENCE, **PRIVATE),
    ):
        event.then(handlers.pair_download, last, pair, show_progress="hidden", **PRIVATE)
        event.success(None, None, None, js=CLOSE_TOASTS, **PRIVATE)
    # .input, not .change: a picker set by code (page load, an example) must not reset the canvas.
    model.input(handlers.switch_model, model, [about, canvas, *shown, pair], **PRIVATE)
    demo.load(partial(models.open_canvas, settings.default_model), None, [model, about, canvas], **PRIVATE)
    if examples:
        picks.select(gallery.loader(examples), model, [canvas, model, about], **PRIVATE)
    return model, canvas
