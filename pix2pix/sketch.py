"""Sketch normalization: any drawing -> the clean input the sketch models are trained on.

User drawings (Gradio Sketchpad, uploaded scans, phone photos of paper sketches) and training
inputs (outlines extracted from photos) all go through :func:`normalize_sketch`, so the model
sees the same kind of image at training and at inference time: black lines about
:data:`STROKE_PX` wide on white paper, centred in a square with a fixed margin.

Pipeline (numpy + Pillow only; about 10-30 ms for a 512x512 canvas, under 0.25 s for a
24-megapixel photo):

1. Any input -> RGB on white (:func:`editor_to_image`), box-reduced to at most
   :data:`WORK_PX` first so that a huge photo costs about as much as a canvas.
2. Ink strength: how much darker than the paper around it each pixel is. The paper is a
   smooth estimate from a coarse grid, so uneven lighting and grey paper divide out; the
   darkest RGB channel is used so coloured ink counts; light lines on a mostly dark image
   (chalk on a board) are measured inverted.
3. Ink (:func:`ink_mask`): darker than half the typical ink strength and than
   :data:`NOISE_FLOOR`, so faint pencil becomes solid while JPEG noise stays paper; specks
   much smaller than a stroke are dropped.
4. Frame (:func:`find_frame`): a square around the ink with a margin, or the whole canvas
   padded to a square; the part outside the image is paper.
5. Render at twice the output size with the lines dilated or eroded to :data:`STROKE_PX`,
   then box-downsample, which leaves light anti-aliasing.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from .errors import Pix2PixError
from .imaging import WHITE, ImageReadError, open_image, to_rgb

log = logging.getLogger(__name__)

WORK_PX = 1024  # longest side the ink is analysed at; larger inputs are box-reduced first

# Paper estimate: a rank filter over a coarse grid (each window about 1/9 of the image).
BG_GRID = 64  # grid cells along the long side
BG_WINDOW = 7  # rank filter size in cells
PAPER_QUANTILE = 0.9  # the paper is the light end of each window, so dense ink doesn't fool it
BG_FLOOR = 0.4  # ... and never darker than this fraction of its brightest value (large fills)
POLARITY_DELTA = 40.0  # grey levels from the local median that count as a strong deviation

# Ink.
NOISE_FLOOR = 0.12  # ink is at least 12% darker than the paper around it
INK_LEVEL_PERCENTILE = 90  # "typical ink strength": this percentile over the candidate pixels
SPECK_AREA = 0.4  # isolated blobs smaller than this times the stroke width squared are noise
SPECK_MAX_WIDTH = 0.01  # ... that width counting as at most this fraction of the long side
MIN_INK_FRACTION = 5e-5  # less ink than this fraction of the analysed area is an empty canvas
MIN_INK_PIXELS = 4  # ... as is less than this many pixels of it

# Output lines.
REFERENCE_SIZE = 256  # output size STROKE_PX is given for; other sizes scale it
# Line width in output pixels at REFERENCE_SIZE: the Sketchpad's pen of about 6 px on a
# 512 canvas, shrunk to 256. Thinner lines are thickened to it, thicker ones thinned towards it.
STROKE_PX = 3
FILL_WIDTH = 0.1  # strokes wider than this fraction of the frame are filled areas, not lines
THIN_KEEP = 0.4  # thinning keeps at least this fraction of the mean line width ...
THICK_LIMIT = 4 / 3  # ... unless that is more than this times STROKE_PX
THIN_LOSS = 0.15  # ... and shortens the ink's outline (i.e. deletes strokes) by at most this
BREAK_SPACING = 50  # ... and opens at most one gap per this many line widths of line

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


# --- input ---------------------------------------------------------------------------------


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    """HxW, HxWx1, HxWx3 or HxWx4 array -> PIL; floats are taken to be in [0, 1]."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.floating):
        arr = np.rint(np.nan_to_num(arr) * 255.0)
    elif arr.dtype == np.uint16:
        arr = np.rint(arr / 257.0)
    arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return Image.fromarray(arr, "L")
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return Image.fromarray(arr, "RGB" if arr.shape[2] == 3 else "RGBA")
    raise SketchError(f"The image has an unsupported shape {arr.shape}.")


