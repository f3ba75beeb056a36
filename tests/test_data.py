import random

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import shape_pair, write_folders, write_side_by_side
from pix2pix.training.data import DataError, read_palette, scan, split_validation
from pix2pix.training.dataset import EpochSampler, PairedDataset, load_pair
from pix2pix.images.imaging import ImageReadError, load_rgb, to_rgb, to_tensor


def test_side_by_side_layout_with_bad_files(tmp_path):
    write_side_by_side(tmp_path, 4)
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    Image.new("RGB", (64, 64)).save(tmp_path / "square.png")  # not a pair
    (tmp_path / "notes.txt").write_text("ignored")
    result = scan(tmp_path)
    assert result.layout == "side-by-side"
    assert result.count("train") == 4
    reasons = dict(result.skipped)
    assert "unreadable" in reasons["broken.png"]
    assert "side-by-side" in reasons["square.png"]
    assert "skipped 2" in result.summary()


@pytest.mark.parametrize("names", [("A", "B"), ("input", "target")])
def test_folders_layout_pairs_by_stem(tmp_path, names):
    write_folders(tmp_path, 3, names=names)
    Image.new("RGB", (64, 64)).save(tmp_path / names[0] / "lonely.webp")
    result = scan(tmp_path)
    assert result.layout == "folders"
    assert result.count("train") == 3
    assert [p.a.stem for p in result.splits["train"]] == [p.b.stem for p in result.splits["train"]]
    assert any("no partner" in why for f, why in result.skipped if "lonely" in f)


def test_stem_pairs_layout_label_png_beside_photo_jpg(tmp_path):
    for i in range(3):
        lab = Image.new("P", (40, 30), 1)
        lab.putpalette([0, 0, 0, 0, 0, 255, 255, 0, 0] + [0] * 759)
        lab.save(tmp_path / f"b{i}.png")
        Image.new("RGB", (40, 30), (i * 40, 100, 100)).save(tmp_path / f"b{i}.jpg")
    Image.new("RGB", (40, 30)).save(tmp_path / "alone.jpg")
    (tmp_path / "label_names.txt").write_text("1 wall 1\n2 window 2\n")
    result = scan(tmp_path)
    assert result.layout == "stem-pairs"
    assert result.labels
    assert all(p.a.suffix == ".png" and p.b.suffix == ".jpg" for p in result.splits["train"])
    assert [c["name"] for c in read_palette(result)] == ["wall", "window"]
    assert read_palette(result)[0]["color"] == [0, 0, 255]
    assert any("alone" in f for f, _ in result.skipped)


def test_split_folders_of_either_layout(tmp_path):
    write_side_by_side(tmp_path / "train", 5)
    write_side_by_side(tmp_path / "val", 2, start=10)
    write_side_by_side(tmp_path / "test", 1, start=20)
    result = scan(tmp_path)
    assert (result.count("train"), result.count("val"), result.count("test")) == (5, 2, 1)
    assert "splits" in result.layout
    train, val = split_validation(result, 0.5, 0)
    assert len(train) == 5 and len(val) == 2  # val/ wins over a fraction


def test_no_usable_pair_names_the_folder(tmp_path):
    Image.new("RGB", (64, 64)).save(tmp_path / "photo.jpg")
    with pytest.raises(DataError, match=str(tmp_path)):
        scan(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        scan(tmp_path / "missing")


def test_photos_layout_for_outlines(tmp_path):
    for i in range(3):
        Image.new("RGB", (50, 70), "white").save(tmp_path / f"{i}.jpg")
    result = scan(tmp_path, outlines=True)
    assert result.layout == "photos" and result.count("train") == 3


def test_validation_split_is_seeded_and_disjoint(tmp_path):
    write_side_by_side(tmp_path, 20)
    result = scan(tmp_path)
    t1, v1 = split_validation(result, 0.2, seed=3)
    t2, v2 = split_validation(result, 0.2, seed=3)
    _, v3 = split_validation(result, 0.2, seed=4)
    assert len(v1) == 4 and v1 == v2 and v1 != v3
    assert not set(t1) & set(v1) and len(t1) + len(v1) == 20
    _, listed = split_validation(result, 0.0, 0, val_list=["003.png", "007"])
    assert sorted(p.name for p in listed) == ["003", "007"]


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16", "LA"])
def test_any_mode_becomes_rgb(tmp_path, mode):
    base = Image.new("RGB", (8, 8), (200, 40, 40))
    if mode == "I;16":
        img = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
    elif mode == "RGBA":
        img = base.convert("RGBA")
        img.putalpha(0)  # fully transparent: must come out white, not red or black
    elif mode == "LA":
        img = Image.new("LA", (8, 8), (0, 0))
    else:
        img = base.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    rgb = load_rgb(path)
    assert rgb.mode == "RGB" and rgb.size == (8, 8)
    px = rgb.getpixel((3, 3))
    if mode in ("RGBA", "LA", "I;16"):
        assert px == (255, 255, 255)
    elif mode in ("P", "CMYK"):
        assert abs(px[0] - 200) < 8 and px[1] < 60


def test_unreadable_file_raises_a_readable_error(tmp_path):
    p = tmp_path / "bad.jpg"
    p.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ImageReadError, match="bad.jpg"):
        load_rgb(p)


