"""Plain HTTP routes beside Gradio's queue: ``POST /api/v1/generate`` (the generate API as one
request) and the Draw tab's own path from canvas to result (a WebSocket, and ``POST
/api/v1/draw`` where that cannot open).

Why: a request through Gradio's queue (join, event stream, result file, fetch) costs tens of
milliseconds of server CPU before the model runs; an endpoint that does nothing peaked at
14.35 requests/s on the project's 2-core box, below what the model itself serves with
batching. This route takes the same arguments, runs the same checks (each bad one gets its own
sentence) and the same path to the model (``handlers.api_generate``, concurrent requests
batched), and answers with the PNG itself, or ``{"error": sentence}`` and status 400.

    curl -F sketch=@shoe.png -F seed=-1 http://127.0.0.1:7860/api/v1/generate -o result.png

Fields: ``sketch`` (file, required), ``model`` (a name; empty: the app's default), ``seed``
(-1 or none: deterministic; 0 to SEED_MAX: a variation), ``hints`` (file, for hint models),
``what`` (for a class model, what the sketch shows: one of its classes; empty: it guesses).
With ``--auth`` the route asks for the same logins, as HTTP Basic authentication.

The page's canvas sends its drawings over a WebSocket, ``/api/v1/draw/socket`` (one per page),
or where that cannot open, posts each one to ``/api/v1/draw``. Both carry the same JSON: ``png``
and ``hints`` as the canvas's data URLs, ``model``, ``variation``, ``explicit``, ``what``, and ``seq``, the
how-manieth drawing the page sent (and over plain requests ``page``, which page): an older one
still being made for that page stops when a newer one comes, answered with 409. The answer is
the result as the page shows it (JPEG), the status line, and a token for the downloads of the
result (PNG) and of the sketch + result: in ``X-Status`` and ``X-Pair`` of a response, or as a
JSON header in front of the image in one binary message (4-byte length, header, image). A
stroke's result costs the model and one message, not a queue round trip and a file fetch (about
100 ms of the 300 a stroke took through the queue); a message costs the browser about a
millisecond where a request costs five (median round trip of 30 kB on the project's 2-core box,
Chromium: 1.0 against 5.7 ms back to back). Signed-in pages pass Gradio's own login cookie.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import io
import json
import math
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
from fastapi import FastAPI, File, Form, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from . import handlers
from .canvas import MAX_PNG_CHARS
from .errors import user_errors
from .settings import Settings

ROUTE = "/api/v1/generate"
DRAW_ROUTE = "/api/v1/draw"
DRAW_SOCKET = DRAW_ROUTE + "/socket"
PAIRS_KEPT = 32  # recent (model input, result) pairs, for the page's sketch + result download
PAGES_KEPT = 1024  # pages whose newest drawing number is remembered
MAX_MB = 20  # per file, as for the other APIs
CHUNK = 1 << 20
MAX_DRAWING_BYTES = 2 * MAX_PNG_CHARS + 4096  # a drawing and its colour hints as data URLs, and the fields
TOO_LARGE = "The drawing is larger than this canvas can send."
SHOWN_QUALITY = 92  # JPEG quality of the result on the page


def _authorized(request: HTTPConnection, logins: tuple[tuple[str, str], ...]) -> bool:
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


def _signed_in(request: HTTPConnection, app) -> bool:
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


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _shown_bytes(image: Image.Image) -> bytes:
    """The result as the page shows it: JPEG at a quality that looks the same, without colour
    subsampling (sharp colour edges stay sharp), in a seventh of PNG's time and a quarter of
    its bytes; the download button fetches the PNG (``/api/v1/draw/result/{token}``)."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=SHOWN_QUALITY, subsampling=0)
    return buf.getvalue()


def _png(image: Image.Image, headers: dict | None = None) -> Response:
    return Response(_png_bytes(image), media_type="image/png", headers=headers)


