"""Shared fixtures: tiny paired data sets in every layout, made on the fly."""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Measured fast paths (pix2pix.inference.fastpath) are cached in a folder of the test session's own,
# shared with the subprocesses it starts, not in the user's home.
os.environ.setdefault("PIX2PIX_CACHE_DIR", tempfile.mkdtemp(prefix="pix2pix-test-cache-"))

import torch  # noqa: E402

# The tests run tiny models, for which one thread is faster than two fighting over a
# shared 2-core machine (measured: 10x on a busy box). Subprocesses get the same via
# cli_env(); the app under browser test keeps the default, as a user would run it.
torch.set_num_threads(1)


def cli_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def shape_pair(seed: int, size: int = 64) -> tuple[Image.Image, Image.Image]:
    """A sketch-like input (an ellipse outline) and its 'photo' (the filled, coloured shape)."""
    r = random.Random(seed)
    a = Image.new("RGB", (size, size), "white")
    b = Image.new("RGB", (size, size), (235, 235, 235))
    m = size // 8
    x0, y0 = r.randint(m, size // 3), r.randint(m, size // 3)
    x1, y1 = x0 + r.randint(size // 3, size // 2), y0 + r.randint(size // 3, size // 2)
    ImageDraw.Draw(a).ellipse((x0, y0, x1, y1), outline="black", width=max(1, size // 32))
    ImageDraw.Draw(b).ellipse((x0, y0, x1, y1), fill=(r.randint(0, 255), 90, 170))
    return a, b


def write_side_by_side(folder: Path, n: int, size: int = 64, start: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        a, b = shape_pair(i, size)
        ab = Image.new("RGB", (2 * size, size))
        ab.paste(a, (0, 0))
        ab.paste(b, (size, 0))
        out.append(folder / f"{i:03d}.png")
        ab.save(out[-1])
    return out


def write_folders(folder: Path, n: int, size: int = 64, names=("A", "B")) -> None:
    for i in range(n):
        a, b = shape_pair(i, size)
        (folder / names[0]).mkdir(parents=True, exist_ok=True)
        (folder / names[1]).mkdir(parents=True, exist_ok=True)
        a.save(folder / names[0] / f"{i:03d}.png")
        b.save(folder / names[1] / f"{i:03d}.jpg", quality=95)


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """Eight side-by-side 64x64 pairs."""
    write_side_by_side(tmp_path / "data", 8)
    return tmp_path / "data"


def trained_like_generator(cfg, var_range: tuple[float, float] = (0.3, 3.0)) -> torch.nn.Module:
    """Random weights with BatchNorm statistics as after training (a fresh init has mean 0,
    variance 1, which hides folding mistakes and gives near-constant outputs)."""
    from pix2pix.models import build_generator

    g = build_generator(cfg)
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.3)
            m.running_var.uniform_(*var_range)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)
    return g.eval()


def requires_shared_data(name: str):
    return pytest.mark.skipif(
        not (SHARED_DATA / name).is_dir(),
        reason=f"needs the real data set ../shared/data/{name}, which only the project's developers have",
    )
