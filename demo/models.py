"""The model pickers: which models there are, how to describe them, and the canvas each needs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import gradio as gr

from .errors import user_errors
from .settings import PREFERRED_MODEL

SCRATCH = "(from scratch)"  # the Fine-tune tab's "Start from" choice of no model

if TYPE_CHECKING:
    from pix2pix.config import ModelInfo
    from pix2pix.catalog import ModelEntry

PEN = "#000000"
PEN_SIZE = 6  # line width on the 512 px canvas: what the sketch models are trained on
LABEL_BRUSH_SIZE = 40  # label maps are painted in regions, not lines
NO_MODEL = (
    "No model is installed yet. Put a shipped model in `weights/` (see the README) "
    "or train one in the **Fine-tune** tab."
)
FIRST_LABELS = ("window", "door")  # what a label canvas's brush starts on, when the model has it
KIND_TEXT = {"sketch": "draw outlines", "labels": "paint label colours", "image": "image to image"}


def available() -> list[ModelEntry]:
    """Shipped then fine-tuned models, read from disk on every call (a new run shows up at once)."""
    from pix2pix.catalog import list_models

    return list_models()


def find(entries: list[ModelEntry], name: str | None) -> ModelEntry | None:
    return next((e for e in entries if e.name == name), None)


def pick(entries: list[ModelEntry], wanted: str | None) -> str | None:
    """``wanted`` if installed, else the preferred default, else the first model."""
    names = [e.name for e in entries]
    for name in (wanted, PREFERRED_MODEL):
        if name in names:
            return name
    return names[0] if names else None


def _one_line(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def choices(entries: list[ModelEntry]) -> list[tuple[str, str]]:
    """Dropdown (label, value) pairs: the name and its one-line description; a fine-tuned
    model also says when it was saved, its steps and its validation L1 (what tells apart
    the runs of one data set)."""
    return [(" · ".join(x for x in (_title(e), _facts(e)) if x), e.name) for e in entries]


def _title(e: ModelEntry) -> str:
    return f"{e.name} — {_one_line(e.info.description, 60)}" if e.info.description else e.name


def _facts(e: ModelEntry) -> str:
    """"12 May 14:03 · 540 steps · val L1 0.142" for a fine-tuned model ("" for a shipped one)."""
    if e.shipped:
        return ""
    try:
        saved = time.strftime("%d %b %H:%M", time.localtime((e.path / "model.safetensors").stat().st_mtime))
    except OSError:
        saved = ""
    l1 = e.info.extra.get("val_l1")
    l1 = f"val L1 {l1:.3f}" if isinstance(l1, (int, float)) else ""
    return " · ".join(x for x in (saved, f"{e.info.steps} steps" if e.info.steps else "", l1) if x)


def describe(entry: ModelEntry | None) -> str:
    """Markdown shown beside a picker: what the model is, and its description."""
    if entry is None:
        return NO_MODEL
    origin = "shipped" if entry.shipped else "fine-tuned"
    head = f"**{entry.name}** · {origin} · {KIND_TEXT.get(entry.info.input_kind, entry.info.input_kind)}"
    detail = entry.info.description or (f"Trained on {entry.info.trained_on}" if entry.info.trained_on else "")
    return f"{head}  \n{_one_line(detail, 160)}" if detail else head


def is_labels(info: ModelInfo) -> bool:
    return info.input_kind == "labels" and bool(info.palette)


def hex_color(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def background_color(info: ModelInfo) -> tuple[int, int, int]:
    """The colour a label canvas starts in: the background class, else the first one."""
    by_id = {c.id: c.color for c in info.palette}
    return tuple(by_id.get(info.background_label, info.palette[0].color))


def canvas(entry: ModelEntry | None, image: str | None = None, image_hints: str | None = None) -> dict:
    """The canvas value that sets it up for this model (see :mod:`demo.canvas`).

    Sketch models: a black pen on white. Label models: their class colours, named, as the
    only brushes (starting on "window", the first thing people add to a wall), on a canvas
    filled with the background class, and a result at once (a blank label map is a valid
    input: a bare wall). Models with hint channels also get the colour brush, class models
    the "It shows" picker (Auto, then their classes). ``image`` (a
    data URL) is a picture to start from, such as an example, and ``image_hints`` its colour
    hints (a data URL of a transparent PNG; used by hint models only).
    """
    hints = entry is not None and entry.config.hint_channels > 0
    if entry is None or not is_labels(entry.info):
        setup = {"fill": "#ffffff", "pen": PEN, "size": PEN_SIZE, "palette": [], "hints": hints, "key": "sketch",
                 "model": entry.name if entry is not None else "",
                 "classes": list(entry.config.classes) if entry is not None else []}
        return {"setup": setup, "image": image, "image_hints": image_hints, "generate": image is not None}
    info = entry.info
    fill = hex_color(background_color(info))
    palette = [{"color": hex_color(c.color), "name": c.name} for c in info.palette]
    others = [p for p in palette if p["color"] != fill] or palette
    pen = next((p for p in others if p["name"].lower() in FIRST_LABELS), others[0])["color"]
    key = "labels:" + ",".join(p["color"] for p in palette)  # models with the same classes share a drawing
    setup = {"fill": fill, "pen": pen, "size": LABEL_BRUSH_SIZE, "palette": palette, "hints": hints, "key": key,
             "model": entry.name, "classes": list(entry.config.classes)}
    return {"setup": setup, "image": image, "image_hints": image_hints, "generate": True}


# ---------------------------------------------------------------------------- handlers


def picker(entries: list[ModelEntry], value: str | None) -> gr.Dropdown:
    return gr.Dropdown(choices=choices(entries), value=value)


@user_errors
def open_picker(wanted: str | None):
    """Page load: (picker, description) with the default model selected."""
    entries = available()
    name = pick(entries, wanted)
    return picker(entries, name), describe(find(entries, name))


@user_errors
def open_canvas(wanted: str | None, examples: list | None = None):
    """Page load on the Draw tab: (picker, description, canvas). With ``examples``, the canvas
    opens on the model's showcase example and its result (a drawing kept in the browser from
    an earlier visit wins over it)."""
    from .gallery import showcase

    entries = available()
    entry = find(entries, pick(entries, wanted))
    first = showcase(examples, entry.name) if examples and entry is not None else None
    value = canvas(entry, *first) if first else canvas(entry)
    return picker(entries, entry and entry.name), describe(entry), value | ({"showcase": True} if first else {})


@user_errors
def select_for_canvas(name: str | None):
    """The Draw tab's picker changed: (description, fresh canvas)."""
    entry = find(available(), name)
    return describe(entry), canvas(entry)


