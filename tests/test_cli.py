import json
import subprocess
import sys

import pytest
from PIL import Image

from conftest import ROOT, cli_env, shape_pair
from pix2pix.config import ModelConfig, ModelInfo
from pix2pix.io import save_pretrained
from pix2pix.models import build_generator

pytestmark = pytest.mark.slow  # every test here runs the CLI in a subprocess


def run_cli(*args, check=True, **env):
    proc = subprocess.run([sys.executable, "-m", "pix2pix", *map(str, args)], cwd=ROOT, env=cli_env(**env),
                          capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_train_generate_evaluate_end_to_end(tiny_data, tmp_path):
    run = tmp_path / "run"
    p = run_cli("train", tiny_data, "--out", run, "--ngf", "8", "--ndf", "8", "--size", "64", "--epochs", "2",
                "--batch-size", "2", "--workers", "0", "--description", "tiny shapes")
    assert "layout side-by-side" in p.stderr and "training finished" in p.stderr
    assert (run / "model" / "model.safetensors").is_file()

    # one file
    sketch, _ = shape_pair(99, 64)
    sketch.save(tmp_path / "sketch.png")
    run_cli("generate", "--model", run, tmp_path / "sketch.png", "--output", tmp_path / "out.png")
    out = Image.open(tmp_path / "out.png")
    assert out.size == (64, 64) and out.mode == "RGB"

    # a folder, with a broken file that is skipped, and variations by seed
    (tmp_path / "in").mkdir()
    sketch.resize((150, 90)).save(tmp_path / "in" / "a.jpg")
    (tmp_path / "in" / "broken.png").write_bytes(b"nope")
    p = run_cli("generate", "--model", run / "model" / "model.safetensors", tmp_path / "in", "--output", tmp_path / "outs",
                "--seed", "3", "--keep-size")
    assert sorted(x.name for x in (tmp_path / "outs").iterdir()) == ["a.png"]
    assert Image.open(tmp_path / "outs" / "a.png").size == (150, 90)
    assert "skipped broken.png" in p.stderr

    p = run_cli("evaluate", "--model", run, tiny_data, "--grid", tmp_path / "grid.png", "--grid-rows", "3")
    result = json.loads(p.stdout)
    assert Image.open(tmp_path / "grid.png").size == (3 * 64, 3 * 64)
    assert result["n"] == 8 and 0 <= result["l1"] <= 1 and result["psnr"] > 0 and -1 <= result["ssim"] <= 1
    white = json.loads(run_cli("evaluate", "--baseline", "white", tiny_data).stdout)
    assert white["n"] == 8 and white["model"] == "baseline:white"

    p = run_cli("models", PIX2PIX_RUNS=str(tmp_path))
    assert "run" in p.stdout and "tiny shapes" in p.stdout


def test_bench_prints_the_figures(tmp_path):
    p = run_cli("bench", "--ngf", "8", "--runs", "3", "--train-steps", "1", "--no-baseline")
    result = json.loads(p.stdout)
    for key in ("device", "ngf", "params_G", "params_D", "infer_ms_p50", "infer_ms_p90", "train_img_per_s", "peak_rss_mb"):
        assert key in result, key
    assert result["ngf"] == 8 and result["infer_ms_p50"] > 0 and result["train_img_per_s"] > 0
    assert result["params_D"] == 2_768_705
    assert result["hint_infer_ms_p50"] > 0 and result["hint_cost"] > 0  # what colour hints cost, same run


def test_bench_times_a_saved_model_and_says_what_auto_chose(tmp_path):
    cfg = ModelConfig(ngf=8, image_size=64, upsample="resize", hint_channels=4)
    save_pretrained(build_generator(cfg), cfg, ModelInfo(name="r"), tmp_path / "r")
    p = run_cli("bench", "--model", tmp_path / "r", "--runs", "3", "--train-steps", "0")
    result = json.loads(p.stdout)
    assert result["model"] == str(tmp_path / "r") and result["ngf"] == 8 and result["upsample"] == "resize"
    candidates = result["auto_candidates_ms"]  # measured in this run, whatever an earlier run cached
    assert {"fp32", "fp32 transposed"} <= set(candidates)
    chosen = f"{result['precision']} {result['form']}".replace(" as trained", "")
    assert candidates[chosen] == min(candidates.values())  # never a candidate slower than another
    assert result["infer_speedup"] > 0 and "train_img_per_s" not in result


def test_user_errors_are_one_clear_line(tmp_path):
    p = run_cli("train", tmp_path / "missing", "--out", tmp_path / "run", check=False)
    assert p.returncode == 2 and "does not exist" in p.stderr and "Traceback" not in p.stderr
    p = run_cli("generate", "--model", "no-such-model", tmp_path, "--output", tmp_path / "o", check=False)
    assert p.returncode == 2 and "available models" in p.stderr and "Traceback" not in p.stderr
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (30, 30)).save(tmp_path / "photos" / "x.jpg")
    p = run_cli("train", tmp_path / "photos", "--out", tmp_path / "run2", check=False)
    assert p.returncode == 2 and "--outlines" in p.stderr and "Traceback" not in p.stderr


def test_evaluate_with_each_images_own_batchnorm_statistics(tmp_path):
    """--norm image runs BatchNorm on each image's own statistics (the paper's test time):
    another figure than the saved statistics give, and no other image can change it."""
    from pix2pix.io import save_pretrained
    from pix2pix.config import ModelConfig, ModelInfo
    from pix2pix.training.evaluate import evaluate
    from pix2pix.inference.infer import Sketch2Image
    from conftest import trained_like_generator, write_side_by_side

    write_side_by_side(tmp_path / "data", 4)
    cfg = ModelConfig(ngf=8, image_size=64)
    save_pretrained(trained_like_generator(cfg), cfg, ModelInfo(input_kind="sketch"), tmp_path / "model")
    model = Sketch2Image.load(tmp_path / "model", device="cpu", precision="fp32")
    saved = evaluate(model, tmp_path / "data", split="all")
    own = evaluate(model, tmp_path / "data", split="all", norm="image")
    alone = evaluate(model, tmp_path / "data", split="all", norm="image", batch_size=1)
    assert own["norm"] == "image" and own["l1"] != saved["l1"]
    assert own["l1"] == pytest.approx(alone["l1"], abs=1e-6)  # batching does not mix images
