"""Fine-tune handlers: choose and check the data, start and stop a run, report its progress.

The run itself belongs to the library (:class:`demo.jobs.TrainingJobs`, one per app, in
a background thread); the page polls its snapshot with a timer while a run is going.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import replace
from pathlib import Path

import gradio as gr
from PIL import Image


from . import models
from .errors import user_errors
from .models import SCRATCH
from .run_storage import _run_dir, storage
from .settings import Settings
from .training_data import NO_DATA, _checked, _extract, _refused, data_folders
from .training_view import loss_plot, metrics_text, progress_html

log = logging.getLogger(__name__)

ENDED = ("finished", "stopped", "failed")
POLL_S = 1.0  # progress updates while the Fine-tune tab is in view
AWAY_POLL_S = 5.0  # on another tab: only to learn when the run ends (the model pickers get its model)
# How the form names each input kind; the kinds themselves come from TrainConfig.
KIND_LABELS = {"auto": "Detect from the data", "sketch": "Sketches (line drawings)",
               "labels": "Label maps (flat colours)", "image": "Images"}
# The app's training thread runs this much nicer than the request threads, so drawing and
# the API keep most of the CPU while a fine-tune runs (Linux: niceness is per thread, and
# the threads and processes it starts inherit it).
TRAINING_NICENESS = 10
TRAINING_THREAD = "pix2pix-train"  # the name demo.jobs gives its thread


# ---------------------------------------------------------------------------- data


@user_errors
def check_zip(settings: Settings, zip_path: str | None, photos_only: bool, name: str):
    """An uploaded .zip: extracted (safely) into the uploads folder, selected and checked:
    (folder picker, summary, checked folder, run name, start model, storage usage, storage
    choices). A zip that cannot be used is a sentence in the summary; every control stays."""
    from pix2pix.errors import Pix2PixError

    if zip_path is None:
        return gr.skip(), NO_DATA, None, name, gr.skip(), gr.skip(), gr.skip()
    zip_path = Path(zip_path)
    if zip_path.stat().st_size > settings.max_zip_mb * 1024 * 1024:
        return gr.skip(), *_refused(f"{zip_path.name} is larger than {settings.max_zip_mb} MB.", name), \
            gr.skip(), gr.skip()
    try:
        root = _extract(settings, zip_path)
    except (Pix2PixError, gr.Error) as e:  # a bad zip, or no room for it: said where the summary goes
        return gr.skip(), *_refused(getattr(e, "message", None) or str(e), name), *storage(settings)
    # From now on it is a folder on the server like any other: later checks use the picker.
    picker = gr.Dropdown(choices=data_folders(settings), value=str(root), allow_custom_value=True)
    try:
        return picker, *_checked(root, photos_only, name), *storage(settings)
    except Pix2PixError as e:
        return picker, *_refused(str(e), name), *storage(settings)


# ---------------------------------------------------------------------------- runs


@user_errors
def start(
    settings: Settings, data: str | None, photos_only: bool, init: str, unit: str, length: float, lr: float,
    batch_size: float, direction: str, val_fraction: float, name: str, ngf: float, ndf: float, input_kind: str,
):
    """Start: build the configs from the form (they check the values) and hand them to the
    app's training slot."""
    from pix2pix.config import ModelConfig, ModelInfo, TrainConfig

    if settings.jobs.running:
        raise gr.Error("A training run is already in progress: stop it or wait for it to finish.",
                       print_exception=False)
    if not data:
        raise gr.Error(NO_DATA.replace("**", ""), print_exception=False)
    if length is None or length < 1:
        raise gr.Error(f"How many: train for at least 1 {unit.rstrip('s')}; got {length if length is not None else 'nothing'}.",
                       print_exception=False)
    out = _run_dir(name)
    _check_runs_quota(settings)
    train_cfg = TrainConfig(
        epochs=length if unit == "epochs" else 1, steps=length if unit == "steps" else 0,
        minutes=float(length) if unit == "minutes" else 0.0, batch_size=batch_size,
        lr=lr, direction=direction, val_fraction=val_fraction, outlines=bool(photos_only), input_kind=input_kind,
    )
    model_cfg = ModelConfig(ngf=ngf, ndf=ndf)
    init_path = None
    if init and init != SCRATCH:
        entry = models.find(models.available(), init)
        if entry is None:
            raise gr.Error(f"The model {init} is no longer installed.", print_exception=False)
        # The architecture comes from that model; its metadata (palette, input kind) carries over.
        init_path, model_cfg = entry.path, entry.config
        description = f"{entry.name} fine-tuned on {Path(data).name}"
        info = replace(entry.info, description=description, extra=dict(entry.info.extra))
    else:
        info = ModelInfo()
    settings.jobs.start(data, out, model_cfg, train_cfg, init=init_path, info=info)
    settings.training_data = Path(data)
    settings.run_form = dict(folder=data, photos=bool(photos_only), init=init, unit=unit, length=length, lr=lr,
                             batch=batch_size, direction=direction, val=val_fraction, name=out.name, ngf=ngf, ndf=ndf,
                             kind=input_kind)
    _lower_training_priority()
    return progress_html(settings.jobs.snapshot()), gr.Timer(active=True)


