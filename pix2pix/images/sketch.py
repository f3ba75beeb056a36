"""Sketch normalization: any drawing -> the clean input the sketch models are trained on.

User drawings (canvas, scans, photos of paper) and training outlines all go through
:func:`normalize_sketch`, so the model sees one kind of image: black lines :data:`STROKE_PX`
wide on white, centred in a square with a margin. The ink is found on a copy of at most
:data:`WORK_PX` (:func:`ink_mask`), framed (:func:`find_frame`), and drawn at twice the
output size with its lines set to the pen width, then box-downsampled.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageFilter

from ..errors import Pix2PixError
from .imaging import WHITE, ImageReadError, open_image, to_rgb
from .page import GAP, find_drawing

log = logging.getLogger(__name__)

WORK_PX = 1024  # longest side the ink is analysed at; larger inputs are box-reduced first

BG_GRID, BG_WINDOW = 64, 7  # paper: a rank filter of 7 x 7 cells (~1/9 of the image) over a 64-cell grid
PAPER_QUANTILE = 0.9  # the paper is the light end of each window, so dense ink doesn't fool it
BG_FLOOR = 0.4  # ... and never darker than this fraction of its brightest value (large fills)
POLARITY_DELTA = 40.0  # grey levels from the local median that count as a strong deviation
NOISE_FLOOR = 0.12  # ink is at least 12% darker than the paper around it
INK_LEVEL_PERCENTILE = 90  # "typical ink strength": this percentile over the candidate pixels
SPECK_AREA = 0.4  # blobs smaller than this times the stroke width squared (at most 1% of the
SPECK_MAX_WIDTH = 0.01  # ... long side: fills inflate the mean width) are noise
MIN_INK_FRACTION, MIN_INK_PIXELS = 5e-5, 4  # less ink than this (of the analysed area) is an empty canvas
REFERENCE_SIZE = 256  # output size STROKE_PX is given for; other sizes scale it
STROKE_PX = 3  # output line width at REFERENCE_SIZE: the Sketchpad's ~6 px pen on a 512 canvas
FILL_WIDTH = 0.1  # strokes wider than this fraction of the frame are filled areas, not lines

EMPTY_MESSAGE = "The canvas is empty: draw something first."


class SketchError(Pix2PixError, ValueError):
    """Input that cannot become a sketch. str(e) is a plain sentence shown to the app's user."""


@dataclass(frozen=True)
class Frame:
    """Square crop box in source pixel coordinates (may extend past the image edges: that part is padded white)."""

    left: float
    top: float
    side: float

    def scaled(self, factor: float) -> Frame:
        """The same box in coordinates ``factor`` times larger (e.g. of a reduced copy)."""
        return Frame(self.left * factor, self.top * factor, self.side * factor)


def _to_pil(obj) -> Image.Image | None:
    """PIL image, numpy array (HxW[xC]; floats and bools in [0, 1]) or file path -> PIL image in its own mode."""
    if obj is None or isinstance(obj, Image.Image):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        try:
            return open_image(obj)
        except ImageReadError as e:
            raise SketchError(f"The image could not be read ({e}).") from e
    if not isinstance(obj, np.ndarray):
        raise TypeError(f"expected a PIL image, numpy array or file path, got {type(obj).__name__}")
    arr = obj[:, :, 0] if obj.ndim == 3 and obj.shape[2] == 1 else obj
    unit = 255 if arr.dtype.kind in "bf" else 1 / 257 if arr.dtype == np.uint16 else 1  # bools, floats: [0, 1]
    arr = np.nan_to_num(arr.astype(np.float32)) * unit
    if arr.ndim != 2 and not (arr.ndim == 3 and arr.shape[2] in (3, 4)):
        raise SketchError(f"The image has an unsupported shape {obj.shape}.")
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))  # L, RGB or RGBA


