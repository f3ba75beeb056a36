"""Plain HTTP routes beside Gradio's queue: ``POST /api/v1/generate`` (the generate API as one
request) and ``POST /api/v1/draw`` (the Draw tab's own path from canvas to result).

Why: a request through Gradio's queue (join, event stream, result file, fetch) costs tens of
milliseconds of server CPU before the model runs; an endpoint that does nothing peaked at
14.35 requests/s on the project's 2-core box, below what the model itself serves with
batching. This route takes the same arguments, runs the same checks (each bad one gets its own
sentence) and the same path to the model (``handlers.api_generate``, concurrent requests
batched), and answers with the PNG itself, or ``{"error": sentence}`` and status 400.

    curl -F sketch=@shoe.png -F seed=-1 http://127.0.0.1:7860/api/v1/generate -o result.png

Fields: ``sketch`` (file, required), ``model`` (a name; empty: the app's default), ``seed``
(-1 or none: deterministic; 0 to SEED_MAX: a variation), ``hints`` (file, for hint models).
With ``--auth`` the route asks for the same logins, as HTTP Basic authentication.

The page's canvas posts its drawing to ``/api/v1/draw`` (JSON: ``png`` and ``hints`` as the
canvas's data URLs, ``model``, ``variation``, ``explicit``, and ``page`` and ``seq``: which
page, and the how-manieth drawing it sent; an older one still being made for that page stops
when a newer one comes, answered with 409) and shows the PNG that comes
back, with the status line in ``X-Status`` and a token for the sketch + result download in
``X-Pair``: a stroke's result costs the model and one request, not a queue round trip and a
file fetch (about 100 ms of the 300 a stroke took through the queue). Signed-in pages pass
Gradio's own login cookie.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import json
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from functools import partial
from pathlib import Path
from urllib.parse import quote

import gradio as gr
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool

from . import handlers
from .canvas import MAX_PNG_CHARS
from .errors import user_errors
from .settings import Settings

ROUTE = "/api/v1/generate"
DRAW_ROUTE = "/api/v1/draw"
PAIRS_KEPT = 32  # recent (model input, result) pairs, for the page's sketch + result download
PAGES_KEPT = 1024  # pages whose newest drawing number is remembered
MAX_MB = 20  # per file, as for the other APIs
CHUNK = 1 << 20


def _authorized(request: Request, logins: tuple[tuple[str, str], ...]) -> bool:
    if not logins:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    return any(hmac.compare_digest(user, u) and hmac.compare_digest(password, p) for u, p in logins)


def _signed_in(request: Request, app) -> bool:
    """The page's own requests carry Gradio's login cookie (the one ``launch(auth=...)`` sets)."""
    tokens = getattr(app, "tokens", None) or {}
    cookie_id = getattr(app, "cookie_id", "")
    return any(request.cookies.get(f"access-token{kind}-{cookie_id}") in tokens for kind in ("", "-unsecure"))


def _save(upload: UploadFile | None, folder: Path, field: str) -> Path | None:
    """The uploaded file, copied to ``folder`` under its own (base) name, at most MAX_MB."""
    if upload is None:
        return None
    name = Path(upload.filename or field).name or field
    path = folder / field / name
    path.parent.mkdir()
    copied = 0
    with open(path, "wb") as out:
        while chunk := upload.file.read(CHUNK):
            copied += len(chunk)
            if copied > MAX_MB * CHUNK:
                raise gr.Error(f"{name} is larger than {MAX_MB} MB, the limit for {field}.", print_exception=False)
            out.write(chunk)
    return path


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _Recent:
    """A thread-safe mapping that keeps its ``size`` most recently set keys."""

    def __init__(self, size: int):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def update(self, key, new):
        """Set ``key`` to ``new(old value or None)``, atomically; returns the new value."""
        with self._lock:
            value = self._items[key] = new(self._items.pop(key, None))
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return value

    def get(self, key, default=None):
        with self._lock:
            return self._items.get(key, default)


def _png(image: Image.Image, headers: dict | None = None) -> Response:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return Response(buf.getvalue(), media_type="image/png", headers=headers)


async def _json_body(request: Request, limit: int) -> dict:
    """The request's JSON object, read up to ``limit`` bytes; a sentence for anything else."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise gr.Error("The drawing is larger than this canvas can send.", print_exception=False)
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise gr.Error("The drawing could not be read.", print_exception=False)
    return value


