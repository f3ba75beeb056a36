"""Image plumbing shared by data loading, inference and the app: any file or mode -> RGB,
and PIL <-> tensors in [-1, 1].

Everything that reads a user's image goes through :func:`open_image`/:func:`to_rgb`, so
16-bit PNGs, palette images, CMYK JPEGs and transparent sketches behave the same
everywhere: transparency is composited on white (a transparent canvas is blank paper).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import Pix2PixError

if TYPE_CHECKING:  # torch is imported where tensors are made: the app reads the limits without it
    import torch

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# The largest image any reader decodes, checked in the file's header before decoding: a
# 24-megapixel camera photo fits; a decompression bomb (a small file of a huge image) does
# not. Decoded, an image takes at most 4 bytes a pixel (RGBA, CMYK, 32-bit grey).
MAX_PIXELS = 24_000_000
LIMIT_EXAMPLE = "e.g. 6000×4000"
# The decoders user files may reach (the formats of IMAGE_EXTS): none of Pillow's rarer
# ones, and never EPS, which would run Ghostscript.
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # JPEG includes multi-picture (MPO) files
WHITE = (255, 255, 255)


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any threads
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class ImageReadError(Pix2PixError, ValueError):
    """A file that is not a readable image; the message names the file and the reason."""


class ImageTooLarge(ImageReadError):
    """An image with more than MAX_PIXELS pixels, refused from its header."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def _to_8bit(img: Image.Image, rows: int = 512) -> Image.Image:
    """16-bit and float greyscale -> 8-bit 'L', scaled by the actual bit depth.

    Converted ``rows`` rows at a time: the float copy of a whole 24-megapixel image would
    take 96 MB, and the temporaries of the arithmetic as much again each."""
    high = img.getextrema()[1]
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N") or (img.mode == "I" and high > 255):
        divide, multiply = 257.0, 1.0  # 'I' is 32-bit; PNG 16-bit loads as 'I' in some Pillow versions
    else:
        divide, multiply = 1.0, 255.0 if img.mode == "F" and high <= 1.0 else 1.0
    out = np.empty((img.height, img.width), np.uint8)
    for top in range(0, img.height, rows):
        band = np.array(img.crop((0, top, img.width, min(img.height, top + rows))), dtype=np.float32)
        if divide != 1.0:
            band /= divide
        if multiply != 1.0:
            band *= multiply
        band += 0.5
        np.clip(band, 0, 255, out=band)
        out[top:top + rows] = band
    return Image.fromarray(out, "L")


def to_rgb(img: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """Any PIL image -> RGB; transparency is composited onto ``background``."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        canvas = Image.new("RGB", img.size, background)
        canvas.paste(img, mask=img.getchannel("A"))
        return canvas
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV


def _too_large(name: str, width: int, height: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"{name} is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels); images may have at most "
        f"{MAX_PIXELS / 1e6:g} megapixels ({LIMIT_EXAMPLE}): scale it down first."
    )


def _read_error(path: Path, e: BaseException) -> ImageReadError:
    """PIL's and the OS's exceptions -> one readable sentence naming the file."""
    if isinstance(e, FileNotFoundError):
        return ImageReadError(f"{path}: no such file")
    if isinstance(e, UnidentifiedImageError):
        return ImageReadError(f"{path.name} is not an image file, or is damaged")
    if isinstance(e, (Image.DecompressionBombError, Image.DecompressionBombWarning)):  # PIL's own, far beyond ours
        return ImageTooLarge(f"{path.name} has far more than {MAX_PIXELS / 1e6:g} megapixels, the limit for images "
                             f"({LIMIT_EXAMPLE}): scale it down first.")
    return ImageReadError(f"{path.name}: unreadable image ({e})")


_READ_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning)


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file, applying its EXIF orientation.

    The size is read from the header first: beyond :data:`MAX_PIXELS` the file is refused
    (:class:`ImageTooLarge`) before a byte of pixels is decoded, and only the formats in
    :data:`FORMATS` are decoded at all. Raises :class:`ImageReadError` with a readable
    reason instead of PIL's exceptions. The mode is left as is (palette label maps must
    stay palette images).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings(), open(path, "rb") as f:
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(f, formats=FORMATS)  # reads the header only
            if img.width * img.height > MAX_PIXELS:
                raise _too_large(path.name, img.width, img.height)
            img.load()
            if img.mode not in ("P", "PA"):
                ImageOps.exif_transpose(img, in_place=True)  # no copy unless it is rotated
            return img
    except ImageReadError:
        raise
    except _READ_ERRORS as e:
        raise _read_error(path, e) from None


def load_rgb(path: str | Path) -> Image.Image:
    return to_rgb(open_image(path))


def image_size(path: Path) -> tuple[int, int]:
    """Size from the header only (cheap); raises ImageReadError if it is not an image of
    a format in :data:`FORMATS`, or ImageTooLarge beyond :data:`MAX_PIXELS`."""
    path = Path(path)
    try:
        with Image.open(path, formats=FORMATS) as img:
            size = img.size
    except _READ_ERRORS as e:
        raise _read_error(path, e) from None
    if size[0] * size[1] > MAX_PIXELS:
        raise _too_large(path.name, *size)
    return size


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL -> (3, H, W) float tensor in [-1, 1]."""
    import torch

    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None].repeat(3, axis=2)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def to_pil(t: torch.Tensor) -> Image.Image:
    """(3, H, W) tensor in [-1, 1] -> RGB PIL (values outside the range are clipped)."""
    import torch

    t = t.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return Image.fromarray(t.permute(1, 2, 0).numpy(), "RGB")


def sample_grid(rows: list[tuple[Image.Image, ...]]) -> Image.Image:
    """Rows of images side by side (input | target | generated), each the size of the first."""
    w, h = rows[0][0].size
    cols = max(len(r) for r in rows)
    grid = Image.new("RGB", (w * cols, h * len(rows)), (255, 255, 255))
    for y, row in enumerate(rows):
        for x, img in enumerate(row):
            grid.paste(img.resize((w, h)), (x * w, y * h))
    return grid


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that readers see either the old or the new content, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_image(img: Image.Image, path: str | Path, **params) -> Path:
    """Save atomically; the format follows the extension (PNG when there is none)."""
    import io

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    buf = io.BytesIO()
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = to_rgb(img)
    img.save(buf, format=fmt, **params)
    atomic_write_bytes(path, buf.getvalue())
    return path
