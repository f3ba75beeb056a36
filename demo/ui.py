"""The page: a header, the Draw, Upload and Fine-tune tabs, and the API endpoints."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import gradio as gr

from . import handlers
from .settings import Settings
from .tabs import INFERENCE, draw, finetune, upload

TITLE = "pix2pix sketch studio"
CSS = (Path(__file__).parent / "style.css").read_text()
THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")
# Gradio 6 takes the look at launch(); tests and app.py both pass these.
LAUNCH_OPTIONS = {"theme": THEME, "css": CSS, "footer_links": ["api"], "ssr_mode": False}


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """The whole app, not yet launched. Nothing here loads torch or a model."""
    settings = settings or Settings()
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\nDraw an outline and watch a model turn it into a picture, upload a sketch, "
            "or teach a model your own pairs.",
            elem_id="header",
        )
        with gr.Tabs(selected="draw"):
            pickers = [draw.build(demo, settings), upload.build(demo, settings)]
            finetune.build(demo, settings, pickers)
        _api(settings)
    return demo


def _api(settings: Settings) -> None:
    """``/generate`` and ``/list_models`` for gradio_client; the page's own events are private."""
    with gr.Column(visible=False):
        sketch = gr.File(label="sketch")  # any image file; the handler says what is wrong with others
        model = gr.Textbox(label="model", info="a name from /list_models; empty: the default model")
        seed = gr.Number(label="seed", value=-1, precision=0, info="-1: deterministic; N >= 0: a variation")
        image = gr.Image(label="image", type="pil", format="png")
        button = gr.Button()
    button.click(
        partial(handlers.api_generate, default=settings.default_model, max_mb=settings.max_sketch_mb),
        [sketch, model, seed], image, api_name="generate", **INFERENCE,
    )
    gr.api(handlers.api_list_models, api_name="list_models")
