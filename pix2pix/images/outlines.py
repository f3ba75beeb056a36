"""Outlines of product photos, the sketch model's inputs (like pix2pix's edges2shoes), aimed at
what a person draws with the app's pen: the object's closed outline (:func:`foreground_mask`;
a model wearing a garment is part of it) and a few main inner lines (:func:`inner_lines`: sole,
collar, straps), not texture or print. Sizes that must read well are in pixels of the 256 px
framed drawing. :mod:`pix2pix.images.strokes` draws the parts, :mod:`pix2pix.images.pairs` makes pairs."""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .imaging import to_rgb
from .strokes import REF_SIZE, OutlineParts, contour, render_outline

OUTLINE_VERSION = 2  # bump whenever extraction changes: it is part of the cache key

# Photo analysis, in pixels of the photo (the data set's are 224 px) and levels 0-255.
MASK_SIGMA = 1.0
BG_DIST = 5.0  # max channel difference still counted as background (it is pure white)
RIM_DIST, RIM_SIGMA = 14.0, 0.6  # at the object's rim (JPEG ringing) this much is still background
SHADOW_DIST, SHADOW_CHROMA, SHADOW_GRAD = 48.0, 14.0, 1.0  # light, grey and smooth: shadow
EDGE_GRAD = 4.0  # an edge ridge this strong stops the background flood
HOLE_MIN_FRAC, HOLE_MAX_DIST = 0.002, 3.0  # enclosed pure-background regions this large stay holes
MIN_PART_FRAC = 0.08  # parts smaller than this fraction of the largest one are dropped
LINE_SIGMA, COARSE_SIGMA = 1.6, 3.5  # edges are found at the first scale, judged at the second
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

_THINNING = [np.rot90(np.array(t, np.int32), k).copy() for k in range(4)  # hit-or-miss: 1 ink, -1 paper
             for t in ([[-1, -1, -1], [0, 1, 0], [1, 1, 1]], [[0, -1, -1], [1, 1, -1], [0, 1, 0]])]


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1,) * 2, np.uint8)) > 0


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    """By a (2r+1)^2 square; outside the image is foreground, so a cut-off object keeps its edge."""
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * r + 1,) * 2, np.uint8)) > 0


def _components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """8-connected components: (count with label 0, labels, areas, touches the image border)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    x, y, w, h, area = stats.T
    border = (x == 0) | (y == 0) | (x + w == mask.shape[1]) | (y + h == mask.shape[0])
    return n, labels, area, border & (np.arange(n) > 0)  # label 0 is what is not in the mask


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(a.astype(np.float32), (0, 0), sigma)


def _channel_max(img: np.ndarray) -> np.ndarray:
    return np.maximum.reduce(cv2.split(img))  # numpy is slow along a short last axis


def _gradient(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Magnitude in levels per pixel, direction) of the dominant direction of the Sobel structure
    tensor: colour edges between equally bright regions (red shirt, blue jeans) count too."""
    gx, gy = (cv2.split(cv2.Sobel(img, cv2.CV_32F, dx, 1 - dx, scale=1 / 8, borderType=cv2.BORDER_REPLICATE))
              for dx in (1, 0))
    jxx, jyy, jxy = sum(x * x for x in gx), sum(y * y for y in gy), sum(x * y for x, y in zip(gx, gy))
    half = (jxx - jyy) / 2
    return np.sqrt((jxx + jyy) / 2 + np.sqrt(half * half + jxy * jxy)), 0.5 * np.arctan2(2 * jxy, jxx - jyy)


def _ridges(mag: np.ndarray, angle: np.ndarray, low: float) -> np.ndarray:
    """Canny's non-maximum suppression of a given gradient (passed in 1/16 levels), above ``low``."""
    dx, dy = (np.rint(16 * mag * f(angle)).astype(np.int16) for f in (np.cos, np.sin))
    return cv2.Canny(dx, dy, 16 * low, 16 * low, L2gradient=True) > 0


