"""precision="auto" is chosen by timing the candidates on the model at hand, once per
machine and model shape, and a training run keeps the number format it started with."""

from __future__ import annotations

import json
import os
import time

import pytest
import torch

from conftest import trained_like_generator
from pix2pix.inference import fastpath
from pix2pix.config import ModelConfig, ModelInfo, TrainConfig
from pix2pix.hardware import Precision
from pix2pix.inference.infer import FAST_PATH_TOLERANCE, Sketch2Image
from pix2pix.inference.mixed import InDtype
from pix2pix.io import load_checkpoint
from pix2pix.training.trainer import Trainer


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PIX2PIX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / fastpath.CACHE_FILE


def never(*_, **__):
    raise AssertionError("measured although the answer was known")


def test_the_faster_candidate_wins_and_is_remembered(cache):
    calls = []

    def run(name, seconds):
        return lambda: calls.append(name) or time.sleep(seconds)

    assert fastpath.fastest({"slow": run("slow", 0.02), "quick": run("quick", 0.002)}, key="k", runs=3) == "quick"
    assert calls.count("slow") == calls.count("quick") == 4  # interleaved, one warm-up each
    assert json.loads(cache.read_text()) == {"k": "quick"}
    assert fastpath.fastest({"slow": never, "quick": never}, key="k") == "quick"  # from the cache


def test_a_candidate_that_fails_is_out_of_the_running(cache):
    def broken():
        raise RuntimeError("no kernel for this type")

    assert fastpath.fastest({"broken": broken, "works": lambda: None}, key="k2", runs=2) == "works"


def test_without_bf16_hardware_fp32_is_chosen_without_measuring(cache, monkeypatch):
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: False)
    assert fastpath.auto_dtype(torch.device("cpu"), "x", never) is None
    assert not cache.exists()


@pytest.mark.parametrize("measured, dtype", [("fp32", None), ("bf16", torch.bfloat16)])
def test_inference_auto_takes_what_was_measured(cache, monkeypatch, measured, dtype):
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    seen = {}

    def fake_fastest(candidates, *, key, **_):
        seen["key"] = key
        for fn in candidates.values():
            fn()  # each candidate really runs this model
        return measured

    monkeypatch.setattr(fastpath, "fastest", fake_fastest)
    cfg = ModelConfig(ngf=8, image_size=64, hint_channels=4)
    model = Sketch2Image(trained_like_generator(cfg), cfg, ModelInfo(), device="cpu")
    assert model.dtype == dtype and model.precision == measured
    assert "infer ngf8" in seen["key"] and "64px" in seen["key"] and "hints4" in seen["key"]
    assert Sketch2Image(trained_like_generator(cfg), cfg, ModelInfo(), device="cpu", precision="fp32").dtype is None


def test_a_resize_decoder_times_its_rewritten_form_too(cache, monkeypatch):
    """Each number format is timed as trained, with its decoder as transposed convs, and with
    its image head as a sub-pixel conv besides; the fastest pair runs, and an explicit
    precision still chooses the form by measuring."""
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    seen = []

    def pick_transposed(candidates, *, key, **_):
        seen.append(sorted(candidates))
        return next(name for name in candidates if name.endswith("transposed"))

    monkeypatch.setattr(fastpath, "fastest", pick_transposed)
    cfg = ModelConfig(ngf=8, image_size=64, upsample="resize")
    model = Sketch2Image(trained_like_generator(cfg), cfg, ModelInfo(), device="cpu")
    assert seen[0] == ["bf16", "bf16 subpixel", "bf16 transposed", "fp32", "fp32 subpixel", "fp32 transposed"]
    assert model.form == "transposed" and not any(isinstance(m, torch.nn.Upsample) for m in model.generator.modules())
    model = Sketch2Image(trained_like_generator(cfg), cfg, ModelInfo(), device="cpu", precision="bf16")
    assert seen[1] == ["bf16", "bf16 subpixel", "bf16 transposed"] and model.dtype is torch.bfloat16
    plain = Sketch2Image(trained_like_generator(cfg), cfg, ModelInfo(), device="cpu", precision="fp32")
    assert len(seen) == 2 and plain.form == ""  # the plain reference is the model as trained


def test_a_training_run_keeps_the_format_it_measured(tiny_data, tmp_path, cache, monkeypatch):
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(fastpath, "fastest", lambda candidates, *, key, **_: "fp32")
    cfg = TrainConfig(steps=2, batch_size=2, workers=0, val_fraction=0.25, precision="auto")
    Trainer(tiny_data, tmp_path / "run", ModelConfig(ngf=8, ndf=8, image_size=32), cfg).fit()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["precision"] == "fp32"
    monkeypatch.setattr(fastpath, "fastest", never)  # a resumed run does not measure again
    assert Trainer.resume(tmp_path / "run", steps=4).fit().step == 4


