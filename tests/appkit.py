"""Helpers for the app tests: tiny models, sketches, and the app as a subprocess."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from conftest import ROOT, cli_env, trained_like_generator
from pix2pix.config import LabelClass, ModelConfig, ModelInfo
from pix2pix.catalog import weights_dir
from pix2pix.io import save_pretrained

SKETCH_MODEL = "sketchy"
LABEL_MODEL = "labelly"
HINT_MODEL = "hinty"
# A facades-like palette: the canvas starts in the wall colour, windows and doors go on top.
PALETTE = [
    LabelClass(1, "background", (0, 0, 170)),
    LabelClass(2, "facade", (0, 0, 255)),
    LabelClass(3, "window", (0, 85, 255)),
    LabelClass(4, "door", (170, 255, 85)),
    LabelClass(5, "balcony", (255, 85, 0)),
]


def random_generator(cfg: ModelConfig) -> torch.nn.Module:
    """Random weights whose outputs vary with the input (and the dropout seed) by more than
    uint8 rounding, unlike a fresh init."""
    return trained_like_generator(cfg, var_range=(0.05, 0.3))


def make_models(runs: Path, sketch_ngf: int = 8) -> None:
    """A sketch model and a label-map model in ``runs`` (random weights, 256 px, as the
    app shows them). ``sketch_ngf=32`` matches the shipped fashion model's cost."""
    torch.manual_seed(0)
    cfg = ModelConfig(ngf=sketch_ngf, ndf=8)  # ndf only matters when fine-tuning from it: keep that quick
    info = ModelInfo(name=SKETCH_MODEL, description="Test sketch model", input_kind="sketch")
    save_pretrained(random_generator(cfg), cfg, info, runs / SKETCH_MODEL / "model")
    cfg = ModelConfig(ngf=8, ndf=8)
    info = ModelInfo(name=LABEL_MODEL, description="Test label model", input_kind="labels", palette=PALETTE,
                     background_label=2)
    save_pretrained(random_generator(cfg), cfg, info, runs / LABEL_MODEL / "model")


def make_hint_model(runs: Path) -> None:
    """A sketch model with colour-hint channels (random weights: the hints change its output)."""
    torch.manual_seed(1)
    cfg = ModelConfig(ngf=8, ndf=8, hint_channels=4)
    info = ModelInfo(name=HINT_MODEL, description="Test hint model", input_kind="sketch")
    save_pretrained(random_generator(cfg), cfg, info, runs / HINT_MODEL / "model")


CLASS_MODEL = "test-classes"


def make_class_model(runs: Path) -> None:
    """A sketch model told what a drawing shows (shoe or bag; random weights: the class
    changes its output)."""
    torch.manual_seed(2)
    cfg = ModelConfig(ngf=8, ndf=8, classes=["shoe", "bag"])
    info = ModelInfo(name=CLASS_MODEL, description="Test class model", input_kind="sketch")
    save_pretrained(random_generator(cfg), cfg, info, runs / CLASS_MODEL / "model")


def train_hint_model(folder: Path, steps: int = 120) -> Path:
    """A tiny hint model that has learnt to follow hints: ellipse outlines whose photo is red
    or blue at random, so only a hint says which (about 15 s on one CPU core)."""
    from pix2pix.config import TrainConfig
    from pix2pix.training.trainer import Trainer

    size = 64
    data = folder / "two-colours"
    data.mkdir(parents=True, exist_ok=True)
    for i in range(16):
        r = random.Random(i)
        ab = Image.new("RGB", (2 * size, size), "white")
        x0, y0 = r.randint(4, 16), r.randint(4, 16)
        box = (x0, y0, x0 + r.randint(30, 44), y0 + r.randint(30, 44))
        ImageDraw.Draw(ab).ellipse(box, outline="black", width=2)
        fill = (220, 40, 40) if r.random() < 0.5 else (40, 40, 220)
        ImageDraw.Draw(ab).ellipse((box[0] + size, box[1], box[2] + size, box[3]), fill=fill)
        ab.save(data / f"{i:03d}.png")
    cfg = TrainConfig(steps=steps, batch_size=4, lr=1e-3, decay_from=1.0, workers=0, val_fraction=0.2, hints=True,
                      input_kind="sketch", bn_images=16)
    run = folder / HINT_MODEL
    Trainer(data, run, ModelConfig(ngf=16, ndf=16, image_size=size), cfg,
            info=ModelInfo(name=HINT_MODEL, description="Tiny two-colour hint model", input_kind="sketch")).fit()
    return run / "model"


def shipped(name: str) -> bool:
    return (weights_dir() / name / "model.safetensors").is_file()


def sketch(kind: str = "shoe", size: int = 512) -> Image.Image:
    """A clean line drawing on white; ``kind`` picks one of a few different ones."""
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    s = size / 512
    if kind == "shoe":
        d.line([(80 * s, 330 * s), (90 * s, 250 * s), (250 * s, 220 * s), (300 * s, 150 * s), (380 * s, 160 * s),
                (440 * s, 260 * s), (440 * s, 340 * s), (80 * s, 340 * s)], fill="black", width=round(6 * s))
    elif kind == "bag":
        d.rectangle((120 * s, 200 * s, 400 * s, 420 * s), outline="black", width=round(6 * s))
        d.arc((180 * s, 90 * s, 340 * s, 300 * s), 180, 360, fill="black", width=round(6 * s))
    else:
        d.ellipse((150 * s, 150 * s, 360 * s, 360 * s), outline="black", width=round(6 * s))
    return img


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> float:
    """Seconds until ``url`` answers 200; fails early if ``proc`` exits."""
    start = time.time()
    while time.time() - start < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200:
                    return time.time() - start
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class AppProcess:
    """``python app.py`` on a free port, its log in a file; a context manager that always stops it."""

    def __init__(self, log: Path, *args: str, threads: int | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        env = cli_env(GRADIO_ANALYTICS_ENABLED="False")
        env.pop("OMP_NUM_THREADS")  # the app picks its own thread count, as for a user
        cmd = [sys.executable, "app.py", "--port", str(self.port), *args]
        if threads:
            cmd += ["--threads", str(threads)]
        self.started = time.time()
        self._out = open(log, "w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT)

    def wait_serving(self, timeout: float = 90) -> float:
        """Seconds from starting the process to HTTP 200 on /."""
        wait_http(self.url, timeout, self.proc)
        return time.time() - self.started

    def wait_log(self, text: str, timeout: float = 90) -> None:
        start = time.time()
        while text not in self.log.read_text():
            if self.proc.poll() is not None or time.time() - start > timeout:
                raise AssertionError(f"{text!r} never appeared in the app's log:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()

    def __enter__(self) -> AppProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