def test_augmentation_is_identical_on_both_halves(tmp_path):
    # Input and target are the same picture: any difference after jitter means the two
    # halves were cropped or flipped differently.
    a, _ = shape_pair(1, 64)
    ab = Image.new("RGB", (128, 64))
    ab.paste(a, (0, 0))
    ab.paste(a, (64, 0))
    ab.save(tmp_path / "same.png")
    ds = PairedDataset(scan(tmp_path).splits["train"], image_size=32, load_size=48, train=True)
    crops = set()
    for key in range(20):
        x, y = ds[key]
        assert x.shape == (3, 32, 32) and x.min() >= -1 and x.max() <= 1
        assert torch.equal(x, y)
        crops.add(x.sum().item())
    assert len(crops) > 5  # it did jitter


def test_jitter_depends_only_on_seed_and_key(tiny_data):
    pairs = scan(tiny_data).splits["train"]
    ds = PairedDataset(pairs, image_size=32, train=True, seed=1)
    assert torch.equal(ds[9][0], ds[9][0])
    assert not torch.equal(ds[1][0], ds[9][0])  # same pair (8 pairs), another epoch


def test_validation_has_no_jitter(tiny_data):
    ds = PairedDataset(scan(tiny_data).splits["train"], image_size=64, train=False)
    a, b = load_pair(ds.pairs[0])
    x, y = ds[0]
    assert torch.equal(x, ds[0][0])
    assert x.shape == (3, 64, 64)
    assert np.allclose((x.permute(1, 2, 0).numpy() + 1) * 127.5, np.asarray(a, dtype=np.float32), atol=1)


@pytest.mark.parametrize("rng", [random.Random(0), None], ids=["jitter", "plain"])
def test_label_maps_are_resized_without_blending(rng):
    lab = Image.new("RGB", (37, 23), (0, 0, 255))
    lab.paste((255, 0, 0), (10, 5, 20, 15))
    ds = PairedDataset([object()], image_size=32, load_size=40, train=True, labels=True)
    x, y = ds.transform(lab, lab.copy(), rng)

    def colours(t):
        return {tuple(c) for c in ((t.permute(1, 2, 0).reshape(-1, 3) + 1) * 127.5).round().int().tolist()}

    assert colours(x) == {(0, 0, 255), (255, 0, 0)}
    assert len(colours(y)) > 2  # the photo side is resized smoothly (bicubic)


def test_jitter_is_the_papers_resize_crop_and_flip():
    """Against the same steps done by hand in PIL: resize to load_size, crop at the offsets
    drawn from the rng, flip when drawn. A wrong offset or flip would differ everywhere."""
    a, b = shape_pair(3, 64)
    ds = PairedDataset([object()], image_size=32, load_size=40, train=True)
    flips = set()
    for seed in range(12):
        x, y = ds.transform(a, b, random.Random(seed))
        assert type(x) is torch.Tensor and x.dtype == torch.float32 and x.shape == y.shape == (3, 32, 32)
        r = random.Random(seed)
        left, top, flip = r.randint(0, 8), r.randint(0, 8), r.random() < 0.5
        flips.add(flip)
        for got, img in ((x, a), (y, b)):
            ref = img.resize((40, 40), Image.Resampling.BICUBIC).crop((left, top, left + 32, top + 32))
            if flip:
                ref = ref.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            assert (got - to_tensor(ref)).abs().mean() < 0.02, (seed, left, top, flip)
    assert flips == {True, False}


def test_corrupt_file_at_load_time_is_skipped(tmp_path):
    write_side_by_side(tmp_path, 2)
    good = tmp_path / "000.png"
    data = good.read_bytes()
    ds = PairedDataset(scan(tmp_path).splits["train"], image_size=32, train=False)
    good.write_bytes(data[: len(data) // 3])  # truncated after the scan
    x, _ = ds[0]  # falls through to the next readable pair
    assert x.shape == (3, 32, 32)


def test_epoch_sampler_resumes_mid_epoch_and_shards():
    s = EpochSampler(10, seed=0)
    s.set_epoch(2)
    full = list(s)
    s.set_epoch(2, start=4)
    assert list(s) == full[4:]
    assert sorted(k % 10 for k in full) == list(range(10))
    assert all(k // 10 == 2 for k in full)
    r0, r1 = EpochSampler(9, rank=0, world=2), EpochSampler(9, rank=1, world=2)
    a, b = list(r0), list(r1)
    assert len(a) == len(b) == 5
    assert set(a) | set(b) == set(range(9))


def test_to_rgb_composites_on_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    img.putpixel((1, 1), (0, 0, 0, 255))
    rgb = to_rgb(img)
    assert rgb.getpixel((0, 0)) == (255, 255, 255) and rgb.getpixel((1, 1)) == (0, 0, 0)


def test_evaluate_on_a_list_takes_exactly_its_names_from_any_split(tmp_path):
    """A fixed validation list (the shipped models' cards) names files wherever they sit: the
    items list and the figures list of one folder are scored apart, not as its whole val/."""
    from pix2pix.training.evaluate import select_pairs

    write_side_by_side(tmp_path / "d" / "train", 6)
    write_side_by_side(tmp_path / "d" / "val", 4, start=10)
    chosen, _ = select_pairs(tmp_path / "d", split="val", val_list=["010.png", "val/012.png", "003"])
    assert sorted(p.a.name for p in chosen.pairs) == ["003.png", "010.png", "012.png"]
    assert "003.png" not in {p.a.name for p in chosen.train_pairs}  # the mean baseline never sees a scored pair
    with pytest.raises(DataError, match="None of the names"):
        select_pairs(tmp_path / "d", val_list=["nothing.png"])
