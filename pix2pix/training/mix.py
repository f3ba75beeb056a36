"""A data folder that mixes sources, each read its own way.

One model learns from several kinds of data at once: product photos whose inputs are drawn
as outlines (each set with its own photo aspect), and drawings paired with photos (edge maps,
framed by their ink as the app frames a drawing). A folder holding a ``mix.json`` is such a
mix::

    {"sources": [
      {"name": "myntra-items", "path": "myntra-items", "outlines": true, "photo_aspect": 0.75, "class": "item"},
      {"name": "hm", "path": "hm", "outlines": true, "class": "flat"},
      {"name": "e2s-hed", "path": "e2s-hed", "direction": "BtoA", "frame": "sketch"}
    ]}

Each ``path`` (relative to the mix) is an ordinary data folder of any layout :func:`scan`
reads, with its own ``val/`` split or, if it has none, a seeded share of its pairs held
out (``val_fraction``). Validation takes every source in turn, so a capped validation set
still covers them all. ``class`` names what a source shows (for per-class figures).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import DIRECTIONS
from .data import DataError, DataScan, Pair, scan

log = logging.getLogger(__name__)

MIX_FILE = "mix.json"
LABELS_FILE = "labels.csv"
FRAMES = ("none", "sketch")


@dataclass(frozen=True)
class Source:
    """One source of a mix and how its pairs are read."""

    name: str
    path: str
    outlines: bool = False  # photos only: inputs drawn as outlines of them
    photo_aspect: float = 0.0  # with outlines: restore squashed photos to this width / height first
    direction: str = "AtoB"
    frame: str = "none"  # "sketch": crop both to the input's ink, as the app frames a drawing
    cls: str = ""  # what it shows: shoe, bag, flat, figure, ... ("" unknown)
    val_fraction: float = 0.1  # held out when the source has no val/ folder


def read_mix(root: Path) -> list[Source]:
    """The sources of the mix at ``root``, checked; a :class:`DataError` says what is wrong."""
    path = Path(root) / MIX_FILE
    try:
        entries = json.loads(path.read_text())["sources"]
        if not isinstance(entries, list) or not entries:
            raise ValueError("no sources listed")
        sources = [_source(e) for e in entries]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path} is not a usable mix: {e}") from None
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise DataError(f"{path}: every source needs a name of its own")
    return sources


def _source(entry: dict) -> Source:
    if not isinstance(entry, dict) or not entry.get("path"):
        raise ValueError(f"each source needs a path: {entry!r}")
    allowed = {"name", "path", "outlines", "photo_aspect", "direction", "frame", "class", "val_fraction"}
    if unknown := set(entry) - allowed:
        raise ValueError(f"unknown setting(s) {', '.join(sorted(unknown))} in {entry['path']}")
    src = Source(name=str(entry.get("name") or entry["path"]), path=str(entry["path"]),
                 outlines=bool(entry.get("outlines", False)), photo_aspect=float(entry.get("photo_aspect", 0.0)),
                 direction=str(entry.get("direction", "AtoB")), frame=str(entry.get("frame", "none")),
                 cls=str(entry.get("class", "")).strip().lower(), val_fraction=float(entry.get("val_fraction", 0.1)))
    if src.direction not in DIRECTIONS or src.frame not in FRAMES:
        raise ValueError(f"{src.name}: direction must be one of {DIRECTIONS} and frame one of {FRAMES}")
    if src.outlines and src.direction != "AtoB":
        raise ValueError(f"{src.name}: outlines are drawn from the photos, so the direction must be AtoB")
    if not 0 <= src.val_fraction < 1 or src.photo_aspect < 0:
        raise ValueError(f"{src.name}: val_fraction must be in [0, 1) and photo_aspect at least 0")
    return src


def is_mix(root: str | Path) -> bool:
    return (Path(root) / MIX_FILE).is_file()


def scan_data(root: str | Path, *, outlines: bool = False, seed: int = 0) -> DataScan:
    """:func:`scan` for any data folder: a mix (each source scanned its own way, its
    validation pairs held out per source, pairs tagged with their source) or a plain one."""
    root = Path(root).expanduser()
    if not is_mix(root):
        found = scan(root, outlines=outlines)
        labels = read_labels(root)
        return replace(found, splits={k: _labelled(v, labels, "") for k, v in found.splits.items()}) if labels \
            else found
    sources = read_mix(root)
    train: list[Pair] = []
    val_by_source: list[list[Pair]] = []
    skipped: list[tuple[str, str]] = []
    for i, src in enumerate(sources):
        found = scan(root / src.path, outlines=src.outlines)
        skipped += [(f"{src.path}/{f}", why) for f, why in found.skipped]
        labels = read_labels(root / src.path)
        own_train = [replace(p, source=i) for p in _labelled(found.splits["train"], labels, src.cls)]
        own_val = [replace(p, source=i) for p in _labelled(found.splits.get("val", []), labels, src.cls)]
        if not own_val and src.val_fraction > 0:
            own_train, own_val = _held_out(own_train, src.val_fraction, seed)
        train += own_train
        val_by_source.append(own_val)
    splits = {"train": train, "val": _in_turn(val_by_source)}
    return DataScan(root, f"mix of {len(sources)} sources", splits, skipped, sources=sources)


def read_labels(folder: Path) -> dict[str, str]:
    """``labels.csv`` of ``folder`` as {image name: class}; empty when there is none, or when
    it is some other table (no ``name`` and ``class`` columns: said in the log, left alone).
    Names may be given with or without their extension."""
    path = Path(folder) / LABELS_FILE
    if not path.is_file():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"name", "class"} <= set(reader.fieldnames or []):
                log.warning("%s has no name and class columns: not read as labels", path)
                return {}
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path} could not be read as a CSV file with the columns name,class: {e}") from None
    return {Path(str(r["name"]).strip()).stem: str(r["class"] or "").strip().lower() for r in rows if r.get("name")}


def _labelled(pairs: list[Pair], labels: dict[str, str], default: str) -> list[Pair]:
    return [replace(p, label=labels.get(p.name, default)) for p in pairs]


def _held_out(pairs: list[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    n_val = min(math.ceil(len(pairs) * fraction), len(pairs) - 1)
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held = set(order[:max(n_val, 0)])
    return [p for i, p in enumerate(pairs) if i not in held], [pairs[i] for i in sorted(held)]


def _in_turn(groups: list[list[Pair]]) -> list[Pair]:
    """One pair of each source in turn, so the first N validation pairs cover every source."""
    out, longest = [], max((len(g) for g in groups), default=0)
    for i in range(longest):
        out += [g[i] for g in groups if i < len(g)]
    return out


def per_source(found: DataScan, pairs: list[Pair]) -> dict[str, list[Pair]]:
    """``pairs`` grouped by the name of their source (a plain folder: one group, its name)."""
    if not found.sources:
        return {found.root.name: list(pairs)}
    groups: dict[str, list[Pair]] = {s.name: [] for s in found.sources}
    for p in pairs:
        groups[found.sources[p.source].name].append(p)
    return groups


__all__ = ["LABELS_FILE", "MIX_FILE", "Source", "is_mix", "per_source", "read_labels", "read_mix", "scan_data"]
