"""Telling a user that an input is not the kind the model takes (a photo for a sketch model,
a line drawing for a label-map model), measured on the project's own examples."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from appkit import PALETTE, sketch
from conftest import ROOT, SHARED_DATA, requires_shared_data
from pix2pix.images.imaging import open_image
from pix2pix.images.inputs import mismatch

EXAMPLES = ROOT / "demo" / "examples"
FACADES = [tuple(c.color) for c in PALETTE]


def product_photo(seed: int) -> Image.Image:
    """A product shot: a shaded, coloured object on white."""
    r = random.Random(seed)
    img = Image.new("RGB", (300, 400), "white")
    d = ImageDraw.Draw(img)
    colour = tuple(r.randint(20, 200) for _ in range(3))
    d.rounded_rectangle((60, 80, 240, 330), radius=40, fill=colour)
    d.ellipse((100, 120, 200, 220), fill=tuple(min(255, c + 40) for c in colour))
    return img


def test_drawings_pass_and_photos_are_told_apart():
    drawings = [open_image(p) for p in sorted(EXAMPLES.glob("fashion_*.png"))] + [sketch(k) for k in ("shoe", "bag")]
    assert len(drawings) >= 5
    assert [mismatch(d, "sketch") for d in drawings] == [None] * len(drawings)
    assert [mismatch(product_photo(s), "sketch") for s in range(5)] == ["photo"] * 5
    assert mismatch(product_photo(0), "image") is None  # an image-to-image model takes anything


def test_label_maps_pass_and_line_drawings_are_told_apart():
    maps = [open_image(p) for p in sorted(EXAMPLES.glob("facades_*.png"))]
    assert maps and [mismatch(m, "labels", FACADES) for m in maps] == [None] * len(maps)
    assert mismatch(sketch("shoe"), "labels", FACADES) == "drawing"
    assert mismatch(sketch("shoe"), "labels", [(255, 255, 255), *FACADES]) is None  # white is a label there


@requires_shared_data("fashion-products")
def test_real_product_photos_are_told_apart():
    photos = sorted((SHARED_DATA / "fashion-products" / "images").glob("*.jpg"))
    sample = random.Random(0).sample(photos, 40)
    flagged = [mismatch(open_image(p), "sketch") == "photo" for p in sample]
    assert np.mean(flagged) >= 0.85, f"{sum(flagged)} of 40 product photos recognised as photos"
