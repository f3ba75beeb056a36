import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from pix2pix import catalog
from pix2pix import io as pio
from pix2pix.config import LabelClass, ModelConfig, ModelInfo
from pix2pix.models import build_generator


def _random_bn(g):
    for m in g.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    return g


def test_round_trip_gives_identical_outputs(tmp_path):
    cfg = ModelConfig(ngf=8, image_size=64)
    info = ModelInfo(name="t", description="test", input_kind="labels",
                     palette=[LabelClass(1, "wall", (0, 0, 255))], background_label=1, steps=7)
    g = _random_bn(build_generator(cfg)).eval()
    pio.save_pretrained(g, cfg, info, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["config.json", "label_names.txt", "model.safetensors"]
    assert (tmp_path / "m" / "label_names.txt").read_text() == "1 wall #0000ff\n"
    g2, cfg2, info2 = pio.load_pretrained(tmp_path / "m")
    assert cfg2 == cfg and info2 == info and not g2.training
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(g(x), g2(x))


def test_fp16_weights_are_half_the_size_and_close(tmp_path):
    cfg = ModelConfig(ngf=8, image_size=64)
    g = _random_bn(build_generator(cfg)).eval()
    pio.save_pretrained(g, cfg, ModelInfo(), tmp_path / "full")
    pio.save_pretrained(g, cfg, ModelInfo(), tmp_path / "half", dtype=torch.float16)
    full = (tmp_path / "full" / "model.safetensors").stat().st_size
    half = (tmp_path / "half" / "model.safetensors").stat().st_size
    assert half < 0.55 * full
    assert load_file(tmp_path / "half" / "model.safetensors")["down.1.2.running_var"].dtype == torch.float32
    g2, _, _ = pio.load_pretrained(tmp_path / "half")
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert (g(x) - g2(x)).abs().mean() < 2e-3


def test_resolve_by_folder_file_and_name(tmp_path, monkeypatch):
    cfg = ModelConfig(ngf=8, image_size=64)
    monkeypatch.setenv("PIX2PIX_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("PIX2PIX_RUNS", str(tmp_path / "runs"))
    pio.save_pretrained(build_generator(cfg), cfg, ModelInfo(description="shipped"), tmp_path / "weights" / "shoes")
    pio.save_pretrained(build_generator(cfg), cfg, ModelInfo(description="mine"), tmp_path / "runs" / "ft" / "model")
    folder = tmp_path / "weights" / "shoes"
    assert pio.resolve_model("shoes") == folder
    assert pio.resolve_model(folder) == folder
    assert pio.resolve_model(folder / "model.safetensors") == folder
    assert pio.resolve_model("ft") == tmp_path / "runs" / "ft" / "model"
    assert pio.resolve_model(tmp_path / "runs" / "ft") == tmp_path / "runs" / "ft" / "model"
    names = [(e.name, e.shipped) for e in catalog.list_models()]
    assert names == [("shoes", True), ("ft", False)]
    with pytest.raises(catalog.ModelNotFound, match="available models: shoes, ft"):
        pio.resolve_model("nope")


def test_mismatched_weights_give_a_readable_error(tmp_path):
    cfg = ModelConfig(ngf=8, image_size=64)
    pio.save_pretrained(build_generator(cfg), cfg, ModelInfo(), tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["model"]["ngf"] = 16
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(pio.ModelNotFound, match="wrong shape"):
        pio.load_pretrained(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(pio.ModelNotFound, match="safetensors"):
        pio.load_pretrained(tmp_path / "m")


def test_extra_keys_are_reported(tmp_path):
    cfg = ModelConfig(ngf=8, image_size=64)
    pio.save_pretrained(build_generator(cfg), cfg, ModelInfo(), tmp_path / "m")
    tensors = load_file(tmp_path / "m" / "model.safetensors")
    tensors["evil.weight"] = torch.zeros(1)
    save_file(tensors, tmp_path / "m" / "model.safetensors")
    with pytest.raises(pio.ModelNotFound, match="unexpected evil.weight"):
        pio.load_pretrained(tmp_path / "m")


def test_checkpoints_refuse_pickled_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("code ran",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        pio.load_checkpoint(tmp_path / "evil.pt")
    pio.save_checkpoint(tmp_path / "ok.pt", {"step": 3, "w": torch.ones(2), "rng": (3, (1, 2), None)})
    assert pio.load_checkpoint(tmp_path / "ok.pt")["step"] == 3


def test_writes_are_atomic(tmp_path, monkeypatch):
    pio.save_checkpoint(tmp_path / "c.pt", {"step": 1})

    def boom(*a, **k):
        raise OSError("disk full")

    import pix2pix.images.imaging as imaging

    real_replace = imaging.os.replace
    monkeypatch.setattr(imaging.os, "replace", boom)
    with pytest.raises(OSError):
        pio.save_checkpoint(tmp_path / "c.pt", {"step": 2})
    monkeypatch.setattr(imaging.os, "replace", real_replace)
    assert pio.load_checkpoint(tmp_path / "c.pt")["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # the temporary file is gone


def test_written_files_get_the_usual_permissions(tmp_path):
    """Atomic writes go through a private temporary file; the result must still get the
    permissions any plainly created file gets here (not the temporary file's 0600)."""
    (tmp_path / "plain.txt").write_text("x")
    pio.save_checkpoint(tmp_path / "c.pt", {"step": 1})
    mode = (tmp_path / "c.pt").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777
