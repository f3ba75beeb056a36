"""Write the app's gallery examples from the shipped models' validation data.

Fashion: outlines extracted (unaugmented, normalized like a drawing) from validation
photos; facades: validation label maps, resized with nearest neighbour. The file name says
which model an example belongs to (``fashion_*.png``, ``facades_*.png``).

    python scripts/make_examples.py --fashion ../shared/data/fashion-products \
        --facades ../shared/data/cmp-facades-base
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pix2pix.imaging import load_rgb, save_image  # noqa: E402
from pix2pix.pairs import OutlinePairMaker  # noqa: E402

EXAMPLES = ROOT / "demo" / "examples"
# name -> id of a photo in weights/fashion/val_list.txt, picked for variety
FASHION = {"sneaker": "13919", "pump": "21387", "sandal": "13980", "handbag": "14805",
           "backpack": "15291", "shirt": "12371"}
FACADES = {"classic": "cmp_b0004", "tall": "cmp_b0035", "shopfront": "cmp_b0059"}
SIZE = 512  # the app's canvas


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fashion", type=Path, required=True, help="the fashion-products folder")
    ap.add_argument("--facades", type=Path, required=True, help="the cmp-facades-base folder")
    args = ap.parse_args()
    val = (ROOT / "weights" / "fashion" / "val_list.txt").read_text()
    maker = OutlinePairMaker(SIZE, augment=False, aspect=0.75)
    for name, photo_id in FASHION.items():
        assert f"{photo_id}.jpg" in val, f"{photo_id} is not a validation photo"
        outline, _ = maker(args.fashion / "images" / f"{photo_id}.jpg")
        save_image(outline.convert("L"), EXAMPLES / f"fashion_{name}.png", optimize=True)
    val = (ROOT / "weights" / "facades" / "val_list.txt").read_text()
    for name, stem in FACADES.items():
        assert f"{stem}.png" in val, f"{stem} is not a validation label map"
        labels = load_rgb(args.facades / f"{stem}.png").resize((SIZE, SIZE), Image.Resampling.NEAREST)
        save_image(labels, EXAMPLES / f"facades_{name}.png", optimize=True)
    print(f"wrote {len(FASHION) + len(FACADES)} examples to {EXAMPLES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
