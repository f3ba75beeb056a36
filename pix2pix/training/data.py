"""Paired image data: detect the folder layout a user has and list its pairs (:mod:`.dataset`
serves them as tensors).

Layouts understood (detected automatically, see :func:`scan`):

- ``side-by-side``: every image holds input and target halves (the pix2pix downloads,
  e.g. facades ``1.jpg`` at 512x256). Which half is the input is the direction.
- ``folders``: ``A/`` and ``B/`` (or ``input/`` and ``target/``) sub-folders whose files
  pair by file stem, any image extension on either side.
- ``stem-pairs``: one folder where each stem has two files of different kinds, a label map
  or sketch (``.png``/``.bmp``/``.gif``) and a photo (``.jpg``/``.jpeg``/``.webp``), as the
  CMP facades base set ships them. The label/sketch file is A.
- ``photos``: photos only; the inputs are drawn from them by the outline extractor
  (``outlines=True``).
- any of these under ``train/``, ``val/`` and ``test/`` split folders.

A is always the stored input side and B the target; ``direction="BtoA"`` swaps them.
"""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..errors import Pix2PixError
from ..images.imaging import ImageReadError, image_size, is_image_file

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
FOLDER_PAIRS = (("a", "b"), ("input", "target"))
LABEL_EXTS = (".png", ".bmp", ".gif")  # lossless: label maps and drawings
PHOTO_EXTS = (".jpg", ".jpeg", ".webp")


class DataError(Pix2PixError, ValueError):
    """The data folder cannot be used; the message says why and names the folder."""


@dataclass(frozen=True)
class Pair:
    """One training example on disk. ``b is None`` means a side-by-side file in ``a``,
    or a photo whose input is made from it (photos layout)."""

    a: Path
    b: Path | None = None
    source: int = 0  # in a mix (see pix2pix.training.mix), which of its sources this pair is from
    label: str = ""  # what it shows (shoe, bag, ...), from the data's labels; "" unknown

    @property
    def name(self) -> str:
        return self.a.stem

    def key(self, root: Path) -> str:
        """Stable identifier relative to the data root (used in split files)."""
        try:
            return self.a.relative_to(root).as_posix()
        except ValueError:
            return self.a.as_posix()


@dataclass
class DataScan:
    """What :func:`scan` found: the layout, pairs per split, and what it skipped."""

    root: Path
    layout: str
    splits: dict[str, list[Pair]]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    labels: bool = False  # inputs are palette label maps: resize with nearest neighbour
    sources: list = field(default_factory=list)  # a mix's sources (pix2pix.training.mix.Source), by index

    def count(self, split: str) -> int:
        return len(self.splits.get(split, []))

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in SPLITS if s in self.splits]
        text = f"{self.root}: layout {self.layout}{' (label maps)' if self.labels else ''}, pairs: " + ", ".join(parts)
        if self.skipped:
            reasons: dict[str, int] = {}
            for _, why in self.skipped:
                reasons[why] = reasons.get(why, 0) + 1
            text += f"; skipped {len(self.skipped)} (" + "; ".join(f"{n} {r}" for r, n in reasons.items()) + ")"
        return text

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "layout": self.layout,
            "labels": self.labels,
            "counts": {s: len(p) for s, p in self.splits.items()},
            "skipped": [{"file": f, "reason": r} for f, r in self.skipped],
        }


# ---------------------------------------------------------------------------- detection


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def _subdir(folder: Path, name: str) -> Path | None:
    for p in folder.iterdir():
        if p.is_dir() and p.name.lower() == name:
            return p
    return None


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _check_readable(path: Path, root: Path, skipped: list) -> tuple[int, int] | None:
    try:
        return image_size(path)
    except ImageReadError:
        skipped.append((_rel(path, root), "unreadable: not an image file, or damaged"))
        return None


def _scan_folders(folder: Path, da: Path, db: Path, root: Path, skipped: list) -> list[Pair]:
    a_files = {p.stem: p for p in _images(da)}
    b_files = {p.stem: p for p in _images(db)}
    pairs = []
    for stem in sorted(a_files.keys() | b_files.keys()):
        a, b = a_files.get(stem), b_files.get(stem)
        if a is None or b is None:
            skipped.append((_rel(a or b, root), f"no partner in {(db if a else da).name}/"))
            continue
        if _check_readable(a, root, skipped) and _check_readable(b, root, skipped):
            pairs.append(Pair(a, b))
    return pairs


def _scan_stem_pairs(files: list[Path], root: Path, skipped: list) -> list[Pair]:
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)
    pairs = []
    for stem, group in sorted(by_stem.items()):
        labels = [p for p in group if p.suffix.lower() in LABEL_EXTS]
        photos = [p for p in group if p.suffix.lower() in PHOTO_EXTS]
        if len(group) == 1:
            skipped.append((_rel(group[0], root), "no partner with the same name"))
            continue
        if len(labels) != 1 or len(photos) != 1:
            for p in group:
                skipped.append((_rel(p, root), "ambiguous pair: need one label/sketch file and one photo"))
            continue
        if _check_readable(labels[0], root, skipped) and _check_readable(photos[0], root, skipped):
            pairs.append(Pair(labels[0], photos[0]))
    return pairs


def _scan_side_by_side(files: list[Path], root: Path, skipped: list) -> list[Pair]:
    pairs = []
    for p in files:
        size = _check_readable(p, root, skipped)
        if size is None:
            continue
        w, h = size
        if abs(w - 2 * h) > max(2, 0.02 * w):
            skipped.append((_rel(p, root), f"not a side-by-side pair ({w}x{h}, expected width = 2 x height)"))
            continue
        pairs.append(Pair(p))
    return pairs


