"""Build the mixed training folder of the fashion model v3 from the three fashion sets.

    python scripts/prepare_fashion_v3.py ../shared/data --out datasets/fashion-v3

Writes OUT/mix.json and one folder per source (train/ and val/ of symbolic links to the
original files; the left halves of edges2shoes-handbags, the photos, are written as JPEG
files since a link cannot crop):

- ``myntra-items`` and ``myntra-figures``: Fashion Product Images as the shipped model was
  trained on them (``scripts/prepare_fashion.py``: footwear, bags and garments alone, and
  garments worn by a model), photos squashed to square (aspect 3:4 restored), outlines drawn
  from them; validation: ``weights/fashion/val_list.txt`` and ``val_figures.txt``. The
  items' ``labels.csv`` names each one's class from the set's categories: shoe (footwear),
  bag, flat (a garment alone).
- ``hm-flat`` and ``hm-shoes``: H&M packshots (flat and invisible-mannequin garments;
  shoes), outlines drawn from them; packaged goods (tights, socks) left out; validation:
  whole products (``product_code``) held out, ``weights/fashion/val_hm.txt``.
- ``e2s-hed``: edges2shoes/edges2handbags, the HED edge map as the drawing (the right half),
  framed by its ink like an upload; ``e2s-photos``: the same photos with our own outlines.
  Validation: 150 of the set's own val/ pairs (``weights/fashion/val_e2s.txt``), the rest
  of its val/ trains. Their ``labels.csv``: the set lists its shoes first, then its bags
  (train/ 1-1000 and val/ 1-200 are shoes; looked at, every file of both splits).

A list that exists is read, not redrawn, so the validation pairs stay fixed.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_fashion import choose, read_or_write_val  # noqa: E402

from pix2pix.images.imaging import load_rgb, save_image  # noqa: E402

log = logging.getLogger("prepare_fashion_v3")

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "fashion"
HM_GARMENTS = {"Garment Upper body", "Garment Lower body", "Garment Full body"}
HM_LEFT_OUT = {"Leggings/Tights", "Socks", "Underwear Tights", "Garment Set"}  # boxed or several items per photo
HM_VAL_IMAGES = 150
E2S_VAL = 150


def _fresh(folder: Path) -> Path:
    for split in ("train", "val"):
        (folder / split).mkdir(parents=True, exist_ok=True)
        for old in (folder / split).iterdir():
            old.unlink()
    return folder


def _link(src: Path, dst: Path) -> None:
    dst.symlink_to(src.resolve())


def _fixed_list(path: Path, draw, title: str) -> set[str]:
    """The names of a validation list: read from ``path``, or drawn by ``draw()`` and written there."""
    if path.exists():
        return {ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")}
    names = sorted(draw())
    path.write_text(f"# held out from training (validation: {title})\n" + "".join(f"{n}\n" for n in names))
    return set(names)


def myntra(data: Path, out: Path) -> list[dict]:
    chosen = choose(data, items_only=False)
    figures = {"figures": chosen.pop("figures")}
    val = read_or_write_val(WEIGHTS / "val_list.txt", chosen, 40, 2017, "items")
    val |= read_or_write_val(WEIGHTS / "val_figures.txt", figures, 60, 2017, "figures")
    for name, groups in (("myntra-items", chosen), ("myntra-figures", figures)):
        folder = _fresh(out / name)
        for ids in groups.values():
            for i in ids:
                _link(data / "images" / f"{i}.jpg", folder / ("val" if i in val else "train") / f"{i}.jpg")
    write_item_labels(data, out / "myntra-items")
    common = {"outlines": True, "photo_aspect": 0.75}
    return [{"name": "myntra-items", "path": "myntra-items", "class": "item", **common},
            {"name": "myntra-figures", "path": "myntra-figures", "class": "figure", **common}]


MYNTRA_CLASSES = {"Footwear": "shoe", "Bags": "bag", "Apparel": "flat"}  # masterCategory or subCategory


def write_item_labels(data: Path, folder: Path) -> None:
    """``labels.csv`` of the Myntra items: each photo's class (see :data:`MYNTRA_CLASSES`)."""
    with open(data / "styles.csv", newline="") as f:
        styles = {r["id"]: r for r in csv.DictReader(f)}
    rows = []
    for split in ("train", "val"):
        for photo in sorted((folder / split).iterdir()):
            style = styles.get(photo.stem, {})
            cls = MYNTRA_CLASSES.get(style.get("masterCategory")) or MYNTRA_CLASSES.get(style.get("subCategory"))
            if cls:
                rows.append(f"{photo.stem},{cls}\n")
    (folder / "labels.csv").write_text("name,class\n" + "".join(rows))
    log.info("myntra-items: %d labelled", len(rows))


