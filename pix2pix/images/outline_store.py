"""The outline store: each photo's clean outline is extracted once and kept on disk.

Extraction is the slow part of a training pair from a photo (about 100 ms on one core, against
a few ms to roughen and frame it), and its result depends on nothing but the photo's content
and the extractor. So an entry is keyed by a hash of the photo file's bytes, the extractor's
version and the settings that change what is extracted (the aspect restored first, the
frame's margin): every epoch, every run and every copy of the same photo reuses it, and an
edited photo or a new extractor gets a new entry. Only the random roughening happens per sample.

An entry is one 'LA' PNG (:meth:`~pix2pix.images.strokes.OutlineParts.to_image`) with the
frame the app would pick for the clean drawing in a text chunk, written atomically, so
concurrent loader processes may race on a key without harm. The default place is
``<cache>/outlines`` (:func:`pix2pix.catalog.cache_dir`, ``$PIX2PIX_CACHE_DIR`` moves it).
"""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path

from PIL import PngImagePlugin

from .imaging import ImageReadError, atomic_write_bytes, open_image
from .sketch import Frame
from .strokes import OutlineParts

log = logging.getLogger(__name__)

STORE_VERSION = 1  # of the entry format; part of the key


def default_folder() -> Path:
    from ..catalog import cache_dir

    return cache_dir() / "outlines"


class OutlineStore:
    """Outline parts and frames of photos, by content, in one folder (sharded by key prefix)."""

    def __init__(self, folder: str | Path | None = None):
        self.folder = Path(folder) if folder is not None else default_folder()

    @staticmethod
    def key(photo_bytes: bytes, *, version: int, aspect: float | None, margin: float) -> str:
        """What an entry depends on: the photo's bytes, the extractor and the framing settings."""
        h = hashlib.sha1(f"{STORE_VERSION}|{version}|{aspect or 0:.6f}|{margin:.6f}|".encode())
        h.update(photo_bytes)
        return h.hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.png"

    def get(self, key: str) -> tuple[OutlineParts, Frame] | None:
        """The entry, or None when there is none or it cannot be read (it is then made again)."""
        path = self.path(key)
        if not path.exists():
            return None
        try:
            img = open_image(path)
            frame = Frame(*(float(v) for v in img.info["frame"].split(",")))
            return OutlineParts.from_image(img), frame
        except (ImageReadError, ValueError, KeyError, TypeError) as e:
            log.debug("remaking outline %s: unreadable entry (%s)", key, e)
            return None

    def put(self, key: str, parts: OutlineParts, frame: Frame) -> None:
        meta = PngImagePlugin.PngInfo()
        meta.add_text("frame", f"{frame.left!r},{frame.top!r},{frame.side!r}")
        buf = io.BytesIO()
        parts.to_image().save(buf, format="PNG", pnginfo=meta)
        atomic_write_bytes(self.path(key), buf.getvalue())

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("??/*.png")) if self.folder.is_dir() else 0


def as_store(store: OutlineStore | str | Path | None) -> OutlineStore | None:
    return store if store is None or isinstance(store, OutlineStore) else OutlineStore(store)


__all__ = ["OutlineStore", "STORE_VERSION", "as_store", "default_folder"]