def _as_image(value) -> Image.Image | None:
    """Editor value, PIL image, array or path -> PIL image in any mode. The editor's composite
    wins: in its RGB mode the layers lose their alpha, so they are only flattened without one."""
    if not isinstance(value, dict):
        return _to_pil(value)
    if (composite := _to_pil(value.get("composite"))) is not None:
        return composite
    background = _to_pil(value.get("background"))
    layers = [layer for layer in map(_to_pil, value.get("layers") or []) if layer is not None]
    if background is None and not layers:
        return None
    canvas = (to_rgb(background) if background is not None else Image.new("RGB", layers[0].size, WHITE)).convert("RGBA")
    for layer in layers:  # crop() pads a smaller layer with transparency and trims a larger one
        canvas.alpha_composite(layer.convert("RGBA").crop((0, 0, *canvas.size)))
    return canvas.convert("RGB")


def editor_to_image(value) -> Image.Image | None:
    """A Gradio ImageEditor/Sketchpad value (dict with 'background', 'layers', 'composite'; each a numpy array, PIL image, file path or None) -> RGB PIL image composited on white; None when there is nothing at all. Also accepts a plain PIL image / numpy array / path; unreadable files raise :class:`SketchError`."""
    image = _as_image(value)
    return None if image is None else to_rgb(image)


def _require_image(value) -> Image.Image:
    """Like :func:`_as_image`, but an absent or zero-size image is an empty canvas."""
    image = _as_image(value)
    if image is None or min(image.size) == 0:
        raise SketchError(EMPTY_MESSAGE)
    return image


