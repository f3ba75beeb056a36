"""Fine-tune tab: the data a run will read, found on the server or unpacked from an upload,
and checked before a run may start."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import gradio as gr

from .errors import in_the_apps_words, user_errors
from .settings import Settings

NO_DATA = "Choose a data folder or upload a .zip, then press **Check data**."


def _roots(settings: Settings) -> list[Path]:
    """Where server folders may come from: the allowed roots and earlier uploads."""
    return [*settings.data_roots, settings.uploads]


def data_folders(settings: Settings) -> list[tuple[str, str]]:
    """(label, path) of every folder directly under an allowed root, and of earlier uploads;
    an upload whose files all sit in one folder (a zipped folder) is offered from inside it."""
    found = []
    for root in _roots(settings):
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if folder.is_dir() and not folder.name.startswith(".") and folder != settings.uploads:
                inner = _single_folder(folder) if root == settings.uploads else None
                found.append((f"{root.name}/{folder.name}" + (f"/{inner.name}" if inner else ""), str(inner or folder)))
    return found


def _single_folder(folder: Path) -> Path | None:
    """The one folder inside ``folder`` when there is nothing else (hidden files aside)."""
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return None
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else None


def _summary(result) -> str:
    """Markdown: the layout and counts :func:`pix2pix.training.data.scan` found, and what it skipped."""
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
    """(summary, checked folder, run name, the model to start from) of a data folder."""
    from pix2pix.training.mix import scan_data

    from .models import fitting

    result = scan_data(folder, outlines=bool(photos_only))
    kind = "labels" if result.labels else "sketch"
    return _summary(result), str(folder), _suggest_name(folder, name or ""), gr.Dropdown(value=fitting(kind))


def _refused(message: str, name: str):
    """A check that failed: its sentence in the summary, every control left as it was and usable."""
    return f"⚠ {html.escape(in_the_apps_words(message))}", None, name, gr.skip()


@user_errors
def check_folder(settings: Settings, path: str | None, photos_only: bool, name: str):
    """Check data: (summary, checked folder, run name, start model) for a folder on the server."""
    from pix2pix.errors import Pix2PixError

    from demo.uploads import resolve_data_folder

    if not path:
        return NO_DATA, None, name, gr.skip()
    try:
        return _checked(resolve_data_folder(path, _roots(settings)), photos_only, name)
    except Pix2PixError as e:
        return _refused(str(e), name)


def _upload_name(zip_path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", zip_path.stem).strip("-._")[:64] or "upload"
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def _extract(settings: Settings, zip_path: Path) -> Path:
    """The zip extracted into the uploads folder, within its quota: older unused uploads
    make room, or the upload is refused with the numbers."""
    from demo.uploads import extract_zip, human_size, make_room

    def room(size: int) -> None:
        busy = settings.training_data if settings.jobs.running else None
        removed = make_room(settings.uploads, size, settings.upload_quota, keep=[busy] if busy else [])
        if removed:
            names = ", ".join(e.name for e in removed)
            gr.Info(f"Removed {len(removed)} old upload(s) to make room: {names} "
                    f"({human_size(sum(e.size for e in removed))}).")

    with settings.upload_lock:  # one at a time: the quota is checked against what is on disk
        return extract_zip(zip_path, settings.uploads / _upload_name(zip_path), room=room)
