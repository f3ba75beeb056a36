import numpy as np
from PIL import Image

from pix2pix.config import LabelClass
from pix2pix.images.palette import label_ids, snap_to_palette

PALETTE = [LabelClass(1, "background", (0, 0, 170)), LabelClass(2, "facade", (0, 0, 255)),
           LabelClass(3, "window", (0, 85, 255)), LabelClass(7, "balcony", (170, 255, 85))]


def test_slightly_off_colours_snap_to_their_labels():
    rng = np.random.default_rng(0)
    ids = rng.choice([0, 1, 2, 3], size=(40, 60))
    colours = np.array([c.color for c in PALETTE])
    noisy = np.clip(colours[ids] + rng.integers(-20, 21, size=(40, 60, 3)), 0, 255).astype(np.uint8)
    snapped = np.asarray(snap_to_palette(Image.fromarray(noisy), PALETTE))
    assert np.array_equal(snapped, colours[ids])
    assert np.array_equal(label_ids(Image.fromarray(noisy), PALETTE), np.array([1, 2, 3, 7])[ids])


def test_jpeg_compressed_label_map_is_recovered(tmp_path):
    img = Image.new("RGB", (64, 64), PALETTE[1].color)
    img.paste(PALETTE[2].color, (10, 10, 30, 40))
    img.paste(PALETTE[3].color, (40, 5, 60, 20))
    img.save(tmp_path / "x.jpg", quality=70)
    back = snap_to_palette(Image.open(tmp_path / "x.jpg"), PALETTE)
    assert {c for _, c in back.getcolors()} <= {c.color for c in PALETTE}
    agree = np.mean(np.asarray(back) == np.asarray(img))
    assert agree > 0.97  # only pixels right at the edges may flip
