"""Does an input look like what a model takes? A photo given to a sketch model, or a line
drawing given to a label-map model, still gives an image, but a useless one; the app says
so in one line instead of letting it pass silently.

A label map is told by its colours: a handful of them cover nearly all of it, at least three
in areas (349 of the 350 facades label maps; none of 200 product photos). Otherwise the test
is the ink's shape. A drawing's ink (whatever differs from the paper, or from a dark board)
is lines: a few pixels wide, gone after a 5×5 erosion at 128 px. A photo's object and a label
map's regions are solid areas. Measured on this project's data: the nine example sketches
keep 0.000–0.001 of their area as solid ink; 286 of 300 random fashion product photos are
over the 0.05 threshold (the misses are white or pale garments on white).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image, ImageOps

from .imaging import to_rgb

ANALYSIS_SIDE = 128
PHOTO_SOLID = 0.05  # more solid ink than this: not a line drawing
WHITE_MIN = 225  # every channel above this: paper, not a label colour
DRAWING_WHITE = 0.5  # a label map is all regions: a drawing is mostly paper


def _small(image: Image.Image) -> np.ndarray:
    """The picture at ANALYSIS_SIDE px, RGB float (a new small image: a 24 MP upload is
    never copied at full size)."""
    return np.asarray(ImageOps.contain(to_rgb(image), (ANALYSIS_SIDE, ANALYSIS_SIDE)), np.float32)


def solid_ink(small: np.ndarray) -> float:
    """The share of the picture (from :func:`_small`) covered by ink in areas, not lines
    (0 for a clean drawing)."""
    grey = small.mean(axis=2)
    paper = np.median(grey)  # white paper, or a dark board with light lines
    ink = (np.abs(grey - paper) > 25).astype(np.uint8)
    return float(cv2.erode(ink, np.ones((5, 5), np.uint8)).mean())


def paper_share(small: np.ndarray) -> float:
    """The share of near-white pixels (of a picture from :func:`_small`)."""
    return float((small.min(axis=2) > WHITE_MIN).mean())


LABEL_COLOURS, LABEL_COVER = 16, 0.95  # a label map: its few most common colours cover nearly all of it
LABEL_REGIONS, LABEL_REGION = 3, 0.02  # ... and at least three of them are areas, not lines on a board


def flat_colours(image: Image.Image) -> float:
    """The share of the picture that its ``LABEL_COLOURS`` most common colours cover, counted
    exactly on a nearest-neighbour copy (no blended edges): a label map's regions are flat, a
    photo's shading is not."""
    small = np.asarray(to_rgb(image).resize((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.NEAREST))
    codes = small.astype(np.uint32) @ np.array([65536, 256, 1], np.uint32)
    counts = np.sort(np.unique(codes, return_counts=True)[1])[::-1]
    if np.count_nonzero(counts >= LABEL_REGION * codes.size) < LABEL_REGIONS:
        return 0.0  # a drawing on a plain ground: two colours, however flat
    return float(counts[:LABEL_COLOURS].sum() / codes.size)


def mismatch(image: Image.Image, input_kind: str, palette_colours: list[tuple[int, int, int]] = ()) -> str | None:
    """A one-line notice when ``image`` is not the kind of input the model takes, else None:
    ``"labels"`` for a colour label map (few flat colours in large areas) and ``"photo"`` for a
    photo (or painting) given to a sketch model, ``"drawing"`` for a line drawing given to a
    label-map model whose palette has no white."""
    if input_kind == "sketch":
        small = _small(image)
        if paper_share(small) < DRAWING_WHITE and flat_colours(image) >= LABEL_COVER:
            return "labels"
        return "photo" if solid_ink(small) > PHOTO_SOLID else None
    if input_kind == "labels" and not any(min(c) > WHITE_MIN for c in palette_colours):
        small = _small(image)
        if paper_share(small) > DRAWING_WHITE and solid_ink(small) < PHOTO_SOLID:
            return "drawing"
    return None
