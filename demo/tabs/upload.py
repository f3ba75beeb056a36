"""Upload tab: a sketch file in; what the model sees and its result out."""

from __future__ import annotations

from functools import partial

import gradio as gr

from pix2pix.images.imaging import LIMIT_EXAMPLE, MAX_PIXELS

from .. import handlers, models
from ..settings import Settings
from . import CLOSE_TOASTS, INFERENCE, PRIVATE


def build(demo: gr.Blocks, settings: Settings, draw_tab: tuple) -> gr.Dropdown:
    """Builds the tab; returns its model picker (refreshed when a fine-tune run ends).
    ``draw_tab``: (the Draw tab's canvas and picker, the tabs), where an outline made from
    an uploaded photo opens."""
    with gr.Tab("Upload", id="upload"):
        with gr.Row(equal_height=True, elem_classes="picker-row"):
            model = gr.Dropdown(label="Model", choices=[], scale=2, elem_id="upload-model")
            about = gr.Markdown(elem_classes="about")
        with gr.Row(equal_height=False):
            with gr.Column(min_width=240):
                # A file box rather than an image box: a broken file then reaches the handler,
                # which can say what is wrong with it.
                # Short labels: the file box's × sits at the label's end and would cover a long one.
                file = gr.File(label="Sketch", file_types=list(handlers.UPLOAD_TYPES), height=120,
                               elem_id="upload-file")
                gr.Markdown(
                    f"PNG, JPEG or WebP, up to {settings.max_sketch_mb} MB and {MAX_PIXELS / 1e6:g} megapixels "
                    f"({LIMIT_EXAMPLE}). Any size or aspect: a scan, a phone photo of paper, light lines on a dark "
                    "board, a transparent PNG. The drawing is found, cropped with a margin and its lines evened out.",
                    elem_classes="help",
                )
                hints = gr.File(label="Colour hints (optional)", file_types=[".png", ".webp"], height=120,
                                elem_id="upload-hints")
                gr.Markdown("For models that take them: a transparent PNG or WebP the sketch's size, with colour "
                            "painted where you want it.", elem_classes="help")
                keep = gr.Checkbox(False, label="Keep everything on the page", elem_id="upload-keep",
                                   info="Off: notes, a border, swatches and specks beside the drawing are left out.")
                what = gr.Radio([handlers.AUTO], value=handlers.AUTO, label="It shows", visible=False,
                                elem_id="upload-what", info="Auto: the model guesses from the drawing.")
                original = gr.Image(label="Your upload", type="pil", interactive=False, buttons=[], height=240)
                run = gr.Button("Generate again", elem_id="upload-generate")
            seen = gr.Image(label="What the model sees", type="pil", format="png", interactive=False,
                            buttons=["download"], elem_id="upload-seen")
            with gr.Column():
                result = gr.Image(label="Result", type="pil", format="png", interactive=False,
                                  buttons=["download", "fullscreen"], elem_id="upload-result")
                status = gr.Markdown(elem_id="upload-status")
                to_outline = gr.Button("Turn it into an outline", visible=False, size="sm", elem_id="to-outline")
                use_labels = gr.Button(visible=False, size="sm", elem_id="use-labels")
                pair = gr.DownloadButton("Download input + result", visible=False, size="sm")

    go = partial(handlers.upload, max_mb=settings.max_sketch_mb)
    inputs = [file, model, hints, keep, what]
    outputs = [original, seen, result, pair, status, to_outline, use_labels]
    to_outline.click(partial(handlers.outline_for_canvas, max_mb=settings.max_sketch_mb), [file, model],
                     list(draw_tab), **PRIVATE)
    for event in (
        file.change(go, inputs, outputs, **INFERENCE, **PRIVATE),
        hints.change(go, inputs, outputs, **INFERENCE, **PRIVATE),
        *(box.input(go, inputs, outputs, **INFERENCE, **PRIVATE) for box in (keep, what)),
        run.click(go, inputs, outputs, **INFERENCE, **PRIVATE),
    ):
        event.success(None, None, None, js=CLOSE_TOASTS, **PRIVATE)
    _then_run(model.input(models.select, model, about, **PRIVATE), model, what, run_again := (go, inputs, outputs))
    # A label map given to a sketch model: one click picks the model that takes it, and runs it.
    _then_run(use_labels.click(lambda: models.picker(models.available(), models.fitting("labels")), None, model,
                               **PRIVATE).then(models.select, model, about, **PRIVATE), model, what, run_again)
    demo.load(partial(models.open_picker, settings.default_model), None, [model, about], **PRIVATE
              ).then(models.class_picker, model, what, **PRIVATE)
    return model


def _then_run(event, model, what, run_again: tuple) -> None:
    """After another model is picked: its "It shows" choices, then the upload run again."""
    event.then(models.class_picker, model, what, **PRIVATE).then(*run_again, **INFERENCE, **PRIVATE)