def _background(channel: np.ndarray, quantile: float) -> np.ndarray:
    """Smooth estimate of the paper under the ink (float32): the coarse grid averages lines away,
    the rank filter ignores what is left, so only light gradients and the paper's tone remain."""
    h, w = channel.shape
    scale = min(1.0, BG_GRID / max(h, w))
    grid = cv2.resize(channel, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    grid = Image.fromarray(grid).filter(ImageFilter.RankFilter(BG_WINDOW, round(quantile * (BG_WINDOW**2 - 1))))
    grid = np.asarray(grid.filter(ImageFilter.GaussianBlur(BG_WINDOW / 2)), np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR)


def _ink_strength(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, how much darker than the paper around it (0..1); lighter, where the image is
    mostly dark and strong deviations from the local median mostly light (chalk on a board,
    not a dim photo of paper)."""
    lum = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    inverted = False
    if np.median(lum[::4, ::4]) < 128:
        diff = lum - _background(lum, 0.5)
        inverted = np.count_nonzero(diff > POLARITY_DELTA) > np.count_nonzero(diff < -POLARITY_DELTA)
    r, g, b = cv2.split(rgb)  # the darkest channel, so blue or red ink is dark too
    paper_like = 255 - np.maximum(np.maximum(r, g), b) if inverted else np.minimum(np.minimum(r, g), b)
    paper = _background(paper_like, PAPER_QUANTILE)
    # Where ink is so dense that the estimate follows it, fall back to a global paper level.
    paper = np.maximum(paper, BG_FLOOR * float(paper.max()))
    # Dividing (not subtracting) removes multiplicative lighting; +1 keeps black paper at 0.
    return np.clip(1.0 - (paper_like + 1.0) / (paper + 1.0), 0.0, 1.0)


def _stroke_width(mask: np.ndarray) -> float:
    """Mean line width: ink area / half its outline, whose length is the Crofton estimate from
    transitions along rows, columns and diagonals (within a few percent at any angle)."""
    p = np.pad(mask, 1)
    straight = np.count_nonzero(p[1:] != p[:-1]) + np.count_nonzero(p[:, 1:] != p[:, :-1])
    diagonal = np.count_nonzero(p[1:, 1:] != p[:-1, :-1]) + np.count_nonzero(p[1:, :-1] != p[:-1, 1:])
    perimeter = math.pi / 8 * (straight + diagonal / math.sqrt(2))
    return 2.0 * np.count_nonzero(mask) / perimeter if perimeter else 0.0


def _analyse(rgb: Image.Image, region: np.ndarray | None = None, strength: np.ndarray | None = None) -> np.ndarray:
    """RGB image -> uint8 ink image, >= 128 where darker than half the typical ink (faint pencil
    and pen alike), graded around it so an enlarged copy has smooth edges. Specks go: a line
    pixel has about width^2 / 2 ink pixels within half a stroke width, a speck its own few.
    ``region`` (bool): only there, the typical ink measured there too (a page's drawing
    without its notes, whose dark print would make faint pencil look like noise)."""
    strength = _ink_strength(np.asarray(rgb)) if strength is None else strength
    if region is not None:
        strength = np.where(region, strength, 0.0)
    candidates = strength[strength > NOISE_FLOOR]
    threshold = max(NOISE_FLOOR, 0.5 * float(np.percentile(candidates, INK_LEVEL_PERCENTILE) if candidates.size else 0))
    ink = np.rint(np.clip(strength * (127.5 / threshold), 0, 255)).astype(np.uint8)
    mask = ink >= 128
    width = min(_stroke_width(mask), SPECK_MAX_WIDTH * max(mask.shape))
    side = 2 * max(1, math.ceil(width / 2)) + 1
    near = cv2.boxFilter(mask.astype(np.uint8), cv2.CV_32F, (side, side), normalize=False,
                         borderType=cv2.BORDER_CONSTANT)  # ink pixels around each pixel
    ink[mask & (near < max(2.0, SPECK_AREA * width * width))] = 0
    return ink


def ink_mask(image) -> np.ndarray:
    """Boolean HxW mask of the lines :func:`normalize_sketch` sees, at full resolution (reduce
    very large images first); all False for an empty canvas."""
    return _analyse(to_rgb(_require_image(image))) >= 128


ENCLOSED_SHARE = 0.25  # a figure's limbs leave much of its hull open; a garment's outline encloses most


def drawn_region(ink: np.ndarray, *, bridge: int = 5) -> np.ndarray:
    """Where the drawn object is (HxW bool), from its lines' mask: what the outline encloses,
    gaps in it up to ``bridge`` px closed; where it is too open for that (the outside floods in
    and leaves less than ``ENCLOSED_SHARE`` of the lines' convex hull enclosed), that hull;
    everywhere when nothing is drawn. Colour hints count only inside it: outside, the picture stays white background."""
    ys, xs = np.nonzero(ink)
    if len(xs) < 3:
        return np.ones(ink.shape, bool)
    hull = np.zeros(ink.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32)), 1)
    free = 1 - cv2.dilate(ink.astype(np.uint8), np.ones((bridge, bridge), np.uint8))
    _, labels = cv2.connectedComponents(free, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    outside = np.isin(labels, edge[edge > 0]) & (free > 0)
    enclosed = (free > 0) & ~outside  # blank paper the lines close in
    return ~outside if enclosed.sum() >= ENCLOSED_SHARE * hull.sum() else hull.astype(bool)


def _drawing_only(rgb: Image.Image, ink: np.ndarray) -> tuple[np.ndarray, dict[str, int]]:
    """The ink of the drawing alone, and what was left out (see :mod:`pix2pix.images.page`):
    untouched when nothing was; else analysed again within the drawing's box, away from what
    was left out, so its faint lines are measured against its own ink."""
    mask = ink >= 128
    page = find_drawing(mask)
    if not page.left_out:
        return ink, {}
    gone = cv2.dilate((mask & ~page.drawing).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    x, y, w, h = cv2.boundingRect(page.drawing.astype(np.uint8))
    pad = round(GAP * max(mask.shape))
    region = np.zeros_like(mask)
    region[max(0, y - pad): y + h + pad, max(0, x - pad): x + w + pad] = True
    return _analyse(rgb, region & ~gone), page.left_out


def _locate(image, margin: float, crop: bool, page: bool = False) -> tuple[np.ndarray, int, Frame, dict[str, int]]:
    """Shared by find_frame and normalize_sketch: (ink image of a copy reduced by an integer
    factor, factor, frame, what was left out of the page: see :func:`_drawing_only`)."""
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    source = _require_image(image)
    factor = math.ceil(max(source.size) / WORK_PX)
    # Reduced before compositing on white: same result (premultiplied), a fraction of the time.
    work = (source if source.mode in ("L", "RGB", "RGBA") else to_rgb(source)).reduce(factor) if factor > 1 else source
    ink = _analyse(to_rgb(work))
    left_out: dict[str, int] = {}
    if page and crop:
        ink, left_out = _drawing_only(to_rgb(work), ink)
    mask = ink >= 128
    if np.count_nonzero(mask) < max(MIN_INK_PIXELS, MIN_INK_FRACTION * mask.size):
        raise SketchError(EMPTY_MESSAGE)
    (w, h), (x, y, bw, bh) = source.size, cv2.boundingRect(mask.astype(np.uint8))
    box = (x * factor, y * factor, min(w, (x + bw) * factor), min(h, (y + bh) * factor)) if crop else (0, 0, w, h)
    # The smallest square holding the box with the margin on each side, centred on it.
    side = float(max(box[2] - box[0], box[3] - box[1])) / (1.0 - 2.0 * (margin if crop else 0.0))
    frame = Frame(float(box[0] + box[2] - side) / 2, float(box[1] + box[3] - side) / 2, side)
    return ink, factor, frame, left_out


def find_frame(image: Image.Image, *, margin: float = 0.08) -> Frame:
    """Square frame around the ink (the drawn content) with `margin` (fraction of the side) on each side; raises SketchError('The canvas is empty: draw something first.' or similar) when there is no ink."""
    return _locate(image, margin, crop=True)[2]


def frame_image(image: Image.Image, frame: Frame, size: int, *, fill=WHITE,
                resample=Image.Resampling.LANCZOS) -> Image.Image:
    """Crop `image` to `frame` (padding with `fill` outside the image) and resize to size x size. Used to crop a target photo exactly like its outline.
    ``fill``: a value in the image's mode (a palette index for P) or an RGB(A) tuple; sub-pixel
    frame positions are honoured, so a photo and its outline stay aligned."""
    if frame.side <= 0:
        raise ValueError(f"frame side must be positive, got {frame.side}")
    if isinstance(fill, tuple) and len(fill) in (3, 4) and image.mode != "P":
        fill = "#" + "".join(f"{int(v):02x}" for v in fill)  # Pillow converts colour names to any mode
    # Shrinking a lot: box-reduce first so that padding a huge photo stays cheap.
    factor = int(frame.side // (2 * size))
    if factor >= 2 and image.mode in ("L", "LA", "RGB", "RGBA", "CMYK", "I", "F"):  # those reduce() takes
        image, frame = image.reduce(factor), frame.scaled(1 / factor)
    x0, y0 = math.floor(frame.left), math.floor(frame.top)
    x1, y1 = math.ceil(frame.left + frame.side), math.ceil(frame.top + frame.side)
    region = Image.new(image.mode, (x1 - x0, y1 - y0), fill)
    if image.mode == "P":
        region.putpalette(image.getpalette())
    inside = (max(x0, 0), max(y0, 0), min(x1, image.width), min(y1, image.height))
    if inside[0] < inside[2] and inside[1] < inside[3]:
        region.paste(image.crop(inside), (inside[0] - x0, inside[1] - y0))
    box = (frame.left - x0, frame.top - y0, frame.left - x0 + frame.side, frame.top - y0 + frame.side)
    return region.resize((size, size), resample, box=box)


def _distance(mask: np.ndarray) -> np.ndarray:
    """Per pixel of the mask, the distance to the nearest pixel outside it (0 outside)."""
    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)


def _thicken(mask: np.ndarray, reach: float) -> np.ndarray:
    """Lines grown by up to ``reach`` px, as a round pen would draw them, except that two lines
    never merge: the middle of a gap narrower than twice the reach stays paper (a line of it
    wide), so hatching, checks and stripes stay lines instead of filling in, and a small loop
    keeps its hole."""
    gap = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    grown = gap <= reach
    if not grown.any() or reach < 1:
        return grown
    middle = (gap >= cv2.dilate(gap, np.ones((3, 3), np.uint8)) - 0.5) & (gap > 0.5) & (gap <= reach + 1)
    return grown & ~middle


def _set_width(mask: np.ndarray, target: float, frame_side: float) -> np.ndarray:
    """Lines -> about ``target`` px wide; fills (wider than FILL_WIDTH of the frame) stay. Thin
    lines grow by a round pen; thick ones keep what lies within target / 2 of the middle of the
    line nearby, not eroded as a whole, so thinner strokes and narrow spots survive."""
    dist = _distance(mask)
    r = math.ceil(FILL_WIDTH * frame_side / 2)
    # An opening: the parts a disc of radius r fits in. Where none does (lines only, the usual
    # drawing), there is nothing to open and a distance transform is saved.
    deep = dist > r
    fills = mask & (_distance(~deep) <= r) if deep.any() else np.zeros_like(mask)
    width = _stroke_width(mask & ~fills if (mask & ~fills).any() else mask)
    if width < target - 1:
        return _thicken(mask, round((target - width) / 2) + 0.5)
    if width <= target + 1:
        return mask
    # The middle: the deepest pixel within reach, capped so joints cut no waist into their lines.
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * math.ceil(width / 2) + 1,) * 2)
    return fills | (mask & (dist > np.minimum(cv2.dilate(dist, disc), width / 2) - target / 2))


def _render(ink: np.ndarray, frame: Frame, size: int) -> Image.Image:
    """Ink image + frame (in its coordinates) -> RGB size x size. The width is set at the finer
    resolution: before shrinking, so thin lines survive, or after enlarging the graded edges."""
    hi = 2 * size
    zoom = hi / frame.side  # hi-res pixels per ink pixel
    target = 2 * STROKE_PX * size / REFERENCE_SIZE
    if zoom < 1:
        ink = _set_width(ink >= 128, target / zoom, frame.side).astype(np.uint8) * 255
    resample = Image.Resampling.BOX if zoom < 1 else Image.Resampling.BILINEAR
    framed = frame_image(Image.fromarray(ink, "L"), frame, hi, fill=0, resample=resample)
    # Under half: one-pixel diagonal lines interpolate to half between pixels and would bead.
    lines = np.asarray(framed) >= 112
    if zoom >= 1:
        lines = _set_width(lines, target, hi)
    return Image.fromarray(np.where(lines, 0, 255).astype(np.uint8), "L").reduce(2).convert("RGB")


def normalize_sketch(image, size: int = 256, *, margin: float = 0.08, crop: bool = True, return_frame: bool = False,
                     page: bool = False, left_out: dict | None = None):
    """Any sketch (PIL image of any mode/size, numpy array, or editor dict) -> RGB size x size, black lines on white, centred.
    Returns the image, or (image, frame) with return_frame=True; ``crop=False`` keeps the whole
    canvas (padded to a square). The frame is in input pixels: :func:`frame_image` crops a
    matching photo with it. ``page``: leave out what is on the page but not part of the
    drawing (notes, a border, swatches, specks: :mod:`pix2pix.images.page`), counted by kind
    into ``left_out`` when given. Raises :class:`SketchError` when there is no ink."""
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    ink, factor, frame, dropped = _locate(image, margin, crop, page)
    if left_out is not None:
        left_out.update(dropped)
    out = _render(ink, frame.scaled(1 / factor), size)
    log.debug("sketch: analysed at %s (1/%d), %s", ink.shape, factor, frame)
    return (out, frame) if return_frame else out