def _to_pil(obj) -> Image.Image | None:
    """PIL image, numpy array or file path -> PIL image (any mode); None stays None."""
    if obj is None or isinstance(obj, Image.Image):
        return obj
    if isinstance(obj, np.ndarray):
        return _array_to_pil(obj)
    if isinstance(obj, (str, os.PathLike)):
        try:
            return open_image(obj)
        except ImageReadError as e:
            raise SketchError(f"The image could not be read ({e}).") from e
    raise TypeError(f"expected a PIL image, numpy array or file path, got {type(obj).__name__}")


def _flatten(background: Image.Image | None, layers: list[Image.Image]) -> Image.Image | None:
    """Editor layers composited over the background (or white paper) in order."""
    if background is None and not layers:
        return None
    base = to_rgb(background) if background is not None else Image.new("RGB", layers[0].size, WHITE)
    canvas = base.convert("RGBA")
    for layer in layers:
        # crop() pads a smaller layer with transparency and trims a larger one.
        canvas.alpha_composite(layer.convert("RGBA").crop((0, 0, *canvas.size)))
    return canvas.convert("RGB")


def _as_image(value) -> Image.Image | None:
    """Editor value, PIL image, array or path -> PIL image in whatever mode it came in."""
    if isinstance(value, dict):
        composite = _to_pil(value.get("composite"))
        if composite is not None:
            return composite
        layers = [_to_pil(layer) for layer in value.get("layers") or []]
        return _flatten(_to_pil(value.get("background")), [layer for layer in layers if layer is not None])
    return _to_pil(value)


def editor_to_image(value) -> Image.Image | None:
    """A Gradio ImageEditor/Sketchpad value (dict with 'background', 'layers', 'composite'; each a numpy array, PIL image, file path or None) -> RGB PIL image composited on white; None when there is nothing at all. Also accepts a plain PIL image / numpy array / path.

    The editor's own composite is preferred: in its RGB mode the layers lose their alpha,
    so they are only flattened here when no composite came with them. Unreadable files
    raise :class:`SketchError`.
    """
    image = _as_image(value)
    return None if image is None else to_rgb(image)


def _require_image(value) -> Image.Image:
    """Like :func:`_as_image`, but an absent or zero-size image is an empty canvas."""
    image = _as_image(value)
    if image is None or min(image.size) == 0:
        raise SketchError(EMPTY_MESSAGE)
    return image


def _working_copy(image: Image.Image) -> tuple[Image.Image, int]:
    """RGB copy box-reduced by an integer factor to at most WORK_PX; returns (copy, factor).

    Reducing before compositing on white saves most of the time for huge images (Pillow
    reduces RGBA premultiplied, so the result is the same).
    """
    factor = math.ceil(max(image.size) / WORK_PX)
    if factor > 1:
        image = (image if image.mode in ("L", "RGB", "RGBA") else to_rgb(image)).reduce(factor)
    return to_rgb(image), factor


# --- ink detection -------------------------------------------------------------------------


