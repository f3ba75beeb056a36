"""Folder paths and zip uploads from the web page: confined to allowed roots, extracted
safely, kept within a disk quota."""

import os
import stat
import time
import zipfile

import pytest

from demo.uploads import (
    MAX_DEPTH, PARTIAL, UploadError, entries, extract_zip, folder_size, human_size, make_room, remove,
    resolve_data_folder,
)


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


@pytest.mark.parametrize("path, message", [
    ("shoes\0/../../etc", "NUL"),
    ("x" * 5000, "5,000 characters long"),
    ("a/" + "b" * 300, "longer than 255 bytes"),
    ("/".join(["d"] * 600), "characters long"),
])
def test_paths_no_file_system_could_hold_get_a_sentence(roots, path, message):
    with pytest.raises(UploadError, match=message) as e:
        resolve_data_folder(path, [roots])
    assert len(str(e.value)) < 300  # the path is shortened in the message


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


def test_a_taken_destination_gets_a_new_name(tmp_path):
    """Two uploads of one zip in the same second: two folders, the first one untouched."""
    z = make_zip(tmp_path / "d.zip", {"a.png": b"1"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep")
    assert extract_zip(z, tmp_path / "out") == tmp_path / "out-2"
    assert extract_zip(z, tmp_path / "out") == tmp_path / "out-3"
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep" and (tmp_path / "out-3" / "a.png").exists()
    assert not list(tmp_path.glob(".*"))  # no hidden work folder left behind


# ---------------------------------------------------------------------------- hostile archives


def test_a_deep_path_is_refused_before_anything_is_written(tmp_path):
    z = make_zip(tmp_path / "d.zip", {"/".join(["d"] * 300) + "/x.png": b"1"})
    with pytest.raises(UploadError, match=f"nests folders 300 deep.*at most {MAX_DEPTH}"):
        extract_zip(z, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zip"]


@pytest.mark.parametrize("name", ["a" * 300 + ".png", "ok/" + "é" * 200 + ".png", "/".join(["abcdefgh"] * 30) * 5])
def test_names_too_long_for_the_file_system_are_refused(tmp_path, name):
    z = make_zip(tmp_path / "d.zip", {name: b"1"})
    with pytest.raises(UploadError, match="too long|nests") as e:
        extract_zip(z, tmp_path / "out")
    assert len(str(e.value)) < 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zip"]


@pytest.mark.parametrize("kind", [stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
def test_devices_pipes_and_sockets_are_refused(tmp_path, kind):
    info = zipfile.ZipInfo("dev")
    info.external_attr = (kind | 0o644) << 16
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as z:
        z.writestr(info, b"")
    with pytest.raises(UploadError, match="device, pipe or socket"):
        extract_zip(tmp_path / "d.zip", tmp_path / "out")


def test_one_name_twice_or_as_file_and_folder_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "twice.zip", "w") as z:
        z.writestr("a.png", b"1")
        z.writestr("./a.png", b"2")
    with pytest.raises(UploadError, match="same name twice"):
        extract_zip(tmp_path / "twice.zip", tmp_path / "out")
    z = make_zip(tmp_path / "both.zip", {"a": b"1", "a/b.png": b"2"})
    with pytest.raises(UploadError, match="one name for a file and a folder"):
        extract_zip(z, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(PARTIAL + "*"))


def test_room_is_asked_for_before_anything_is_written(tmp_path):
    z = make_zip(tmp_path / "d.zip", {"a.bin": b"1" * 1000, "b/c.bin": b"2" * 500})
    asked = []

    def refuse(size):
        asked.append(size)
        raise UploadError("no room")

    with pytest.raises(UploadError, match="no room"):
        extract_zip(z, tmp_path / "out", room=refuse)
    assert asked == [1500] and sorted(p.name for p in tmp_path.iterdir()) == ["d.zip"]


# ---------------------------------------------------------------------------- quota


def upload(folder, name, size, age_s):
    """A kept upload of ``size`` bytes made ``age_s`` seconds ago."""
    (folder / name / "x").mkdir(parents=True)
    (folder / name / "x" / "data.bin").write_bytes(b"0" * size)
    then = time.time() - age_s
    os.utime(folder / name, (then, then))
    return folder / name


def test_sizes_and_entries(tmp_path):
    a = upload(tmp_path, "a", 3000, 7200)
    b = upload(tmp_path, "b", 1000, 60)
    (tmp_path / ".partial-x").mkdir()
    os.symlink("/usr", tmp_path / "b" / "link")  # not followed
    assert folder_size(tmp_path) == 4000
    assert [(e.path, e.size) for e in entries(tmp_path)] == [(a, 3000), (b, 1000)]  # oldest first, no hidden
    assert human_size(3000) == "3 KB" and human_size(2.5e9) == "2.5 GB"


def test_make_room_removes_the_oldest_unused_uploads(tmp_path):
    old, older, busy = upload(tmp_path, "old", 3000, 7200), upload(tmp_path, "older", 3000, 9000), \
        upload(tmp_path, "busy", 3000, 99999)
    recent = upload(tmp_path, "recent", 3000, 60)
    removed = make_room(tmp_path, 4000, 12_000, keep=[busy / "x"])
    assert [e.name for e in removed] == ["older", "old"]  # oldest first, until it fits
    assert busy.exists() and recent.exists() and not old.exists() and not older.exists()
    assert make_room(tmp_path, 1000, 12_000) == []


def test_make_room_refuses_without_removing_anything(tmp_path):
    upload(tmp_path, "recent", 3000, 60)  # too new to remove
    upload(tmp_path, "old", 3000, 7200)
    with pytest.raises(UploadError, match="take 6 KB of the 8 KB.*Delete old uploads"):
        make_room(tmp_path, 6000, 8000)
    with pytest.raises(UploadError, match="more than the 8 KB"):
        make_room(tmp_path, 9000, 8000)
    assert {e.name for e in entries(tmp_path)} == {"recent", "old"}


def test_remove_takes_names_only(tmp_path):
    victim = upload(tmp_path, "victim", 100, 0)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", tmp_path / "victim" / "link")
    os.symlink(tmp_path / "outside", tmp_path / "alias")
    for bad in ("", ".", "..", "../outside", "a/b", ".hidden", "x\0y"):
        with pytest.raises(UploadError):
            remove(tmp_path, bad)
    with pytest.raises(UploadError, match="no nope"):
        remove(tmp_path, "nope")
    assert remove(tmp_path, "victim") == 100 and not victim.exists()
    remove(tmp_path, "alias")  # a link goes, never what it points to
    assert (tmp_path / "outside").is_dir() and not list(tmp_path.glob(".*"))
