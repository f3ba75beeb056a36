"""Fine-tune handlers: choose and check the data, start and stop a run, report its progress.

The run itself belongs to the library (:class:`pix2pix.jobs.TrainingJobs`, one per app, in
a background thread); the page polls its snapshot with a timer while a run is going.
"""

from __future__ import annotations

import html
import logging
import os
import re
import threading
import time
from dataclasses import replace
from pathlib import Path

import gradio as gr
import pandas as pd
from PIL import Image

from pix2pix.progress import ALL_LOSS_NAMES

from . import models
from .errors import user_errors
from .settings import Settings

log = logging.getLogger(__name__)

SCRATCH = "(from scratch)"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ENDED = ("finished", "stopped", "failed")
POLL_S = 1.0  # progress updates while the Fine-tune tab is in view
AWAY_POLL_S = 5.0  # on another tab: only to learn when the run ends (the model pickers get its model)
# How the form names each input kind; the kinds themselves come from TrainConfig.
KIND_LABELS = {"auto": "Detect from the data", "sketch": "Sketches (line drawings)",
               "labels": "Label maps (flat colours)", "image": "Images"}
IDLE = '<div class="run-status">No run yet.</div>'
NO_DATA = "Choose a data folder or upload a .zip, then press **Check data**."
# The app's training thread runs this much nicer than the request threads, so drawing and
# the API keep most of the CPU while a fine-tune runs (Linux: niceness is per thread, and
# the threads and processes it starts inherit it).
TRAINING_NICENESS = 10
TRAINING_THREAD = "pix2pix-train"  # the name pix2pix.jobs gives its thread


# ---------------------------------------------------------------------------- data


def _roots(settings: Settings) -> list[Path]:
    """Where server folders may come from: the allowed roots and earlier uploads."""
    return [*settings.data_roots, settings.uploads]


def data_folders(settings: Settings) -> list[tuple[str, str]]:
    """(label, path) of every folder directly under an allowed root, and of earlier uploads."""
    found = []
    for root in _roots(settings):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not folder.name.startswith(".") and folder != settings.uploads:
                found.append((f"{root.name}/{folder.name}", str(folder)))
    return found


def _summary(result) -> str:
    """Markdown: the layout and counts :func:`pix2pix.data.scan` found, and what it skipped."""
    counts = ", ".join(f"{result.count(s)} {s}" for s in result.splits)
    lines = [f"**{html.escape(result.root.name)}**: layout *{result.layout}*, pairs: {counts}"]
    if result.labels:
        lines.append("The inputs are label maps (palette images): the model will take label colours.")
    if "val" not in result.splits:
        lines.append("No `val/` folder: the validation fraction below is held out from the training pairs.")
    if result.skipped:
        shown = "; ".join(f"`{html.escape(f)}`: {html.escape(why)}" for f, why in result.skipped[:5])
        more = f" and {len(result.skipped) - 5} more" if len(result.skipped) > 5 else ""
        lines.append(f"Skipped {len(result.skipped)} file(s): {shown}{more}.")
    return "  \n".join(lines)


def _suggest_name(folder: Path, current: str) -> str:
    """The run name box: what the user typed, else the data folder's name and the time."""
    if current.strip():
        return current
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.name).strip("-._") or "run"
    return f"{base}-{time.strftime('%m%d-%H%M')}"


def _checked(folder: Path, photos_only: bool, name: str):
    from pix2pix.data import scan

    result = scan(folder, outlines=bool(photos_only))
    return _summary(result), str(folder), _suggest_name(folder, name or "")


@user_errors
def check_folder(settings: Settings, path: str | None, photos_only: bool, name: str):
    """Check data: (summary, checked folder, run name) for a folder on the server."""
    from pix2pix.uploads import resolve_data_folder

    if not path:
        raise gr.Error("Choose a data folder first.", print_exception=False)
    return _checked(resolve_data_folder(path, _roots(settings)), photos_only, name)


