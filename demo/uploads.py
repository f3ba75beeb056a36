"""Data that reaches the server from a web page: folder paths and uploaded zip files.

The app's fine-tune tab takes a folder path typed by a user, or a .zip they upload, and
hands the result to the trainer. Both are untrusted: a path may point anywhere on the
server, and a zip may hold ``../`` names, absolute paths, symlinks, names too long or too
deep for the file system, or a decompression bomb. These functions confine paths to
allowed roots and extract archives defensively; kept uploads (and the app's run folders)
are held to a disk quota. Their errors (:class:`UploadError`) carry a plain sentence for
the user.

Pure standard library, so the app can import this without loading torch.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pix2pix.errors import Pix2PixError

log = logging.getLogger(__name__)

MAX_ZIP_BYTES = 2 * 1024**3  # uncompressed total; a training set of a few thousand photos fits
MAX_ZIP_FILES = 50_000
MAX_DEPTH = 32  # folders inside a zip; deeper nesting is refused (no data set needs it)
MAX_NAME_BYTES = 255  # one file or folder name, as Linux and macOS file systems allow
MAX_PATH_CHARS = 1024  # a whole path, in a zip or typed into the app
UNUSED_AFTER_S = 3600  # an upload untouched this long may be removed to make room for a new one
JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db")  # what archivers add beside the data
_CHUNK = 1 << 20


class UploadError(Pix2PixError, ValueError):
    """A path or archive the app refuses; str(e) is a sentence for the user."""


def _is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _short(text: str, limit: int = 80) -> str:
    """A name as a message shows it: at most ``limit`` characters, control characters escaped."""
    text = text if text.isprintable() else repr(text)[1:-1]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def human_size(n: float) -> str:
    """Bytes as people read them: 950 KB, 12.3 MB, 2.0 GB (powers of 1000, as disks are sold)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit in ("bytes", "KB") else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- folder paths


def _typed_path(text: str) -> Path:
    """A path as typed, refused if no file system could hold it."""
    if "\0" in text:
        raise UploadError("A folder path cannot contain a NUL character.")
    if len(text) > MAX_PATH_CHARS:
        raise UploadError(f"That path is {len(text):,} characters long; a data folder path may have at most "
                          f"{MAX_PATH_CHARS:,}.")
    if any(len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for part in Path(text).parts):
        raise UploadError(f"{_short(text)} has a folder name longer than {MAX_NAME_BYTES} bytes.")
    return Path(text).expanduser()


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
    given = _typed_path(text)
    try:
        candidates = [given.resolve()] if given.is_absolute() else [(r / given).resolve() for r in roots]
        inside = [c for c in candidates if any(_is_within(c, r) for r in roots)]
        if not inside:
            where = ", ".join(str(r) for r in roots)
            raise UploadError(f"{_short(text)} is outside the folders this app may read ({where}).")
        for folder in inside:
            if folder.is_dir():
                return folder
        if any(c.exists() for c in inside):
            raise UploadError(f"{_short(text)} is a file, not a folder: give the folder that holds the images.")
    except OSError as e:  # too long once joined to a root, a loop of links, no permission
        raise UploadError(f"{_short(text)} cannot be read ({e.strerror or e}).") from None
    raise UploadError(f"There is no folder {_short(text)} in {', '.join(str(r) for r in roots)}.")


# ---------------------------------------------------------------------------- zip files


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, None for archiver junk; raises on unsafe names."""
    name = info.filename.replace("\\", "/")
    shown = _short(info.filename)
    parts = PurePosixPath(name).parts
    if name.startswith("/") or (parts and parts[0].endswith(":")):
        raise UploadError(f"The zip contains an absolute path ({shown}); it cannot be extracted safely.")
    if ".." in parts:
        raise UploadError(f"The zip contains a path that leaves its folder ({shown}).")
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        raise UploadError(f"The zip contains a symbolic link ({shown}); only plain files are accepted.")
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise UploadError(f"The zip contains a device, pipe or socket ({shown}); only plain files are accepted.")
    if info.flag_bits & 0x1:
        raise UploadError("The zip is password-protected; upload an unencrypted one.")
    if len(parts) > MAX_DEPTH:
        raise UploadError(f"The zip nests folders {len(parts) - 1} deep ({shown}); at most {MAX_DEPTH} are accepted.")
    if len(name) > MAX_PATH_CHARS or any(len(p.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES for p in parts):
        raise UploadError(f"The zip contains a name too long for the server's file system ({shown}).")
    if any(p in JUNK or p.startswith("._") for p in parts):
        return None
    return PurePosixPath(*[p for p in parts if p not in ("", ".")])


def _plan(archive: zipfile.ZipFile, max_bytes: int, max_files: int) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every member before anything is written; returns the files to extract."""
    files, total, seen = [], 0, set()
    for info in archive.infolist():
        rel = _member_path(info)
        if rel is None or info.is_dir() or not rel.parts:
            continue
        if rel in seen:
            raise UploadError(f"The zip contains the same name twice ({_short(str(rel))}).")
        seen.add(rel)
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


