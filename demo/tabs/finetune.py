"""Fine-tune tab: data and options on the left, the run's progress on the right."""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace

import gradio as gr

from pix2pix.config import ModelConfig, TrainConfig, default, describe

from .. import models, run_storage, training, training_data, training_view
from ..settings import Settings
from . import PRIVATE

LABEL = "Fine-tune"


def _meta(name: str, cls=TrainConfig) -> dict:
    return describe(cls, name)


def _label(name: str, cls=TrainConfig) -> str:
    return describe(cls, name)["label"] or name


def _data_column(settings: Settings) -> SimpleNamespace:
    roots = ", ".join(f"`{r}`" for r in settings.data_roots)
    gr.Markdown("### 1 · Data")
    return SimpleNamespace(
        folder=gr.Dropdown(label="Folder on the server", choices=[], allow_custom_value=True,
                           info=f"A folder under {roots}, or a path inside one.", elem_id="data-folder"),
        archive=gr.File(label=f"…or upload a .zip of a paired folder (up to {settings.max_zip_mb:,} MB)",
                        file_types=[".zip"], height=130, elem_id="data-zip"),
        photos=gr.Checkbox(label=_label("outlines"), value=default(TrainConfig, "outlines")),
        check=gr.Button("Check data", elem_id="check-data"),
        summary=gr.Markdown(training_data.NO_DATA, elem_id="data-summary"),
    )


def _options_column() -> SimpleNamespace:
    """The run's settings: defaults, choices, labels and help come from the config dataclasses."""
    gr.Markdown("### 2 · Options")
    o = SimpleNamespace()
    o.init = gr.Dropdown(label="Start from", choices=[models.SCRATCH], value=models.SCRATCH,
                         info="A model to fine-tune (its architecture is kept), or a new one.", elem_id="init-model")
    with gr.Row():
        o.unit = gr.Radio(["epochs", "steps", "minutes"], value="epochs", label="Train for", elem_id="unit",
                          info="minutes: the run is timed over its first minute and sized to fit")
        # No minimum or maximum on these numbers: gradio would refuse a wrong value with a
        # message naming no field (and a traceback in the log); the configs name it.
        o.length = gr.Number(5, label="How many", precision=0, elem_id="length")
    with gr.Row():
        o.lr = gr.Number(default(TrainConfig, "lr"), label=_label("lr"))
        o.batch = gr.Number(default(TrainConfig, "batch_size"), label=_label("batch_size"), precision=0)
    with gr.Row():
        o.direction = gr.Radio(list(_meta("direction")["choices"]), value=default(TrainConfig, "direction"),
                               label=_label("direction"), info=_meta("direction")["help"])
        o.val = gr.Slider(0, 0.5, value=default(TrainConfig, "val_fraction"), step=0.05,
                          label=_label("val_fraction"), info=_meta("val_fraction")["help"])
    o.name = gr.Textbox(label="Run name", info="Saved as runs/<name>/ and listed under this name.", elem_id="run-name")
    with gr.Accordion("Advanced", open=False):
        with gr.Row():
            # The app starts from-scratch runs at the CPU-friendly width, not the paper's 64.
            o.ngf = gr.Number(32, label=_label("ngf", ModelConfig), precision=0, elem_id="ngf",
                              info=f"From scratch only: {_meta('ngf', ModelConfig)['help']}.")
            o.ndf = gr.Number(default(ModelConfig, "ndf"), label=_label("ndf", ModelConfig), precision=0,
                              elem_id="ndf", info=f"From scratch only: {_meta('ndf', ModelConfig)['help']}.")
        kinds = [(training.KIND_LABELS.get(k, k), k) for k in _meta("input_kind")["choices"]]
        o.kind = gr.Dropdown(kinds, value=default(TrainConfig, "input_kind"), label=_label("input_kind"))
    with gr.Row():
        o.start = gr.Button("Start", variant="primary", elem_id="start")
        o.stop = gr.Button("Stop", variant="stop", elem_id="stop")
    return o


def _progress_column() -> SimpleNamespace:
    gr.Markdown("### 3 · Progress")
    return SimpleNamespace(
        progress=gr.HTML(training_view.IDLE, elem_id="run-progress"),
        plot=gr.HTML(training_view.NO_LOSSES, elem_id="run-losses"),
        legend=gr.HTML(training_view.loss_legend(), elem_id="run-legend"),
        # The caption above the grid, not Gradio's label, which is drawn over the image's top row.
        caption=gr.Markdown("**Latest samples:** input · target · generated", elem_classes="help"),
        sample=gr.Image(show_label=False, type="pil", interactive=False, buttons=["fullscreen"],
                        elem_id="run-sample"),
        metrics=gr.Markdown(elem_id="run-metrics"),
    )