def _scan_photos(folder: Path, root: Path, skipped: list) -> list[Pair]:
    files = sorted(p for p in folder.rglob("*") if is_image_file(p))
    return [Pair(p) for p in files if _check_readable(p, root, skipped)]


def _scan_split(folder: Path, root: Path, outlines: bool, skipped: list) -> tuple[str, list[Pair]]:
    if outlines:
        return "photos", _scan_photos(folder, root, skipped)
    for a_name, b_name in FOLDER_PAIRS:
        da, db = _subdir(folder, a_name), _subdir(folder, b_name)
        if da and db:
            return "folders", _scan_folders(folder, da, db, root, skipped)
    files = _images(folder)
    stems = [p.stem for p in files]
    if len(stems) != len(set(stems)):
        return "stem-pairs", _scan_stem_pairs(files, root, skipped)
    return "side-by-side", _scan_side_by_side(files, root, skipped)


def scan(root: str | Path, *, outlines: bool = False) -> DataScan:
    """Detect the layout of ``root`` and list its pairs per split.

    Unreadable files and files without a partner are skipped and listed in
    ``DataScan.skipped``; a folder with no usable pair at all raises :class:`DataError`.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"Data folder {root} does not exist.")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: give the folder that holds the image pairs.")
    skipped: list[tuple[str, str]] = []
    split_dirs = {s: d for s in SPLITS if (d := _subdir(root, s)) is not None}
    splits: dict[str, list[Pair]] = {}
    layouts = set()
    if split_dirs:
        for split, d in split_dirs.items():
            layout, pairs = _scan_split(d, root, outlines, skipped)
            layouts.add(layout)
            splits[split] = pairs
    else:
        layout, pairs = _scan_split(root, root, outlines, skipped)
        layouts.add(layout)
        splits["train"] = pairs
    layout = "+".join(sorted(layouts))
    if split_dirs:
        layout = f"{layout} in {'/'.join(split_dirs)}/ splits"
    result = DataScan(root, layout, splits, skipped)
    if not splits.get("train"):
        found = ", ".join(f"{n} {s}" for s, n in ((s, len(p)) for s, p in splits.items()))
        hint = "photos only? use --outlines. " if not outlines else ""
        raise DataError(
            f"No usable training pairs in {root} ({found or 'nothing found'}; "
            f"{len(skipped)} files skipped). Expected side-by-side images, A/ and B/ folders, "
            f"or label/photo files with the same name. {hint}".strip()
        )
    result.labels = _looks_like_labels(result)
    return result


def _looks_like_labels(result: DataScan) -> bool:
    """Palette-mode inputs are label maps (CMP facades, segmentation masks)."""
    if result.layout.startswith("photos"):
        return False
    for pair in result.splits["train"][:8]:
        if pair.b is None:
            return False  # side-by-side halves are stored as RGB; nothing to tell
        try:
            with Image.open(pair.a) as img:
                if img.mode != "P":
                    return False
        except OSError:
            return False
    return True


def read_palette(result: DataScan, limit: int = 64) -> list[dict]:
    """Label classes of a label-map data set, as ``{"id", "name", "color"}`` dicts.

    With a ``label_names.txt`` (``id name [z-order]`` per line, as CMP facades ships) the
    classes are exactly those ids, coloured by the images' palette; without one, the
    palette entries the first ``limit`` images actually use.
    """
    names: dict[int, str] = {}
    for candidate in (result.root / "label_names.txt", *result.root.glob("*/label_names.txt")):
        if candidate.is_file():
            for line in candidate.read_text(errors="replace").splitlines():
                bits = line.split()
                if len(bits) >= 2 and bits[0].isdigit():
                    names[int(bits[0])] = bits[1]
            break
    used: dict[int, tuple[int, int, int]] = {}
    palette: list[int] = []
    for pair in result.splits["train"][:limit]:
        with Image.open(pair.a) as img:
            if img.mode != "P":
                continue
            palette = palette or (img.getpalette() or [])
            for _, idx in img.getcolors(256) or []:
                used.setdefault(idx, tuple(palette[3 * idx : 3 * idx + 3]))
    ids = sorted(names) if names and palette else sorted(used)
    return [{"id": i, "name": names.get(i, f"class {i}"), "color": list(palette[3 * i : 3 * i + 3])} for i in ids]


# ---------------------------------------------------------------------------- splitting


def split_validation(
    result: DataScan, fraction: float, seed: int, val_list: list[str] | None = None
) -> tuple[list[Pair], list[Pair]]:
    """(train, val). Uses ``val/`` when present, else ``val_list`` (keys relative to the
    root), else a seeded random ``fraction`` of the training pairs."""
    train = list(result.splits["train"])
    if result.splits.get("val"):
        return train, list(result.splits["val"])
    if val_list:
        wanted = set(val_list)
        val = [p for p in train if p.key(result.root) in wanted or p.name in wanted]
        if not val:
            raise DataError("None of the names in the validation list are in the data folder.")
        chosen = {id(p) for p in val}
        return [p for p in train if id(p) not in chosen], val
    n_val = math.ceil(len(train) * fraction) if fraction > 0 else 0
    n_val = min(n_val, len(train) - 1)  # always keep something to train on
    if n_val <= 0:
        return train, []
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    val_idx = set(order[:n_val])
    return [p for i, p in enumerate(train) if i not in val_idx], [train[i] for i in sorted(val_idx)]


def write_split(path: Path, root: Path, val: list[Pair]) -> None:
    from ..images.imaging import atomic_write_bytes

    data = {"root": str(root), "val": [p.key(root) for p in val]}
    atomic_write_bytes(path, (json.dumps(data, indent=1) + "\n").encode())


def read_split(path: Path) -> list[str]:
    return list(json.loads(Path(path).read_text())["val"])
