"""Fine-tune tab: what uploads and runs take on disk, and deleting or renaming them."""

from __future__ import annotations

import html
import os
import re
import time
from pathlib import Path

import gradio as gr

from . import models
from .errors import user_errors
from .settings import Settings
from .training_data import NO_DATA, data_folders
from .training_view import _duration

RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


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
    from demo.uploads import MAX_ZIP_BYTES, MAX_ZIP_FILES, UNUSED_AFTER_S, human_size

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
    from demo.uploads import folder_size, human_size

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
    from demo.uploads import entries, folder_size, human_size

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
    from demo.uploads import folder_size, human_size

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
    from demo.uploads import human_size, remove

    kind, path = _target(settings, choice)
    freed = remove(path.parent, path.name)
    what = f"the {kind} {path.name}" if kind != "checkpoints" else f"the checkpoints of {path.parent.name}"
    gr.Info(f"Deleted {what} ({human_size(freed)}).")
    gone = checked is not None and _inside(checked, path)
    data = (NO_DATA, None) if gone else (gr.skip(), gr.skip())
    pickers = (models.refreshed(), models.refreshed(), models.init_choices()) if kind == "run" else (gr.skip(),) * 3
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
    from pix2pix.images.imaging import atomic_write_bytes

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
    pickers = (models.refreshed(), models.refreshed(), models.init_choices())
    return *storage(settings), gr.Row(visible=False), *pickers
