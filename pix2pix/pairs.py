"""Training pairs from product photos: the outline drawn from the photo, framed and normalized
exactly like the app does a user's drawing, and the photo cropped by the same frame."""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from PIL import Image

from .imaging import WHITE, ImageReadError, load_rgb, open_image, save_image
from .outlines import OUTLINE_VERSION, OutlineParts, extract_parts
from .sketch import SketchError, find_frame, frame_image, normalize_sketch
from .strokes import render_outline

log = logging.getLogger(__name__)


def unsquash(photo: Image.Image, aspect: float = 3 / 4) -> Image.Image:
    """Undo a squash to square: resize the height so that width : height = ``aspect``."""
    return photo.resize((photo.width, max(1, round(photo.width / aspect))), Image.LANCZOS)


@dataclass
class OutlinePairMaker:
    """Turns a product photo file into an aligned (outline, photo) training pair."""

    size: int = 256
    cache_dir: str | Path | None = None  # extractions, keyed by file and OUTLINE_VERSION
    augment: bool = True
    _: KW_ONLY
    aspect: float | None = None  # undo the data set's squash first (3/4 for fashion-products)
    margin: float = 0.08  # as in sketch.find_frame

    def __call__(self, photo_path: str | Path, rng: random.Random | None = None) -> tuple[Image.Image, Image.Image]:
        """(Outline, photo), both RGB size x size and aligned. Raises ImageReadError for an
        unreadable photo or one without an object (the trainer skips both). Without ``rng`` an
        augmenting maker uses a fresh, unseeded one."""
        photo = load_rgb(photo_path)
        if self.aspect:
            photo = unsquash(photo, self.aspect)
        parts = self.parts(photo_path, photo)
        try:  # the crop the app would pick for the clean drawing: photo and outline share it
            frame = find_frame(render_outline(parts), margin=self.margin)
        except SketchError:
            raise ImageReadError(f"{Path(photo_path).name}: no object found against a plain background") from None
        rng = (rng or random.Random()) if self.augment else None
        outline = render_outline(parts, rng, scale=frame.side / self.size)
        outline = normalize_sketch(frame_image(outline, frame, self.size), self.size, crop=False)
        return outline, frame_image(photo, frame, self.size, fill=WHITE)

    def parts(self, photo_path: str | Path, photo: Image.Image) -> OutlineParts:
        """Extraction of ``photo`` (loaded from ``photo_path``), through the disk cache."""
        if self.cache_dir is None:
            return extract_parts(photo)
        st = Path(photo_path).stat()
        key = f"{OUTLINE_VERSION}|{Path(photo_path).resolve()}|{st.st_mtime_ns}|{st.st_size}|{self.aspect}"
        path = Path(self.cache_dir) / f"{hashlib.sha1(key.encode()).hexdigest()}.png"
        if path.exists():
            try:
                parts = OutlineParts.from_image(open_image(path))
                if parts.size == photo.size:
                    return parts
            except (ImageReadError, ValueError) as e:
                log.debug("re-extracting %s: bad cache entry (%s)", photo_path, e)
        parts = extract_parts(photo)
        save_image(parts.to_image(), path)  # atomic: concurrent workers may race on a key
        return parts
