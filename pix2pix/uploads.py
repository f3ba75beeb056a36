"""Data that reaches the server from a web page: folder paths and uploaded zip files.

The app's fine-tune tab takes a folder path typed by a user, or a .zip they upload, and
hands the result to the trainer. Both are untrusted: a path may point anywhere on the
server, and a zip may hold ``../`` names, absolute paths, symlinks or a decompression bomb.
These functions confine paths to allowed roots and extract archives defensively. Their
errors (:class:`UploadError`) carry a plain sentence for the user.

Pure standard library, so the app can import this without loading torch.
"""

from __future__ import annotations

import logging
import shutil
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from .errors import Pix2PixError

log = logging.getLogger(__name__)

MAX_ZIP_BYTES = 2 * 1024**3  # uncompressed total; a training set of a few thousand photos fits
MAX_ZIP_FILES = 50_000
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")  # what archivers add beside the data
_CHUNK = 1 << 20


class UploadError(Pix2PixError, ValueError):
    """A path or archive the app refuses; str(e) is a sentence for the user."""


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def resolve_data_folder(path: str | Path, allowed_roots: Iterable[str | Path]) -> Path:
    """The real folder that ``path`` names, if it lies under one of ``allowed_roots``.

    A relative path is looked up under each root in turn. Symlinks are resolved before the
    check, so a link inside a root that points elsewhere is refused too.
    """
    roots = [Path(r).expanduser().resolve() for r in allowed_roots]
    if not roots:
        raise UploadError("No data folders are allowed on this server; upload a .zip instead.")
    text = str(path).strip()
    if not text:
        raise UploadError("Give the path of a data folder.")
    given = Path(text).expanduser()
    candidates = [given.resolve()] if given.is_absolute() else [(r / given).resolve() for r in roots]
    inside = [c for c in candidates if any(_is_within(c, r) for r in roots)]
    if not inside:
        where = ", ".join(str(r) for r in roots)
        raise UploadError(f"{text} is outside the folders this app may read ({where}).")
    for folder in inside:
        if folder.is_dir():
            return folder
    if any(c.exists() for c in inside):
        raise UploadError(f"{text} is a file, not a folder: give the folder that holds the images.")
    raise UploadError(f"There is no folder {text} in {', '.join(str(r) for r in roots)}.")


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, None for archiver junk; raises on unsafe names."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and parts[0].endswith(":")):
        raise UploadError(f"The zip contains an absolute path ({info.filename}); it cannot be extracted safely.")
    if ".." in parts:
        raise UploadError(f"The zip contains a path that leaves its folder ({info.filename}).")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise UploadError(f"The zip contains a symbolic link ({info.filename}); only plain files are accepted.")
    if info.flag_bits & 0x1:
        raise UploadError("The zip is password-protected; upload an unencrypted one.")
    if any(p in JUNK or p.startswith("._") for p in parts):
        return None
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def _plan(archive: zipfile.ZipFile, max_bytes: int, max_files: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every member before anything is written; returns the files to extract."""
    files, total = [], 0
    for info in archive.infolist():
        rel = _member_path(info)
        if rel is None or info.is_dir() or not rel.parts:
            continue
        files.append((info, rel))
        total += info.file_size
        if len(files) > max_files:
            raise UploadError(f"The zip holds more than {max_files:,} files, the limit for an upload.")
        if total > max_bytes:
            raise UploadError(f"The zip unpacks to more than {max_bytes / 1e9:.1f} GB, the limit for an upload.")
    if not files:
        raise UploadError("The zip is empty.")
    return files


def _copy(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, budget: int) -> int:
    """Stream one member to ``target``; returns the bytes written (never more than ``budget``)."""
    written = 0
    with archive.open(info) as src, open(target, "xb") as dst:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > budget:  # sizes in the header lied: treat it as a bomb
                raise UploadError("The zip unpacks to more than its stated size; it was not extracted.")
            dst.write(chunk)
    return written


def extract_zip(
    zip_path: str | Path,
    dest: str | Path,
    *,
    max_bytes: int = MAX_ZIP_BYTES,
    max_files: int = MAX_ZIP_FILES,
) -> Path:
    """Extract an uploaded zip into the new folder ``dest``; returns the data root inside it.

    Every name is checked before anything is written (no absolute paths, no ``..``, no
    symlinks, no encryption), as are the file count and the total uncompressed size;
    the bytes actually written are counted too. ``dest`` must not exist yet, and is
    removed again if extraction fails. If everything sits in one top-level folder (as
    when a folder is zipped), that folder is returned.
    """
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists")
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile:
        raise UploadError(f"{Path(zip_path).name} is not a zip file.") from None
    except OSError as e:
        raise UploadError(f"{Path(zip_path).name} could not be read ({e.strerror or e}).") from None
    with archive:
        files = _plan(archive, max_bytes, max_files)
        dest.mkdir(parents=True)
        root = dest.resolve()
        try:
            budget = max_bytes
            for info, rel in files:
                target = root.joinpath(*rel.parts)
                if not _is_within(target.resolve().parent, root):  # belt and braces after the name checks
                    raise UploadError(f"The zip contains a path that leaves its folder ({info.filename}).")
                target.parent.mkdir(parents=True, exist_ok=True)
                budget -= _copy(archive, info, target, min(budget, info.file_size))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise UploadError(f"The zip is damaged or uses an unsupported compression ({e}).") from None
        except (FileExistsError, NotADirectoryError) as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise UploadError(f"The zip contains the same name twice ({Path(e.filename).name}).") from None
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    log.info("extracted %d files from %s into %s", len(files), zip_path, dest)
    top = {rel.parts[0] for _, rel in files}
    if len(top) == 1 and all(len(rel.parts) > 1 for _, rel in files):
        return dest / top.pop()
    return dest
