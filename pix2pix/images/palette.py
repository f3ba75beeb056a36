"""Label-map inputs: colours snapped to a model's label palette.

A label-map model (facades) was trained on exact class colours; a drawing made with a
slightly different colour, or a JPEG-compressed label map, would be out of distribution.
Snapping every pixel to the nearest palette colour puts it back.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..config import LabelClass
from .imaging import to_rgb


def palette_array(palette: list[LabelClass]) -> np.ndarray:
    return np.array([c.color for c in palette], dtype=np.int32).reshape(-1, 3)


def snap_to_palette(image: Image.Image, palette: list[LabelClass]) -> Image.Image:
    """Every pixel -> the nearest label colour (Euclidean in RGB); returns RGB."""
    if not palette:
        raise ValueError("this model has no label palette")
    rgb = np.asarray(to_rgb(image), dtype=np.int32)
    colors = palette_array(palette)
    flat = rgb.reshape(-1, 3)
    # Distances through the unique colours only: a label map has few of them, so this is
    # fast even for big images.
    uniq, inverse = np.unique(flat, axis=0, return_inverse=True)
    d = ((uniq[:, None, :] - colors[None, :, :]) ** 2).sum(-1)
    snapped = colors[d.argmin(1)][inverse.reshape(-1)]
    return Image.fromarray(snapped.reshape(rgb.shape).astype(np.uint8), "RGB")


def label_ids(image: Image.Image, palette: list[LabelClass]) -> np.ndarray:
    """(H, W) array of class ids after snapping."""
    rgb = np.asarray(snap_to_palette(image, palette), dtype=np.int32)
    colors = palette_array(palette)
    key = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    ckey = (colors[:, 0] << 16) | (colors[:, 1] << 8) | colors[:, 2]
    ids = np.array([c.id for c in palette])
    return ids[np.argmax(key[..., None] == ckey, axis=-1)]
