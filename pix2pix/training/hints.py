"""Colour hints: strokes of colour that tell a hint model what colour things are.

An outline does not say whether a shoe is red or navy, so a hint model takes, beside its
input, a hint layer: (4, S, S) = hint RGB in [-1, 1] where painted (0 elsewhere) and a 0/1
mask. Users paint it in the app (an RGBA image: colour where painted, transparent
elsewhere); training samples it from the target photo, so no extra data is needed (as in
Sangkloy et al., "Scribbler", 2017, and Zhang et al., "Real-Time User-Guided Image
Colorization", 2017).

What people paint is not only dabs. The sampler draws, per hint, one of:

- a *dab*: a small patch or short stroke inside a region of one colour;
- a *stroke*: a long stroke of a broad brush (6-22 px at 256) across a part of the object,
  in that part's colour, often running over the outline onto the background;
- a *scribble*: a broad zig-zag over much of a part;
- a *fill*: one colour laid over a whole part, spilling a few pixels past its edge.

Where a stroke spills onto the background, the target stays white there: the model learns
that colour belongs to the region the outline encloses, not to wherever the brush went.
A share of pairs has no hint at all, so the model still works without.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image

from ..config import HINT_CHANNELS

REF_SIZE = 256  # the pixel sizes below are at this image size and scale with it
PAINTED_ALPHA = 0.25  # a model pixel counts as painted from this much coverage on
KINDS = ("dab", "stroke", "scribble", "fill")


@dataclass(frozen=True)
class HintSampling:
    """How training draws hints from a target (sizes in pixels at 256)."""

    p_none: float = 0.3  # pairs with no hint at all: the model must still work without
    max_hints: int = 10  # otherwise 1..max_hints dabs, or 1..max_broad broad hints
    max_broad: int = 3
    p_broad: float = 0.5  # a pair with hints gets broad ones (strokes, scribbles, fills), else dabs
    broad_weights: tuple[float, float, float] = (0.5, 0.2, 0.3)  # stroke, scribble, fill
    p_stroke: float = 0.5  # a dab is a short stroke, else a small square patch
    patch_px: tuple[int, int] = (3, 9)  # dab patch side
    stroke_px: tuple[int, int] = (10, 36)  # dab stroke length
    stroke_width_px: tuple[int, int] = (3, 7)  # dab stroke width
    brush_px: tuple[int, int] = (6, 22)  # broad brush width
    p_spill: float = 0.7  # a broad hint may run past the object's edge onto the background
    spill_px: tuple[int, int] = (2, 10)  # how far a fill spills past its part's edge
    blur_px: float = 3.0  # the "local colour": the target blurred with this sigma
    background_tol: float = 0.12  # max |pixel - white| (on [0, 1]) that still counts as background
    colour_tol: float = 0.25  # a hint covers only pixels this close (on [-1, 1]) to its colour


def blur(t: torch.Tensor, sigma: float) -> torch.Tensor:
    """(C, H, W) blurred with a Gaussian of ``sigma`` (kernel 2*ceil(3 sigma)+1, reflected edges)."""
    arr = _blur_hwc(t.permute(1, 2, 0).float().numpy(), sigma)
    return torch.from_numpy(arr.reshape(t.shape[1], t.shape[2], -1)).permute(2, 0, 1)


def _blur_hwc(arr: np.ndarray, sigma: float) -> np.ndarray:
    k = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(np.ascontiguousarray(arr, np.float32), (k, k), sigma, borderType=cv2.BORDER_REFLECT_101)


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
    return torch.from_numpy(_object_mask(target.permute(1, 2, 0).numpy(), tol))


def _channel_max(planes: np.ndarray) -> np.ndarray:
    """Max over the first axis of (C, H, W): numpy reduces a short last axis slowly (an
    (H, W, 3) ``.max(axis=2)`` took 0.5 ms at 256 px, this 0.05)."""
    return np.maximum.reduce(planes)


def _object_mask(rgb: np.ndarray, tol: float) -> np.ndarray:
    """(H, W, 3) or (3, H, W) [-1, 1] -> bool mask of the object (see :func:`object_mask`)."""
    planes = rgb if rgb.shape[0] == 3 and rgb.shape[-1] != 3 else np.moveaxis(rgb, 2, 0)
    background = _channel_max((1 - planes) / 2) <= tol  # near pure white, on [0, 1]
    border = np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])
    if border.mean() < 0.8 or background.all():
        return np.ones_like(background)
    return ~background


class _Canvas:
    """One target's hint sampling: its colours, object mask and the layer painted so far."""

    def __init__(self, target: torch.Tensor, rng: random.Random, cfg: HintSampling):
        self.rgb = np.ascontiguousarray(target.permute(1, 2, 0).float().numpy())
        self.size, self.rng, self.cfg = self.rgb.shape[0], rng, cfg
        self.scale = self.size / REF_SIZE
        self.local = _blur_hwc(self.rgb, cfg.blur_px * self.scale)
        self.planes = np.ascontiguousarray(np.moveaxis(self.local, 2, 0))  # (3, H, W): fast channel maxima
        self.on_object = _object_mask(np.ascontiguousarray(np.moveaxis(self.rgb, 2, 0)), cfg.background_tol)
        self.where = np.argwhere(self.on_object)
        self.layer = np.zeros((self.size, self.size, HINT_CHANNELS), np.float32)

    def spot(self, tries: int = 16) -> tuple[int, int]:
        """A random object pixel, preferring one inside a region of one colour (its blurred
        colour close to its own), so a hint is not a blend of two neighbouring colours."""
        tol = self.cfg.colour_tol / 5
        for _ in range(tries):
            y, x = self.where[self.rng.randrange(len(self.where))]
            if np.abs(self.local[y, x] - self.rgb[y, x]).max() <= tol:
                break
        return int(y), int(x)

    def close_to(self, colour: np.ndarray) -> np.ndarray:
        return _channel_max(np.abs(self.planes - colour[:, None, None])) <= self.cfg.colour_tol

    def part(self, y: int, x: int, colour: np.ndarray) -> np.ndarray:
        """The connected object region of about ``colour`` that holds (y, x)."""
        region = (self.close_to(colour) & self.on_object).astype(np.uint8)
        _, labels = cv2.connectedComponents(region, connectivity=8)
        return labels == labels[y, x] if labels[y, x] else region.astype(bool)

    def paint(self, footprint: np.ndarray, colour: np.ndarray) -> None:
        self.layer[footprint, :3] = colour
        self.layer[footprint, 3] = 1.0

    def px(self, low_high: tuple[float, float]) -> float:
        return self.rng.uniform(*low_high) * self.scale

    def pen(self) -> np.ndarray:
        return np.zeros((self.size, self.size), np.uint8)