def hm(data: Path, out: Path) -> list[dict]:
    with open(data / "styles.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["product_type_name"] not in HM_LEFT_OUT]
    groups = {"hm-flat": [r for r in rows if r["product_group_name"] in HM_GARMENTS],
              "hm-shoes": [r for r in rows if r["product_group_name"] == "Shoes"]}

    def draw() -> list[str]:
        rng, names = random.Random(2017), []
        for kind, share in (("hm-flat", 0.8), ("hm-shoes", 0.2)):
            codes = sorted({r["product_code"] for r in groups[kind]})
            rng.shuffle(codes)
            for code in codes:
                if len(names) >= HM_VAL_IMAGES * (share if kind == "hm-flat" else 1):
                    break
                names += [Path(r["path"]).name for r in groups[kind] if r["product_code"] == code]
        return names

    val = _fixed_list(WEIGHTS / "val_hm.txt", draw, "H&M packshots, whole products")
    for name, chosen in groups.items():
        folder = _fresh(out / name)
        for r in chosen:
            file = Path(r["path"]).name
            _link(data / r["path"], folder / ("val" if file in val else "train") / file)
        log.info("%s: %d photos", name, len(chosen))
    return [{"name": "hm-flat", "path": "hm-flat", "outlines": True, "class": "flat"},
            {"name": "hm-shoes", "path": "hm-shoes", "outlines": True, "class": "shoe"}]


def e2s(data: Path, out: Path) -> list[dict]:
    files = {split: sorted((data / split).glob("*.jpg")) for split in ("train", "val")}
    val = _fixed_list(WEIGHTS / "val_e2s.txt",  # names as written here: the set's split, then its file name
                      lambda: [f"val-{f.name}" for f in random.Random(2017).sample(files["val"], E2S_VAL)],
                      "edges2shoes-handbags, from its val/ split")
    hed, photos = _fresh(out / "e2s-hed"), _fresh(out / "e2s-photos")
    for f in files["train"] + files["val"]:
        name = f"{f.parent.name}-{f.name}"  # both splits number their files from 1
        split = "val" if name in val else "train"
        _link(f, hed / split / name)
        ab = load_rgb(f)
        save_image(ab.crop((0, 0, ab.width // 2, ab.height)), photos / split / name, quality=95)
    for folder in (hed, photos):
        write_e2s_labels(folder)
    return [{"name": "e2s-hed", "path": "e2s-hed", "direction": "BtoA", "frame": "sketch"},
            {"name": "e2s-photos", "path": "e2s-photos", "outlines": True}]


E2S_SHOES = {"train": 1000, "val": 200}  # files numbered up to this are shoes, the rest bags


def write_e2s_labels(folder: Path) -> None:
    """``labels.csv`` of an edges2shoes-handbags source: shoe or bag, by the set's numbering."""
    rows = []
    for split in ("train", "val"):
        for f in sorted((folder / split).iterdir()):
            origin, number = f.stem.removesuffix("_AB").split("-")  # "val-17_AB": the set's val/17_AB.jpg
            rows.append(f"{f.stem},{'shoe' if int(number) <= E2S_SHOES[origin] else 'bag'}\n")
    (folder / "labels.csv").write_text("name,class\n" + "".join(rows))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the folder holding fashion-products, hm-packshots, edges2shoes-handbags")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    sources = (myntra(args.data / "fashion-products", args.out) + hm(args.data / "hm-packshots", args.out)
               + e2s(args.data / "edges2shoes-handbags", args.out))
    (args.out / "mix.json").write_text(json.dumps({"sources": sources}, indent=1) + "\n")
    for s in sources:
        n = {split: sum(1 for _ in (args.out / s["path"] / split).iterdir()) for split in ("train", "val")}
        log.info("%s: %d train, %d val", s["name"], n["train"], n["val"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
