"""``POST /api/v1/generate``: the generate API as one plain HTTP request, beside Gradio's queue.

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
"""

from __future__ import annotations

import base64
import binascii
import hmac
import io
import shutil
import tempfile
from pathlib import Path

import gradio as gr
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from . import handlers
from .errors import user_errors
from .settings import Settings

ROUTE = "/api/v1/generate"
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


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the route to the app's web server (the one Gradio's ``launch`` started)."""

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
            png = io.BytesIO()
            result.save(png, format="PNG", compress_level=1)
            return Response(png.getvalue(), media_type="image/png")
        except gr.Error as e:
            return _error(str(e.message))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