def _thin(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide centre lines: peel off boundary pixels until nothing changes."""
    img = mask.astype(np.uint8)
    while True:
        before = np.count_nonzero(img)
        for template in _THINNING:
            img -= cv2.morphologyEx(img, cv2.MORPH_HITMISS, template)
        if np.count_nonzero(img) == before:
            return img > 0


def drawing_scale(mask: np.ndarray, margin: float = 0.08) -> float:
    """Photo pixels per pixel of the 256 px drawing the app's framing would make of this mask."""
    extent = max(cv2.boundingRect(mask.astype(np.uint8))[2:])
    return extent / (1 - 2 * margin) / REF_SIZE if extent else max(mask.shape) / REF_SIZE


def _px(drawing_px: float, scale: float) -> int:
    return max(1, round(drawing_px * scale))


def _flood(rgb: np.ndarray, bg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Object, enclosed holes): the background is what the border reaches through background colour
    or shadow without crossing an edge ridge, so a white shirt on white keeps its faint edge."""
    dist = _channel_max(np.abs(rgb - bg))
    chroma = _channel_max(rgb) + _channel_max(-rgb)
    mag, angle = _gradient(rgb)
    shadow = (dist < SHADOW_DIST) & (chroma < SHADOW_CHROMA) & (mag < SHADOW_GRAD)
    n, labels, area, outside = _components(((dist < BG_DIST) | shadow) & ~_dilate(_ridges(mag, angle, EDGE_GRAD), 1))
    # Enclosed regions of pure background colour are holes (bag handles, strap gaps).
    dist_sum = np.bincount(labels.ravel(), weights=dist.ravel(), minlength=n)
    pure = (area >= HOLE_MIN_FRAC * dist.size) & (dist_sum <= HOLE_MAX_DIST * area) & ~outside
    pure[0] = False
    return ~(outside | pure)[labels], pure[labels]


def foreground_mask(photo: Image.Image) -> np.ndarray:
    """Boolean object mask of a product photo on a (near-)white background: large enclosed
    background (bag handles) stays open, slits one pen line would cover are closed."""
    arr = np.asarray(to_rgb(photo), np.float32)
    rgb = _blur(arr, MASK_SIGMA)
    border = [rgb[:2], rgb[-2:], rgb[:, :2], rgb[:, -2:]]  # two pixels wide
    bg = np.median(np.concatenate([b.reshape(-1, 3) for b in border]), 0)
    mask, holes = _flood(rgb, bg)
    # The flood stops short of the object: shave the rim back to where the barely blurred photo
    # stops being background, open away hairlines, close slits one pen line would cover.
    sharp = _channel_max(np.abs(_blur(arr, RIM_SIGMA) - bg))
    mask &= _erode(mask, 2) | (sharp >= RIM_DIST)
    mask = _dilate(_erode(mask, 1), 1)
    close = _px(SLIT_PX / 2, drawing_scale(mask))
    mask = _blur(_erode(_dilate(mask, close), close), 1.2) >= 0.5  # round off jaggies and notches
    _, labels, area, _ = _components(mask)
    area[0] = 0
    mask = (area >= max(MIN_PART_FRAC * area.max(), 0.0005 * mask.size))[labels]
    # Fill enclosed background, except the large holes found above.
    _, labels, _, outside = _components(~mask)
    opened = np.bincount(labels[_erode(holes, close) & ~mask], minlength=outside.size) > 0
    return ~(outside | opened)[labels]


def _along_outline(mask: np.ndarray, angle: np.ndarray, spacing: int) -> np.ndarray:
    """Edges within ``spacing`` of the silhouette and within 30 degrees of parallel to it (a rim,
    a piping): drawn, they would merge with it into a band. Lines that cross it stay."""
    _, normal = _gradient(_blur(mask * np.float32(255), spacing / 2))
    return _dilate(contour(mask), spacing) & (np.cos(angle - normal) ** 2 > 0.75)


def _chains(photo: Image.Image, mask: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge chains inside the mask: (labels, length per label, the labels worth drawing, best
    first). Chains that reach LINE_HIGH (hysteresis) are ranked by contrast at a coarse scale
    (a sole, a hem survive blurring; fabric grain and small print do not) times sqrt(length),
    penalised when they meander."""
    rgb = np.asarray(photo, np.float32)
    mag, angle = _gradient(_blur(rgb, LINE_SIGMA))
    coarse, _ = _gradient(_blur(rgb, COARSE_SIGMA))
    cand = _ridges(mag, angle, LINE_LOW) & _erode(mask, 2) & ~_along_outline(mask, angle, _px(LINE_SPACING_PX, scale))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    length = stats[:, cv2.CC_STAT_AREA].astype(np.float64)  # label 0 (no edge) is never drawn
    peak = np.zeros(n)
    np.maximum.at(peak, labels[cand], mag[cand])
    straightness = np.minimum(1.0, LINE_MAX_WINDING * np.hypot(stats[:, 2], stats[:, 3]) / length)
    score = np.bincount(labels.ravel(), coarse.ravel(), n) / length * np.sqrt(length) * straightness**2
    ok = np.flatnonzero((length >= LINE_MIN_PX * scale) & (peak >= LINE_HIGH) & (score >= LINE_MIN_SCORE))
    return labels, length, ok[np.argsort(-score[ok])]


def inner_lines(photo: Image.Image, mask: np.ndarray) -> np.ndarray:
    """Main inner lines as ids (uint8): the best chains, within a length budget relative to the
    silhouette's so texture never dominates, and none mostly alongside one already kept."""
    scale = drawing_scale(mask)
    spacing = _px(LINE_SPACING_PX, scale)
    labels, length, best = _chains(photo, mask, scale)
    budget = LINE_BUDGET * np.count_nonzero(contour(mask))
    out, crowded, kept = np.zeros(mask.shape, bool), np.zeros(mask.shape, bool), 0
    for k in best:
        line = labels == k
        if length[k] > budget or crowded[line].mean() > 0.5:
            continue
        budget, kept = budget - length[k], kept + 1
        out |= line
        crowded |= _dilate(line, spacing)
        if kept == MAX_LINES:
            break
    # The two sides of a thin seam would draw as one thick band: merge them into one line.
    merge = _px(LINE_MERGE_PX / 2, scale)
    merged = _thin(_erode(_dilate(out, merge), merge) & mask)
    return cv2.connectedComponents(merged.astype(np.uint8), connectivity=8)[1].astype(np.uint8)


def extract_parts(photo: Image.Image) -> OutlineParts:
    """Silhouette and inner lines of the object in a product photo (any mode)."""
    photo = to_rgb(photo)
    mask = foreground_mask(photo)
    return OutlineParts(mask.astype(np.uint8), inner_lines(photo, mask))


def photo_to_outline(photo: Image.Image) -> Image.Image:
    """Clean outline drawing of the object in a product photo, same size as the photo."""
    return render_outline(extract_parts(photo))
