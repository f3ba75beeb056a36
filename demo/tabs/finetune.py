"""Fine-tune tab: data and options on the left, the run's progress on the right."""

from __future__ import annotations

from functools import partial

import gradio as gr

from .. import training
from ..settings import Settings
from . import PRIVATE

POLL_S = 1.0


def build(demo: gr.Blocks, settings: Settings, pickers: list[gr.Dropdown]) -> None:
    """``pickers``: the other tabs' model pickers, refreshed when a run ends."""
    roots = ", ".join(f"`{r}`" for r in settings.data_roots)
    with gr.Tab("Fine-tune", id="finetune"):
        gr.Markdown(
            "Train a model on your own pairs: side-by-side images, `A/` and `B/` folders, or label and photo files "
            "with the same name (optionally in `train/` and `val/`). Drawing keeps working while it runs.",
            elem_classes="help",
        )
        with gr.Row(equal_height=False):
            with gr.Column():
                gr.Markdown("### 1 · Data")
                folder = gr.Dropdown(
                    label="Folder on the server", choices=[], allow_custom_value=True,
                    info=f"A folder under {roots}, or a path inside one.", elem_id="data-folder",
                )
                archive = gr.File(label="…or upload a .zip of a paired folder", file_types=[".zip"], height=130,
                                  elem_id="data-zip")
                photos = gr.Checkbox(label="Photos only: draw the inputs as outlines from the photos", value=False)
                check = gr.Button("Check data", elem_id="check-data")
                summary = gr.Markdown(training.NO_DATA, elem_id="data-summary")

                gr.Markdown("### 2 · Options")
                init = gr.Dropdown(label="Start from", choices=[training.SCRATCH], value=training.SCRATCH,
                                   info="A model to fine-tune (its architecture is kept), or a new one.",
                                   elem_id="init-model")
                with gr.Row():
                    unit = gr.Radio(["epochs", "steps"], value="epochs", label="Train for", elem_id="unit")
                    length = gr.Number(5, label="How many", precision=0, minimum=1, elem_id="length")
                with gr.Row():
                    lr = gr.Number(2e-4, label="Learning rate", minimum=0)
                    batch = gr.Number(1, label="Batch size", precision=0, minimum=1)
                with gr.Row():
                    direction = gr.Radio(["AtoB", "BtoA"], value="AtoB", label="Direction",
                                         info="AtoB: the A side (left half, A/ folder) is the input.")
                    val = gr.Slider(0, 0.5, value=0.1, step=0.05, label="Validation fraction",
                                    info="Held out when there is no val/ folder.")
                name = gr.Textbox(label="Run name", info="Saved as runs/<name>/ and listed under this name.",
                                  elem_id="run-name")
                with gr.Accordion("Advanced", open=False):
                    with gr.Row():
                        ngf = gr.Number(32, label="Generator width (ngf)", precision=0, minimum=4, elem_id="ngf",
                                        info="From scratch only: 32 trains well on a CPU, 64 is the paper's.")
                        ndf = gr.Number(64, label="Discriminator width (ndf)", precision=0, minimum=4, elem_id="ndf",
                                        info="From scratch only: 64 is the paper's; smaller trains faster.")
                    kind = gr.Dropdown(training.INPUT_KINDS, value="auto", label="The inputs are")
                with gr.Row():
                    start = gr.Button("Start", variant="primary", elem_id="start")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
            with gr.Column():
                gr.Markdown("### 3 · Progress")
                progress = gr.HTML(training.IDLE, elem_id="run-progress")
                plot = gr.LinePlot(None, x="step", y="value", color="loss", label="Losses", height=300,
                                   x_title="step", y_title="loss", elem_id="run-losses")
                sample = gr.Image(label="Latest samples: input · target · generated", type="pil",
                                  interactive=False, buttons=["fullscreen"], elem_id="run-sample")
                metrics = gr.Markdown(elem_id="run-metrics")
        # Inside the tab, not directly in gr.Tabs: see the note in tabs/draw.py.
        timer = gr.Timer(POLL_S, active=False)
        checked = gr.State(None)  # the data folder that passed "Check data"
        shown_sample = gr.State(None)

    check.click(partial(training.check_folder, settings), [folder, photos, name], [summary, checked, name], **PRIVATE)
    archive.upload(partial(training.check_zip, settings), [archive, photos, name], [folder, summary, checked, name],
                   **PRIVATE)
    for changed in (folder.input, photos.input):
        changed(training.forget_data, None, [summary, checked], **PRIVATE)
    start.click(
        partial(training.start, settings),
        [checked, photos, init, unit, length, lr, batch, direction, val, name, ngf, ndf, kind],
        [progress, timer], **PRIVATE,
    )
    stop.click(partial(training.stop, settings), None, progress, **PRIVATE)
    timer.tick(partial(training.poll, settings), shown_sample,
               [progress, plot, sample, metrics, shown_sample, timer, *pickers, init],
               show_progress="hidden", **PRIVATE)
    demo.load(partial(training.open_tab, settings), None, [folder, init, progress, timer], **PRIVATE)

