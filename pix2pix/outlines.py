"""Outline drawings from product photos: the paired inputs of the sketch model.

There are no hand-drawn sketches of the product photos, so, like the edges2shoes and
edges2handbags sets of pix2pix, the inputs are made from the photos. A person drawing with
the app's pen draws the closed outline of the object and a few main inner lines (sole line,
collar, straps, pockets), not texture, print or shading; the extraction aims at that:

1. Silhouette (:func:`foreground_mask`): flood fill from the image border through pixels
   of the (pure white) background colour, or light, grey and smooth ones (soft shadows),
   stopped by colour-edge ridges, so that a white shirt on white keeps its faint edge.
   Large enclosed background (bag handles) stays open; slits one pen line would cover
   are closed, small holes filled, specks dropped, the mask smoothed.
2. Inner lines (:func:`inner_lines`): Canny-like chains of colour edges inside the mask,
   ranked by their contrast at a coarse scale (region boundaries survive blurring, fabric
   grain and small print do not), length and straightness; the best few are kept, not
   ones that run alongside the outline or another line (they would merge into a band).
3. :class:`OutlineParts` holds both as masks (one cacheable PNG); :func:`render_outline`
   draws them as pen strokes and, given an rng, roughens them like a person's drawing.

Sizes that must read well in the final drawing (slits, spacing, minimum length) are in
pixels of the 256 px framed drawing and converted with the object's own framing scale.

Apparel worn by a model keeps the whole visible figure (garment, head, arms, legs) as the
silhouette: the target photo shows all of it, and an outline of the garment alone would ask
the model to invent a person outside the lines. Garment boundaries (collar, sleeve ends,
hem, shirt over trousers) come out as inner lines.

:class:`OutlinePairMaker` turns a photo file into an aligned (outline, photo) pair, framed
and normalized exactly like the app frames and normalizes a user's drawing.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from .imaging import (
    IMAGE_EXTS,
    WHITE,
    ImageReadError,
    is_image_file,
    load_rgb,
    open_image,
    save_image,
    to_rgb,
)
from .sketch import Frame, SketchError, find_frame, frame_image, normalize_sketch

log = logging.getLogger(__name__)

OUTLINE_VERSION = 1  # bump whenever extraction changes: it is part of the cache key
STROKE_PX = 3.0  # pen width at 256 px, the width the app normalizes drawings to
REF_SIZE = 256  # stroke widths and augmentation amplitudes are in pixels at this size

# Photo analysis, in pixels of the photo (the data set's are 224 px) and levels 0-255.
MASK_SIGMA = 1.0
BG_DIST = 5.0  # max channel difference still counted as background (it is pure white)
RIM_DIST = 14.0  # at the object's rim (JPEG ringing) this much still counts as background
RIM_SIGMA = 0.6
SHADOW_DIST = 48.0  # light, grey, smooth pixels up to this far from white are shadow
SHADOW_CHROMA = 14.0
SHADOW_GRAD = 1.0
EDGE_GRAD = 4.0  # an edge ridge this strong stops the background flood
HOLE_MIN_FRAC = 0.002  # enclosed pure-background regions larger than this stay holes
HOLE_MAX_DIST = 3.0
MIN_PART_FRAC = 0.08  # parts smaller than this fraction of the largest one are dropped
LINE_SIGMA = 1.6
COARSE_SIGMA = 3.5  # scale at which a line's contrast is judged
LINE_LOW, LINE_HIGH = 5.0, 12.0  # hysteresis thresholds on the gradient (levels per px)
LINE_MAX_WINDING = 1.6  # chains longer than this times their extent count as meandering
LINE_MIN_SCORE = 25.0  # mean coarse gradient x sqrt(length) x straightness^2
MAX_LINES = 14
LINE_BUDGET = 1.2  # total inner-line length at most this times the silhouette length

# Geometry that must read well in the framed 256 px drawing, in pixels of that drawing.
SLIT_PX = 6.0  # background slits narrower than this (arm and body, two straps) are closed
LINE_MIN_PX = 12.0  # shorter edges are texture, print or noise
LINE_SPACING_PX = 4.0  # a line closer than this to a parallel one would merge into a band
LINE_MERGE_PX = 4.0  # chains this close (two sides of one seam) become one line


@dataclass
class OutlineParts:
    """What an outline is made of, at the photo's resolution.

    ``silhouette``: filled object mask (uint8 0/1). ``lines``: inner-line centre lines as
    component ids (uint8, 0 = none, 1..n = one id per line) so augmentation can drop whole
    lines. Saved as one 'LA' PNG: L = silhouette, A = line ids.
    """

    silhouette: np.ndarray
    lines: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.silhouette.shape[1], self.silhouette.shape[0]

    def contour(self) -> np.ndarray:
        return _boundary(self.silhouette.astype(bool))

    def to_image(self) -> Image.Image:
        return Image.merge(
            "LA", (Image.fromarray(self.silhouette * np.uint8(255)), Image.fromarray(self.lines))
        )

    @classmethod
    def from_image(cls, img: Image.Image) -> OutlineParts:
        if img.mode != "LA":
            raise ValueError(f"outline parts must be an 'LA' image, got {img.mode!r}")
        sil, lines = (np.asarray(b) for b in img.split())
        return cls((sil > 127).astype(np.uint8), lines.copy())


# ---------------------------------------------------------------------------- morphology


def _shifted(a: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """``out[y, x] = a[y + dy, x + dx]``, ``fill`` outside the image."""
    h, w = a.shape
    out = np.full_like(a, fill)
    out[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = a[
        max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def _dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    """Binary dilation by a (2r+1)^2 square, separable so it stays cheap."""
    out = mask.copy()
    for _ in range(r):
        out[:, 1:] |= out[:, :-1]
        out[:, :-1] |= out[:, 1:]
    for _ in range(r):
        out[1:] |= out[:-1]
        out[:-1] |= out[1:]
    return out


def _erode(mask: np.ndarray, r: int = 1) -> np.ndarray:
    """Erosion that treats outside the image as foreground: objects cut by the frame
    edge keep their mask up to the edge."""
    return ~_dilate(~mask, r)


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Inner boundary pixels (8-connected ring) of a mask, none along the image edge."""
    inner = mask.copy()
    for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        inner &= _shifted(mask, dy, dx, True)
    return mask & ~inner