def _drawing(text: str) -> dict:
    """The page's JSON object; a sentence for anything else."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise gr.Error("The drawing could not be read.", print_exception=False)
    return value


def _seq(value) -> int | None:
    """Which drawing of its page this is (the page counts them), when the page says."""
    seq = value.get("seq") if isinstance(value, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


def _socket_drawing(text: str) -> tuple[dict | None, str | None]:
    """A message on the draw socket -> (the drawing, None) or (None, the sentence for it)."""
    if len(text) > MAX_DRAWING_BYTES:
        return None, TOO_LARGE
    try:
        return _drawing(text), None
    except gr.Error as e:
        return None, str(e.message)


async def _json_body(request: Request, limit: int) -> dict:
    """The request's JSON object, read up to ``limit`` bytes; a sentence for anything else."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise gr.Error(TOO_LARGE, print_exception=False)
    return _drawing(body)


def _answer(value: dict, default_model: str, stop) -> tuple[int, dict, bytes]:
    """One drawing from the page (the JSON both paths carry) -> (HTTP status, fields, body),
    on a worker thread: 200 and the result as shown (JPEG), 204 (nothing to show: the fields' status
    line says why), 409 (``stop()`` is true: the page has drawn again and no longer waits for
    this), or 400 and the error's sentence. The fields hold the status line, the (model input,
    result) pair and where the time went (ms: the drawing's result, its encoding)."""
    start = time.perf_counter()
    canvas = {"png": value.get("png"), "hints": value.get("hints"), "what": value.get("what")}
    try:
        result, status, last = handlers.draw(canvas, value.get("model") or default_model, value.get("variation"),
                                             explicit=bool(value.get("explicit")), stop=stop)
    except gr.Error as e:
        return (409, {}, b"") if stop is not None and stop() else (400, {"error": str(e.message)}, b"")
    if result is None:
        return 204, {"status": status}, b""
    drawn = time.perf_counter()
    body = _shown_bytes(result)
    timing = {"draw": (drawn - start) * 1000, "png": (time.perf_counter() - drawn) * 1000}
    return 200, {"status": status, "pair": last, "timing": timing}, body


