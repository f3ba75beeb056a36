"""Training pairs packed into chunk files that a borrowed GPU machine decodes once into its memory.

A lent GPU is fed through a narrow pipe (64 MiB a call, the repository included), and a GPU of
that class trains thousands of small U-Net images a second once the data sits on the card. So
the slow, CPU-bound work is done here, once: each pair is framed as the app frames a drawing,
the photo stored as a 256 px JPEG, and its input as what the GPU needs to draw it:

- for a photo, its clean outline *parts* framed alike (the silhouette and the ids of its inner
  lines, a 2-channel PNG): the GPU roughens them anew for every sample
  (:mod:`pix2pix.training.gpu_augment`);
- for a drawing (an edge map), the drawing normalized as the app normalizes an upload (a PNG).

A chunk is one safetensors file (no pickle) of concatenated encoded images with their offsets,
each pair's kind and source, and the sources' names in the metadata; chunks are cut to stay
under a size, so each fits one call.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save

from ..images.imaging import WHITE, atomic_write_bytes, load_rgb
from ..images.outline_store import OutlineStore
from ..images.outlines import OUTLINE_VERSION, extract_parts
from ..images.pairs import SketchPairMaker, unsquash
from ..images.sketch import SketchError, find_frame, frame_image
from ..images.strokes import render_outline
from .data import DataScan, Pair
from .dataset import load_pair

log = logging.getLogger(__name__)

SIZE = 256
PARTS, DRAWING = 0, 1  # a pair's kind: outline parts to roughen, or a finished drawing
CHUNK_BYTES = 15 << 20  # under what one call may carry beside the repository


@dataclass
class Packed:
    """One pair, encoded: the framed photo (JPEG) and its input (PNG: parts 'LA' or drawing 'L')."""

    photo: bytes
    source: bytes
    kind: int
    origin: int  # index of its source in the chunk's list of source names


def _encode(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **params)
    return buf.getvalue()


def _framed_parts(parts, frame, size: int) -> Image.Image:
    """The outline parts cropped to ``frame`` at ``size`` px, as an 'LA' image: nearest
    neighbour throughout (line ids must stay ids), empty where the frame leaves the photo."""
    img = parts.to_image()
    x0, y0 = int(np.floor(frame.left)), int(np.floor(frame.top))
    side = int(np.ceil(frame.left + frame.side)) - x0
    region = Image.new("LA", (side, int(np.ceil(frame.top + frame.side)) - y0), (0, 0))
    region.paste(img, (-x0, -y0))
    box = (frame.left - x0, frame.top - y0, frame.left - x0 + frame.side, frame.top - y0 + frame.side)
    return region.resize((size, size), Image.Resampling.NEAREST, box=box)


def pack_pair(pair: Pair, found: DataScan, store: OutlineStore | None, quality: int = 90,
              size: int = SIZE) -> Packed | None:
    """A pair of a scanned folder encoded for the GPU, or None when it cannot be used."""
    src = found.sources[pair.source] if found.sources else None
    outlines = src.outlines if src else True
    try:
        if outlines:
            photo = load_rgb(pair.a)
            aspect = src.photo_aspect if src else 0.0
            if aspect:
                photo = unsquash(photo, aspect)
            key = store.key(Path(pair.a).read_bytes(), version=OUTLINE_VERSION, aspect=aspect or None,
                            margin=0.08) if store else None
            kept = store.get(key) if store else None
            if kept is None or kept[0].size != photo.size:
                parts = extract_parts(photo)
                frame = find_frame(render_outline(parts), margin=0.08)
                if store:
                    store.put(key, parts, frame)
            else:
                parts, frame = kept
            inp, kind = _framed_parts(parts, frame, size), PARTS
            target = frame_image(photo, frame, size, fill=WHITE)
        else:
            drawing, target = SketchPairMaker(size)(*load_pair(pair, src.direction))
            inp, kind = drawing.convert("L"), DRAWING
    except (SketchError, OSError, ValueError) as e:
        log.warning("not packed: %s (%s)", pair.a, e)
        return None
    return Packed(_encode(target, "JPEG", quality=quality), _encode(inp, "PNG", compress_level=9), kind, pair.source)


def _blob(items: list[bytes]) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = np.cumsum([0] + [len(b) for b in items]).astype(np.int64)
    return torch.frombuffer(bytearray(b"".join(items)), dtype=torch.uint8), torch.from_numpy(offsets)


def write_chunk(path: Path, pairs: list[Packed], names: list[str], size: int = SIZE) -> Path:
    photos, photo_off = _blob([p.photo for p in pairs])
    inputs, input_off = _blob([p.source for p in pairs])
    tensors = {"photos": photos, "photo_offsets": photo_off, "inputs": inputs, "input_offsets": input_off,
               "kind": torch.tensor([p.kind for p in pairs], dtype=torch.uint8),
               "origin": torch.tensor([p.origin for p in pairs], dtype=torch.int16)}
    atomic_write_bytes(path, save(tensors, metadata={"sources": json.dumps(names), "size": str(size)}))
    return path


def pack(found: DataScan, pairs: list[Pair], out: Path, *, store: OutlineStore | None = None,
         chunk_bytes: int = CHUNK_BYTES, prefix: str = "chunk", size: int = SIZE) -> list[Path]:
    """Pack ``pairs`` of ``found`` into ``out/<prefix>-NNN.safetensors`` files of at most about
    ``chunk_bytes`` each; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    names = [s.name for s in found.sources] or [found.root.name]
    files, batch, total = [], [], 0
    for pair in pairs:
        packed = pack_pair(pair, found, store, size=size)
        if packed is None:
            continue
        n = len(packed.photo) + len(packed.source) + 16
        if batch and total + n > chunk_bytes:
            files.append(write_chunk(out / f"{prefix}-{len(files):03d}.safetensors", batch, names, size))
            batch, total = [], 0
        batch.append(packed)
        total += n
    if batch:
        files.append(write_chunk(out / f"{prefix}-{len(files):03d}.safetensors", batch, names, size))
    return files