def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang-Suen deletion rules for both sub-iterations, indexed by the 8-neighbour code
    (bit i set = neighbour i present, clockwise from north)."""
    code = np.arange(256)
    p = [(code >> i) & 1 for i in range(8)]  # p[0] north, p[2] east, p[4] south, p[6] west
    count = sum(p)
    transitions = sum((p[i] == 0) & (p[(i + 1) % 8] == 1) for i in range(8))
    simple = (count >= 2) & (count <= 6) & (transitions == 1)
    first = simple & (p[0] * p[2] * p[4] == 0) & (p[2] * p[4] * p[6] == 0)
    second = simple & (p[0] * p[2] * p[6] == 0) & (p[0] * p[4] * p[6] == 0)
    return first, second


_THIN_FIRST, _THIN_SECOND = _thinning_tables()
_CLOCKWISE = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


def thin(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeleton of a mask (Zhang-Suen), via a lookup table per pass."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return mask.copy()
    box = np.s_[max(rows[0] - 1, 0) : rows[-1] + 2, max(cols[0] - 1, 0) : cols[-1] + 2]
    sub = mask[box].copy()
    changed = True
    while changed:
        changed = False
        for table in (_THIN_FIRST, _THIN_SECOND):
            code = np.zeros(sub.shape, np.uint8)
            for bit, (dy, dx) in enumerate(_CLOCKWISE):
                code |= _shifted(sub, dy, dx, False).view(np.uint8) << np.uint8(bit)
            delete = sub & table[code]
            if delete.any():
                sub &= ~delete
                changed = True
    out = np.zeros_like(mask)
    out[box] = sub
    return out


def label_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask -> (labels 1..n with 0 = background, n).

    Works on horizontal runs: runs in adjacent rows that touch are joined by a vectorized
    union-find, so the cost follows the number of runs, not pixels (about 1 ms at 256 px).
    """
    h, w = mask.shape
    edges = np.diff(np.pad(mask.astype(np.int8), ((0, 0), (1, 1))), axis=1)  # (h, w + 1)
    row, start = np.nonzero(edges == 1)
    end = np.nonzero(edges == -1)[1]  # exclusive; same row-major order as the starts
    n = row.size
    if n == 0:
        return np.zeros((h, w), np.int32), 0
    stride = w + 1
    # Runs of the next row that touch run i (diagonals too) form the range [lo, hi).
    lo = np.searchsorted(row * stride + end, (row + 1) * stride + start, side="left")
    hi = np.searchsorted(row * stride + start, (row + 1) * stride + end, side="right")
    counts = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(n), counts)
    b = lo[a] + np.arange(a.size) - np.repeat(np.cumsum(counts) - counts, counts)
    parent = np.arange(n)
    while True:
        pa, pb = parent[a], parent[b]
        diff = pa != pb
        if not diff.any():
            break
        np.minimum.at(parent, np.maximum(pa, pb)[diff], np.minimum(pa, pb)[diff])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped
    roots, run_label = np.unique(parent, return_inverse=True)
    run_label = run_label + 1
    paint = np.zeros(h * stride + 1, np.int64)
    np.add.at(paint, row * stride + start, run_label)
    np.add.at(paint, row * stride + end, -run_label)
    labels = np.cumsum(paint[:-1]).reshape(h, stride)[:, :w]
    return labels.astype(np.int32), roots.size