def _dab(c: _Canvas) -> None:
    """A small patch or short stroke inside a region of one colour."""
    y, x = c.spot()
    colour = c.local[y, x]
    pen = c.pen()
    if c.rng.random() < c.cfg.p_stroke:
        length, width = c.px(c.cfg.stroke_px), max(1, round(c.px(c.cfg.stroke_width_px)))
        angle = c.rng.uniform(0, math.pi)
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        cv2.line(pen, (round(x - dx), round(y - dy)), (round(x + dx), round(y + dy)), 1, width)
    else:
        half = max(1, round(c.px(c.cfg.patch_px) / 2))
        cv2.rectangle(pen, (x - half, y - half), (x + half, y + half), 1, -1)
    footprint = (pen > 0) & c.on_object & c.close_to(colour)
    footprint[y, x] = True
    c.paint(footprint, colour)


def _path(c: _Canvas, region: np.ndarray, zigzag: bool) -> list[tuple[int, int]]:
    """A brush path across ``region``: a line through it with a bend or two (a stroke), or a
    zig-zag sweeping its extent (a scribble); it may overshoot the region's edges."""
    ys, xs = np.nonzero(region)
    cy, cx = float(ys.mean()), float(xs.mean())
    cov = np.cov(np.stack([xs, ys]).astype(np.float64)) if len(xs) > 2 else np.eye(2)
    values, vectors = np.linalg.eigh(cov + 1e-3 * np.eye(2))
    major, minor = vectors[:, 1], vectors[:, 0]
    half_len = 2.0 * math.sqrt(max(values[1], 1.0)) * c.rng.uniform(0.8, 1.3)
    half_wid = 2.0 * math.sqrt(max(values[0], 1.0))
    if not zigzag:
        angle = c.rng.uniform(-0.6, 0.6)
        d = np.array([math.cos(angle) * major[0] - math.sin(angle) * major[1],
                      math.sin(angle) * major[0] + math.cos(angle) * major[1]])
        off = c.rng.uniform(-0.5, 0.5) * half_wid
        points = [np.array([cx, cy]) + minor * off + d * t * half_len for t in np.linspace(-1, 1, 4)]
        points = [p + c.rng.uniform(-0.15, 0.15) * half_wid * minor for p in points]
    else:
        turns = c.rng.randint(3, 7)
        points = [np.array([cx, cy]) + major * (half_len * (2 * i / turns - 1)) + minor * half_wid * (1 if i % 2 else -1)
                  * c.rng.uniform(0.5, 1.0) for i in range(turns + 1)]
    return [(round(p[0]), round(p[1])) for p in points]