def _storage_section(settings: Settings) -> SimpleNamespace:
    """Disk use of uploads and runs against their quotas; deleting one (after a question),
    deleting a run's checkpoints once its model is kept, and renaming a run."""
    with gr.Accordion("Storage", open=False, elem_id="storage"):
        s = SimpleNamespace(usage=gr.Markdown(elem_id="storage-usage"))
        gr.Markdown(run_storage.limits_text(settings), elem_classes="help")
        with gr.Row(equal_height=True):
            s.target = gr.Dropdown(label="Upload, run or a run's checkpoints", choices=[], scale=3,
                                   elem_id="storage-item")
            s.ask = gr.Button("Delete…", scale=1, elem_id="storage-delete")
            s.ask_rename = gr.Button("Rename…", scale=1, elem_id="storage-rename")
        with gr.Row(visible=False, equal_height=True) as s.confirm:
            s.question = gr.Markdown(elem_id="storage-question")
            s.yes = gr.Button("Yes, delete it", variant="stop", scale=0, elem_id="storage-confirm")
            s.no = gr.Button("Cancel", scale=0, elem_id="storage-cancel")
        with gr.Row(visible=False, equal_height=True) as s.renaming:
            s.new_name = gr.Textbox(label="New name", info="Letters, digits, '.', '-' or '_'; the model takes it too.",
                                    scale=3, elem_id="storage-new-name")
            s.do_rename = gr.Button("Rename", variant="primary", scale=0, elem_id="storage-rename-confirm")
            s.no_rename = gr.Button("Cancel", scale=0, elem_id="storage-rename-cancel")
    return s


def _wire_storage(settings: Settings, s: SimpleNamespace, d: SimpleNamespace, checked, pickers: list) -> None:
    hide = lambda: (gr.Row(visible=False), gr.Row(visible=False))  # noqa: E731 - a new choice asks again
    s.ask.click(partial(run_storage.ask_delete, settings), s.target, [s.question, s.confirm, s.renaming], **PRIVATE)
    s.no.click(lambda: gr.Row(visible=False), None, s.confirm, **PRIVATE)
    s.target.input(hide, None, [s.confirm, s.renaming], **PRIVATE)
    s.yes.click(partial(run_storage.delete, settings), [s.target, checked],
                [s.usage, s.target, s.confirm, d.folder, d.summary, checked, *pickers], **PRIVATE)
    s.ask_rename.click(partial(run_storage.ask_rename, settings), s.target, [s.new_name, s.renaming, s.confirm],
                       **PRIVATE)
    s.no_rename.click(lambda: gr.Row(visible=False), None, s.renaming, **PRIVATE)
    for event in (s.do_rename.click, s.new_name.submit):
        event(partial(run_storage.rename, settings), [s.target, s.new_name], [s.usage, s.target, s.renaming, *pickers],
              **PRIVATE)


def build(demo: gr.Blocks, settings: Settings, pickers: list[gr.Dropdown], tabs: gr.Tabs) -> None:
    """``pickers``: the other tabs' model pickers, refreshed when a run ends; ``tabs``: the
    app's tabs, whose switching slows the progress poll while this one is out of view."""
    with gr.Tab(LABEL, id="finetune"):
        gr.Markdown(
            "Train a model on your own pairs: side-by-side images, `A/` and `B/` folders, or label and photo files "
            "with the same name (optionally in `train/` and `val/`). Drawing keeps working while it runs: "
            "the run pauses while anyone draws or calls the API.",
            elem_classes="help",
        )
        with gr.Row(equal_height=False):
            with gr.Column():
                d = _data_column(settings)
                o = _options_column()
            with gr.Column():
                p = _progress_column()
                storage = _storage_section(settings)
        # Inside the tab, not directly in gr.Tabs: see the note in tabs/draw.py.
        timer = gr.Timer(training.POLL_S, active=False)
        checked = gr.State(None)  # the data folder that passed "Check data"
        shown_sample = gr.State(None)
        in_view = gr.State(False)  # the page opens on the Draw tab

    # Picking a folder, or changing what it holds, checks it at once: the summary never lags behind.
    for event in (d.check.click, d.folder.input, d.photos.input):
        event(partial(training_data.check_folder, settings), [d.folder, d.photos, o.name],
              [d.summary, checked, o.name, o.init], **PRIVATE)
    d.archive.upload(partial(training.check_zip, settings), [d.archive, d.photos, o.name],
                     [d.folder, d.summary, checked, o.name, o.init, storage.usage, storage.target], **PRIVATE)
    o.start.click(
        partial(training.start, settings),
        [checked, d.photos, o.init, o.unit, o.length, o.lr, o.batch, o.direction, o.val, o.name, o.ngf, o.ndf, o.kind],
        [p.progress, timer], **PRIVATE,
    )
    o.stop.click(partial(training.stop, settings), None, p.progress, **PRIVATE)
    tabs.select(training.tab_watcher(settings, LABEL), None, [in_view, timer],
                show_progress="hidden", **PRIVATE)
    timer.tick(partial(training.poll, settings), [shown_sample, in_view],
               [p.progress, p.plot, p.sample, p.metrics, shown_sample, timer, *pickers, o.init, storage.usage,
                storage.target], show_progress="hidden", **PRIVATE)
    _wire_storage(settings, storage, d, checked, [*pickers, o.init])
    form = [d.photos, *(getattr(o, k) for k in training.FORM[1:])]
    demo.load(partial(training.open_tab, settings), None,
              [d.folder, o.init, p.progress, p.plot, p.sample, p.metrics, shown_sample, timer, storage.usage,
               storage.target, *form], **PRIVATE)
