"""The GPU stage, run end to end on the CPU at a tiny size: pack, train, write what resuming
needs in small fp16 files, resume from them, export a model, continue on the CPU trainer."""

import json
import logging
import random

import pytest
import torch
from PIL import Image, ImageDraw
from safetensors.torch import load_file

from pix2pix.config import ModelConfig, TrainConfig
from pix2pix.images.outline_store import OutlineStore
from pix2pix.inference.infer import Sketch2Image
from pix2pix.io import load_discriminator
from pix2pix.models import build_discriminator
from pix2pix.training import gpu_augment
from pix2pix.training.gpu_stage import StageConfig, export, run_stage
from pix2pix.training.mix import scan_data
from pix2pix.training.packed import DRAWING, PARTS, decode, pack
from pix2pix.training.trainer import Trainer
from test_mix import write_mix

pytestmark = pytest.mark.slow  # trains three tiny stages
SIZE = 64
TINY = ModelConfig(ngf=8, ndf=8, image_size=SIZE, upsample="resize", hint_channels=4)


def photo(seed: int) -> Image.Image:
    r = random.Random(seed)
    img = Image.new("RGB", (96, 96), "white")
    box = (r.randint(8, 30), r.randint(8, 30), r.randint(60, 88), r.randint(60, 88))
    ImageDraw.Draw(img).rectangle(box, fill=(r.randint(30, 220), 80, 160))
    ImageDraw.Draw(img).line((box[0], (box[1] + box[3]) // 2, box[2], (box[1] + box[3]) // 2), fill=(20, 20, 20), width=3)
    return img


@pytest.fixture
def chunks(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "mix"
    (root / "photos").mkdir(parents=True)
    for i in range(12):
        photo(i).save(root / "photos" / f"{i}.jpg", quality=95)
    (root / "drawn" / "A").mkdir(parents=True)
    (root / "drawn" / "B").mkdir(parents=True)
    for i in range(4):
        drawing = Image.new("RGB", (96, 96), "white")
        ImageDraw.Draw(drawing).ellipse((20, 20, 70, 80), outline="black", width=3)
        drawing.save(root / "drawn" / "A" / f"{i}.png")
        photo(100 + i).save(root / "drawn" / "B" / f"{i}.jpg")
    write_mix(root, [{"name": "photos", "path": "photos", "outlines": True, "val_fraction": 0.0},
                     {"name": "drawn", "path": "drawn", "frame": "sketch", "val_fraction": 0.0}])
    found = scan_data(root)
    return pack(found, found.splits["train"], tmp_path / "chunks", store=OutlineStore(), chunk_bytes=20_000, size=SIZE)


def test_packed_chunks_hold_every_pair_and_stay_under_their_size(chunks):
    assert len(chunks) >= 2 and all(f.stat().st_size < 40_000 for f in chunks)
    data = decode(chunks)
    assert data.photos.shape == (16, 3, SIZE, SIZE) and data.photos.dtype == torch.uint8
    assert data.kind.tolist().count(PARTS) == 12 and data.kind.tolist().count(DRAWING) == 4
    assert data.sources == ["photos", "drawn"] and sorted(set(data.origin.tolist())) == [0, 1]
    parts = data.inputs[data.kind == PARTS]
    assert set(parts[:, 0].unique().tolist()) == {0, 255} and parts[:, 1].max() >= 1  # silhouettes and line ids


def test_a_batch_is_drawn_on_the_device_like_the_cpu_loader_draws_it(chunks):
    data = decode(chunks)
    g = torch.Generator().manual_seed(0)
    drawing, target, hints = gpu_augment.training_batch(data.photos, data.inputs, data.kind, g)
    assert drawing.shape == target.shape == (16, 3, SIZE, SIZE) and hints.shape == (16, 4, SIZE, SIZE)
    ink = (drawing[:, 0] < 0).float().flatten(1).mean(1)
    assert (ink > 0.01).all() and (ink < 0.4).all()  # every input is a line drawing, none a filled blob
    painted = hints[:, 3].flatten(1).sum(1) > 0
    assert 0 < painted.sum() < 16  # some pairs without hints, most with
    again = gpu_augment.training_batch(data.photos, data.inputs, data.kind, torch.Generator().manual_seed(0))
    assert torch.equal(again[0], drawing) and torch.equal(again[2], hints)  # one generator: reproducible


def test_a_stage_writes_small_fp16_files_resumes_from_them_and_exports_a_model(chunks, tmp_path, caplog):
    cfg = StageConfig(chunks=chunks, out=tmp_path / "stage", steps=4, batch=4, model=TINY, device="cpu",
                      precision="fp32", split_mb=0.25)
    state = run_stage(cfg)
    out = tmp_path / "stage"
    assert state["step"] == 4 and state["images"] == 16 and 0 < state["busy"] <= 1
    files = sorted(p.name for p in out.iterdir())
    assert "stage.json" in files and sum(f.startswith("G-") for f in files) >= 2  # split under the limit
    assert all((out / f).stat().st_size < 0.25 * (1 << 20) for f in files if f.endswith(".safetensors"))
    assert {v.dtype for f in out.glob("G_ema-*.safetensors") for k, v in load_file(str(f)).items()
            if "running_" not in k and v.is_floating_point()} == {torch.float16}
    again = run_stage(StageConfig(chunks=chunks, out=tmp_path / "stage2", steps=7, resume=out, model=TINY,
                                  device="cpu", precision="fp32"))
    assert again["step"] == 7 and again["images"] == 28 and again["batch"] == 4  # counters and batch carried on
    assert json.loads((tmp_path / "stage2" / "stage.json").read_text())["images"] == 28
    model_dir = export(tmp_path / "stage2", tmp_path / "model")
    assert Sketch2Image.load(model_dir, device="cpu").takes_hints
    d = build_discriminator(TINY)
    assert load_discriminator(model_dir, d)  # the stage's D comes along
    stage_d = {k: v for f in (tmp_path / "stage2").glob("D-*.safetensors") for k, v in load_file(str(f)).items()}
    assert all(torch.equal(d.state_dict()[k].half(), v.half()) for k, v in stage_d.items() if v.is_floating_point())
    with caplog.at_level(logging.INFO, logger="pix2pix.training.speed"):
        end = Trainer(tmp_path / "mix", tmp_path / "cpu", TINY, TrainConfig(epochs=1, batch_size=4, hints=True,
                                                                             workers=0), init=model_dir).fit()
    assert end.status == "finished" and "starting the discriminator from" in caplog.text
    assert not load_discriminator("fashion", build_discriminator(TINY))  # a model without one: D starts fresh
