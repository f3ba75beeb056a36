"""Build the training folder of the shipped fashion model from the Fashion Product Images set.

Selects shoes, bags and garments: garments photographed on their own (flat lay) as items, and
garments worn by a model as *figures* (the whole figure is drawn, as a fashion sketch shows a
garment on a croquis). Holds out fixed validation lists (one for items, one for figures: both
go to ``OUT/val``, and ``evaluate --val-list`` scores each) and writes ``OUT/train`` and
``OUT/val`` as symbolic links to the original photos (nothing is copied or modified). The
outlines themselves are made at training time (``python -m pix2pix train OUT --outlines``).

    python scripts/prepare_fashion.py ../shared/data/fashion-products --out datasets/fashion \
        --val-list weights/fashion/val_list.txt --figures-val-list weights/fashion/val_figures.txt

``--items-only`` leaves the figures out (the first shipped model's data).
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
from pix2pix.images.imaging import ImageReadError, load_rgb  # noqa: E402
from pix2pix.images.outlines import foreground_mask  # noqa: E402
from pix2pix.images.pairs import unsquash  # noqa: E402

log = logging.getLogger("prepare_fashion")

FOOTWEAR = {"Shoes", "Sandal", "Flip Flops"}  # subCategory, masterCategory Footwear
BAGS = {"Bags"}  # subCategory under Accessories
GARMENTS = {"Topwear", "Bottomwear", "Dress"}  # subCategory under Apparel
MAX_BORDER_TOUCH = 0.05  # a garment whose silhouette covers more of an edge is worn or cut off
FIGURES_VAL = 60


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


def read_or_write_val(path: Path, ids_by_group: dict[str, list[str]], per_group: int, seed: int, title: str) -> set[str]:
    """The ids of a fixed validation list: read from ``path``, or drawn per group and written there."""
    if path.exists():
        return {line.strip().removesuffix(".jpg") for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    rng = random.Random(seed)
    val = set()
    for ids in ids_by_group.values():
        val |= set(rng.sample(sorted(ids), min(per_group, len(ids) // 10)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# Fashion Product Images ids held out from training (validation: {title})\n"
                    + "".join(f"{i}.jpg\n" for i in sorted(val, key=int)))
    return val


def choose(data: Path, items_only: bool) -> dict[str, list[str]]:
    """Photo ids by group: footwear, bags, garments (standing alone) and figures (worn)."""
    images = data / "images"
    chosen: dict[str, list[str]] = {"footwear": [], "bags": [], "garments": [], "figures": []}
    with open(data / "styles.csv", newline="") as f:
        for row in csv.DictReader(f):
            group = group_of(row)
            path = images / f"{row['id']}.jpg"
            if group is None or not path.is_file():
                continue
            if group == "garments":
                try:
                    group = "garments" if stands_alone(path) else "figures"
                except ImageReadError as e:
                    log.warning("skipping %s", e)
                    continue
            chosen[group].append(row["id"])
    if items_only:
        chosen["figures"] = []
    for group, ids in chosen.items():
        log.info("%s: %d photos", group, len(ids))
    return chosen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the fashion-products folder (images/ and styles.csv)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--val-list", type=Path, required=True, help="items held out: written if missing, else reused")
    ap.add_argument("--figures-val-list", type=Path, help="figures held out: written if missing, else reused")
    ap.add_argument("--items-only", action="store_true", help="leave garments worn by a model out")
    ap.add_argument("--val-per-group", type=int, default=40)
    ap.add_argument("--seed", type=int, default=2017)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.items_only and args.figures_val_list is None:
        ap.error("--figures-val-list is needed unless --items-only")

    chosen = choose(args.data, args.items_only)
    figures = {"figures": chosen.pop("figures")}
    val = read_or_write_val(args.val_list, chosen, args.val_per_group, args.seed, "items")
    if figures["figures"]:
        val |= read_or_write_val(args.figures_val_list, figures, FIGURES_VAL, args.seed, "figures")
    chosen |= figures
    for split in ("train", "val"):
        (args.out / split).mkdir(parents=True, exist_ok=True)
        for old in (args.out / split).iterdir():
            old.unlink()
    images = args.data / "images"
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