@user_errors
def class_picker(name: str | None) -> gr.Radio:
    """The Upload tab's "It shows" for the model picked: its classes and Auto, on Auto;
    hidden for a model that is told none."""
    from .handlers import AUTO

    entry = find(available(), name)
    classes = list(entry.config.classes) if entry is not None else []
    return gr.Radio(choices=[AUTO, *classes], value=AUTO, visible=bool(classes))


@user_errors
def select(name: str | None) -> str:
    """Another tab's picker changed: its description."""
    return describe(find(available(), name))


@user_errors
def refreshed() -> gr.Dropdown:
    """New choices after a run has finished; the selection stays as it is."""
    return gr.Dropdown(choices=choices(available()))


def fitting(input_kind: str, entries: list[ModelEntry] | None = None) -> str:
    """The model a fine-tune of data of ``input_kind`` starts from by default: a shipped model
    that takes that kind (the preferred one first), else the first such model, else scratch."""
    entries = available() if entries is None else entries
    kinds = [e for e in entries if e.info.input_kind == input_kind]
    shipped = [e for e in kinds if e.shipped]
    for group in (shipped, kinds):
        if group:
            return next((e.name for e in group if e.name == PREFERRED_MODEL), group[0].name)
    return SCRATCH


def init_choices(value: str | None = None) -> gr.Dropdown:
    """The Fine-tune tab's "Start from" picker: from scratch, or any model there is; ``value``
    picks one (by default a shipped sketch model: this is a tab for fine-tuning)."""
    entries = available()
    return gr.Dropdown(choices=[SCRATCH, *choices(entries)], value=value or fitting("sketch", entries))