def _background(channel: np.ndarray, quantile: float) -> np.ndarray:
    """Smooth estimate of the paper under the ink, same shape as ``channel`` (float32).

    The coarse grid averages thin lines away and the rank filter ignores what is left of
    them, so only slow changes remain: lighting gradients, vignetting, the paper's own tone.
    """
    h, w = channel.shape
    scale = min(1.0, BG_GRID / max(h, w))
    grid = Image.fromarray(channel).resize(
        (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX
    )
    rank = round(quantile * (BG_WINDOW * BG_WINDOW - 1))
    grid = grid.filter(ImageFilter.RankFilter(BG_WINDOW, rank))
    grid = grid.filter(ImageFilter.GaussianBlur(BG_WINDOW / 2))
    return np.asarray(grid.resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)


def _light_on_dark(lum: np.ndarray) -> bool:
    """Whether the lines are lighter than the paper (chalk on a board, an inverted scan).

    The paper is the majority, so the image must be mostly dark; and relative to the local
    median, strong deviations must be mostly lighter, so that a dimly lit photo of paper with
    dark lines (also mostly dark) is not inverted. Local, so a vignette's corners don't count.
    """
    if np.median(lum[::4, ::4]) >= 128:
        return False
    diff = lum.astype(np.float32) - _background(lum, 0.5)
    lighter = np.count_nonzero(diff > POLARITY_DELTA)
    darker = np.count_nonzero(diff < -POLARITY_DELTA)
    return bool(lighter > darker)


def _ink_strength(rgb: Image.Image) -> np.ndarray:
    """Per pixel, how much darker (lighter on dark paper) than the paper around it: 0..1."""
    arr = np.asarray(rgb)
    r, g, b = arr[:, :, 0], arr[:, :, 1], arr[:, :, 2]
    if _light_on_dark(np.asarray(rgb.convert("L"))):
        paper_like = 255 - np.maximum(np.maximum(r, g), b)  # light lines on dark -> dark on light
    else:
        paper_like = np.minimum(np.minimum(r, g), b)  # the darkest channel: blue or red ink is dark too
    paper = _background(paper_like, PAPER_QUANTILE)
    # Where ink is so dense that the estimate follows it, fall back to a global paper level.
    paper = np.maximum(paper, BG_FLOOR * float(paper.max()))
    # Dividing (not subtracting) removes multiplicative lighting; +1 keeps black paper at 0.
    return np.clip(1.0 - (paper_like + 1.0) / (paper + 1.0), 0.0, 1.0)


def _ink_image(strength: np.ndarray) -> np.ndarray:
    """Ink strength -> uint8 image where >= 128 is ink: darker than half the typical ink darkness.

    Half the typical level makes faint pencil and black pen alike solid. The values around
    128 stay graded (not binary), so an enlarged copy still has smooth, sub-pixel edges.
    """
    candidates = strength > NOISE_FLOOR
    if not candidates.any():
        return np.zeros(strength.shape, np.uint8)
    level = float(np.percentile(strength[candidates], INK_LEVEL_PERCENTILE))
    threshold = max(NOISE_FLOOR, 0.5 * level)
    return np.rint(np.clip(strength * (127.5 / threshold), 0, 255)).astype(np.uint8)


def _run_sum(a: np.ndarray, r: int) -> np.ndarray:
    """Sum over the 2r+1 columns centred on each column (zero outside), as int32.

    Along rows because numpy's cumsum is many times faster along the contiguous axis.
    """
    if r == 0:
        return a
    n = 2 * r + 1
    c = np.pad(np.ascontiguousarray(a), ((0, 0), (r + 1, r))).cumsum(1, dtype=np.int32)
    return c[:, n:] - c[:, :-n]


def _box_sum(mask: np.ndarray, ry: int, rx: int) -> np.ndarray:
    """Count of True pixels in the (2ry+1) x (2rx+1) window around each pixel (outside counts as False).

    Running sums cost the same for any window size, which keeps large dilations cheap.
    """
    return _run_sum(_run_sum(mask, rx).T, ry).T


def _perimeter(mask: np.ndarray) -> float:
    """Length of the ink's outline in pixels.

    The Crofton estimate from transitions along rows, columns and both diagonals, which is
    within a few percent for any orientation.
    """
    p = np.pad(mask, 1)
    straight = np.count_nonzero(p[1:] != p[:-1]) + np.count_nonzero(p[:, 1:] != p[:, :-1])
    diagonal = np.count_nonzero(p[1:, 1:] != p[:-1, :-1]) + np.count_nonzero(p[1:, :-1] != p[:-1, 1:])
    return math.pi / 8 * (straight + diagonal / math.sqrt(2))


def _stroke_width(mask: np.ndarray) -> float:
    """Mean line width in pixels: ink area / half its perimeter (0 without ink)."""
    area = np.count_nonzero(mask)
    return 2.0 * area / _perimeter(mask) if area else 0.0


def _despeckle(mask: np.ndarray, width: float) -> np.ndarray:
    """Drop isolated blobs much smaller than a stroke (dust, sensor noise, JPEG ringing).

    Any pixel of a line, even at its tip, has at least about width^2 / 2 ink pixels within
    half a stroke width; a lone speck only has its own few. The window is kept that small
    so that neighbouring specks rarely add up. Filled areas inflate the mean width, so it
    is capped at SPECK_MAX_WIDTH of the image size: lines beside a fill are no specks.
    """
    width = min(width, SPECK_MAX_WIDTH * max(mask.shape))
    r = max(1, math.ceil(width / 2))
    min_area = max(2.0, SPECK_AREA * width * width)
    return mask & (_box_sum(mask, r, r) >= min_area)


def _analyse(rgb: Image.Image) -> np.ndarray:
    """RGB image -> ink image (see :func:`_ink_image`) at its own resolution, specks cleared."""
    ink = _ink_image(_ink_strength(rgb))
    mask = ink >= 128
    ink[mask & ~_despeckle(mask, _stroke_width(mask))] = 0
    return ink


def ink_mask(image) -> np.ndarray:
    """Boolean HxW mask of the lines of any sketch or outline that :func:`normalize_sketch` accepts.

    Polarity, uneven lighting, grey paper and coloured ink are handled and specks removed,
    exactly as :func:`normalize_sketch` sees it, but at the image's full resolution: reduce
    very large images first. An empty canvas gives an all-False mask (no error).
    """
    return _analyse(to_rgb(_require_image(image))) >= 128


# --- framing -------------------------------------------------------------------------------


def _square(left: float, top: float, right: float, bottom: float, margin: float) -> Frame:
    """Smallest square holding the box with ``margin`` (fraction of the side) on each side, centred on it."""
    side = float(max(right - left, bottom - top)) / (1.0 - 2.0 * margin)
    return Frame(float(left + right - side) / 2, float(top + bottom - side) / 2, side)


def _locate(image, margin: float, crop: bool) -> tuple[np.ndarray, int, Frame]:
    """Shared by find_frame and normalize_sketch: (reduced ink image, reduction factor, frame)."""
    if not 0.0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    source = _require_image(image)
    work, factor = _working_copy(source)
    ink = _analyse(work)
    mask = ink >= 128
    if np.count_nonzero(mask) < max(MIN_INK_PIXELS, MIN_INK_FRACTION * mask.size):
        raise SketchError(EMPTY_MESSAGE)
    w, h = source.size
    if not crop:
        return ink, factor, _square(0, 0, w, h, 0.0)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    right, bottom = min(w, (cols[-1] + 1) * factor), min(h, (rows[-1] + 1) * factor)
    return ink, factor, _square(cols[0] * factor, rows[0] * factor, right, bottom, margin)


def find_frame(image: Image.Image, *, margin: float = 0.08) -> Frame:
    """Square frame around the ink (the drawn content) with `margin` (fraction of the side) on each side; raises SketchError('The canvas is empty: draw something first.' or similar) when there is no ink."""
    return _locate(image, margin, crop=True)[2]


def frame_image(
    image: Image.Image,
    frame: Frame,
    size: int,
    *,
    fill=WHITE,
    resample=Image.Resampling.LANCZOS,
) -> Image.Image:
    """Crop `image` to `frame` (padding with `fill` outside the image) and resize to size x size. Used to crop a target photo exactly like its outline.

    ``fill`` is a value in the image's mode (a palette index for P); an RGB(A) tuple is
    converted for other modes (white stays white in L). Sub-pixel frame positions are
    honoured, so a photo and its outline stay aligned.
    """
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


# --- rendering -----------------------------------------------------------------------------


def _octagon(r: int) -> tuple[int, int]:
    """Split radius r into a square part a and a cross part b with about the same reach in all directions.

    A square alone reaches sqrt(2) times further along diagonals, so eroding with it would
    cut diagonal lines long before straight ones. Square(a) then cross(b) reaches
    a + b along the axes and (2a + b) / sqrt(2) along the diagonals: equal for a = 0.414 r.
    """
    a = round(r * (math.sqrt(2) - 1))
    return a, r - a


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Grow the ink by r pixels on every side (octagonal structuring element)."""
    a, b = _octagon(r)
    grown = _box_sum(mask, a, a) > 0
    return (_box_sum(grown, 0, b) > 0) | (_box_sum(grown, b, 0) > 0)


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    """Shrink the ink by r pixels on every side (octagonal structuring element)."""
    a, b = _octagon(r)
    shrunk = _box_sum(mask, a, a) == (2 * a + 1) ** 2
    return (_box_sum(shrunk, 0, b) == 2 * b + 1) & (_box_sum(shrunk, b, 0) == 2 * b + 1)


def _euler(mask: np.ndarray) -> int:
    """Number of 4-connected pieces of ink minus the number of holes in them.

    Counted from 2x2 neighbourhoods (Gray's bit quads), so it costs a few array operations.
    """
    p = np.pad(mask, 1).astype(np.uint8)
    a, b, c, d = p[:-1, :-1], p[:-1, 1:], p[1:, :-1], p[1:, 1:]
    n = a + b + c + d
    diagonal = np.count_nonzero((n == 2) & (a == d))
    return (np.count_nonzero(n == 1) - np.count_nonzero(n == 3) + 2 * diagonal) // 4


def _thin(mask: np.ndarray, width: float, keep: float) -> np.ndarray:
    """Erode lines of mean ``width`` to about ``keep`` pixels, without deleting or breaking strokes.

    Strokes thinner than the mean (outlines next to filled areas, say) would vanish, which
    shows as lost outline length after eroding and growing back; lines with narrow spots
    (the staircase of an enlarged pixel line) would fall apart, which shows as more pieces
    and fewer holes. Then the radius is halved until neither happens: lines a little
    thick rather than broken. A few gaps at weak joints are allowed (BREAK_SPACING).
    """
    r = int((width - keep) // 2)  # rounding down, and the estimate runs ~5% high: never too thin
    outline, topology = _perimeter(mask), _euler(mask)
    breaks = 2 + outline / (2 * BREAK_SPACING * keep)  # the outline runs along both sides of a line
    while r > 0:
        core = _erode(mask, r)
        intact = _euler(core) <= topology + breaks
        if intact and _perimeter(_dilate(core, r)) >= (1 - THIN_LOSS) * outline:
            return core
        r //= 2
    return mask


def _set_width(mask: np.ndarray, width: float, target: float) -> np.ndarray:
    """Dilate or erode lines of mean ``width`` to about ``target`` pixels (radius r changes it by 2r).

    Thick lines keep THIN_KEEP of their width (up to THICK_LIMIT times the target), so
    that strokes thinner than the mean, and the narrow spots of jagged ones, survive:
    lines stay a little thick rather than break.
    """
    if width <= target:
        r = round((target - width) / 2)
        return _dilate(mask, r) if r > 0 else mask
    keep = min(max(target, THIN_KEEP * width), THICK_LIMIT * target)
    return _thin(mask, width, keep) if width > keep + 1 else mask


def _line_width(mask: np.ndarray, frame_side: float) -> float:
    """Mean width of the lines, not counting filled areas: parts wider than FILL_WIDTH of the frame."""
    r = math.ceil(FILL_WIDTH * frame_side / 2)
    lines = mask & ~_dilate(_erode(mask, r), r)
    return _stroke_width(lines if lines.any() else mask)


def _render(ink: np.ndarray, frame: Frame, size: int) -> Image.Image:
    """Ink image + frame (in its coordinates) -> RGB size x size, lines set to the target width.

    The width is measured and adjusted at whichever of the two resolutions is finer: before
    shrinking, so that thin lines survive it, or after enlarging, where the graded edges
    give smooth contours and enlarged pixel staircases are measured as they are. Working at
    twice the output size and box-downsampling leaves light anti-aliasing.
    """
    hi = 2 * size
    zoom = hi / frame.side  # hi-res pixels per ink pixel
    target = 2 * STROKE_PX * size / REFERENCE_SIZE
    if zoom < 1:
        mask = ink >= 128
        ink = _set_width(mask, _line_width(mask, frame.side), target / zoom).astype(np.uint8) * 255
    resample = Image.Resampling.BOX if zoom < 1 else Image.Resampling.BILINEAR
    framed = frame_image(Image.fromarray(ink, "L"), frame, hi, fill=0, resample=resample)
    # A little under half: pixels touching at a corner interpolate to exactly half between
    # them, so one-pixel diagonal lines would fall apart into beads when enlarged.
    lines = np.asarray(framed) >= 112
    if zoom >= 1:
        lines = _set_width(lines, _line_width(lines, hi), target)
    paper = np.where(lines, 0, 255).astype(np.uint8)
    return Image.fromarray(paper, "L").reduce(2).convert("RGB")


def normalize_sketch(image, size: int = 256, *, margin: float = 0.08, crop: bool = True, return_frame: bool = False):
    """Any sketch (PIL image of any mode/size, numpy array, or editor dict) -> RGB size x size, black lines on white, centred.
    Returns the image, or (image, frame) with return_frame=True.

    With ``crop=False`` the whole canvas is kept (padded to a square) instead of cropping to
    the ink. The frame is in the input's pixel coordinates: pass it to :func:`frame_image` to
    crop a matching photo identically. Raises :class:`SketchError` when there is no ink.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    ink, factor, frame = _locate(image, margin, crop)
    out = _render(ink, frame.scaled(1 / factor), size)
    log.debug("sketch: analysed at %s (1/%d), %s", ink.shape, factor, frame)
    return (out, frame) if return_frame else out