def _check_runs_quota(settings: Settings) -> None:
    from pix2pix.catalog import runs_dir
    from demo.uploads import folder_size, human_size

    used = folder_size(runs_dir())
    if used >= settings.runs_quota:
        raise gr.Error(f"The fine-tuned runs take {human_size(used)} of the {human_size(settings.runs_quota)} "
                       "this server keeps for them: delete old runs (Storage, below) before starting another.",
                       print_exception=False)


def _lower_training_priority() -> None:
    """Renice the app's training thread (a cheap way to keep drawing responsive)."""
    for thread in threading.enumerate():
        if thread.name == TRAINING_THREAD and thread.native_id and hasattr(os, "setpriority"):
            try:
                now = os.getpriority(os.PRIO_PROCESS, thread.native_id)
                os.setpriority(os.PRIO_PROCESS, thread.native_id, min(19, now + TRAINING_NICENESS))
            except OSError as e:  # not allowed here: training just competes on equal terms
                log.warning("could not lower the training thread's priority: %s", e)


@user_errors
def stop(settings: Settings) -> str:
    if not settings.jobs.stop():
        gr.Info("No training run is in progress.")
    return progress_html(settings.jobs.snapshot())


# ---------------------------------------------------------------------------- progress


def _run_view(state, shown_sample: str | None) -> tuple:
    """(loss plot, sample grid, metrics, shown sample) of a run; the grid only when it is not
    the one already shown (the page keeps it between ticks)."""
    sample = str(state.sample) if state.sample else None
    image = gr.skip()
    if sample and sample != shown_sample and Path(sample).is_file():
        with Image.open(sample) as grid:  # a PIL image: gradio serves it from its own cache
            image = grid.convert("RGB")
    return loss_plot(state.history), image, metrics_text(state.val), sample


@user_errors
def poll(settings: Settings, shown_sample: str | None, in_view: bool = True):
    """One timer tick: (progress, loss plot, sample grid, metrics, shown sample, timer, 3 pickers,
    storage usage, storage choices).

    The sample grid is only re-sent when a new one was written; when the run has ended
    the timer stops, the model pickers get the new model and the storage its size. While
    the tab is out of view nothing changes on the page until then: redrawing a plot
    nobody sees costs the browser the CPU a drawing needs. While someone draws (the run
    waits then, see :mod:`pix2pix.training.priority`) only the progress line is sent.
    """
    from pix2pix.training.priority import busy

    state = settings.jobs.snapshot()
    ended = state.status in ENDED or state.status == "idle"
    if not in_view and not ended:
        return (gr.skip(),) * 11
    if busy() and not ended:
        return progress_html(state), *(gr.skip(),) * 10
    pickers = (models.refreshed(), models.refreshed(), models.init_choices()) if ended else (gr.skip(),) * 3
    return (progress_html(state), *_run_view(state, shown_sample), gr.Timer(active=not ended), *pickers,
            *(storage(settings) if ended else (gr.skip(),) * 2))


def tab_watcher(settings: Settings, label: str):
    """The app's tab-select handler: (whether the tab chosen is the Fine-tune tab, called
    ``label``, and the progress timer at the rate for that). A closure: gradio finds the
    ``gr.SelectData`` parameter by its type hint, which a ``partial`` would hide."""

    def selected(evt: gr.SelectData):
        in_view = evt.value == label
        return in_view, gr.Timer(POLL_S if in_view else AWAY_POLL_S, active=settings.jobs.running)

    return selected


FORM = ("photos", "unit", "length", "lr", "batch", "direction", "val", "name", "ngf", "ndf", "kind")


@user_errors
def open_tab(settings: Settings):
    """Page load: (data folders, start-from choices, progress, loss plot, sample grid, metrics,
    shown sample, timer, storage usage, storage choices, then the form's fields in FORM order)
    — the latest run, in progress or ended since the server started, is shown again as the
    page left it, and while it runs the form shows the settings it was started with."""
    state = settings.jobs.snapshot()
    view = _run_view(state, None) if state.status != "idle" else (None, None, "", None)
    form = settings.run_form if settings.jobs.running and settings.run_form else None
    folders = gr.Dropdown(choices=data_folders(settings), value=form["folder"] if form else None)
    init = models.init_choices(form["init"] if form else None)
    fields = [gr.update(value=form[k]) for k in FORM] if form else [gr.skip()] * len(FORM)
    return (folders, init, progress_html(state), *view, gr.Timer(AWAY_POLL_S, active=settings.jobs.running),
            *storage(settings), *fields)  # the page opens on Draw


# ---------------------------------------------------------------------------- storage
