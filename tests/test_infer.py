import threading

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from conftest import trained_like_generator
from pix2pix.inference import infer
from pix2pix.config import LabelClass, ModelConfig, ModelInfo
from pix2pix.hardware import cpu_has_native_bf16, fast_dtype
from pix2pix.inference.infer import FAST_PATH_TOLERANCE, Sketch2Image, get_model
from pix2pix.inference.rewrite import fold_batchnorm, resize_as_transposed
from pix2pix.io import save_pretrained

CFG = ModelConfig(ngf=8, image_size=64)


def trained_like():
    torch.manual_seed(0)
    return trained_like_generator(CFG)


@pytest.fixture
def saved_model(tmp_path):
    save_pretrained(trained_like(), CFG, ModelInfo(name="t"), tmp_path / "m")
    return tmp_path / "m"


def test_folded_batchnorm_is_exact():
    g = trained_like()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        diff = (fold_batchnorm(g)(x) - g(x)).abs().max().item()
    assert diff < 1e-4


def test_resize_decoder_as_transposed_convs_is_exact():
    """The checkerboard-free decoder (resize, 3x3 conv) runs as 4x4 transposed convs: every
    pair is rewritten, for any input size, and the output is the same up to rounding."""
    cfg = ModelConfig(ngf=8, image_size=64, upsample="resize", hint_channels=4)
    torch.manual_seed(1)
    g = trained_like_generator(cfg)
    fast = resize_as_transposed(fold_batchnorm(g))
    kinds = [type(m).__name__ for m in fast.modules()]
    assert "Upsample" not in kinds and kinds.count("ConvTranspose2d") == cfg.num_downs
    for size in (64, 128):
        x, h = torch.rand(2, 3, size, size) * 2 - 1, torch.rand(2, 4, size, size)
        with torch.no_grad():
            assert (fast(x, h) - g(x, h)).abs().max().item() < 1e-4
    plain = trained_like()  # transposed convs already: nothing to rewrite, the same object back
    assert resize_as_transposed(plain) is plain


def test_the_image_head_as_a_subpixel_conv_is_exact():
    """With ``subpixel_up_to`` 4 the head (a 3x3 conv to RGB after the resize) becomes a 3x3
    conv to its 12 phase channels and a pixel shuffle; the rest stay transposed convs; the
    output is the same up to rounding."""
    cfg = ModelConfig(ngf=8, image_size=64, upsample="resize", hint_channels=4)
    torch.manual_seed(2)
    g = trained_like_generator(cfg)
    fast = resize_as_transposed(fold_batchnorm(g), subpixel_up_to=4)
    kinds = [type(m).__name__ for m in fast.modules()]
    assert "Upsample" not in kinds and kinds.count("ConvTranspose2d") == cfg.num_downs - 1
    assert kinds.count("PixelShuffle") == 1 and fast.head[1][0].out_channels == 12
    for size in (64, 128):
        x, h = torch.rand(2, 3, size, size) * 2 - 1, torch.rand(2, 4, size, size)
        with torch.no_grad():
            assert (fast(x, h) - g(x, h)).abs().max().item() < 1e-4


@pytest.mark.parametrize("precision", ["auto", "bf16"])
def test_fast_path_matches_plain_fp32(precision):
    """The fused, channels-last path this machine picks, and the bf16 path CPUs with native
    bf16 pick, stay within the stated tolerance of the plain fp32 eval-mode generator."""
    g = trained_like()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ref = g(x)
    fast = Sketch2Image(g, CFG, ModelInfo(), device="cpu", precision=precision)
    out = fast.run(x)
    assert fast.fused
    assert (out - ref).abs().mean().item() < FAST_PATH_TOLERANCE[fast.precision]
    # the plain path is what it claims to be
    plain = Sketch2Image(g, CFG, ModelInfo(), device="cpu", precision="fp32")
    assert not plain.fused and torch.allclose(plain.run(x), ref, atol=1e-5)


def test_automatic_precision_never_picks_emulated_bf16():
    dtype = fast_dtype(torch.device("cpu"))
    assert dtype == (torch.bfloat16 if cpu_has_native_bf16() else None)


def test_any_size_and_mode_in_model_size_out(saved_model):
    model = Sketch2Image.load(saved_model, device="cpu")
    for img in (Image.new("RGBA", (300, 120), (0, 0, 0, 0)), Image.new("L", (17, 999), 30), Image.new("P", (64, 64))):
        out = model(img)
        assert out.mode == "RGB" and out.size == (64, 64)


