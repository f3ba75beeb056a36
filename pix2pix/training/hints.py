"""Colour hints: a few strokes of colour that tell a hint model what colour things are.

An outline does not say whether a shoe is red or navy, so a hint model takes, beside its
input, a hint layer: (4, S, S) = hint RGB in [-1, 1] where painted (0 elsewhere) and a 0/1
mask. Users paint it in the app (an RGBA image: colour where painted, transparent
elsewhere); training samples it from the target photo, so no extra data is needed
(as in Sangkloy et al., "Scribbler", 2017, and Zhang et al., "Real-Time User-Guided Image
Colorization", 2017): often none, otherwise a few small patches and short strokes on the
object, each filled with the target's local (blurred) colour there.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw
import torch.nn.functional as F

from ..config import HINT_CHANNELS

REF_SIZE = 256  # the pixel sizes below are at this image size and scale with it
PAINTED_ALPHA = 0.25  # a model pixel counts as painted from this much coverage on


@dataclass(frozen=True)
class HintSampling:
    """How training draws hints from a target (sizes in pixels at 256)."""

    p_none: float = 0.3  # pairs with no hint at all: the model must still work without
    max_hints: int = 10  # otherwise 1..max_hints hints
    p_stroke: float = 0.5  # each hint is a short stroke, else a small square patch
    patch_px: tuple[int, int] = (3, 9)  # patch side
    stroke_px: tuple[int, int] = (10, 36)  # stroke length
    stroke_width_px: tuple[int, int] = (3, 7)
    blur_px: float = 3.0  # the "local colour": the target blurred with this sigma
    background_tol: float = 0.12  # max |pixel - white| (on [0, 1]) that still counts as background
    colour_tol: float = 0.25  # a hint covers only pixels this close (on [-1, 1]) to its colour


def blur(t: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) blurred with a Gaussian of ``sigma`` (kernel 2*ceil(3 sigma)+1, reflected
    edges), as torchvision's gaussian_blur does; written with torch alone, so that inference,
    which imports this module, does not import torchvision (two threads importing it at once,
    the app's warm-up and a page handler, can meet its import cycle half-done)."""
    radius = math.ceil(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=t.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = t.shape[0]
    out = F.pad(t[None], (radius,) * 4, mode="reflect")
    out = F.conv2d(out, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)[0]


def empty(size: int) -> torch.Tensor:
    """No hints: the layer a hint model gets when nothing is painted."""
    return torch.zeros(HINT_CHANNELS, size, size)


def from_image(layer: Image.Image | None, size: int) -> torch.Tensor:
    """A painted hint layer (RGBA; colour where painted, transparent elsewhere) -> (4, S, S).

    The layer must already be framed like the sketch (same crop and size). A pixel counts
    as painted from a quarter of its area on (alpha >= 0.25, see ``infer.frame_hints``):
    a thin stroke survives the downscale, a stroke's faint anti-aliased fringe does not."""
    if layer is None:
        return empty(size)
    layer = layer.convert("RGBA")
    if layer.size != (size, size):
        layer = layer.resize((size, size), Image.Resampling.BOX)
    arr = torch.from_numpy(np.asarray(layer, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mask = (arr[3:4] >= PAINTED_ALPHA).float()
    return torch.cat([(arr[:3] * 2 - 1) * mask, mask])


def to_image(hints: torch.Tensor) -> Image.Image:
    """(4, S, S) -> an RGBA picture of the hints (for sample grids and files)."""
    rgb = ((hints[:3].clamp(-1, 1) + 1) * 127.5).round().byte()
    alpha = (hints[3:4] > 0.5).byte() * 255
    return Image.fromarray(torch.cat([rgb, alpha]).permute(1, 2, 0).numpy(), "RGBA")


def object_mask(target: torch.Tensor, tol: float) -> torch.Tensor:
    """(H, W) bool: where the target is not its white studio background. A photo whose
    border is not mostly white (a facade, a street) has no such background: all object."""
    background = ((1 - target) / 2).amax(dim=0) <= tol  # near pure white, on [0, 1]
    border = torch.cat([background[0], background[-1], background[:, 0], background[:, -1]])
    if border.float().mean() < 0.8 or background.all():
        return torch.ones_like(background)
    return ~background


def _shape(rng: random.Random, cfg: HintSampling, size: int, y: int, x: int) -> torch.Tensor:
    """One hint's footprint around (y, x): a square patch or a short stroke."""
    scale = size / REF_SIZE
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    if rng.random() < cfg.p_stroke:
        length = rng.uniform(*cfg.stroke_px) * scale
        width = max(1, round(rng.uniform(*cfg.stroke_width_px) * scale))
        angle = rng.uniform(0, math.pi)
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        draw.line([(x - dx, y - dy), (x + dx, y + dy)], fill=255, width=width)
    else:
        half = max(1.0, rng.uniform(*cfg.patch_px) * scale / 2)
        draw.rectangle([x - half, y - half, x + half, y + half], fill=255)
    return torch.from_numpy(np.asarray(canvas) > 0)


def _uniform_spot(rng: random.Random, where: torch.Tensor, local: torch.Tensor, target: torch.Tensor,
                  tol: float, tries: int = 16) -> tuple[int, int]:
    """A random object pixel, preferring one inside a region of one colour (its blurred
    colour close to its own), so a hint is not a blend of two neighbouring colours."""
    for _ in range(tries):
        y, x = where[rng.randrange(len(where))].tolist()
        if (local[:, y, x] - target[:, y, x]).abs().max() <= tol:
            break
    return y, x


def sample(target: torch.Tensor, rng: random.Random, n: int | None = None,
           cfg: HintSampling = HintSampling()) -> torch.Tensor:
    """Hints drawn from a target photo (3, S, S) in [-1, 1] -> (4, S, S).

    ``n``: exactly this many hints (evaluation); None draws the count as training does.
    Each hint has one colour, the blurred target at its centre, and covers only object
    pixels of about that colour, as a user paints one colour per region."""
    size = target.shape[-1]
    if n is None:
        n = 0 if rng.random() < cfg.p_none else rng.randint(1, cfg.max_hints)
    hints = empty(size)
    if n <= 0:
        return hints
    sigma = cfg.blur_px * size / REF_SIZE
    local = blur(target.float(), sigma)
    on_object = object_mask(target, cfg.background_tol)
    where = on_object.nonzero()
    for _ in range(n):
        y, x = _uniform_spot(rng, where, local, target, cfg.colour_tol / 5)
        colour = local[:, y, x]
        close = (local - colour[:, None, None]).abs().amax(dim=0) <= cfg.colour_tol
        footprint = _shape(rng, cfg, size, y, x) & on_object & close
        footprint[y, x] = True
        hints[:3, footprint] = colour[:, None]
        hints[3, footprint] = 1.0
    return hints


def coverage(hints: torch.Tensor) -> float:
    """Fraction of pixels carrying a hint."""
    return float(hints[3].mean())