def test_a_format_that_moves_the_output_is_out_whatever_its_speed(cache, monkeypatch):
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    for moved in (0.05, float("nan")):  # a colour-hint model's bf16 output moved by 0.12 on average
        assert fastpath.auto_dtype(torch.device("cpu"), "y", never, deviation=lambda d, m=moved: m) is None
    assert not cache.exists()  # not even timed
    monkeypatch.setattr(fastpath, "fastest", lambda candidates, **_: "bf16")
    assert fastpath.auto_dtype(torch.device("cpu"), "y", lambda d: None, deviation=lambda d: 0.002) is torch.bfloat16
    monkeypatch.setattr(fastpath, "fast_dtype", lambda device: torch.bfloat16)  # a GPU's answer is checked too
    assert fastpath.auto_dtype(torch.device("cuda"), "y", never, deviation=lambda d: 0.05) is None
    assert fastpath.auto_dtype(torch.device("cuda"), "y", never, deviation=lambda d: 0.001) is torch.bfloat16


def test_where_bf16_moves_the_output_too_far_bf16_in_the_inner_levels_is_tried(cache, monkeypatch):
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    cpu, moved = torch.device("cpu"), {"bf16": 0.031, "bf16-inner": 0.0016}  # the shipped fashion model's
    seen = []
    monkeypatch.setattr(fastpath, "fastest", lambda candidates, **_: seen.append(sorted(candidates)) or "bf16-inner")
    chosen = fastpath.auto_path(cpu, "z", lambda p, form: None, deviation=lambda p: moved[p.name], inner=True)
    assert chosen == (Precision(torch.bfloat16, inner=True), "") and seen == [["bf16-inner", "fp32"]]
    assert fastpath.auto_path(cpu, "z2", never, deviation=lambda p: 0.05, inner=True) == (Precision(), "")
    assert fastpath.auto_dtype(cpu, "z3", never, deviation=lambda d: 0.05) is None  # training: one format throughout


def test_bf16_inner_keeps_the_input_and_the_outer_blocks_in_fp32(cache, monkeypatch):
    """The inner-levels path that auto takes when bf16 throughout moves the output too far:
    the first two encoder blocks, the last decoder block and the head in fp32, the rest bf16,
    and the output as close to fp32 as the bound says."""
    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(fastpath, "fastest", lambda candidates, **_: "bf16-inner")
    real = Sketch2Image._deviation
    monkeypatch.setattr(Sketch2Image, "_known_deviation", lambda self, p: real(self, p) if p.inner else 0.05)
    cfg = ModelConfig(ngf=8, image_size=64, hint_channels=4)
    torch.manual_seed(2)
    g = trained_like_generator(cfg)
    model = Sketch2Image(g, cfg, ModelInfo(), device="cpu")
    assert model.precision == "bf16-inner" and model.dtype is torch.bfloat16
    net = model.generator
    inner = [b for b in [*net.down, *net.up] if isinstance(b, InDtype)]
    assert len(inner) == len(net.down) - 2 + len(net.up) - 1
    assert not isinstance(net.down[1], InDtype) and not isinstance(net.up[-1], InDtype)
    assert all(p.dtype == torch.bfloat16 for b in inner for p in b.parameters())
    assert all(p.dtype == torch.float32 for m in (net.down[0], net.down[1], net.up[-1], net.head) for p in m.parameters())
    x, h = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 4, 64, 64)
    with torch.no_grad():
        ref = g(x, h)
    out = model.run(x, hints=h)
    assert out.dtype == torch.float32 and (out - ref).abs().mean().item() < FAST_PATH_TOLERANCE["bf16-inner"]


def test_a_loaded_model_measures_how_far_bf16_moves_its_output():
    cfg = ModelConfig(ngf=8, image_size=64, hint_channels=4)
    model = Sketch2Image(trained_like_generator(cfg), cfg, ModelInfo(), device="cpu", precision="fp32")
    moved = model._deviation(Precision(torch.bfloat16))
    assert 0 < moved < 0.5  # bf16 rounds: some change, far from none


def test_a_saved_models_bf16_deviation_is_measured_once_per_weights_file(cache, monkeypatch, tmp_path):
    """A cold start skips the two test runs that say how far bf16 moves the output, and the
    timing candidates' copies of the model, once this machine has measured this file."""
    from pix2pix.io import save_pretrained

    monkeypatch.setattr(fastpath, "cpu_has_native_bf16", lambda: True)
    def fp32_measured(candidates, *, key, **_):
        fastpath._write_cache(key, "fp32")  # as the real one remembers its answer
        return "fp32"

    monkeypatch.setattr(fastpath, "fastest", fp32_measured)
    cfg = ModelConfig(ngf=8, image_size=64, hint_channels=4)
    save_pretrained(trained_like_generator(cfg), cfg, ModelInfo(), tmp_path / "m")
    measured = []
    real = Sketch2Image._deviation
    monkeypatch.setattr(Sketch2Image, "_deviation", lambda self, dtype: measured.append(1) or real(self, dtype))
    assert Sketch2Image.load(tmp_path / "m", device="cpu").precision == "fp32" and len(measured) == 1
    monkeypatch.setattr(fastpath, "fastest", never)  # the timing is remembered too: no candidates made
    assert Sketch2Image.load(tmp_path / "m", device="cpu").precision == "fp32" and len(measured) == 1
    weights = tmp_path / "m" / "model.safetensors"
    st = weights.stat()
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # new weights: measured again
    Sketch2Image.load(tmp_path / "m", device="cpu")
    assert len(measured) == 2