def _mount_draw(app: FastAPI, settings: Settings) -> None:
    # The latest (model input, result) pairs by random token, for the page's side-by-side
    # download; and the newest drawing number each page has sent, so that an older one still
    # being made can stop (see ``Sketch2Image.run``): a page that has drawn again no longer wants it.
    pairs, latest = _Recent(PAIRS_KEPT), _Recent(PAGES_KEPT)

    def remember(pair) -> str:
        token = secrets.token_urlsafe(12)
        pairs.update(token, lambda _: pair)
        return token

    def stale(page: str, seq: int) -> bool:
        return latest.get(page, seq) > seq

    def allowed(request: Request) -> bool:
        return not settings.auth or _signed_in(request, app) or _authorized(request, settings.auth)

    @app.post(DRAW_ROUTE)
    async def draw(request: Request):
        if not allowed(request):
            return _error("Sign in to draw.", 401)
        stop, start = None, time.perf_counter()
        try:
            value = await _json_body(request, 2 * MAX_PNG_CHARS + 4096)
            read = time.perf_counter()
            canvas = {"png": value.get("png"), "hints": value.get("hints")}
            page, seq = str(value.get("page") or "")[:64], value.get("seq")
            if page and isinstance(seq, int) and not isinstance(seq, bool):
                latest.update(page, lambda newest: seq if newest is None else max(newest, seq))
                stop = partial(stale, page, seq)
            result, status, last = await run_in_threadpool(
                handlers.draw, canvas, value.get("model") or settings.default_model, value.get("variation"),
                explicit=bool(value.get("explicit")), stop=stop)
        except gr.Error as e:
            if stop is not None and stop():
                return Response(status_code=409)  # the page has drawn again and no longer waits for this
            return _error(str(e.message))
        drawn = time.perf_counter()
        headers = {"X-Status": quote(status), "Cache-Control": "no-store"}
        if result is None:
            return Response(status_code=204, headers=headers)
        response = await run_in_threadpool(_png, result, {**headers, "X-Pair": remember(last)})
        # Where the server's time went, for the browser's own timing of the request (and
        # scripts/bench_stroke.py): the body read, the drawing's result, the PNG.
        response.headers["Server-Timing"] = ", ".join(f"{name};dur={ms * 1000:.1f}" for name, ms in (
            ("read", read - start), ("draw", drawn - read), ("png", time.perf_counter() - drawn)))
        return response

    @app.get(DRAW_ROUTE + "/pair/{token}")
    def pair(request: Request, token: str):
        if not allowed(request):
            return _error("Sign in to download.", 401)
        found = pairs.get(token)
        if found is None:
            return _error("That result is no longer kept: draw again, then download.", 404)
        from pix2pix.imaging import sample_grid

        return _png(sample_grid([found]), {"Content-Disposition": 'attachment; filename="sketch_and_result.png"'})


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the routes to the app's web server (the one Gradio's ``launch`` started)."""
    _mount_draw(app, settings)

    @app.post(ROUTE)
    def generate(request: Request, sketch: UploadFile | None = File(None), model: str = Form(""),
                 seed: str = Form(""), hints: UploadFile | None = File(None)):
        if not _authorized(request, settings.auth):
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="pix2pix"'})
        if int(request.headers.get("content-length") or 0) > (2 * MAX_MB + 1) * CHUNK:
            return _error(f"The request is larger than {2 * MAX_MB} MB: a sketch and its hints are {MAX_MB} MB each at most.", 413)
        folder = Path(tempfile.mkdtemp(prefix="pix2pix-rest-"))
        try:
            sketch_path = _save(sketch, folder, "sketch")
            hints_path = _save(hints, folder, "hints")
            result = user_errors(handlers.api_image)(sketch_path, model, seed, hints_path,
                                                     default=settings.default_model, max_mb=MAX_MB)
            return _png(result)
        except gr.Error as e:
            return _error(str(e.message))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