class _DrawRoutes:
    """The Draw tab's routes, and what they keep: the latest (model input, result) pairs by
    random token, for the page's downloads; and the newest drawing number each page has sent,
    so that an older one still being made can stop (see ``Sketch2Image.run``): a page that has
    drawn again no longer wants it."""

    def __init__(self, app: FastAPI, settings: Settings):
        self.app, self.settings = app, settings
        self.pairs, self.latest = _Recent(PAIRS_KEPT), _Recent(PAGES_KEPT)

    def remember(self, pair) -> str:
        token = secrets.token_urlsafe(12)
        self.pairs.update(token, lambda _: pair)
        return token

    def stale(self, page: str, seq: int) -> bool:
        return self.latest.get(page, seq) > seq

    def allowed(self, connection: HTTPConnection) -> bool:
        auth = self.settings.auth
        return not auth or _signed_in(connection, self.app) or _authorized(connection, auth)

    async def post(self, request: Request):
        if not self.allowed(request):
            return _error("Sign in to draw.", 401)
        stop, start = None, time.perf_counter()
        try:
            value = await _json_body(request, MAX_DRAWING_BYTES)
        except gr.Error as e:
            return _error(str(e.message))
        read = time.perf_counter()
        page, seq = str(value.get("page") or "")[:64], _seq(value)
        if page and seq is not None:
            self.latest.update(page, lambda newest: seq if newest is None else max(newest, seq))
            stop = partial(self.stale, page, seq)
        code, fields, body = await run_in_threadpool(_answer, value, self.settings.default_model, stop)
        if code in (400, 409):
            return _error(fields["error"]) if code == 400 else Response(status_code=409)
        headers = {"X-Status": quote(fields["status"]), "Cache-Control": "no-store"}
        if code == 204:
            return Response(status_code=204, headers=headers)
        # Where the server's time went, for the browser's own timing of the request (and
        # scripts/bench_stroke.py): the body read, the drawing's result, its encoding.
        timing = {"read": (read - start) * 1000, **fields["timing"]}
        headers["Server-Timing"] = ", ".join(f"{name};dur={ms:.1f}" for name, ms in timing.items())
        return Response(body, media_type="image/jpeg", headers={**headers, "X-Pair": self.remember(fields["pair"])})

    async def socket(self, socket: WebSocket):
        """The same drawings and answers over one connection per page: each message costs the
        browser about a millisecond where a request costs five (see the module's docstring)."""
        if not self.allowed(socket):
            await socket.close(code=1008, reason="Sign in to draw.")
            return
        await socket.accept()
        newest, sending, running = [0], asyncio.Lock(), set()
        try:
            while True:
                value, error = _socket_drawing(await socket.receive_text())
                seq = _seq(value)
                seq = newest[0] + 1 if seq is None else seq
                newest[0] = max(newest[0], seq)
                task = asyncio.create_task(self._answer_on(socket, sending, value, seq, error,
                                                           lambda seq=seq: newest[0] > seq))
                running.add(task)
                task.add_done_callback(running.discard)
        except (WebSocketDisconnect, RuntimeError, KeyError):
            pass  # the page has closed, or sent something that is not text
        finally:
            newest[0] = math.inf  # whatever is still being made for this page stops

    async def _answer_on(self, socket: WebSocket, sending: asyncio.Lock, value: dict | None, seq: int,
                         error: str | None, stop) -> None:
        """One drawing's answer as one binary message: 4-byte length, JSON header, image."""
        if error is None:
            code, fields, body = await run_in_threadpool(_answer, value, self.settings.default_model, stop)
        else:
            code, fields, body = 400, {"error": error}, b""
        if code == 200:
            fields["pair"] = self.remember(fields["pair"])
        header = json.dumps({"seq": seq, "code": code, **fields}).encode()
        async with sending:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the page has gone meanwhile
                await socket.send_bytes(len(header).to_bytes(4, "big") + header + body)

    def kept(self, request: Request, token: str, make, filename: str):
        """A download of a kept pair: ``make(pair)`` as PNG."""
        if not self.allowed(request):
            return _error("Sign in to download.", 401)
        found = self.pairs.get(token)
        if found is None:
            return _error("That result is no longer kept: draw again, then download.", 404)
        return _png(make(found), {"Content-Disposition": f'attachment; filename="{filename}"'})


def _mount_draw(app: FastAPI, settings: Settings) -> None:
    routes = _DrawRoutes(app, settings)
    app.post(DRAW_ROUTE)(routes.post)
    app.websocket(DRAW_SOCKET)(routes.socket)

    @app.get(DRAW_ROUTE + "/pair/{token}")
    def pair(request: Request, token: str):
        from pix2pix.images.imaging import sample_grid

        return routes.kept(request, token, lambda found: sample_grid([found]), "sketch_and_result.png")

    @app.get(DRAW_ROUTE + "/result/{token}")
    def result(request: Request, token: str):
        """The result alone as PNG, for the download button (the page shows a JPEG)."""
        return routes.kept(request, token, lambda found: found[1], "result.png")


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the routes to the app's web server (the one Gradio's ``launch`` started)."""
    _mount_draw(app, settings)

    @app.post(ROUTE)
    def generate(request: Request, sketch: UploadFile | None = File(None), model: str = Form(""),
                 seed: str = Form(""), hints: UploadFile | None = File(None), what: str = Form("")):
        if not _authorized(request, settings.auth):
            return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="pix2pix"'})
        if int(request.headers.get("content-length") or 0) > (2 * MAX_MB + 1) * CHUNK:
            return _error(f"The request is larger than {2 * MAX_MB} MB: a sketch and its hints are {MAX_MB} MB each at most.", 413)
        folder = Path(tempfile.mkdtemp(prefix="pix2pix-rest-"))
        try:
            sketch_path = _save(sketch, folder, "sketch")
            hints_path = _save(hints, folder, "hints")
            result = user_errors(handlers.api_image)(sketch_path, model, seed, hints_path, what,
                                                     default=settings.default_model, max_mb=MAX_MB)
            return _png(result)
        except gr.Error as e:
            return _error(str(e.message))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
