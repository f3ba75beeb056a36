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

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import Pix2PixError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_PIXELS = 64_000_000  # refuse decompression bombs beyond this (about 8000 x 8000)
WHITE = (255, 255, 255)


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once, at import, before any threads
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class ImageReadError(Pix2PixError, ValueError):
    """A file that is not a readable image; the message names the file and the reason."""


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTS and not path.name.startswith(".")


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and float greyscale -> 8-bit 'L', scaled by the actual bit depth."""
    arr = np.asarray(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N") or arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 257.0
    elif img.mode == "I":
        arr = arr.astype(np.float32)
        # 'I' is 32-bit; PNG 16-bit loads as 'I' in some Pillow versions.
        arr = arr / 257.0 if arr.max() > 255 else arr
    elif img.mode == "F":
        arr = arr.astype(np.float32)
        arr = arr * 255.0 if arr.max() <= 1.0 else arr
    return Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "L")


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


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image file, applying its EXIF orientation.

    Raises :class:`ImageReadError` with a readable reason instead of PIL's exceptions.
    The mode is left as is (palette label maps must stay palette images).
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ImageReadError(
                        f"{path.name}: {img.width}x{img.height} is too large (limit {MAX_PIXELS:,} pixels)"
                    )
                img.load()
                out = ImageOps.exif_transpose(img) if img.mode not in ("P", "PA") else img.copy()
                return out
    except ImageReadError:
        raise
    except FileNotFoundError:
        raise ImageReadError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path.name} is not an image file, or is damaged") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageReadError(f"{path.name}: unreadable image ({e})") from None


def load_rgb(path: str | Path) -> Image.Image:
    return to_rgb(open_image(path))


def image_size(path: Path) -> tuple[int, int]:
    """Size from the header only (cheap); raises ImageReadError if it is not an image."""
    try:
        with Image.open(path) as img:
            return img.size
    except UnidentifiedImageError:
        raise ImageReadError(f"{path.name} is not an image file, or is damaged") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(f"{path.name}: unreadable image ({e})") from None


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL -> (3, H, W) float tensor in [-1, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None].repeat(3, axis=2)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def to_pil(t: torch.Tensor) -> Image.Image:
    """(3, H, W) tensor in [-1, 1] -> RGB PIL (values outside the range are clipped)."""
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
