"""The training recipe's options (moving average of G, feature matching, colour hints in
training) and colour hints end to end: trained from the command line, painted at inference."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from appkit import train_hint_model
from conftest import ROOT, cli_env
from pix2pix.training import hints
from pix2pix.cli import main
from pix2pix.config import RECIPES, ConfigError, ModelConfig, ModelInfo, TrainConfig
from pix2pix.training.data import scan
from pix2pix.training.dataset import PairedDataset
from pix2pix.inference.infer import Sketch2Image
from pix2pix.io import load_checkpoint, load_pretrained
from pix2pix.training.objective import EMA_WARMUP, Pix2Pix
from pix2pix.training.trainer import Trainer

TINY = ModelConfig(ngf=8, ndf=8, image_size=32)


def batch(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(n, 3, size, size, generator=g) * 2 - 1


def test_recipe_settings_are_checked():
    with pytest.raises(ConfigError, match="ema"):
        TrainConfig(ema=1.0)
    with pytest.raises(ConfigError, match="feature matching"):
        TrainConfig(feature_matching=-1.0)
    assert RECIPES["paper"] == {"upsample": "transpose", "ema": 0.0, "feature_matching": 0.0}


def test_the_moving_average_follows_g_and_is_what_is_judged():
    torch.manual_seed(0)
    model = Pix2Pix(TINY, TrainConfig(ema=0.5), torch.device("cpu"))
    before = [p.detach().clone() for p in model.G_ema.parameters()]
    model.step(*batch())
    decay = min(0.5, 2 / (EMA_WARMUP + 1))  # after step 1
    for avg, old, new in zip(model.G_ema.parameters(), before, model.G.parameters()):
        assert torch.allclose(avg, old * decay + new.detach() * (1 - decay), atol=1e-6)
    assert model.G_eval is model.G_ema
    assert all(not p.requires_grad for p in model.G_ema.parameters())
    plain = Pix2Pix(TINY, TrainConfig(), torch.device("cpu"))
    assert plain.G_ema is None and plain.G_eval is plain.G and "G_ema" not in plain.state_dict()


def test_feature_matching_adds_its_loss_only_when_asked():
    torch.manual_seed(0)
    with_fm = Pix2Pix(TINY, TrainConfig(feature_matching=10.0), torch.device("cpu")).step(*batch())
    assert set(with_fm) == {"G_GAN", "G_L1", "D_real", "D_fake", "G_FM"} and with_fm["G_FM"] > 0
    assert "G_FM" not in Pix2Pix(TINY, TrainConfig(), torch.device("cpu")).step(*batch())


def test_training_pairs_carry_hints_drawn_from_the_jittered_target(tiny_data):
    pairs = [p for split in scan(tiny_data).splits.values() for p in split]
    ds = PairedDataset(pairs, image_size=32, hints=hints.HintSampling(p_none=0.0, p_broad=0.0), seed=3)  # dabs: on the object
    a, b, h = ds[5]
    assert h.shape == (4, 32, 32) and h[3].sum() > 0
    painted = h[3] > 0
    # every hint colour is the (blurred) target's colour near where it is painted: the hints
    # went through the same crop and flip as the target
    assert (h[:3, painted] - b[:, painted]).abs().mean() < 0.2
    assert all(torch.equal(x, y) for x, y in zip(ds[5], (a, b, h)))  # a function of (seed, key)
    assert len(PairedDataset(pairs, image_size=32)[5]) == 2


def test_a_hint_inside_an_off_centre_drawing_stays_inside_it():
    cfg = ModelConfig(ngf=8, image_size=64, hint_channels=4)
    torch.manual_seed(0)
    from pix2pix.models import build_generator

    model = Sketch2Image(build_generator(cfg), cfg, ModelInfo(input_kind="sketch"), device="cpu")
    drawing = Image.new("RGB", (600, 400), "white")
    ImageDraw.Draw(drawing).ellipse((380, 220, 560, 380), outline="black", width=6)  # bottom right
    layer = Image.new("RGBA", drawing.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).rectangle((455, 285, 485, 315), fill=(255, 0, 0, 255))  # the ellipse's middle
    prepared = model.prepare(drawing, layer)
    assert prepared.hints.size == (64, 64)
    ink = np.argwhere(np.asarray(prepared.image.convert("L")) < 128)
    paint = np.argwhere(np.asarray(prepared.hints)[..., 3] > 0)
    assert len(paint) > 0
    centre_ink, centre_paint = (ink.min(0) + ink.max(0)) / 2, paint.mean(0)
    assert np.abs(centre_ink - centre_paint).max() <= 2  # still in the middle of the drawn shape
    assert (paint.min(0) > ink.min(0)).all() and (paint.max(0) < ink.max(0)).all()
    with pytest.raises(Exception, match="colour hints are 10x10"):
        model.prepare(drawing, Image.new("RGBA", (10, 10)))


def test_train_from_the_command_line_with_a_recipe(tiny_data, tmp_path):
    """--recipe fills in its settings; flags given explicitly win; the run records them."""
    run = tmp_path / "run"
    assert main(["-q", "train", str(tiny_data), "--out", str(run), "--recipe", "clean", "--ema", "0.9",
                 "--steps", "2", "--ngf", "8", "--ndf", "8", "--size", "32", "--batch-size", "2",
                 "--workers", "0", "--val-fraction", "0.25"]) == 0
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert state["train_config"]["ema"] == 0.9 and state["train_config"]["feature_matching"] == 0.0
    assert state["model_config"]["upsample"] == "resize" and "G_ema" in state
    _, cfg, _ = load_pretrained(run / "model")
    assert cfg.upsample == "resize" and cfg.hint_channels == 0
    assert "loss_G_FM" not in json.loads((run / "log.jsonl").read_text().splitlines()[-1])


def test_recipe_v2_trains_with_diffaugment_and_a_spectrally_normalized_d(tiny_data, tmp_path):
    run = tmp_path / "v2"
    assert main(["-q", "train", str(tiny_data), "--out", str(run), "--recipe", "v2", "--steps", "2", "--ngf", "8",
                 "--ndf", "8", "--size", "32", "--batch-size", "2", "--workers", "0", "--val-fraction", "0.25"]) == 0
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    cfg = state["train_config"]
    assert cfg["spectral_norm"] is True and cfg["diffaugment"] == "color,translation,cutout" and cfg["ema"] == 0.999
    assert state["model_config"]["upsample"] == "resize"
    assert any("parametrizations.weight" in k for k in state["D"])  # D's convolutions are spectrally normalized


def test_hints_from_init_start_as_the_init_model(tiny_data, tmp_path):
    Trainer(tiny_data, tmp_path / "base", TINY, TrainConfig(steps=3, batch_size=2, workers=0, val_fraction=0.25)).fit()
    Trainer(tiny_data, tmp_path / "ft", TINY, TrainConfig(steps=1, batch_size=2, workers=0, val_fraction=0.25,
                                                          hints=True, lr=1e-12), init=tmp_path / "base").fit()
    base, _, _ = load_pretrained(tmp_path / "base")
    ft, cfg, _ = load_pretrained(tmp_path / "ft")
    assert cfg.hint_channels == 4
    w_base, w_ft = base.state_dict()["down.0.0.weight"], ft.state_dict()["down.0.0.weight"]
    assert w_ft.shape[1] == 7 and torch.allclose(w_ft[:, :3], w_base, atol=1e-6)
    assert w_ft[:, 3:].abs().max() < 1e-6  # the hint weights start at zero


@pytest.mark.slow
def test_train_hints_then_generate_with_hints_follows_the_colour(tmp_path):
    """`train --hints` for a few CPU steps, then `generate --hints`: a red hint makes the
    painted region redder than no hint does, a blue one bluer."""
    # the data of appkit.train_hint_model, trained here from the command line
    train_hint_model(tmp_path / "made", steps=1)
    data = tmp_path / "made" / "two-colours"
    run = tmp_path / "run"
    cli = [sys.executable, "-m", "pix2pix", "-q"]
    subprocess.run([*cli, "train", str(data), "--out", str(run), "--hints", "--input-kind", "image",
                    "--steps", "200", "--batch-size", "4", "--lr", "1e-3", "--decay-from", "1", "--ngf", "16",
                    "--precision", "fp32", "--ndf", "16", "--size", "64", "--workers", "0", "--val-fraction", "0.2",
                    "--bn-images", "16"],
                   cwd=ROOT, env=cli_env(), check=True, capture_output=True)
    sketch = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(sketch).ellipse((12, 12, 52, 52), outline="black", width=2)
    sketch.save(tmp_path / "sketch.png")
    red_minus_blue = {}
    for name, colour in (("none", None), ("red", (255, 0, 0, 255)), ("blue", (0, 0, 255, 255))):
        extra = []
        if colour:
            layer = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
            ImageDraw.Draw(layer).rectangle((26, 26, 38, 38), fill=colour)
            layer.save(tmp_path / f"{name}.png")
            extra = ["--hints", str(tmp_path / f"{name}.png")]
        out = tmp_path / f"out_{name}.png"
        subprocess.run([*cli, "generate", str(tmp_path / "sketch.png"), "--model", str(run / "model"),
                        "--output", str(out), *extra], cwd=ROOT, env=cli_env(), check=True, capture_output=True)
        region = np.asarray(Image.open(out).convert("RGB").resize((64, 64)), float)[20:44, 20:44]
        red_minus_blue[name] = float((region[..., 0] - region[..., 2]).mean())
    assert red_minus_blue["red"] > red_minus_blue["none"] + 30, red_minus_blue
    assert red_minus_blue["blue"] < red_minus_blue["none"] - 30, red_minus_blue
    # and on the validation pairs, hints sampled from the targets bring the outputs closer to them
    scores = {}
    for n in (0, 8):
        done = subprocess.run([*cli, "evaluate", str(data), "--model", str(run / "model"), "--split", "all",
                               "--hints", str(n)], cwd=ROOT, env=cli_env(), check=True, capture_output=True, text=True)
        scores[n] = json.loads(done.stdout)
    assert scores[8]["hints"] == 8 and scores[8]["l1"] < scores[0]["l1"], scores


def test_evaluate_with_sampled_hints_is_reproducible(tiny_data, tmp_path):
    from pix2pix.training.evaluate import evaluate

    Trainer(tiny_data, tmp_path / "run", TINY, TrainConfig(steps=2, batch_size=2, workers=0, val_fraction=0.25,
                                                           hints=True)).fit()
    model = Sketch2Image.load(tmp_path / "run" / "model", device="cpu")
    runs = [evaluate(model, tiny_data, split="all", hints=n, hint_seed=s, grid=tmp_path / f"g{n}{s}.png")
            for n, s in ((0, 0), (6, 1), (6, 1), (6, 2))]
    assert runs[1] == runs[2] and runs[1]["hint_seed"] == 1
    assert runs[0]["l1"] != runs[1]["l1"] and runs[1]["l1"] != runs[3]["l1"]
    assert Image.open(tmp_path / "g00.png").tobytes() != Image.open(tmp_path / "g61.png").tobytes()  # hints drawn in
