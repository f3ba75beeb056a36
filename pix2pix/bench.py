"""The project's speed benchmark: inference latency and training throughput.

Figures are medians over repeated runs after warm-up, and each comes with the plain fp32
reference measured in the same process, because absolute times on a shared machine drift;
the ratio is what to compare across machines and commits.
"""

from __future__ import annotations

import resource
import statistics
import time

import torch

from .config import ModelConfig, ModelInfo, TrainConfig
from .hardware import describe, pick_device, resolve_precision
from .infer import Sketch2Image
from .models import build_discriminator, build_generator, count_params
from .train import Pix2Pix


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _times_ms(fn, device, runs: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    _sync(device)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        _sync(device)
        out.append((time.perf_counter() - t) * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _train_rate(cfg: ModelConfig, device, precision: str, steps: int, fast: bool) -> float:
    tcfg = TrainConfig(batch_size=1, precision=precision)
    model = Pix2Pix(cfg, tcfg, device, amp_dtype=resolve_precision(precision, device, training=True))
    if not fast:  # the plain reference: contiguous fp32 tensors
        model.G = model.G_train = model.G.to(memory_format=torch.contiguous_format)
        model.D = model.D_train = model.D.to(memory_format=torch.contiguous_format)
    a = torch.randn(1, cfg.in_channels, cfg.image_size, cfg.image_size)
    b = torch.randn(1, cfg.out_channels, cfg.image_size, cfg.image_size)
    times = _times_ms(lambda: model.step(a, b), device, steps, warmup=2)
    return 1000.0 / statistics.median(times)


def run_bench(
    ngf: int = 64,
    device: str = "auto",
    precision: str = "auto",
    runs: int = 30,
    train_steps: int = 8,
    baseline: bool = True,
    image_size: int = 256,
) -> dict:
    """Latency of one 256x256 image (batch 1) and full G+D training steps per second."""
    dev = pick_device(device)
    torch.manual_seed(0)
    cfg = ModelConfig(ngf=ngf, image_size=image_size)
    generator = build_generator(cfg)
    x = torch.rand(1, 3, image_size, image_size) * 2 - 1
    result: dict = {"device": describe(dev), "ngf": ngf, "image_size": image_size,
                    "params_G": count_params(generator), "params_D": count_params(build_discriminator(cfg))}

    fast = Sketch2Image(generator, cfg, ModelInfo(name="bench"), device=dev, precision=precision)
    t = _times_ms(lambda: fast.run(x), dev, runs, warmup=3)
    result |= {"precision": fast.precision, "infer_ms_p50": round(statistics.median(t), 2), "infer_ms_p90": round(_pct(t, 0.9), 2)}
    if baseline:
        plain = generator.to(dev).eval()
        xd = x.to(dev)

        def reference():
            with torch.inference_mode():
                plain(xd).cpu()

        t0 = _times_ms(reference, dev, runs, warmup=3)
        result["infer_fp32_ms_p50"] = round(statistics.median(t0), 2)
        result["infer_speedup"] = round(result["infer_fp32_ms_p50"] / result["infer_ms_p50"], 2)

    if train_steps > 0:
        result["train_img_per_s"] = round(_train_rate(cfg, dev, precision, train_steps, fast=True), 3)
        if baseline:
            result["train_fp32_img_per_s"] = round(_train_rate(cfg, dev, "fp32", train_steps, fast=False), 3)
            result["train_speedup"] = round(result["train_img_per_s"] / result["train_fp32_img_per_s"], 2)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if dev.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    return result

