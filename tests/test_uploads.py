"""Folder paths and zip uploads from the web page: confined to allowed roots, extracted safely."""

import os
import stat
import zipfile

import pytest

from pix2pix.uploads import UploadError, extract_zip, resolve_data_folder


@pytest.fixture
def roots(tmp_path):
    root = tmp_path / "datasets"
    (root / "shoes" / "train").mkdir(parents=True)
    (root / "notes.txt").write_text("x")
    (tmp_path / "secret").mkdir()
    return root


def test_folders_inside_a_root_resolve(roots):
    assert resolve_data_folder("shoes", [roots]) == (roots / "shoes").resolve()
    assert resolve_data_folder(roots / "shoes" / "train", [roots]) == (roots / "shoes" / "train").resolve()
    assert resolve_data_folder(f"  {roots / 'shoes'}  ", [roots]) == (roots / "shoes").resolve()
    assert resolve_data_folder(roots, [roots]) == roots.resolve()


@pytest.mark.parametrize("path", ["../secret", "/etc", "shoes/../../secret"])
def test_paths_outside_the_roots_are_refused(roots, path):
    with pytest.raises(UploadError, match="outside the folders"):
        resolve_data_folder(path, [roots])


def test_a_symlink_out_of_a_root_is_refused(roots):
    os.symlink(roots.parent / "secret", roots / "link")
    with pytest.raises(UploadError, match="outside"):
        resolve_data_folder("link", [roots])


def test_missing_paths_files_and_empty_input_get_plain_messages(roots):
    with pytest.raises(UploadError, match="There is no folder nope"):
        resolve_data_folder("nope", [roots])
    with pytest.raises(UploadError, match="is a file, not a folder"):
        resolve_data_folder("notes.txt", [roots])
    with pytest.raises(UploadError, match="Give the path"):
        resolve_data_folder("   ", [roots])
    with pytest.raises(UploadError, match="upload a .zip"):
        resolve_data_folder("shoes", [])


def make_zip(path, files: dict[str, bytes], **kw):
    with zipfile.ZipFile(path, "w", **kw) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def test_a_zipped_folder_extracts_to_that_folder(tmp_path):
    z = make_zip(tmp_path / "d.zip", {"shoes/train/a.png": b"1", "shoes/train/b.png": b"2",
                                      "__MACOSX/shoes/._a.png": b"junk", "shoes/.DS_Store": b"junk"})
    root = extract_zip(z, tmp_path / "out")
    assert root == tmp_path / "out" / "shoes"
    assert sorted(p.name for p in (root / "train").iterdir()) == ["a.png", "b.png"]
    assert not (tmp_path / "out" / "__MACOSX").exists() and not (root / ".DS_Store").exists()


def test_a_flat_zip_extracts_to_the_destination(tmp_path):
    z = make_zip(tmp_path / "d.zip", {"a.png": b"1", "A/b.png": b"2"})
    assert extract_zip(z, tmp_path / "out") == tmp_path / "out"
    assert (tmp_path / "out" / "A" / "b.png").read_bytes() == b"2"


@pytest.mark.parametrize("name, message", [
    ("../evil.png", "leaves its folder"),
    ("a/../../evil.png", "leaves its folder"),
    ("/etc/evil.png", "absolute path"),
    ("C:/evil.png", "absolute path"),
    ("..\\evil.png", "leaves its folder"),
])
def test_unsafe_names_are_refused_before_anything_is_written(tmp_path, name, message):
    z = make_zip(tmp_path / "d.zip", {"ok.png": b"1", name: b"2"})
    with pytest.raises(UploadError, match=message):
        extract_zip(z, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.png").exists()


def test_symlinks_are_refused(tmp_path):
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        z.writestr(info, "/etc/passwd")
    with pytest.raises(UploadError, match="symbolic link"):
        extract_zip(tmp_path / "d.zip", tmp_path / "out")


def test_limits_on_size_and_file_count(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", {"big.bin": b"\0" * 1_000_000}, compression=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 10_000  # compresses ~1000:1
    with pytest.raises(UploadError, match="more than"):
        extract_zip(bomb, tmp_path / "out", max_bytes=100_000)
    many = make_zip(tmp_path / "many.zip", {f"{i}.png": b"x" for i in range(11)})
    with pytest.raises(UploadError, match="more than 10 files"):
        extract_zip(many, tmp_path / "out2", max_files=10)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out2").exists()


def test_a_header_that_understates_the_size_is_caught(tmp_path):
    z = make_zip(tmp_path / "d.zip", {"a.bin": b"\1" * 5000})
    data = bytearray(z.read_bytes())
    # Rewrite the declared uncompressed size (local header and central directory) to 10 bytes.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(sig)
        data[at + offset: at + offset + 4] = (10).to_bytes(4, "little")
    z.write_bytes(bytes(data))
    with pytest.raises(UploadError):
        extract_zip(z, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_non_zip_files_and_empty_zips(tmp_path):
    (tmp_path / "x.zip").write_bytes(b"this is not a zip")
    with pytest.raises(UploadError, match="not a zip file"):
        extract_zip(tmp_path / "x.zip", tmp_path / "out")
    empty = make_zip(tmp_path / "e.zip", {"__MACOSX/._x": b"junk"})
    with pytest.raises(UploadError, match="empty"):
        extract_zip(empty, tmp_path / "out")


def test_the_destination_must_be_new(tmp_path):
    z = make_zip(tmp_path / "d.zip", {"a.png": b"1"})
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError):
        extract_zip(z, tmp_path / "out")