# ---------------------------------------------------------------------------- extraction


def _gaussian(gray: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a uint8 image (Pillow's, which is fast) -> float32 array."""
    return np.asarray(Image.fromarray(gray).filter(ImageFilter.GaussianBlur(sigma)), np.float32)


def _blur_rgb(photo: Image.Image, sigma: float) -> np.ndarray:
    """Gaussian-blurred photo as a channel-first float array (3, H, W)."""
    blurred = np.asarray(photo.filter(ImageFilter.GaussianBlur(sigma)), np.float32)
    return np.ascontiguousarray(blurred.transpose(2, 0, 1))


def _colour_gradient(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel gradient of a (C, H, W) colour image via its structure tensor -> (magnitude,
    angle). The magnitude is in intensity levels per pixel; colour edges between equally
    bright regions (a red shirt over blue jeans) count as much as brightness edges.
    """
    p = np.pad(rgb, ((0, 0), (1, 1), (1, 1)), mode="edge")
    sx = p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]  # vertical smoothing, then x difference
    sy = p[:, :, :-2] + 2 * p[:, :, 1:-1] + p[:, :, 2:]
    gx = (sx[:, :, 2:] - sx[:, :, :-2]) / 8
    gy = (sy[:, 2:] - sy[:, :-2]) / 8
    jxx, jyy, jxy = (gx * gx).sum(0), (gy * gy).sum(0), (gx * gy).sum(0)
    half = (jxx - jyy) / 2
    mag = np.sqrt((jxx + jyy) / 2 + np.sqrt(half * half + jxy * jxy))
    return mag, 0.5 * np.arctan2(2 * jxy, jxx - jyy)


def _background_colour(rgb: np.ndarray) -> np.ndarray:
    """Median colour of the two-pixel image border, shape (3, 1, 1)."""
    border = np.concatenate([rgb[:, :2].reshape(3, -1), rgb[:, -2:].reshape(3, -1),
                             rgb[:, :, :2].reshape(3, -1), rgb[:, :, -2:].reshape(3, -1)], axis=1)
    return np.median(border, axis=1)[:, None, None]


def _smooth_mask(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Round off jaggies and one-pixel notches: blur the mask and threshold at half."""
    return _gaussian(mask.astype(np.uint8) * np.uint8(255), sigma) >= 128


def _keep_main_parts(mask: np.ndarray) -> np.ndarray:
    labels, n = label_components(mask)
    if n == 0:
        return mask
    areas = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(areas >= max(MIN_PART_FRAC * areas.max(), 0.0005 * mask.size)) + 1
    return np.isin(labels, keep)


def _outside(labels: np.ndarray) -> np.ndarray:
    """Pixels of the labelled components that touch the image border."""
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0])


def _fill_holes(mask: np.ndarray, keep_open: np.ndarray) -> np.ndarray:
    """Fill enclosed background, except the components that ``keep_open`` touches."""
    labels, n = label_components(~mask)
    if n == 0:
        return mask
    opened = np.unique(labels[keep_open & ~mask])
    return ~(_outside(labels) | np.isin(labels, opened[opened > 0]))


def drawing_scale(mask: np.ndarray, margin: float = 0.08) -> float:
    """Photo pixels per pixel of the 256 px drawing that the app's framing (a square
    around the object with ``margin``) would make of this mask."""
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return max(mask.shape) / REF_SIZE
    extent = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
    return extent / (1 - 2 * margin) / REF_SIZE


def _px(drawing_px: float, scale: float) -> int:
    return max(1, round(drawing_px * scale))


def foreground_mask(photo: Image.Image) -> np.ndarray:
    """Boolean object mask of a product photo on a (near-)white background.

    Background is what the border can reach through pixels close to the background
    colour (or light, grey and smooth: shadows) without crossing an edge ridge. Ridges,
    not raw gradients, are the barrier so the mask hugs the object; they are what keeps
    the flood out of a white shirt on a white background.
    """
    rgb = _blur_rgb(photo, MASK_SIGMA)
    bg = _background_colour(rgb)
    diff = np.abs(rgb - bg)
    dist = np.maximum(np.maximum(diff[0], diff[1]), diff[2])
    chroma = np.maximum(np.maximum(rgb[0], rgb[1]), rgb[2]) - np.minimum(np.minimum(rgb[0], rgb[1]), rgb[2])
    mag, angle = _colour_gradient(rgb)
    ridge = _non_max_suppression(mag, angle) & (mag > EDGE_GRAD)
    shadow = (dist < SHADOW_DIST) & (chroma < SHADOW_CHROMA) & (mag < SHADOW_GRAD)
    labels, n = label_components(((dist < BG_DIST) | shadow) & ~_dilate(ridge, 1))
    if n == 0:
        return np.ones(dist.shape, bool)
    outside = _outside(labels)
    # Enclosed regions of pure background colour are holes (bag handles, strap gaps).
    areas = np.bincount(labels.ravel(), minlength=n + 1)
    dist_sum = np.bincount(labels.ravel(), weights=dist.ravel(), minlength=n + 1)
    pure = (areas >= HOLE_MIN_FRAC * dist.size) & (dist_sum <= HOLE_MAX_DIST * areas)
    pure[0] = False
    holes = pure[labels] & ~outside
    mask = ~(outside | holes)
    # The flood stops a pixel or two short of the object (the barrier and the blur): shave
    # the rim back to where the barely blurred photo stops being background, open away
    # hairlines.
    sharp = np.abs(_blur_rgb(photo, RIM_SIGMA) - bg).max(0)
    mask &= ~(mask & ~_erode(mask, 2) & (sharp < RIM_DIST))
    mask = _dilate(_erode(mask, 1), 1)
    close = _px(SLIT_PX / 2, drawing_scale(mask))
    mask = _erode(_dilate(mask, close), close)
    mask = _keep_main_parts(_smooth_mask(mask, 1.2))
    return _fill_holes(mask, keep_open=_erode(holes, close))


def _non_max_suppression(mag: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Canny's thinning: keep pixels that are maxima across the edge direction."""
    sector = np.round(angle / (np.pi / 4)).astype(np.int64) % 4  # gradient direction, 45-degree steps
    keep = np.zeros(mag.shape, bool)
    for s, (dy, dx) in enumerate(((0, 1), (1, 1), (1, 0), (1, -1))):
        sel = sector == s
        keep |= sel & (mag >= _shifted(mag, dy, dx, 0.0)) & (mag > _shifted(mag, -dy, -dx, 0.0))
    return keep


def _component_stats(
    labels: np.ndarray, n: int, mag: np.ndarray, coarse: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Per component 1..n: pixel count, mean coarse gradient, peak gradient, bbox diagonal."""
    flat = labels.ravel()
    on = np.flatnonzero(flat)
    lab = flat[on] - 1
    ys, xs = np.divmod(on, labels.shape[1])
    length = np.bincount(lab, minlength=n)
    contrast = np.bincount(lab, weights=coarse.ravel()[on], minlength=n) / length
    peak, y0, x0 = np.zeros(n), np.full(n, 1 << 30), np.full(n, 1 << 30)
    y1, x1 = np.zeros(n, np.int64), np.zeros(n, np.int64)
    np.maximum.at(peak, lab, mag.ravel()[on])
    np.minimum.at(y0, lab, ys)
    np.minimum.at(x0, lab, xs)
    np.maximum.at(y1, lab, ys)
    np.maximum.at(x1, lab, xs)
    return length, contrast, peak, np.hypot(y1 - y0 + 1, x1 - x0 + 1)


def _along_outline(mask: np.ndarray, angle: np.ndarray, spacing: int) -> np.ndarray:
    """Edge pixels within ``spacing`` of the silhouette that run parallel to it (within
    30 degrees): the object's own edge, a rim, a piping. Drawn, they would merge with
    the outline into a thick band; lines that meet or cross it (a hem across a sleeve)
    stay."""
    _, normal = _colour_gradient(_gaussian(mask.astype(np.uint8) * np.uint8(255), spacing / 2)[None])
    return _dilate(_boundary(mask), spacing) & (np.cos(angle - normal) ** 2 > 0.75)


def inner_lines(photo: Image.Image, mask: np.ndarray) -> np.ndarray:
    """Main inner lines as component ids (uint8): long, strong, smooth edges in the mask.

    Hysteresis and the length filter are one pass over connected chains of weak edges.
    Chains are ranked by their contrast at a coarse scale (region boundaries such as a
    sole, a hem or a shirt over jeans survive blurring; fabric grain, checks and small
    print do not) times sqrt(length), penalised when they meander, and the best few are
    kept within a budget relative to the silhouette length, so texture never dominates.
    """
    scale = drawing_scale(mask)
    spacing = _px(LINE_SPACING_PX, scale)
    mag, angle = _colour_gradient(_blur_rgb(photo, LINE_SIGMA))
    coarse, _ = _colour_gradient(_blur_rgb(photo, COARSE_SIGMA))
    cand = _non_max_suppression(mag, angle) & (mag > LINE_LOW) & _erode(mask, 2)
    labels, n = label_components(cand & ~_along_outline(mask, angle, spacing))
    out = np.zeros(mask.shape, np.uint8)
    if n == 0:
        return out
    length, contrast, peak, diag = _component_stats(labels, n, mag, coarse)
    straightness = np.minimum(1.0, LINE_MAX_WINDING * diag / length)
    score = contrast * np.sqrt(length) * straightness**2
    ok = np.flatnonzero((length >= LINE_MIN_PX * scale) & (peak >= LINE_HIGH) & (score >= LINE_MIN_SCORE))
    budget = LINE_BUDGET * _boundary(mask).sum()
    crowded = np.zeros(mask.shape, bool)
    used = kept = 0
    for k in ok[np.argsort(-score[ok])]:
        line = labels == k + 1
        if used + length[k] > budget or crowded[line].mean() > 0.5:  # mostly alongside another
            continue
        used, kept = used + length[k], kept + 1
        out[line] = kept
        crowded |= _dilate(line, spacing)
        if kept == MAX_LINES:
            break
    # Both sides of a thin dark seam come as two chains a pixel or two apart, which would
    # draw as one thick band: merge them into one centre line.
    merge = _px(LINE_MERGE_PX / 2, scale)
    merged = thin(_erode(_dilate(out > 0, merge), merge) & mask)
    return label_components(merged)[0].astype(np.uint8)  # at most MAX_LINES ids


def extract_parts(photo: Image.Image) -> OutlineParts:
    """Silhouette and inner lines of the object in a product photo (any mode)."""
    photo = to_rgb(photo)
    mask = foreground_mask(photo)
    return OutlineParts(mask.astype(np.uint8), inner_lines(photo, mask))


# ---------------------------------------------------------------------------- rendering


def _stamp(lines: np.ndarray, width: float) -> np.ndarray:
    """Draw 1 px centre lines as smooth anti-aliased strokes of ``width`` px (ink 0..1).

    A disc is stamped on every line pixel, then the strokes are blurred and re-thresholded
    at half, which irons out the pixel staircase of edge chains the way a pen glides.
    """
    r = max(float(width) / 2.0, 0.5)
    reach = int(math.ceil(r + 0.5))
    ink = np.zeros(lines.shape, np.float32)
    src = lines.astype(np.float32)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            weight = min(1.0, r + 0.5 - math.hypot(dy, dx))
            if weight > 0:
                np.maximum(ink, _shifted(src, dy, dx, 0.0) * weight, out=ink)
    blurred = _gaussian((ink * 255 + 0.5).astype(np.uint8), min(1.0, r * 0.6)) / 255
    return np.clip((blurred - 0.5) * 2.5 + 0.5, 0, 1)


def _smooth_field(np_rng: np.random.Generator, shape: tuple[int, int], cells: int, amp: float) -> np.ndarray:
    """A smooth random displacement (pixels) from a coarse grid of normal samples."""
    grid = np_rng.normal(0.0, amp, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, "F").resize((shape[1], shape[0]), Image.BICUBIC))


def _warp(ink: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Bilinear resampling ``out(p) = ink(p + d(p))``: a smooth field makes lines wobble."""
    h, w = ink.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y = np.clip(yy + dy, 0, h - 1.001)
    x = np.clip(xx + dx, 0, w - 1.001)
    y0, x0 = y.astype(np.int64), x.astype(np.int64)
    fy, fx = y - y0, x - x0
    top = ink[y0, x0] * (1 - fx) + ink[y0, x0 + 1] * fx
    bot = ink[y0 + 1, x0] * (1 - fx) + ink[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def _erase_spots(
    lines: np.ndarray, np_rng: np.random.Generator, count: int, radius: tuple[float, float]
) -> None:
    """Erase ``count`` discs centred on random line pixels (in place): pen lifts."""
    ys, xs = np.nonzero(lines)
    if count <= 0 or ys.size == 0:
        return
    h, w = lines.shape
    for i in np_rng.integers(0, ys.size, count):
        r = np_rng.uniform(*radius)
        y0, y1 = max(0, int(ys[i] - r)), min(h, int(ys[i] + r) + 1)
        x0, x1 = max(0, int(xs[i] - r)), min(w, int(xs[i] + r) + 1)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        lines[y0:y1, x0:x1] &= (yy - ys[i]) ** 2 + (xx - xs[i]) ** 2 > r * r


def render_outline(
    parts: OutlineParts, rng: random.Random | None = None, *, scale: float | None = None
) -> Image.Image:
    """Draw the parts as black pen strokes on white (RGB, the parts' size).

    Widths and amplitudes are in pixels of a 256 px drawing; ``scale`` is source pixels
    per drawing pixel (default: the parts' longest side / 256). With ``rng`` the drawing is
    roughened like a person's (see :func:`_rough_ink`); deterministic for a given rng state.
    """
    scale = max(parts.size) / REF_SIZE if scale is None else float(scale)
    if rng is None:
        lines = parts.contour() | (parts.lines > 0)
        ink = _stamp(lines, STROKE_PX * scale)
    else:
        ink = _rough_ink(parts, rng, scale)
    return Image.fromarray(np.uint8(255) - (ink * 255 + 0.5).astype(np.uint8)).convert("RGB")


def _rough_ink(parts: OutlineParts, rng: random.Random, scale: float) -> np.ndarray:
    """People draw rougher than edge maps: pen width 1.5-5 px, some inner lines left out
    (each with p = 0.3), small breaks, sometimes an unclosed or simplified (rounder)
    silhouette, and lines that wobble (a smooth random displacement of the strokes)."""
    np_rng = np.random.default_rng(rng.getrandbits(64))
    width = rng.uniform(1.5, 5.0) * scale
    sil = parts.silhouette.astype(bool)
    if rng.random() < 0.2:
        sil = _smooth_mask(sil, rng.uniform(1.5, 4.0) * scale)
    contour = _boundary(sil)
    if rng.random() < 0.3:
        _erase_spots(contour, np_rng, rng.randint(1, 2), (width / 2 + 3 * scale, width / 2 + 8 * scale))
    kept = [k for k in range(1, int(parts.lines.max()) + 1) if rng.random() >= 0.3]
    lines = contour | np.isin(parts.lines, kept)
    if rng.random() < 0.5:
        count = 1 + int(rng.random() * lines.sum() / (100 * scale))
        _erase_spots(lines, np_rng, count, (width / 2 + 0.7 * scale, width / 2 + 2.5 * scale))
    ink = _stamp(lines, width)
    amp, shake = rng.uniform(0.5, 2.5) * scale, rng.uniform(0.0, 0.6) * scale
    dy = _smooth_field(np_rng, ink.shape, 4, amp) + _smooth_field(np_rng, ink.shape, 24, shake)
    dx = _smooth_field(np_rng, ink.shape, 4, amp) + _smooth_field(np_rng, ink.shape, 24, shake)
    return _warp(ink, dy, dx)


def photo_to_outline(photo: Image.Image) -> Image.Image:
    """Clean outline drawing of the object in a product photo, same size as the photo."""
    return render_outline(extract_parts(photo))


# ---------------------------------------------------------------------------- training pairs


def unsquash(photo: Image.Image, aspect: float = 3 / 4) -> Image.Image:
    """Undo a squash to square: resize the height so that width : height = ``aspect``."""
    return photo.resize((photo.width, max(1, round(photo.width / aspect))), Image.LANCZOS)


def outline_frame(parts: OutlineParts, margin: float = 0.08) -> Frame:
    """The square crop the app would pick for a clean drawing of this object (it looks at
    the ink, so the frame comes from the same clean outline it would see)."""
    return find_frame(render_outline(parts), margin=margin)


class OutlinePairMaker:
    """Turns a product photo file into an aligned (outline, photo) training pair."""

    def __init__(self, size: int = 256, cache_dir: str | Path | None = None, augment: bool = True,
                 *, aspect: float | None = None, margin: float = 0.08):
        """``aspect``: undo the data set's squash first (3/4 for fashion-products), so
        products keep their true proportions. ``margin``: as in sketch.find_frame."""
        self.size = size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.augment = augment
        self.aspect = aspect
        self.margin = margin

    def __call__(
        self, photo_path: str | Path, rng: random.Random | None = None
    ) -> tuple[Image.Image, Image.Image]:
        """Both RGB, size x size, aligned: outline (black on white, normalized like the
        app's drawings) and the photo framed with the same crop.

        Raises ImageReadError for an unreadable photo or one with no object found (the
        trainer skips both). Without ``rng`` an augmenting maker uses a fresh, unseeded one.
        """
        photo = load_rgb(photo_path)
        if self.aspect:
            photo = unsquash(photo, self.aspect)
        parts = self.parts(photo_path, photo)
        try:
            frame = outline_frame(parts, self.margin)  # unaugmented: photo and outline share it
        except SketchError:
            raise ImageReadError(f"{Path(photo_path).name}: no object found against a plain background") from None
        if self.augment:
            rng = rng if rng is not None else random.Random()
        outline = render_outline(parts, rng if self.augment else None, scale=frame.side / self.size)
        outline = normalize_sketch(frame_image(outline, frame, self.size), self.size, crop=False)
        return outline, frame_image(photo, frame, self.size, fill=WHITE)

    def parts(self, photo_path: str | Path, photo: Image.Image) -> OutlineParts:
        """Extraction of ``photo`` (loaded from ``photo_path``), through the disk cache."""
        if self.cache_dir is None:
            return extract_parts(photo)
        path = self._cache_path(Path(photo_path))
        if path.exists():
            try:
                parts = OutlineParts.from_image(open_image(path))
                if parts.size == photo.size:
                    return parts
            except (ImageReadError, ValueError) as e:
                log.debug("re-extracting %s: bad cache entry (%s)", photo_path, e)
        parts = extract_parts(photo)
        save_image(parts.to_image(), path)  # atomic: concurrent workers may race on a key
        return parts

    def _cache_path(self, photo_path: Path) -> Path:
        st = photo_path.stat()
        key = f"{OUTLINE_VERSION}|{photo_path.resolve()}|{st.st_mtime_ns}|{st.st_size}|{self.aspect}"
        return self.cache_dir / f"{hashlib.sha1(key.encode()).hexdigest()}.png"


# ---------------------------------------------------------------------------- command line


def outline_command(input: Path, output: Path, size: int = 256) -> int:
    """``python -m pix2pix outlines INPUT --output OUT``: clean outlines of photos as PNGs.

    INPUT is an image or a folder (searched recursively; relative paths are kept under
    OUT). For a single image, OUT is the file to write, or a folder when it has no image
    extension. Outlines are framed and normalized like training inputs. Unreadable files
    are logged and skipped. Returns the number of outlines written.
    """
    input, output = Path(input), Path(output)
    if not input.exists():
        raise ValueError(f"{input}: no such file or folder")
    if input.is_dir():
        out_root = output.resolve()
        jobs = [(p, output / p.relative_to(input).with_suffix(".png"))
                for p in sorted(input.rglob("*"))
                if is_image_file(p) and out_root not in p.resolve().parents]
    elif output.suffix.lower() in IMAGE_EXTS:
        jobs = [(input, output)]
    else:
        jobs = [(input, output / f"{input.stem}.png")]
    maker = OutlinePairMaker(size, augment=False)
    written = 0
    for src, dst in jobs:
        try:
            outline, _ = maker(src)
        except ImageReadError as e:
            log.warning("skipped %s", e)
            continue
        save_image(outline, dst)
        written += 1
    log.info("wrote %d outline(s) to %s", written, output)
    return written