def _upload_name(zip_path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", zip_path.stem).strip("-._")[:64] or "upload"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _extract(settings: Settings, zip_path: Path) -> Path:
    """The zip extracted into the uploads folder, within its quota: older unused uploads
    make room, or the upload is refused with the numbers."""
    from pix2pix.uploads import extract_zip, human_size, make_room

    def room(size: int) -> None:
        busy = settings.training_data if settings.jobs.running else None
        removed = make_room(settings.uploads, size, settings.upload_quota, keep=[busy] if busy else [])
        if removed:
            names = ", ".join(e.name for e in removed)
            gr.Info(f"Removed {len(removed)} old upload(s) to make room: {names} "
                    f"({human_size(sum(e.size for e in removed))}).")

    with settings.upload_lock:  # one at a time: the quota is checked against what is on disk
        return extract_zip(zip_path, settings.uploads / _upload_name(zip_path), room=room)


@user_errors
def check_zip(settings: Settings, zip_path: str | None, photos_only: bool, name: str):
    """An uploaded .zip: extracted (safely) into the uploads folder, selected and checked:
    (folder picker, summary, checked folder, run name, storage usage, storage choices)."""
    if zip_path is None:
        return gr.skip(), NO_DATA, None, name, gr.skip(), gr.skip()
    zip_path = Path(zip_path)
    if zip_path.stat().st_size > settings.max_zip_mb * 1024 * 1024:
        raise gr.Error(f"{zip_path.name} is larger than {settings.max_zip_mb} MB.", print_exception=False)
    root = _extract(settings, zip_path)
    # From now on it is a folder on the server like any other: later checks use the picker.
    picker = gr.Dropdown(choices=data_folders(settings), value=str(root), allow_custom_value=True)
    return picker, *_checked(root, photos_only, name), *storage(settings)


def forget_data():
    """The data choice changed: it must be checked again before a start."""
    return NO_DATA, None


# ---------------------------------------------------------------------------- runs


def _run_dir(name: str) -> Path:
    from pix2pix.catalog import runs_dir

    name = (name or "").strip()
    if not RUN_NAME.fullmatch(name):
        raise gr.Error(
            "Give the run a name of letters, digits, '.', '-' or '_' (no spaces or slashes), up to 64 characters.",
            print_exception=False,
        )
    out = runs_dir() / name
    if out.exists():
        raise gr.Error(f"A run called {name} already exists: choose another name.", print_exception=False)
    if models.find(models.available(), name):
        raise gr.Error(f"A model called {name} is already installed: choose another name.", print_exception=False)
    return out


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
    _lower_training_priority()
    return progress_html(settings.jobs.snapshot()), gr.Timer(active=True)


def _check_runs_quota(settings: Settings) -> None:
    from pix2pix.catalog import runs_dir
    from pix2pix.uploads import folder_size, human_size

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


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_html(state) -> str:
    """A progress bar with step, speed, ETA and the run's latest message."""
    if state.status == "idle":
        return IDLE
    frac = state.step / state.total if state.total else 0.0
    if state.status == "finished":
        frac = 1.0
    facts = [f"step {state.step} / {state.total}" if state.total
             else f"step {state.step} (timing the run)" if state.step else "preparing"]
    if state.status == "running" and state.images_per_s and not state.phase:
        facts.append(f"{state.images_per_s:.1f} images/s")
        if state.eta_s:
            facts.append(f"about {_duration(state.eta_s)} left")
    if state.phase and state.status in ("running", "stopping"):
        facts.append(f"{html.escape(state.phase)}…")  # between steps: no speed or ETA to show
    message = html.escape(state.message)
    if state.status in ("finished", "stopped") and state.model_dir is not None:
        message += f" The model <b>{html.escape(Path(state.run_dir).name)}</b>{_sizes(state)} is now in the model pickers."
    return (
        f'<div class="run-status {state.status}">'
        f'<div class="bar"><div style="width:{100 * frac:.1f}%"></div></div>'
        f"<div><b>{state.status.capitalize()}</b> · {' · '.join(facts)}</div>"
        f"<div>{message}</div></div>"
    )


def _sizes(state) -> str:
    """" (model 27 MB; run folder 190 MB)": what a finished or stopped run takes on disk."""
    from pix2pix.uploads import folder_size, human_size

    model, run = Path(state.model_dir), Path(state.run_dir)
    if not model.is_dir():
        return ""
    return f" (model {human_size(folder_size(model))}; run folder {human_size(folder_size(run))})"


# The loss plot's colours, fixed so that the legend beside it (loss_legend) can name them:
# the plot's own legend sits below the chart and is clipped off.
LOSS_COLOURS = {"G_GAN": "#2563eb", "G_L1": "#ea580c", "D_real": "#16a34a", "D_fake": "#dc2626", "G_FM": "#9333ea"}
LOSS_MEANINGS = {"G_GAN": "generator: fooling D", "G_L1": "generator: distance to the target",
                 "D_real": "discriminator on real pairs", "D_fake": "discriminator on generated pairs",
                 "G_FM": "feature matching (clean recipe)"}


def loss_legend() -> str:
    """HTML: a swatch, the name and a few words for each line of the loss plot."""
    items = "".join(f'<span><i style="background:{LOSS_COLOURS[k]}"></i><b>{k}</b> <small>{LOSS_MEANINGS[k]}</small>'
                    "</span>" for k in ALL_LOSS_NAMES)
    return f'<div class="loss-legend">{items}</div>'


def loss_frame(history: list[dict], max_points: int = 500) -> pd.DataFrame | None:
    """Losses per step in long form, one row per (step, loss), for the line plot; None
    before the first step (an empty frame would leave the plot without its colour scale).
    Long runs are thinned to about ``max_points`` steps: the plot is re-sent every second."""
    history = history[:: -(-len(history) // max_points) or 1]
    rows = [{"step": h["step"], "loss": k, "value": h[k]} for h in history for k in ALL_LOSS_NAMES if k in h]
    return pd.DataFrame(rows) if rows else None


def metrics_text(val: dict) -> str:
    if not val:
        return "Validation metrics appear after the first epoch (when there is a validation split)."
    n = int(val.get("n", 0))
    parts = [f"L1 {val['l1']:.3f}" if "l1" in val else "", f"PSNR {val['psnr']:.1f} dB" if "psnr" in val else "",
             f"SSIM {val['ssim']:.3f}" if "ssim" in val else ""]
    return f"**Validation** ({n} pairs): " + " · ".join(p for p in parts if p)


def _run_view(state, shown_sample: str | None) -> tuple:
    """(loss plot, sample grid, metrics, shown sample) of a run; the grid only when it is not
    the one already shown (the page keeps it between ticks)."""
    sample = str(state.sample) if state.sample else None
    image = gr.skip()
    if sample and sample != shown_sample and Path(sample).is_file():
        with Image.open(sample) as grid:  # a PIL image: gradio serves it from its own cache
            image = grid.convert("RGB")
    return loss_frame(state.history), image, metrics_text(state.val), sample


@user_errors
def poll(settings: Settings, shown_sample: str | None, in_view: bool = True):
    """One timer tick: (progress, loss plot, sample grid, metrics, shown sample, timer, 3 pickers,
    storage usage, storage choices).

    The sample grid is only re-sent when a new one was written; when the run has ended
    the timer stops, the model pickers get the new model and the storage its size. While
    the tab is out of view nothing changes on the page until then: redrawing a plot
    nobody sees costs the browser the CPU a drawing needs. While someone draws (the run
    waits then, see :mod:`pix2pix.priority`) only the progress line is sent.
    """
    from pix2pix.priority import busy

    state = settings.jobs.snapshot()
    ended = state.status in ENDED or state.status == "idle"
    if not in_view and not ended:
        return (gr.skip(),) * 11
    if busy() and not ended:
        return progress_html(state), *(gr.skip(),) * 10
    pickers = (models.refreshed(), models.refreshed(), _init_choices()) if ended else (gr.skip(),) * 3
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


def _init_choices() -> gr.Dropdown:
    return gr.Dropdown(choices=[SCRATCH, *models.choices(models.available())])


@user_errors
def open_tab(settings: Settings):
    """Page load: (data folders, start-from choices, progress, loss plot, sample grid, metrics,
    shown sample, timer, storage usage, storage choices) — the latest run, in progress or
    ended since the server started, is shown again as the page left it."""
    state = settings.jobs.snapshot()
    view = _run_view(state, None) if state.status != "idle" else (None, None, "", None)
    return (gr.Dropdown(choices=data_folders(settings)), _init_choices(), progress_html(state), *view,
            gr.Timer(AWAY_POLL_S, active=settings.jobs.running), *storage(settings))  # the page opens on Draw


# ---------------------------------------------------------------------------- storage


def _places(settings: Settings) -> dict[str, Path]:
    """Where deletable things live, by kind: kept uploads and run folders (never weights/)."""
    from pix2pix.catalog import runs_dir

    return {"upload": settings.uploads, "run": runs_dir()}


def _age(seconds: float) -> str:
    return "just now" if seconds < 60 else f"{_duration(seconds)} ago"


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved)."""
    path, folder = Path(path).resolve(), Path(folder).resolve()
    return path == folder or folder in path.parents


def limits_text(settings: Settings) -> str:
    """The upload and storage limits, as the tab states them."""
    from pix2pix.uploads import MAX_ZIP_BYTES, MAX_ZIP_FILES, UNUSED_AFTER_S, human_size

    return (f"A .zip may be up to {settings.max_zip_mb:,} MB and unpack to {human_size(MAX_ZIP_BYTES)} in "
            f"{MAX_ZIP_FILES:,} files. Uploads are kept within {human_size(settings.upload_quota)}: beyond it the "
            f"oldest, unused for {UNUSED_AFTER_S // 60} minutes, make room. Runs are kept within "
            f"{human_size(settings.runs_quota)}: beyond it no new run starts.")


def run_facts(run: Path) -> str:
    """What tells one fine-tuned model from another: "540 steps · val L1 0.142" ("" if the
    run has no model yet)."""
    from pix2pix.catalog import ModelNotFound, read_config

    try:
        info = read_config(run / "model")[1]
    except (ModelNotFound, OSError, ValueError):  # no model yet, or not a run at all
        return ""
    l1 = info.extra.get("val_l1")
    return f"{info.steps} steps" + (f" · val L1 {l1:.3f}" if isinstance(l1, (int, float)) else "")


def _choices(kind: str, found: list, now: float) -> list[tuple[str, str]]:
    """Storage choices for the entries of one kind; a run with a model and checkpoints also
    offers its checkpoints alone (what resuming needs, most of its size)."""
    from pix2pix.uploads import folder_size, human_size

    choices = []
    for e in reversed(found):
        if kind == "run" and not e.path.is_dir():
            continue  # a stray file among the runs (a log, .DS_Store): not a run to offer
        facts = run_facts(e.path) if kind == "run" else ""
        label = " · ".join(x for x in (kind, e.name, facts, human_size(e.size), _age(now - e.mtime)) if x)
        choices.append((label, f"{kind}/{e.name}"))
        if kind == "run" and facts and (e.path / "checkpoints").is_dir():
            size = human_size(folder_size(e.path / "checkpoints"))
            choices.append((f"checkpoints of {e.name} · {size} · the model stays", f"checkpoints/{e.name}"))
    return choices


def storage(settings: Settings):
    """(usage line, choices of what can be deleted) for the Storage section."""
    from pix2pix.uploads import entries, folder_size, human_size

    quotas = {"upload": settings.upload_quota, "run": settings.runs_quota}
    parts, choices, now = [], [], time.time()
    for kind, folder in _places(settings).items():
        found = entries(folder)
        used = folder_size(folder)
        parts.append(f"**{kind.capitalize()}s** {human_size(used)} of {human_size(quotas[kind])} ({len(found)})")
        choices += _choices(kind, found, now)
    return " · ".join(parts), gr.Dropdown(choices=choices, value=None)


def _target(settings: Settings, choice: str | None) -> tuple[str, Path]:
    """(kind, path) of a Storage choice; refuses what is in use by the running run."""
    kind, _, name = (choice or "").partition("/")
    places = _places(settings)
    if kind not in (*places, "checkpoints") or not name:
        raise gr.Error("Choose an upload or a run first.", print_exception=False)
    path = places["run"] / name / "checkpoints" if kind == "checkpoints" else places[kind] / name
    if settings.jobs.running:
        busy = settings.jobs.snapshot().run_dir if kind != "upload" else settings.training_data
        if busy is not None and (_inside(busy, path) or _inside(path, busy)):
            raise gr.Error(f"{name} is in use by the run in progress: stop it first.", print_exception=False)
    return kind, path


QUESTION_END = {"run": "Its model leaves the model pickers.", "upload": "Runs trained on it keep their models.",
                "checkpoints": "Its model stays in the model pickers, but the run can no longer be resumed."}


@user_errors
def ask_delete(settings: Settings, choice: str | None):
    """Delete…: (the question, the confirmation row shown, the rename row hidden)."""
    from pix2pix.uploads import folder_size, human_size

    kind, path = _target(settings, choice)
    if not path.exists():
        raise gr.Error(f"{path.name} is already gone.", print_exception=False)
    what = f"the {kind} **{html.escape(path.name)}**" if kind != "checkpoints" else \
        f"the checkpoints of **{html.escape(path.parent.name)}**"
    question = f"Delete {what} ({human_size(folder_size(path))}) for good? {QUESTION_END[kind]}"
    return question, gr.Row(visible=True), gr.Row(visible=False)


@user_errors
def delete(settings: Settings, choice: str | None, checked: str | None):
    """Yes, delete: (usage, choices, confirmation row hidden, data folders, data summary,
    checked folder, 3 model pickers)."""
    from pix2pix.uploads import human_size, remove

    kind, path = _target(settings, choice)
    freed = remove(path.parent, path.name)
    what = f"the {kind} {path.name}" if kind != "checkpoints" else f"the checkpoints of {path.parent.name}"
    gr.Info(f"Deleted {what} ({human_size(freed)}).")
    gone = checked is not None and _inside(checked, path)
    data = (NO_DATA, None) if gone else (gr.skip(), gr.skip())
    pickers = (models.refreshed(), models.refreshed(), _init_choices()) if kind == "run" else (gr.skip(),) * 3
    return (*storage(settings), gr.Row(visible=False), gr.Dropdown(choices=data_folders(settings)), *data, *pickers)


# ---------------------------------------------------------------------------- renaming a run


@user_errors
def ask_rename(settings: Settings, choice: str | None):
    """Rename…: (the new-name box, filled with the current name; its row shown; the delete
    question hidden)."""
    kind, path = _target(settings, choice)
    if kind != "run":
        raise gr.Error("Only a run (and its model) can be renamed: choose a run.", print_exception=False)
    return gr.Textbox(value=path.name), gr.Row(visible=True), gr.Row(visible=False)


@user_errors
def rename(settings: Settings, choice: str | None, new_name: str):
    """Rename: the run folder moves to its new name (one rename: the run can still be
    resumed) and its model says the new name. (usage, choices, rename row hidden, 3 model
    pickers)."""
    import json

    from pix2pix.catalog import CONFIG_FILE
    from pix2pix.imaging import atomic_write_bytes

    kind, path = _target(settings, choice)
    if kind != "run":
        raise gr.Error("Only a run (and its model) can be renamed: choose a run.", print_exception=False)
    if (new_name or "").strip() == path.name:
        return gr.skip(), gr.skip(), gr.Row(visible=False), *(gr.skip(),) * 3
    out = _run_dir(new_name)
    os.rename(path, out)
    config = out / "model" / CONFIG_FILE
    if config.is_file():
        data = json.loads(config.read_text())
        data.setdefault("info", {})["name"] = out.name
        atomic_write_bytes(config, (json.dumps(data, indent=2) + "\n").encode())
    gr.Info(f"Renamed the run {path.name} to {out.name}.")
    pickers = (models.refreshed(), models.refreshed(), _init_choices())
    return *storage(settings), gr.Row(visible=False), *pickers
