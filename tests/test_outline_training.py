"""The photos-only training path: outlines drawn from product photos on the fly."""

import json
import random

from PIL import Image, ImageDraw

from pix2pix.config import ModelConfig, TrainConfig
from pix2pix.images.outline_store import OutlineStore
from pix2pix.io import load_pretrained
from pix2pix.training.trainer import Trainer


def product_photo(seed: int, size: int = 96) -> Image.Image:
    """A coloured 'product' (a shoe-like blob with a sole stripe) on a white background."""
    r = random.Random(seed)
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    colour = (r.randint(20, 200), r.randint(20, 200), r.randint(20, 200))
    x0, y0 = r.randint(8, 20), r.randint(25, 40)
    d.polygon([(x0, y0 + 30), (x0 + 10, y0), (x0 + 40, y0 + 5), (x0 + 70, y0 + 25), (x0 + 70, y0 + 35), (x0, y0 + 35)], fill=colour)
    d.rectangle((x0, y0 + 30, x0 + 70, y0 + 36), fill=(30, 30, 30))
    return img


def test_train_on_photos_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(6):
        product_photo(i).save(data / f"{i}.jpg", quality=95)
    (data / "broken.jpg").write_bytes(b"not a photo")
    run = tmp_path / "run"
    cfg = TrainConfig(epochs=1, batch_size=2, workers=0, outlines=True, val_fraction=0.2)
    end = Trainer(data, run, ModelConfig(ngf=8, ndf=8, image_size=64), cfg).fit()
    assert end.status == "finished" and end.step == 2  # 6 photos, 2 held out, batch 2
    scan = json.loads((run / "run.json").read_text())["scan"]
    assert scan["layout"] == "photos" and any("broken.jpg" in s["file"] for s in scan["skipped"])
    assert len(OutlineStore(tmp_path / "cache" / "outlines")) == 6  # each photo's extraction kept once
    _, _, info = load_pretrained(run)
    assert info.input_kind == "sketch"
    # the sample grid shows a drawn outline (mostly white, some black ink) as the input
    grid = Image.open(run / "samples" / "epoch_0001.png").convert("L")
    outline = grid.crop((0, 0, 64, 64))
    hist = outline.histogram()
    assert sum(hist[:64]) > 20 and sum(hist[200:]) > 0.6 * 64 * 64


def test_a_second_run_on_the_same_photos_extracts_nothing(tmp_path, monkeypatch):
    """The store is keyed by the photo's content: a later run, or a copy of the folder, reuses
    every extraction; only the roughening is made per sample."""
    from pix2pix.images import pairs

    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(4):
        product_photo(i).save(data / f"{i}.jpg", quality=95)
    cfg = TrainConfig(epochs=1, batch_size=2, workers=0, outlines=True, val_fraction=0.25)
    Trainer(data, tmp_path / "first", ModelConfig(ngf=8, ndf=8, image_size=64), cfg).fit()
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in data.iterdir():
        (copy / f"renamed-{f.name}").write_bytes(f.read_bytes())

    def no_extraction(_):
        raise AssertionError("extracted again")

    monkeypatch.setattr(pairs, "extract_parts", no_extraction)
    end = Trainer(copy, tmp_path / "second", ModelConfig(ngf=8, ndf=8, image_size=64), cfg).fit()
    assert end.status == "finished" and end.step == 2
