"""A mixed data folder: sources read each their own way, validated each in turn."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import write_side_by_side
from pix2pix.config import ModelConfig, TrainConfig
from pix2pix.training.data import DataError
from pix2pix.training.dataset import source_pairs
from pix2pix.training.evaluate import evaluate
from pix2pix.training.mix import per_source, scan_data
from pix2pix.training.trainer import Trainer
from test_outline_training import product_photo


def write_mix(root, sources):
    root.mkdir(parents=True, exist_ok=True)
    (root / "mix.json").write_text(json.dumps({"sources": sources}))
    return root


@pytest.fixture
def mix(tmp_path, monkeypatch):
    """Photos whose inputs are outlines (no val/ folder) and drawing | photo pairs stored
    photo-first (BtoA), framed by the drawing's ink, with a val/ folder."""
    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "mix"
    (root / "photos").mkdir(parents=True)
    for i in range(10):
        product_photo(i).save(root / "photos" / f"{i}.jpg", quality=95)
    for split, n, start in (("train", 6, 0), ("val", 2, 50)):
        for path in write_side_by_side(root / "drawn" / split, n, start=start):
            ab = Image.open(path)
            flipped = Image.new("RGB", ab.size)
            flipped.paste(ab.crop((64, 0, 128, 64)), (0, 0))  # photo on the left, drawing on the right
            flipped.paste(ab.crop((0, 0, 64, 64)), (64, 0))
            flipped.save(path)
    return write_mix(root, [
        {"name": "products", "path": "photos", "outlines": True, "class": "shoe", "val_fraction": 0.2},
        {"name": "drawn", "path": "drawn", "direction": "BtoA", "frame": "sketch"},
    ])


def test_each_source_is_scanned_its_own_way_and_validated_in_turn(mix):
    found = scan_data(mix)
    assert found.layout == "mix of 2 sources" and [s.name for s in found.sources] == ["products", "drawn"]
    groups = per_source(found, found.splits["val"])
    assert len(groups["products"]) == 2 and len(groups["drawn"]) == 2  # 20 % of 10 photos; drawn's own val/
    assert [p.source for p in found.splits["val"]] == [0, 1, 0, 1]  # in turn: a capped list still has both
    assert len(per_source(found, found.splits["train"])["products"]) == 8


def test_a_drawn_pair_is_framed_by_its_ink_and_the_photo_alike(mix):
    found = scan_data(mix)
    pair = next(p for p in found.splits["train"] if p.source == 1)
    drawing, photo = source_pairs(found.sources, 64)(pair, None)
    ink = np.asarray(drawing.convert("L")) < 128
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    assert max(np.ptp(rows), np.ptp(cols)) > 0.6 * 64  # the ellipse now fills the frame (it had a third to a half)
    colour = np.asarray(photo)[32, 32]
    assert colour[1] == pytest.approx(90, abs=12) and colour[2] == pytest.approx(170, abs=12)  # the shape's middle


def test_a_run_on_a_mix_trains_and_evaluates_per_source(mix, tmp_path):
    end = Trainer(mix, tmp_path / "run", ModelConfig(ngf=8, ndf=8, image_size=64),
                  TrainConfig(epochs=1, batch_size=2, workers=0)).fit()
    assert end.status == "finished" and end.step == 7  # 8 product photos and 6 drawn pairs, 2 a step
    from pix2pix.inference.infer import Sketch2Image

    model = Sketch2Image.load(tmp_path / "run", device="cpu", precision="fp32")
    assert model.info.input_kind == "sketch"
    drawn = evaluate(model, mix, source="drawn")
    products = evaluate(model, mix, source="products")
    assert drawn["n"] == 2 and products["n"] == 2 and drawn["source"] == "drawn"
    with pytest.raises(DataError, match="no source 'shoes'.*products, drawn"):
        evaluate(model, mix, source="shoes")


@pytest.mark.parametrize("sources, message", [
    ([], "no sources"),
    ([{"path": "photos", "colour": "red"}], "unknown setting"),
    ([{"path": "photos", "outlines": True, "direction": "BtoA"}], "direction must be AtoB"),
    ([{"path": "a"}, {"name": "a", "path": "b"}], "name of its own"),
])
def test_a_bad_mix_file_is_a_clear_error(tmp_path, sources, message):
    with pytest.raises(DataError, match=message):
        scan_data(write_mix(tmp_path / "bad", sources))


def test_a_missing_source_folder_names_it(tmp_path):
    with pytest.raises(DataError, match="nowhere"):
        scan_data(write_mix(tmp_path / "m", [{"path": "nowhere"}]))
