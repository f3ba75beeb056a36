"""The page: a header, the Draw, Upload and Fine-tune tabs, and the API endpoints."""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import gradio as gr

from . import handlers
from .settings import Settings
from .tabs import draw, finetune, upload

TITLE = "pix2pix sketch studio"
CSS = (Path(__file__).parent / "style.css").read_text()
THEME = gr.themes.Soft(primary_hue="indigo", neutral_hue="slate")
# Gradio 6 takes the look at launch(); tests and app.py both pass these (see launch_options).
# The page's own margins sit outside the content that ``css`` is scoped to: on a phone the
# canvas takes the screen's width (see style.css).
HEAD = "<style>@media (max-width: 640px) { .gradio-container .main.app { padding: 8px !important; } }</style>"
LAUNCH_OPTIONS = {"theme": THEME, "css": CSS, "head": HEAD, "footer_links": ["api"], "ssr_mode": False}
# /generate callers run side by side: each prepares its own image while the model runs the
# others' as batches (pix2pix.inference.batching). The page's own inference events keep their one
# worker, where only a user's latest drawing runs.
API = {"concurrency_id": "api", "concurrency_limit": 16}
QUEUE_OPTIONS = {
    "max_size": 64,
    # Queue positions sent every second instead of to every waiting user after every
    # answer (that is 16 x 16 messages a second with 16 API users).
    "status_update_rate": 1.0,
}


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """The whole app, not yet launched. Nothing here loads torch or a model."""
    settings = settings or Settings()
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\nDraw an outline and watch a model turn it into a picture, upload a sketch, "
            + ("or teach a model your own pairs." if settings.training else "and compare models."),
            elem_id="header",
        )
        with gr.Tabs(selected="draw") as tabs:
            draw_model, canvas = draw.build(demo, settings)
            pickers = [draw_model, upload.build(demo, settings, (canvas, draw_model, tabs))]
            if settings.training:
                finetune.build(demo, settings, pickers, tabs)
        _api(settings)
    return demo


def _api(settings: Settings) -> None:
    """``/generate`` and ``/list_models`` for gradio_client; the page's own events are private."""
    with gr.Column(visible=False):
        sketch = gr.File(label="sketch")  # any image file; the handler says what is wrong with others
        model = gr.Textbox("", label="model", info="a name from /list_models; empty: the default model")
        # No rounding or bounds here: gradio would answer a wrong type with a bare error;
        # the handler checks the value and names the parameter.
        seed = gr.Number(label="seed", value=-1, precision=None, info=handlers.SEED_RULE)
        hints = gr.File(None, label="hints", file_types=[".png", ".webp"])
        what = gr.Textbox("", label="what", info="for a class model (see /list_models), what the sketch shows; "
                                                 "empty: the model guesses")
        image = gr.Image(label="image", type="filepath", format="png")
        button = gr.Button()
    button.click(
        partial(handlers.api_generate, default=settings.default_model, max_mb=settings.max_sketch_mb),
        [sketch, model, seed, hints, what], image, api_name="generate", **API,
    )
    gr.api(handlers.api_list_models, api_name="list_models")


# ---------------------------------------------------------------------------- launch


class UploadSizeGuard:
    """ASGI middleware: only a .zip may be uploaded beyond the sketch limit.

    Gradio has one upload limit for the whole server, which must let the Fine-tune tab's
    zip through; without this, a 1 GB "sketch" sent to /generate would be stored in full
    before its handler could refuse it. The file names in the multipart headers are
    watched as the body streams in, and once the body passes ``max_bytes`` while any part
    is not a .zip, the upload is stopped (HTTP 413) and gradio removes what it had stored.
    """

    FILENAME = re.compile(rb'filename\*?=(?:"([^"\r\n]*)"|([^;\r\n]*))', re.IGNORECASE)

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith("/upload"):
            return await self.app(scope, receive, send)
        seen = {"bytes": 0, "tail": b"", "only_zips": True, "named": False}

        async def guarded():
            message = await receive()
            body = message.get("body", b"") if message["type"] == "http.request" else b""
            if body:
                self._check(seen, body)
            return message

        await self.app(scope, guarded, send)

    def _check(self, seen: dict, body: bytes) -> None:
        window = seen["tail"] + body
        for quoted, bare in self.FILENAME.findall(window):
            seen["named"] = True
            seen["only_zips"] &= (quoted or bare).strip().lower().endswith(b".zip")
        seen["tail"], seen["bytes"] = window[-512:], seen["bytes"] + len(body)
        if seen["bytes"] > self.max_bytes and not (seen["named"] and seen["only_zips"]):
            from starlette.formparsers import MultiPartException

            # Gradio's parser catches this, deletes the partial files and answers 413.
            raise MultiPartException(
                f"File size exceeded maximum allowed size of {self.max_bytes // 2**20} MB for an image; "
                "only a .zip for the Fine-tune tab may be larger."
            )


def launch_options(settings: Settings) -> dict:
    """Everything ``launch()`` needs besides the address: the look, the upload limits and
    the login, from ``settings``."""
    from starlette.middleware import Middleware

    slack = 64 * 1024  # the multipart headers around the file
    guard = Middleware(UploadSizeGuard, max_bytes=settings.max_sketch_mb * 2**20 + slack)
    largest = settings.max_zip_mb if settings.training else settings.max_sketch_mb
    options = {**LAUNCH_OPTIONS, "max_file_size": f"{largest}mb", "app_kwargs": {"middleware": [guard]}}
    if settings.auth:
        options.update(auth=list(settings.auth), auth_message="Sign in to use the pix2pix sketch studio.")
    return options
