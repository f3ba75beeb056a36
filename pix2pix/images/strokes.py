"""Outline parts drawn as pen strokes: clean, or for training roughened like a person's drawing
(people draw rougher than edge maps, and the model must not depend on the extractor's lines)."""

from __future__ import annotations

import random
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

STROKE_PX = 3.0  # pen width at 256 px, the width the app normalizes drawings to
REF_SIZE = 256  # stroke widths and augmentation amplitudes are in pixels at this size


@dataclass
class OutlineParts:
    """At the photo's size: the filled object (uint8 0/1) and inner centre lines as ids (uint8, 0 =
    none; augmentation drops whole lines). Cached as one 'LA' PNG: L = silhouette, A = lines."""

    silhouette: np.ndarray
    lines: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.silhouette.shape[1], self.silhouette.shape[0]

    def to_image(self) -> Image.Image:
        return Image.merge("LA", (Image.fromarray(self.silhouette * np.uint8(255)), Image.fromarray(self.lines)))

    @classmethod
    def from_image(cls, img: Image.Image) -> OutlineParts:
        if img.mode != "LA":
            raise ValueError(f"outline parts must be an 'LA' image, got {img.mode!r}")
        sil, lines = (np.asarray(b) for b in img.split())
        return cls((sil > 127).astype(np.uint8), lines.copy())


def contour(mask: np.ndarray) -> np.ndarray:
    """Inner boundary pixels (8-connected ring) of a mask, none along the image edge."""
    return mask & ~(cv2.erode(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))) > 0)


def stamp(lines: np.ndarray, width: float) -> np.ndarray:
    """1 px centre lines -> strokes of a round pen ``width`` px wide (ink 0..1, anti-aliased);
    blurring and re-thresholding at half irons out the pixel staircase the way a pen glides."""
    r = max(float(width) / 2.0, 0.5)
    dist = cv2.distanceTransform((~lines).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    blurred = cv2.GaussianBlur(np.clip(r + 0.5 - dist, 0, 1), (0, 0), min(1.0, r * 0.6))
    return np.clip((blurred - 0.5) * 2.5 + 0.5, 0, 1)


def render_outline(parts: OutlineParts, rng: random.Random | None = None, *, scale: float | None = None) -> Image.Image:
    """The parts as black pen strokes on white (RGB, the parts' size). ``scale``: source pixels
    per pixel of a 256 px drawing (default: longest side / 256). With ``rng``, roughened
    (:func:`_rough_ink`), deterministic for a given rng state."""
    scale = max(parts.size) / REF_SIZE if scale is None else float(scale)
    clean = contour(parts.silhouette > 0) | (parts.lines > 0)
    ink = stamp(clean, STROKE_PX * scale) if rng is None else _rough_ink(parts, rng, scale)
    return Image.fromarray(np.uint8(255) - (ink * 255 + 0.5).astype(np.uint8)).convert("RGB")


def _erase_spots(lines: np.ndarray, np_rng: np.random.Generator, count: int, radius: tuple[float, float]) -> np.ndarray:
    """``lines`` with ``count`` discs erased around random line pixels: pen lifts."""
    ys, xs = np.nonzero(lines)
    canvas = lines.astype(np.uint8)
    for i in np_rng.integers(0, ys.size, count if ys.size else 0):
        cv2.circle(canvas, (int(xs[i]), int(ys[i])), round(np_rng.uniform(*radius)), 0, -1)
    return canvas > 0


def _wobble(ink: np.ndarray, np_rng: np.random.Generator, amp: float, shake: float) -> np.ndarray:
    """The ink moved along a smooth random field: a slow sway of ``amp`` px and a faster shake."""
    h, w = ink.shape
    dy, dx = (sum(cv2.resize(np_rng.normal(0.0, sigma, (cells, cells)).astype(np.float32), (w, h),
                             interpolation=cv2.INTER_CUBIC) for cells, sigma in ((4, amp), (24, shake)))
              for _ in range(2))
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(ink, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _rough_ink(parts: OutlineParts, rng: random.Random, scale: float) -> np.ndarray:
    """Pen width 1.5-5 px, some inner lines left out (each with p = 0.3), small breaks,
    sometimes an unclosed or simplified (rounder) silhouette, and lines that wobble."""
    np_rng = np.random.default_rng(rng.getrandbits(64))
    width = rng.uniform(1.5, 5.0) * scale
    sil = parts.silhouette.astype(np.float32)
    if rng.random() < 0.2:
        sil = cv2.GaussianBlur(sil, (0, 0), rng.uniform(1.5, 4.0) * scale)
    outline = contour(sil >= 0.5)
    if rng.random() < 0.3:
        outline = _erase_spots(outline, np_rng, rng.randint(1, 2), (width / 2 + 3 * scale, width / 2 + 8 * scale))
    kept = [k for k in range(1, int(parts.lines.max()) + 1) if rng.random() >= 0.3]
    lines = outline | np.isin(parts.lines, kept)
    if rng.random() < 0.5:
        count = 1 + int(rng.random() * lines.sum() / (100 * scale))
        lines = _erase_spots(lines, np_rng, count, (width / 2 + 0.7 * scale, width / 2 + 2.5 * scale))
    amp, shake = rng.uniform(0.5, 2.5) * scale, rng.uniform(0.0, 0.6) * scale
    return _wobble(stamp(lines, width), np_rng, amp, shake)
