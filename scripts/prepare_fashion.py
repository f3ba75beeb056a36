"""Build the training folder of the shipped fashion model from the Fashion Product Images set.

Selects shoes, bags and garments photographed on their own (flat lay or mannequin-free),
holds out a fixed validation list, and writes ``OUT/train`` and ``OUT/val`` as symbolic
links to the original photos (nothing is copied or modified). Garments worn by a person are
left out: their outline is a whole figure cut off by the photo edge, not what anyone draws
when sketching a T-shirt. The outlines themselves are made at training time
(``python -m pix2pix train OUT --outlines``).

    python scripts/prepare_fashion.py ../shared/data/fashion-products --out datasets/fashion \
        --val-list weights/fashion/val_list.txt
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pix2pix.imaging import ImageReadError, load_rgb  # noqa: E402
from pix2pix.outlines import foreground_mask  # noqa: E402
from pix2pix.pairs import unsquash  # noqa: E402

log = logging.getLogger("prepare_fashion")

FOOTWEAR = {"Shoes", "Sandal", "Flip Flops"}  # subCategory, masterCategory Footwear
BAGS = {"Bags"}  # subCategory under Accessories
GARMENTS = {"Topwear", "Bottomwear", "Dress"}  # subCategory under Apparel
MAX_BORDER_TOUCH = 0.05  # a garment whose silhouette covers more of an edge is worn or cut off


def group_of(row: dict) -> str | None:
    if row["masterCategory"] == "Footwear" and row["subCategory"] in FOOTWEAR:
        return "footwear"
    if row["masterCategory"] == "Accessories" and row["subCategory"] in BAGS:
        return "bags"
    if row["masterCategory"] == "Apparel" and row["subCategory"] in GARMENTS:
        return "garments"
    return None


def stands_alone(path: Path) -> bool:
    """True when the object's silhouette stays clear of the photo's edges."""
    mask = foreground_mask(unsquash(load_rgb(path)))
    if not mask.any():
        return False
    edges = (mask[0], mask[-1], mask[:, 0], mask[:, -1])
    return max(float(np.mean(e)) for e in edges) <= MAX_BORDER_TOUCH


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the fashion-products folder (images/ and styles.csv)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--val-list", type=Path, required=True, help="written if missing, else reused")
    ap.add_argument("--val-per-group", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2017)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    images = args.data / "images"
    chosen: dict[str, list[str]] = {"footwear": [], "bags": [], "garments": []}
    with open(args.data / "styles.csv", newline="") as f:
        for row in csv.DictReader(f):
            group = group_of(row)
            path = images / f"{row['id']}.jpg"
            if group is None or not path.is_file():
                continue
            if group == "garments":
                try:
                    if not stands_alone(path):
                        continue
                except ImageReadError as e:
                    log.warning("skipping %s", e)
                    continue
            chosen[group].append(row["id"])
    for group, ids in chosen.items():
        log.info("%s: %d photos", group, len(ids))

    if args.val_list.exists():
        val = {line.strip().removesuffix(".jpg") for line in args.val_list.read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    else:
        rng = random.Random(args.seed)
        val = set()
        for ids in chosen.values():
            val |= set(rng.sample(sorted(ids), min(args.val_per_group, len(ids) // 10)))
        args.val_list.parent.mkdir(parents=True, exist_ok=True)
        args.val_list.write_text("# Fashion Product Images ids held out from training (validation)\n"
                                 + "".join(f"{i}.jpg\n" for i in sorted(val, key=int)))
    for split in ("train", "val"):
        (args.out / split).mkdir(parents=True, exist_ok=True)
        for old in (args.out / split).iterdir():
            old.unlink()
    for ids in chosen.values():
        for i in ids:
            split = "val" if i in val else "train"
            (args.out / split / f"{i}.jpg").symlink_to((images / f"{i}.jpg").resolve())
    n_val = sum(1 for _ in (args.out / "val").iterdir())
    n_train = sum(1 for _ in (args.out / "train").iterdir())
    log.info("wrote %s: %d train, %d val", args.out, n_train, n_val)
    return 0


if __name__ == "__main__":
    sys.exit(main())