@dataclass
class Decoded:
    """Chunks decoded into uint8 tensors: photos (N, 3, S, S), inputs (N, 2, S, S) (parts:
    silhouette 0/255 and line ids; a drawing: its grey levels and 0), kind and origin (N,)."""

    photos: torch.Tensor
    inputs: torch.Tensor
    kind: torch.Tensor
    origin: torch.Tensor
    sources: list[str]

    def to(self, device: torch.device) -> Decoded:
        return Decoded(self.photos.to(device), self.inputs.to(device), self.kind.to(device), self.origin.to(device),
                       self.sources)


def _decode_one(data: torch.Tensor, start: int, end: int, channels: int) -> torch.Tensor:
    img = Image.open(io.BytesIO(data[start:end].numpy().tobytes()))
    arr = np.asarray(img.convert("RGB") if channels == 3 else img.convert("LA") if img.mode == "LA" else img.convert("L"))
    if arr.ndim == 2:  # a drawing: its levels, and no line ids
        arr = np.stack([arr, np.zeros_like(arr)], -1)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)


def decode(files: list[Path]) -> Decoded:
    """Every chunk of ``files`` decoded on the CPU (once per stage), in order."""
    photos, inputs, kind, origin, names = [], [], [], [], None
    for f in files:
        t = load_file(str(f))
        with safe_open(str(f), "pt") as h:
            meta = h.metadata()
        chunk_names = json.loads(meta["sources"])
        if names is not None and chunk_names != names:
            raise ValueError(f"{f} was packed from other sources ({chunk_names}) than the chunks before it ({names})")
        names = chunk_names
        po, io_ = t["photo_offsets"].tolist(), t["input_offsets"].tolist()
        for i in range(len(t["kind"])):
            photos.append(_decode_one(t["photos"], po[i], po[i + 1], 3))
            inputs.append(_decode_one(t["inputs"], io_[i], io_[i + 1], 2))
        kind.append(t["kind"])
        origin.append(t["origin"])
    if not photos:
        raise ValueError("no pairs in the chunks given")
    return Decoded(torch.stack(photos), torch.stack(inputs), torch.cat(kind), torch.cat(origin).long(), names or [])
