"""Outline extraction from product photos: synthetic photos only, no shared data needed."""

from __future__ import annotations

import logging
import random

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from pix2pix.images import pairs
from pix2pix.cli import main as cli
from pix2pix.training.data import scan
from pix2pix.images.imaging import ImageReadError
from pix2pix.images.outlines import OutlineParts, extract_parts, photo_to_outline
from pix2pix.images.outline_store import OutlineStore
from pix2pix.images.pairs import OutlinePairMaker, unsquash
from pix2pix.images.strokes import render_outline

SIZE = 224
TSHIRT = [(62, 40), (96, 32), (128, 32), (162, 40), (200, 80), (178, 104), (160, 92),
          (160, 196), (64, 196), (64, 92), (46, 104), (24, 80)]


def photo(draw, background=(255, 255, 255)) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), background)
    draw(ImageDraw.Draw(img))
    return img


def ink(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L")) < 128


def components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected pieces of a mask: (labels, 0 = none; count)."""
    n, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    return labels, n - 1


def reachable_from_border(blocked: np.ndarray) -> np.ndarray:
    """What a flood fill from the image border reaches without crossing ``blocked``."""
    labels, _ = components(~blocked)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0])


def dark_ellipse(d):
    d.ellipse((50, 60, 180, 170), fill=(40, 50, 90))


def tshirt(d):
    d.polygon(TSHIRT, fill=(200, 40, 40))


@pytest.mark.parametrize("draw, centre", [(dark_ellipse, (115, 115)), (tshirt, (112, 130))])
def test_filled_shape_gives_a_closed_outline(draw, centre):
    outline = photo_to_outline(photo(draw))
    assert outline.size == (SIZE, SIZE) and outline.mode == "RGB"
    lines = ink(outline)
    outside = reachable_from_border(lines)
    assert outside[0, 0] and not outside[centre[1], centre[0]]
    assert lines[centre[1], centre[0]] == 0  # the inside is not painted: it is a line drawing


def test_white_object_on_white_still_has_a_silhouette():
    def draw(d):  # light grey item, a faint edge and a soft shadow under it
        d.ellipse((60, 150, 170, 185), fill=(225, 225, 225))

    img = photo(draw).filter(ImageFilter.GaussianBlur(6))
    ImageDraw.Draw(img).ellipse((50, 50, 174, 170), fill=(244, 244, 243), outline=(228, 228, 226))
    sil = extract_parts(img).silhouette.astype(bool)
    expected = np.zeros_like(sil)
    ImageDraw.Draw(probe := Image.fromarray(expected)).ellipse((50, 50, 174, 170), fill=1)
    expected = np.asarray(probe)
    overlap = (sil & expected).sum() / (sil | expected).sum()
    assert overlap > 0.8
    outside = reachable_from_border(ink(photo_to_outline(img)))
    assert not outside[110, 112]


def test_a_seam_becomes_an_inner_line():
    def draw(d):
        d.rectangle((40, 40, 184, 184), fill=(60, 90, 160))
        d.line((112, 60, 112, 164), fill=(220, 220, 120), width=3)  # contrasting seam

    parts = extract_parts(photo(draw))
    ys, xs = np.nonzero(parts.lines)
    assert ys.size > 60  # most of its 104 px length
    assert np.all(np.abs(xs - 112) <= 3)
    assert parts.lines.max() == 1  # one line: both sides of the seam merged


def test_texture_inside_the_shape_makes_no_speckle():
    img = photo(tshirt)
    arr = np.asarray(img).astype(np.int16)
    noise = np.random.default_rng(0).integers(-35, 36, (SIZE, SIZE, 1))
    inside = (arr != 255).any(2, keepdims=True)
    textured = Image.fromarray(np.clip(arr + noise * inside, 0, 255).astype(np.uint8))
    assert not extract_parts(textured).lines.any()
    lines = ink(photo_to_outline(textured))
    _, n = components(lines)
    assert n == 1  # just the silhouette, no specks


def test_pair_is_aligned_and_sized(tmp_path):
    img = photo(lambda d: d.rectangle((30, 120, 90, 200), fill=(220, 20, 20)))
    path = tmp_path / "red.png"
    img.save(path)
    outline, framed = OutlinePairMaker(256, augment=False)(path)
    assert outline.size == framed.size == (256, 256)
    assert outline.mode == framed.mode == "RGB"
    rgb = np.asarray(framed).astype(int)
    red = (rgb[..., 0] > 150) & (rgb[..., 1] < 100)
    lines = ink(outline)
    for axis in (0, 1):
        red_span = np.flatnonzero(red.any(axis))
        ink_span = np.flatnonzero(lines.any(axis))
        assert abs(red_span[0] - ink_span[0]) <= 3 and abs(red_span[-1] - ink_span[-1]) <= 3
    # The outline runs along the red square's edge, not through it.
    assert lines[red].mean() < 0.25


def test_unsquash_restores_portrait_proportions(tmp_path):
    img = photo(lambda d: d.ellipse((62, 62, 162, 162), fill=(20, 120, 20)))
    assert unsquash(img).size == (224, 299)
    path = tmp_path / "squashed.png"
    img.save(path)
    outline, _ = OutlinePairMaker(256, augment=False, aspect=3 / 4)(path)
    lines = ink(outline)
    height = np.ptp(np.flatnonzero(lines.any(1)))
    width = np.ptp(np.flatnonzero(lines.any(0)))
    assert height / width == pytest.approx(4 / 3, rel=0.08)


def test_cache_is_written_then_read(tmp_path, monkeypatch):
    path = tmp_path / "shirt.png"
    photo(tshirt).save(path)
    cache = tmp_path / "cache"
    maker = OutlinePairMaker(256, store=cache, augment=False)
    first = maker(path)
    files = list(cache.rglob("*.png"))
    assert len(files) == 1
    assert OutlineParts.from_image(Image.open(files[0])).silhouette.any()

    def no_extraction(_):
        raise AssertionError("should have come from the cache")

    monkeypatch.setattr(pairs, "extract_parts", no_extraction)
    second = maker(path)
    assert first[0].tobytes() == second[0].tobytes()
    assert first[1].tobytes() == second[1].tobytes()


def test_the_store_is_keyed_by_content_and_settings(tmp_path, monkeypatch):
    """An edited photo gets a new extraction; the same bytes elsewhere reuse it; so do the
    aspect and margin only when they match, since they change what is extracted and framed."""
    photo(tshirt).save(tmp_path / "a.png")
    store = OutlineStore(tmp_path / "store")
    OutlinePairMaker(64, store=store, augment=False)(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes())
    calls = []
    real = pairs.extract_parts
    monkeypatch.setattr(pairs, "extract_parts", lambda p: calls.append(1) or real(p))
    OutlinePairMaker(64, store=store, augment=False)(tmp_path / "b.png")
    assert calls == [] and len(store) == 1
    OutlinePairMaker(64, store=store, augment=False, aspect=3 / 4)(tmp_path / "b.png")
    OutlinePairMaker(64, store=store, augment=False, margin=0.1)(tmp_path / "b.png")
    photo(lambda d: d.ellipse((10, 20, 50, 40), fill=(200, 30, 30))).save(tmp_path / "b.png")
    OutlinePairMaker(64, store=store, augment=False)(tmp_path / "b.png")
    assert len(calls) == 3 and len(store) == 4


def test_a_damaged_store_entry_is_made_again(tmp_path):
    photo(tshirt).save(tmp_path / "a.png")
    store = OutlineStore(tmp_path / "store")
    first = OutlinePairMaker(64, store=store, augment=False)(tmp_path / "a.png")
    (entry,) = (tmp_path / "store").rglob("*.png")
    entry.write_bytes(b"half a png")
    again = OutlinePairMaker(64, store=store, augment=False)(tmp_path / "a.png")
    assert first[0].tobytes() == again[0].tobytes()
    assert OutlineParts.from_image(Image.open(entry)).silhouette.any()


def test_parts_round_trip_through_an_image():
    parts = extract_parts(photo(tshirt))
    again = OutlineParts.from_image(parts.to_image())
    assert np.array_equal(again.silhouette, parts.silhouette)
    assert np.array_equal(again.lines, parts.lines)


def test_augmentation_is_deterministic_per_seed(tmp_path):
    def draw(d):
        tshirt(d)
        d.line((112, 60, 112, 190), fill=(250, 230, 60), width=3)

    parts = extract_parts(photo(draw))
    a = render_outline(parts, random.Random(7))
    b = render_outline(parts, random.Random(7))
    c = render_outline(parts, random.Random(8))
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    assert a.tobytes() != render_outline(parts).tobytes()

    path = tmp_path / "shirt.png"
    photo(draw).save(path)
    maker = OutlinePairMaker(128)
    (o1, p1), (o2, p2) = maker(path, random.Random(3)), maker(path, random.Random(3))
    assert o1.tobytes() == o2.tobytes() and p1.tobytes() == p2.tobytes()
    assert maker(path, random.Random(4))[1].tobytes() == p1.tobytes()  # the photo is never augmented


def test_unreadable_or_empty_photo_raises_image_read_error(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (64, 64), "white").save(blank)
    maker = OutlinePairMaker(64)
    for path in (broken, blank, tmp_path / "missing.jpg"):
        with pytest.raises(ImageReadError):
            maker(path)


def test_outlines_command_on_a_folder(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    photo(tshirt).save(src / "shirt.jpg")
    photo(dark_ellipse).save(src / "sub" / "bag.png")
    (src / "broken.png").write_bytes(b"nope")
    out = tmp_path / "out"
    assert cli(["outlines", str(src), "--output", str(out), "--size", "128"]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["shirt.png", "sub/bag.png"]
    assert Image.open(out / "shirt.png").size == (128, 128)
    assert "broken.png" in caplog.text
    assert "wrote 2 outline(s)" in caplog.text

    assert cli(["outlines", str(src / "shirt.jpg"), "--output", str(tmp_path / "one.png")]) == 0
    assert Image.open(tmp_path / "one.png").size == (256, 256)
    assert cli(["outlines", str(src / "broken.png"), "--output", str(tmp_path / "none.png")]) == 1  # nothing written
    assert not (tmp_path / "none.png").exists()
    assert cli(["outlines", str(tmp_path / "nothing"), "--output", str(out)]) == 2  # an error, said in one line


def test_outlines_command_writes_aligned_pairs(tmp_path):
    """--pairs: A/ the outlines, B/ the photos framed like them, so A and B line up pixel for
    pixel, and the folder trains as a paired set."""
    src = tmp_path / "photos"
    src.mkdir()
    photo(tshirt).save(src / "shirt.jpg")
    photo(dark_ellipse).save(src / "bag.png")
    out = tmp_path / "pairs"
    assert cli(["outlines", str(src), "--output", str(out), "--pairs", "--size", "128"]) == 0
    for rel in ("shirt.png", "bag.png"):
        a, b = (np.asarray(Image.open(out / side / rel).convert("L")) for side in ("A", "B"))
        assert a.shape == b.shape == (128, 128)
        ink, obj = a < 128, b < 240  # outline pixels, object pixels
        inside = obj[ink].mean()  # lines drawn on the object's edges lie on or next to it
        near = cv2.dilate(obj.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)[ink].mean()
        assert near > 0.95 and inside > 0.3, (rel, near, inside)
    assert scan(out).count("train") == 2
    assert cli(["outlines", str(src / "shirt.jpg"), "--output", str(tmp_path / "one"), "--pairs"]) == 0
    assert (tmp_path / "one" / "A" / "shirt.png").exists() and (tmp_path / "one" / "B" / "shirt.png").exists()


def test_cache_is_keyed_by_the_extractor_version(tmp_path, monkeypatch):
    path = tmp_path / "shirt.png"
    photo(tshirt).save(path)
    cache = tmp_path / "cache"
    maker = OutlinePairMaker(64, store=cache, augment=False)
    maker(path)
    monkeypatch.setattr(pairs, "OUTLINE_VERSION", pairs.OUTLINE_VERSION + 1)
    maker(path)  # a new extractor does not reuse the old one's outlines
    assert len(list(cache.rglob("*.png"))) == 2


def test_clean_strokes_have_the_pen_width():
    sil = np.zeros((256, 256), np.uint8)
    sil[64:192, 48:208] = 1
    lines = np.zeros_like(sil)
    lines[128, 80:176] = 1  # one inner line
    drawn = ink(render_outline(OutlineParts(sil, lines)))
    edges = np.diff(np.concatenate([[0], drawn[:, 128].astype(np.int8), [0]]))
    widths = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    assert len(widths) == 3 and np.all((widths >= 2) & (widths <= 4)), widths  # top, inner line, bottom
    assert not drawn[100, 128] and not drawn[20, 20]  # neither filled nor smudged