def _broad(c: _Canvas, kind: str) -> None:
    """A stroke, scribble or fill in the colour of the object part it starts on."""
    y, x = c.spot()
    colour = c.local[y, x]
    region = c.part(y, x, colour)
    spill = c.rng.random() < c.cfg.p_spill
    pen = c.pen()
    if kind == "fill":
        grow = round(c.px(c.cfg.spill_px)) if spill else 0
        pen = cv2.dilate(region.astype(np.uint8), np.ones((2 * grow + 1,) * 2, np.uint8)) if grow else region
    else:
        width = max(2, round(c.px(c.cfg.brush_px)))
        cv2.polylines(pen, [np.array(_path(c, region, kind == "scribble"), np.int32)], False, 1, width)
    footprint = pen > 0
    # The brush runs over the part's edge: onto the background when it spills (the target
    # stays white there), never into a neighbouring part of another colour.
    allowed = region | (~c.on_object if spill else np.zeros_like(region))
    if kind != "fill":
        allowed = allowed | (c.on_object & c.close_to(colour))
    c.paint(footprint & allowed, colour)


def sample(target: torch.Tensor, rng: random.Random, n: int | None = None,
           cfg: HintSampling = HintSampling()) -> torch.Tensor:
    """Hints drawn from a target photo (3, S, S) in [-1, 1] -> (4, S, S).

    ``n``: exactly this many dabs (evaluation's "8 hints from the photo"); None draws
    what training uses: none for ``p_none`` of the pairs, else dabs or broad hints."""
    size = target.shape[-1]
    if n is None:
        if rng.random() < cfg.p_none:
            return empty(size)
        broad = rng.random() < cfg.p_broad
        kinds = (rng.choices(KINDS[1:], cfg.broad_weights, k=rng.randint(1, cfg.max_broad)) if broad
                 else ["dab"] * rng.randint(1, cfg.max_hints))
    else:
        kinds = ["dab"] * n
    if not kinds:
        return empty(size)
    canvas = _Canvas(target, rng, cfg)
    for kind in kinds:
        _dab(canvas) if kind == "dab" else _broad(canvas, kind)
    return torch.from_numpy(canvas.layer).permute(2, 0, 1).contiguous()


def strokes_across(target: torch.Tensor, rng: random.Random, count: int = 3, width_px: float = 10.0) -> torch.Tensor:
    """What a person does with a broad brush: ``count`` strokes ``width_px`` wide (at 256) in
    the object's main colour, straight across it and over its outline onto the background
    (how issue-style evaluations and the app's examples paint)."""
    c = _Canvas(target, rng, HintSampling())
    size = c.size
    if not c.on_object.any() or c.on_object.all():
        return empty(size)
    obj = c.rgb[c.on_object]
    colour = np.median(obj, axis=0).astype(np.float32)
    ys, xs = np.nonzero(c.on_object)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    pen = c.pen()
    width = max(1, round(width_px * c.scale))
    for i in range(count):
        t = (i + 1) / (count + 1) + rng.uniform(-0.05, 0.05)
        if (x1 - x0) >= (y1 - y0):  # across the shorter side, spread along the longer one
            x = round(x0 + t * (x1 - x0))
            cv2.line(pen, (x, int(y0) - 2 * width), (x + rng.randint(-width, width), int(y1) + 2 * width), 1, width)
        else:
            y = round(y0 + t * (y1 - y0))
            cv2.line(pen, (int(x0) - 2 * width, y), (int(x1) + 2 * width, y + rng.randint(-width, width)), 1, width)
    c.paint(pen > 0, colour)
    return torch.from_numpy(c.layer).permute(2, 0, 1).contiguous()


def coverage(hints: torch.Tensor) -> float:
    """Fraction of pixels carrying a hint."""
    return float(hints[3].mean())
