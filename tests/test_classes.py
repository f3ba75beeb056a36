"""The class channel: a model told what a drawing shows (shoe, bag, ...) need not guess it.

The toy set draws the same kind of outline for two classes whose photos differ only in
colour, so only the class can say which colour is right: a model that learns to read its
class layers paints each class its own colour, and untold it must still give a picture.
"""

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from pix2pix.cli import main
from pix2pix.config import ConfigError, ModelConfig, TrainConfig
from pix2pix.inference.infer import Sketch2Image
from pix2pix.models import build_generator, extra_layers, widened
from pix2pix.training.mix import scan_data
from pix2pix.training.state import TrainingError
from pix2pix.training.trainer import Trainer

SIZE = 32
CLASS_COLOUR = {"warm": (220, 40, 30), "cool": (30, 60, 220)}


def toy_pair(seed: int, cls: str) -> tuple[Image.Image, Image.Image]:
    r = random.Random(seed)
    box = (r.randint(3, 10), r.randint(3, 10), r.randint(21, 28), r.randint(21, 28))
    photo, outline = Image.new("RGB", (SIZE, SIZE), "white"), Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(photo).ellipse(box, fill=CLASS_COLOUR[cls])
    ImageDraw.Draw(outline).ellipse(box, outline=(0, 0, 0), width=1)
    return outline, photo