def test_deterministic_by_default_and_seeded_variations(saved_model):
    model = Sketch2Image.load(saved_model, device="cpu")
    sketch = Image.new("RGB", (64, 64), "white")
    sketch.paste((0, 0, 0), (10, 10, 50, 14))
    a, b = np.asarray(model(sketch)), np.asarray(model(sketch))
    assert np.array_equal(a, b)
    s1, s1b, s2 = (np.asarray(model(sketch, seed=s)) for s in (1, 1, 2))
    assert np.array_equal(s1, s1b)
    assert not np.array_equal(s1, s2) and not np.array_equal(s1, a)
    assert np.array_equal(np.asarray(model(sketch)), a)  # noise switched off again


def test_a_run_nobody_waits_for_stops_between_blocks_and_the_model_goes_on(saved_model):
    from pix2pix.errors import Superseded

    model = Sketch2Image.load(saved_model, device="cpu")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    asked = []

    def stop_after(n):
        return lambda: asked.append(1) or len(asked) > n

    with pytest.raises(Superseded):
        model.run(x, stop=stop_after(3))
    assert len(asked) == 4  # asked block by block, stopped at the first True
    asked.clear()
    assert torch.equal(model.run(x, stop=lambda: False), model.run(x))  # asked, never stopped: the same image
    assert model._stop is None and not model._lock.locked()


def test_cache_returns_one_instance_and_reloads_changed_weights(saved_model):
    infer.clear_cache()
    m1 = get_model(saved_model, device="cpu")
    assert get_model(saved_model / "model.safetensors", device="cpu") is m1
    import os
    import time

    st = (saved_model / "model.safetensors").stat()
    os.utime(saved_model / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    time.sleep(0.01)
    assert get_model(saved_model, device="cpu") is not m1


def test_concurrent_calls_are_safe(saved_model):
    model = Sketch2Image.load(saved_model, device="cpu")
    sketch = Image.new("RGB", (64, 64), "white")
    expected = np.asarray(model(sketch))
    results, errors = [], []

    def work(seed):
        try:
            out = model(sketch, seed=seed)
            results.append((seed, np.asarray(model(sketch))))
            return out
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert all(np.array_equal(r, expected) for _, r in results)


def test_label_model_snaps_input_colours(tmp_path):
    palette = [LabelClass(1, "wall", (0, 0, 255)), LabelClass(2, "window", (255, 0, 0))]
    info = ModelInfo(input_kind="labels", palette=palette)
    model = Sketch2Image(trained_like(), CFG, info, device="cpu")
    drawn = Image.new("RGB", (200, 100), (10, 20, 240))  # almost the wall colour
    drawn.paste((230, 30, 20), (50, 20, 100, 60))  # almost the window colour
    prepared = model.prepare(drawn).image
    assert prepared.size == (64, 64)
    assert {c for _, c in prepared.getcolors()} == {(0, 0, 255), (255, 0, 0)}


def test_colour_outside_the_drawn_object_is_left_out():
    """A broad stroke over the outline reaches the model only where the outline encloses: the
    same result as the stroke stopped at the line. Models of other inputs take hints as painted."""
    cfg = ModelConfig(ngf=8, image_size=64, hint_channels=4)
    torch.manual_seed(0)
    g = trained_like_generator(cfg)
    sketch = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(sketch).ellipse((16, 16, 48, 48), outline="black", width=2)
    across = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    ImageDraw.Draw(across).rectangle((0, 28, 63, 36), fill=(200, 30, 30, 255))  # runs off both sides
    x = torch.from_numpy(np.asarray(sketch, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    stroke = infer.hint_tensor(across, 64)[None]
    region = torch.from_numpy(infer.drawn_region(np.asarray(sketch.convert("L")) < 128))
    assert 0 < region[32].sum() < 40  # the stroke's row crosses the object and runs on beyond it
    layers = [stroke, stroke * region]  # the stroke, and the stroke cut at the outline
    model = Sketch2Image(g, cfg, ModelInfo(input_kind="sketch"), device="cpu", precision="fp32")
    spilled, cut = (model.run(x, hints=h) for h in layers)
    assert torch.equal(spilled, cut)
    assert not torch.equal(spilled, model.run(x))  # the part inside does count
    photo_model = Sketch2Image(g, cfg, ModelInfo(input_kind="image"), device="cpu", precision="fp32")
    assert not torch.equal(photo_model.run(x, hints=layers[0]), photo_model.run(x, hints=layers[1]))