def _write_all(archive: zipfile.ZipFile, files: list, root: Path, max_bytes: int) -> None:
    """Every planned member under ``root``, with the file system's errors as sentences."""
    budget = max_bytes
    try:
        for info, rel in files:
            target = root.joinpath(*rel.parts)
            if not _is_within(target.resolve().parent, root):  # belt and braces after the name checks
                raise UploadError(f"The zip contains a path that leaves its folder ({_short(info.filename)}).")
            target.parent.mkdir(parents=True, exist_ok=True)
            budget -= _copy(archive, info, target, min(budget, info.file_size))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, zlib.error) as e:
        raise UploadError(f"The zip is damaged or uses an unsupported compression ({e}).") from None
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:
        raise UploadError(f"The zip uses one name for a file and a folder ({_short(Path(e.filename).name)}).") from None
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise UploadError("The server's disk is full: the zip could not be extracted.") from None
        raise UploadError(f"The zip could not be extracted ({e.strerror or e}).") from None


def _open_zip(zip_path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, EOFError, zlib.error):
        raise UploadError(f"{_short(zip_path.name)} is not a zip file.") from None
    except OSError as e:
        raise UploadError(f"{_short(zip_path.name)} could not be read ({e.strerror or e}).") from None


def _rename_free(work: Path, dest: Path) -> Path:
    """Rename the finished folder to ``dest``, or ``dest-2``, ``dest-3``… if that is taken
    (two uploads of one zip in the same second get two folders)."""
    for n in range(1, 1000):
        target = dest if n == 1 else dest.with_name(f"{dest.name}-{n}")
        if target.exists() or target.is_symlink():
            continue
        try:
            os.rename(work, target)  # atomic: the folder appears complete or not at all
        except OSError as e:
            if e.errno in (errno.EEXIST, errno.ENOTEMPTY):  # another upload took it meanwhile
                continue
            raise
        os.utime(target)  # its time is the upload's (the quota removes the oldest first)
        return target
    raise UploadError(f"Too many uploads are called {_short(dest.name)}; delete some first.")


def extract_zip(
    zip_path: str | Path,
    dest: str | Path,
    *,
    max_bytes: int = MAX_ZIP_BYTES,
    max_files: int = MAX_ZIP_FILES,
    room: Callable[[int], object] | None = None,
) -> Path:
    """Extract an uploaded zip into a new folder ``dest`` (``dest-2``… if that name is
    taken); returns the data root inside it.

    Every name is checked before anything is written (no absolute paths, no ``..``, no
    links or devices, no encryption, no nesting deeper than :data:`MAX_DEPTH`, no name the
    file system could not hold), as are the file count and the total uncompressed size;
    the bytes actually written are counted too. ``room(size)``, if given, is called with
    the unpacked size before anything is written: it may make room, or refuse by raising.
    The files are written into a hidden folder beside ``dest`` that is renamed when
    complete, so a half-extracted upload is never seen; on failure it is removed. If
    everything sits in one top-level folder (as when a folder is zipped), that folder is
    returned.
    """
    dest, zip_path = Path(dest), Path(zip_path)
    with _open_zip(zip_path) as archive:
        files = _plan(archive, max_bytes, max_files)
        if room is not None:
            room(sum(info.file_size for info, _ in files))
        dest.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=PARTIAL, dir=dest.parent)).resolve()
        try:
            _write_all(archive, files, work, max_bytes)
            dest = _rename_free(work, dest)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    log.info("extracted %d files from %s into %s", len(files), zip_path, dest)
    top = {rel.parts[0] for _, rel in files}
    if len(top) == 1 and all(len(rel.parts) > 1 for _, rel in files):
        return dest / top.pop()
    return dest


