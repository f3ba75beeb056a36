"""Write the app's gallery examples from the shipped models' validation data.

Fashion: outlines extracted (unaugmented, normalized like a drawing) from validation
photos, items and figures; facades: validation label maps, resized with nearest neighbour.
The file name says which model an example belongs to (``fashion_*.png``, ``facades_*.png``).
A few examples also get colour hints (``*.hints.png``: a transparent layer with a few
strokes of one colour across the object, a colour the photo does not have), which the
gallery loads into the canvas's colour layer.

    python scripts/make_examples.py --fashion ../shared/data/fashion-products \
        --facades ../shared/data/cmp-facades-base
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageColor, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pix2pix.images.imaging import load_rgb, save_image  # noqa: E402
from pix2pix.images.outlines import foreground_mask  # noqa: E402
from pix2pix.images.pairs import OutlinePairMaker  # noqa: E402

EXAMPLES = ROOT / "demo" / "examples"
# name -> id of a photo in weights/fashion/val_list.txt, picked for variety
FASHION = {"sneaker": "13919", "pump": "21387", "sandal": "13980", "handbag": "14805",
           "backpack": "15291", "shirt": "12371"}
# ... and in weights/fashion/val_figures.txt: garments worn by a figure
FIGURES = {"figure_tshirt": "12615", "figure_kurta": "11535"}
FACADES = {"classic": "cmp_b0004", "tall": "cmp_b0035", "shopfront": "cmp_b0059"}
# example name -> colour of its hints (a colour its photo does not have)
HINTED = {"sneaker": ("red", "#d62828"), "handbag": ("blue", "#1d4ed8"), "figure_tshirt": ("green", "#2a9d8f")}
HINT_WIDTH = 12  # canvas pixels, about the app's colour brush
SIZE = 512  # the app's canvas


def hint_layer(photo: Image.Image, colour: str) -> Image.Image:
    """A transparent layer with two short strokes of ``colour`` well inside the object (for a
    figure: its upper body, where the garment is), as a user would dab it: few and short, like
    the hints the model was trained with."""
    mask = foreground_mask(photo).astype(np.uint8)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    ys, _ = np.nonzero(mask)
    top, bottom = ys.min(), ys.max()
    layer = Image.new("RGBA", photo.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    rgba = (*ImageColor.getrgb(colour), 255)
    for f in (0.4, 0.6):
        y = int(top + f * (bottom - top))
        row = np.nonzero(inside[y] > 2 * HINT_WIDTH)[0]
        if len(row) > 1:
            middle, half = (row.min() + row.max()) // 2, (row.max() - row.min()) // 6
            draw.line([(middle - half, y), (middle + half, y)], fill=rgba, width=HINT_WIDTH)
    return layer


def fashion_examples(images: Path) -> None:
    items = (ROOT / "weights" / "fashion" / "val_list.txt").read_text()
    figures = (ROOT / "weights" / "fashion" / "val_figures.txt").read_text()
    maker = OutlinePairMaker(SIZE, augment=False, aspect=0.75)
    for name, photo_id in (FASHION | FIGURES).items():
        listed = figures if name in FIGURES else items
        assert f"{photo_id}.jpg" in listed, f"{photo_id} is not a validation photo"
        outline, photo = maker(images / f"{photo_id}.jpg")
        save_image(outline.convert("L"), EXAMPLES / f"fashion_{name}.png", optimize=True)
        if name in HINTED:
            colour_name, colour = HINTED[name]
            stem = f"fashion_{colour_name}_{name}"
            save_image(outline.convert("L"), EXAMPLES / f"{stem}.png", optimize=True)
            save_image(hint_layer(photo, colour), EXAMPLES / f"{stem}.hints.png", optimize=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fashion", type=Path, required=True, help="the fashion-products folder")
    ap.add_argument("--facades", type=Path, required=True, help="the cmp-facades-base folder")
    args = ap.parse_args()
    fashion_examples(args.fashion / "images")
    val = (ROOT / "weights" / "facades" / "val_list.txt").read_text()
    for name, stem in FACADES.items():
        assert f"{stem}.png" in val, f"{stem} is not a validation label map"
        labels = load_rgb(args.facades / f"{stem}.png").resize((SIZE, SIZE), Image.Resampling.NEAREST)
        save_image(labels, EXAMPLES / f"facades_{name}.png", optimize=True)
    print(f"wrote {len(FASHION) + len(FIGURES) + len(HINTED) + len(FACADES)} examples to {EXAMPLES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