def write_toy(root, n: int = 48):
    for side in ("A", "B"):
        (root / side).mkdir(parents=True)
    rows = ["name,class"]
    for i in range(n):
        cls = "warm" if i % 2 else "cool"
        a, b = toy_pair(i, cls)
        a.save(root / "A" / f"{i}.png")
        b.save(root / "B" / f"{i}.png")
        rows.append(f"{i},{cls}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_class_names_are_checked():
    assert ModelConfig(classes=["Shoe", " bag"]).classes == ["shoe", "bag"]
    assert TrainConfig(classes="shoe, bag,,figure").classes == "shoe,bag,figure"
    with pytest.raises(ConfigError, match="distinct"):
        ModelConfig(classes=["shoe", "shoe"])
    with pytest.raises(ConfigError, match="distinct words"):
        TrainConfig(classes="shoe,flat garment")


def test_a_widened_model_starts_as_the_model_it_came_from():
    torch.manual_seed(0)
    g = build_generator(ModelConfig(ngf=8, ndf=8, image_size=SIZE, hint_channels=4)).eval()
    x = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    wide = widened(g, classes=["shoe", "bag"]).eval()
    assert wide.cfg.extra_channels == 6
    told = extra_layers(wide.cfg, SIZE, 2, None, ["shoe", "bag"])
    assert torch.equal(told[:, 4:, 0, 0], torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    with torch.no_grad():
        assert torch.allclose(wide(x, told), g(x), atol=1e-6)
        wide.down[0][0].weight[:, 4:] += 0.5  # once trained, the class moves the picture
        assert not torch.allclose(wide(x, told), g(x), atol=1e-3)
        # a third class keeps the two it had; dropping one is refused
        wider = widened(wide, classes=["shoe", "bag", "figure"]).eval()
        assert torch.allclose(wider(x, extra_layers(wider.cfg, SIZE, 2, None, ["shoe", "bag"])), wide(x, told))
    with pytest.raises(ValueError, match="cannot become"):
        widened(wide, classes=["shoe"])


def test_labels_come_from_a_sources_class_and_labels_csv(tmp_path):
    for name in ("shop", "drawn"):
        for side in ("A", "B"):
            (tmp_path / name / side).mkdir(parents=True)
        for i in range(4):
            for side in ("A", "B"):
                Image.new("RGB", (SIZE, SIZE), "white").save(tmp_path / name / side / f"{name}{i}.png")
    (tmp_path / "shop" / "labels.csv").write_text("name,class\nshop1,Bag\nshop2.png,figure\n")
    (tmp_path / "mix.json").write_text(json.dumps({"sources": [
        {"name": "shop", "path": "shop", "class": "Shoe", "val_fraction": 0},
        {"name": "drawn", "path": "drawn", "val_fraction": 0}]}))
    labels = {p.name: p.label for p in scan_data(tmp_path).splits["train"]}
    assert labels == {"shop0": "shoe", "shop1": "bag", "shop2": "figure", "shop3": "shoe",
                      **{f"drawn{i}": "" for i in range(4)}}
    (tmp_path / "shop" / "labels.csv").write_text("sku;price\nshop1;12\n")  # some other table: not labels
    assert {p.label for p in scan_data(tmp_path).splits["train"] if p.name.startswith("shop")} == {"shoe"}


def test_a_class_nobody_is_labelled_with_is_refused(tmp_path):
    data = write_toy(tmp_path / "data", n=8)
    cfg = TrainConfig(steps=1, batch_size=2, workers=0, classes="warm,shoe", val_fraction=0.25)
    with pytest.raises(TrainingError, match="No training pair is labelled shoe.*labels.csv"):
        Trainer(data, tmp_path / "run", ModelConfig(ngf=8, ndf=8, image_size=SIZE), cfg).fit()


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("classes")
    data = write_toy(root / "data")
    cfg = TrainConfig(steps=300, batch_size=8, workers=0, classes="warm,cool", precision="fp32", val_fraction=0.1,
                      sample_every=1000, save_every=1000, lr=5e-4)
    Trainer(data, root / "run", ModelConfig(ngf=8, ndf=8, image_size=SIZE, upsample="resize"), cfg).fit()
    return root


def _inside_colour(model: Sketch2Image, seed: int, what: str | None) -> np.ndarray:
    outline, photo = toy_pair(seed, "warm")
    inside = np.asarray(photo)[..., 2] < 100  # where the warm photo is painted
    out = np.asarray(model.generate(model.prepare(outline, raw=True, what=what))).astype(float)
    return out[inside].mean(axis=0)


@pytest.mark.slow  # trains a small model for about half a minute
def test_a_class_model_paints_each_class_its_own_colour(toy_run):
    model = Sketch2Image.load(toy_run / "run", device="cpu", precision="fp32")
    assert model.classes == ["warm", "cool"]
    for seed in range(200, 206):  # drawings it has not seen
        warm, cool = _inside_colour(model, seed, "warm"), _inside_colour(model, seed, "cool")
        assert warm[0] - warm[2] > 60, warm  # red over blue
        assert cool[2] - cool[0] > 60, cool
        untold = _inside_colour(model, seed, None)
        assert np.abs(untold - 255).max() > 40, untold  # not told, it still paints the shape


@pytest.mark.slow
def test_generate_and_evaluate_tell_a_class(toy_run, tmp_path, capsys):
    outline, _ = toy_pair(300, "cool")
    outline.save(tmp_path / "drawing.png")
    assert main(["generate", str(tmp_path / "drawing.png"), "--model", str(toy_run / "run"), "--raw",
                 "--output", str(tmp_path / "cool.png"), "--what", "cool", "--precision", "fp32"]) == 0
    r, _, b = np.asarray(Image.open(tmp_path / "cool.png").convert("RGB"))[12:20, 12:20].reshape(-1, 3).mean(0)
    assert b - r > 60
    assert main(["generate", str(tmp_path / "drawing.png"), "--model", str(toy_run / "run"),
                 "--output", str(tmp_path / "x.png"), "--what", "shoe"]) == 2
    assert "knows warm, cool" in capsys.readouterr().err
    told, untold = (json.loads(_evaluate(toy_run, capsys, *extra)) for extra in ([], ["--untold"]))
    assert told["classes"] == "told" and untold["classes"] == "untold"
    assert told["l1"] < untold["l1"]


def _evaluate(toy_run, capsys, *extra) -> str:
    capsys.readouterr()
    assert main(["evaluate", str(toy_run / "data"), "--model", str(toy_run / "run"), "--split", "all",
                 "--precision", "fp32", *extra]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]