# ---------------------------------------------------------------------------- disk quota


PARTIAL = ".partial-"  # an extraction in progress (or cut short by a crash)
_DELETING = ".deleting-"


@dataclass(frozen=True)
class Entry:
    """One upload or run: a folder (or file) directly under a managed folder."""

    path: Path
    size: int  # bytes, everything below it
    mtime: float  # when it was made (uploads) or last written (runs)

    @property
    def name(self) -> str:
        return self.path.name


def folder_size(path: Path) -> int:
    """Bytes of every file under ``path`` (links are neither followed nor counted; no
    recursion limit)."""
    total, stack = 0, [Path(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(Path(e.path))
                        elif not e.is_symlink():
                            total += e.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue  # vanished meanwhile
        except (NotADirectoryError, FileNotFoundError):
            continue
    return total


def entries(folder: Path) -> list[Entry]:
    """The uploads (or runs) in ``folder``, oldest first; hidden ones (in progress) left out."""
    found = []
    if not Path(folder).is_dir():
        return found
    for path in Path(folder).iterdir():
        if path.name.startswith("."):
            continue
        try:
            mtime = path.lstat().st_mtime
        except OSError:
            continue
        found.append(Entry(path, _size(path), mtime))
    return sorted(found, key=lambda e: e.mtime)


def _size(path: Path) -> int:
    """An entry's bytes: a folder's files, a file's size; a link counts nothing."""
    if path.is_symlink():
        return 0
    return folder_size(path) if path.is_dir() else path.lstat().st_size


def _sweep(folder: Path, older_than_s: float) -> None:
    """Remove leftovers of extractions and deletions cut short (by a crash) long ago."""
    now = time.time()
    for path in Path(folder).glob(".*"):
        if path.name.startswith((PARTIAL, _DELETING)) and now - path.lstat().st_mtime > older_than_s:
            shutil.rmtree(path, ignore_errors=True)


def make_room(
    folder: Path, needed: int, quota: int, *, keep: Iterable[Path] = (), unused_after_s: float = UNUSED_AFTER_S,
) -> list[Entry]:
    """Make ``needed`` more bytes fit into ``quota`` for ``folder`` by removing its oldest
    entries that are not in ``keep`` (nor hold a path in it) and were made more than
    ``unused_after_s`` ago; returns what was removed. If that cannot be enough, nothing is
    removed and :class:`UploadError` says so."""
    folder = Path(folder)
    if folder.is_dir():
        _sweep(folder, unused_after_s)
    used = folder_size(folder)
    if used + needed <= quota:
        return []
    if needed > quota:
        raise UploadError(f"This zip unpacks to {human_size(needed)}, more than the {human_size(quota)} "
                          "this server keeps for uploads.")
    keep = [Path(k).resolve() for k in keep]
    now = time.time()
    removable = [e for e in entries(folder) if now - e.mtime > unused_after_s
                 and not any(_is_within(k, e.path.resolve()) for k in keep)]
    chosen, freed = [], 0
    for e in removable:
        if used - freed + needed <= quota:
            break
        chosen.append(e)
        freed += e.size
    if used - freed + needed > quota:
        raise UploadError(
            f"The uploads take {human_size(used)} of the {human_size(quota)} this server keeps for them, and this "
            f"zip unpacks to {human_size(needed)}. Delete old uploads (Fine-tune tab, Storage) and try again."
        )
    for e in chosen:
        remove(folder, e.name)
        log.info("removed the upload %s (%s, unused) to make room", e.name, human_size(e.size))
    return chosen


def remove(folder: Path, name: str) -> int:
    """Delete the entry ``name`` directly under ``folder`` (a name, never a path); returns
    the bytes freed. It is first renamed to a hidden name, so nothing half-deleted is ever
    listed or used."""
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise UploadError(f"{_short(name)!r} is not the name of an upload or run.")
    path = Path(folder) / name
    if not (path.exists() or path.is_symlink()):
        raise UploadError(f"There is no {_short(name)} in {folder} any more.")
    size = _size(path)
    doomed = Path(tempfile.mkdtemp(prefix=_DELETING, dir=folder))
    os.rename(path, doomed / name)
    shutil.rmtree(doomed, ignore_errors=True)  # a link is removed, never followed
    log.info("deleted %s (%s)", path, human_size(size))
    return size
