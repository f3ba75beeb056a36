"""Training pairs from product photos: the outline drawn from the photo, framed and normalized
exactly like the app does a user's drawing, and the photo cropped by the same frame."""

from __future__ import annotations

import random
from dataclasses import KW_ONLY, dataclass
from pathlib import Path

from PIL import Image

from .imaging import WHITE, ImageReadError, load_rgb
from .outline_store import OutlineStore, as_store
from .outlines import OUTLINE_VERSION, OutlineParts, extract_parts
from .sketch import Frame, SketchError, find_frame, frame_image, normalize_sketch
from .strokes import render_outline



def unsquash(photo: Image.Image, aspect: float = 3 / 4) -> Image.Image:
    """Undo a squash to square: resize the height so that width : height = ``aspect``."""
    return photo.resize((photo.width, max(1, round(photo.width / aspect))), Image.LANCZOS)


@dataclass
class OutlinePairMaker:
    """Turns a product photo file into an aligned (outline, photo) training pair."""

    size: int = 256
    store: OutlineStore | str | Path | None = None  # extractions kept by content (None: extract every time)
    augment: bool = True
    _: KW_ONLY
    aspect: float | None = None  # undo the data set's squash first (3/4 for fashion-products)
    margin: float = 0.08  # as in sketch.find_frame

    def __post_init__(self) -> None:
        self.store = as_store(self.store)

    def __call__(self, photo_path: str | Path, rng: random.Random | None = None) -> tuple[Image.Image, Image.Image]:
        """(Outline, photo), both RGB size x size and aligned. Raises ImageReadError for an
        unreadable photo or one without an object (the trainer skips both). Without ``rng`` an
        augmenting maker uses a fresh, unseeded one."""
        photo = load_rgb(photo_path)
        if self.aspect:
            photo = unsquash(photo, self.aspect)
        parts, frame = self.parts(photo_path, photo)
        rng = (rng or random.Random()) if self.augment else None
        outline = render_outline(parts, rng, scale=frame.side / self.size)
        outline = normalize_sketch(frame_image(outline, frame, self.size), self.size, crop=False)
        return outline, frame_image(photo, frame, self.size, fill=WHITE)

    def parts(self, photo_path: str | Path, photo: Image.Image) -> tuple[OutlineParts, Frame]:
        """Extraction of ``photo`` (loaded from ``photo_path``) and the crop the app would pick
        for its clean drawing (photo and outline share it), through the store when there is one."""
        key = None
        if self.store is not None:
            key = self.store.key(Path(photo_path).read_bytes(), version=OUTLINE_VERSION, aspect=self.aspect,
                                 margin=self.margin)
            kept = self.store.get(key)
            if kept is not None and kept[0].size == photo.size:
                return kept
        parts = extract_parts(photo)
        try:
            frame = find_frame(render_outline(parts), margin=self.margin)
        except SketchError:
            raise ImageReadError(f"{Path(photo_path).name}: no object found against a plain background") from None
        if key is not None:
            self.store.put(key, parts, frame)
        return parts, frame


@dataclass
class SketchPairMaker:
    """A drawing (an edge map, a scan) and its photo -> an aligned training pair, the drawing
    normalized exactly as the app normalizes an upload and the photo cropped by the same frame."""

    size: int = 256
    margin: float = 0.08

    def __call__(self, sketch: Image.Image, photo: Image.Image) -> tuple[Image.Image, Image.Image]:
        try:
            drawing, frame = normalize_sketch(sketch, self.size, margin=self.margin, return_frame=True)
        except SketchError as e:
            raise ImageReadError(f"no drawing in a pair's input: {e}") from None
        return drawing, frame_image(photo, frame, self.size, fill=WHITE)
