"""The examples gallery: sketches in ``demo/examples/``, each tied to a model by its name.

``fashion_shoe.png`` belongs to the model ``fashion``; picking it selects that model (if
installed) before the sketch is loaded into the canvas. Any PNG dropped into the folder
shows up; a name without a known model prefix keeps the current model. A transparent
``fashion_shoe.hints.png`` beside it holds colour hints, loaded into the canvas's colour
layer for a model that takes them.
"""

from __future__ import annotations

import base64
from pathlib import Path

import gradio as gr

from . import models
from .canvas import PNG_PREFIX
from .errors import user_errors


HINTS_SUFFIX = ".hints.png"


def list_examples(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).glob("*.png") if not p.name.startswith(".") and not p.name.endswith(HINTS_SUFFIX))


def hints_of(path: Path) -> Path:
    """Where an example's colour hints would be."""
    return Path(path).with_name(Path(path).stem + HINTS_SUFFIX)


def _data_url(path: Path) -> str:
    return PNG_PREFIX + base64.b64encode(path.read_bytes()).decode("ascii")


def model_of(path: Path) -> str:
    """The model an example was drawn for: its name up to the first underscore."""
    return Path(path).stem.split("_", 1)[0]


def caption(path: Path) -> str:
    stem = Path(path).stem
    model, _, what = stem.partition("_")
    return f"{what.replace('_', ' ')} ({model})" if what else stem


def items(examples: list[Path]) -> list[tuple[str, str]]:
    return [(str(p), caption(p)) for p in examples]


SHOWCASE = {"fashion": "fashion_red_sneaker", "facades": "facades_classic"}  # what each shipped model opens with


def showcase(examples: list[Path], model: str | None) -> tuple[str, str | None] | None:
    """The example a page opens with for ``model``, as (drawing, colour hints) data URLs: its
    chosen showcase, else its first example with colours, else its first; None without one."""
    own = [p for p in examples if model_of(p) == model]
    if not own:
        return None
    chosen = next((p for p in own if p.stem == SHOWCASE.get(model)), None) or \
        next((p for p in own if hints_of(p).is_file()), own[0])
    return _data_url(chosen), _data_url(hints_of(chosen)) if hints_of(chosen).is_file() else None


def loader(examples: list[Path]):
    """The gallery's select handler for these examples (a closure: gradio finds the
    ``gr.SelectData`` parameter by its type hint, which a ``partial`` would hide)."""

    @user_errors
    def load(current: str | None, evt: gr.SelectData):
        """A pick: (canvas holding the sketch, picker, description). The canvas sends the
        sketch back like a stroke, which generates the result."""
        path = examples[evt.index]
        entries = models.available()
        own, picked = models.find(entries, model_of(path)), models.find(entries, current)
        # The model picked stays when it takes this kind of drawing (a fine-tuned fashion model
        # and a fashion example); otherwise the example's own model is picked for it.
        same_kind = own is not None and picked is not None and \
            models.canvas(own)["setup"]["key"] == models.canvas(picked)["setup"]["key"]
        entry = picked if same_kind else own or picked
        hints = _data_url(hints_of(path)) if hints_of(path).is_file() else None
        picker = gr.Dropdown(value=entry.name) if entry is not None else gr.Dropdown()
        return models.canvas(entry, _data_url(path), hints), picker, models.describe(entry)

    return load
