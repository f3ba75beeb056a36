"""The project's speed benchmark: inference latency and training throughput.

Figures are medians over repeated runs after warm-up, and each comes with the plain fp32
reference measured in the same process, interleaved with it run by run, because absolute times
on a shared machine drift; the ratio (a median of run-by-run ratios) is what to compare.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import statistics
import tempfile
import time
from unittest import mock

import torch

from .inference import fastpath
from .config import ModelConfig, ModelInfo, TrainConfig
from .hardware import describe, pick_device, resolve_precision
from .inference.infer import Sketch2Image
from .io import load_pretrained
from .training.hints import sample as sample_hints
from .models import build_discriminator, build_generator, count_params, with_hint_channels
from .training.objective import Pix2Pix


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _times_ms(*fns, device, runs: int, warmup: int) -> list[list[float]]:
    """Times of each function, interleaved run by run so that drift on a shared machine
    (other jobs, clock changes) lands on all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    _sync(device)
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for fn, times in zip(fns, out):
            t = time.perf_counter()
            fn()
            _sync(device)
            times.append((time.perf_counter() - t) * 1000)
    return out


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def _trainer(cfg: ModelConfig, device, precision: str, fast: bool):
    """One full G+D step at batch 1, as a function; ``fast=False`` is the plain reference."""
    from .training.trainer import measured_training_dtype

    tcfg = TrainConfig(batch_size=1, precision=precision)
    amp = measured_training_dtype(cfg, tcfg, device) if precision == "auto" else \
        resolve_precision(precision, device, training=True)
    model = Pix2Pix(cfg, tcfg, device, amp_dtype=amp)
    if not fast:  # the plain reference: contiguous fp32 tensors
        model.G = model.G_train = model.G.to(memory_format=torch.contiguous_format)
        model.D = model.D_train = model.D.to(memory_format=torch.contiguous_format)
    a = torch.randn(1, cfg.in_channels, cfg.image_size, cfg.image_size)
    b = torch.randn(1, cfg.out_channels, cfg.image_size, cfg.image_size)
    return lambda: model.step(a, b)


@contextlib.contextmanager
def _fresh_choice():
    """Within: ``precision="auto"`` measures again, in an empty cache; yields the timings
    (candidate name -> median seconds) of the choice made inside, if one was measured."""
    measured: dict[str, float] = {}
    before = dict(fastpath.MEASURED)
    with tempfile.TemporaryDirectory() as tmp, mock.patch.dict(os.environ, {"PIX2PIX_CACHE_DIR": tmp}):
        yield measured
    measured.update(next((v for k, v in fastpath.MEASURED.items() if before.get(k) is not v), {}))


def _ratio(slow: list[float], fast: list[float]) -> float:
    """Median of the run-by-run ratios: robust to a slow spell hitting one pair of runs."""
    return statistics.median(s / f for s, f in zip(slow, fast))


def _bench_inference(generator, cfg: ModelConfig, dev: torch.device, precision: str, runs: int,
                     baseline: bool) -> dict:
    """Batch-1 latency in ``precision`` (with what ``auto`` timed to choose it), with 8 colour
    hints, and of the plain fp32 generator as trained."""
    result: dict = {}
    x = torch.rand(1, 3, cfg.image_size, cfg.image_size) * 2 - 1
    with _fresh_choice() as measured:  # time the candidates now, not from an earlier run's cache
        fast = Sketch2Image(generator, cfg, ModelInfo(name="bench"), device=dev, precision=precision)
    if measured:
        result["auto_candidates_ms"] = {name: round(t * 1000, 2) for name, t in measured.items()}
    hinted = with_hint_channels(generator)
    hint_model = fast if hinted is generator else \
        Sketch2Image(hinted, hinted.cfg, ModelInfo(name="bench"), device=dev, precision=precision)
    h = sample_hints(torch.rand(3, cfg.image_size, cfg.image_size) * 2 - 1, random.Random(0), n=8)[None]
    fns = [lambda: fast.run(x), lambda: hint_model.run(x, hints=h)]
    if baseline:
        plain = generator.to(dev).eval()
        xd = x.to(dev)

        def reference():
            with torch.inference_mode():
                plain(xd).cpu()

        fns.append(reference)
    timed = _times_ms(*fns, device=dev, runs=runs, warmup=3)
    t = timed[0]
    result |= {"precision": fast.precision, "form": fast.form or "as trained",
               "infer_ms_p50": round(statistics.median(t), 2), "infer_ms_p90": round(_pct(t, 0.9), 2),
               "hint_infer_ms_p50": round(statistics.median(timed[1]), 2), "hint_cost": round(_ratio(timed[1], t), 3)}
    if baseline:
        result["infer_fp32_ms_p50"] = round(statistics.median(timed[2]), 2)
        result["infer_speedup"] = round(_ratio(timed[2], t), 2)
    return result


def _bench_training(cfg: ModelConfig, dev: torch.device, precision: str, steps: int, baseline: bool) -> dict:
    """Full G+D steps at batch 1 per second, in ``precision`` and as the plain fp32 reference."""
    fns = [_trainer(cfg, dev, precision, fast=True)]
    if baseline:
        fns.append(_trainer(cfg, dev, "fp32", fast=False))
    timed = _times_ms(*fns, device=dev, runs=steps, warmup=2)
    result = {"train_img_per_s": round(1000.0 / statistics.median(timed[0]), 3)}
    if baseline:
        result["train_fp32_img_per_s"] = round(1000.0 / statistics.median(timed[1]), 3)
        result["train_speedup"] = round(_ratio(timed[1], timed[0]), 2)
    return result


def run_bench(
    ngf: int = 64,
    device: str = "auto",
    precision: str = "auto",
    runs: int = 30,
    train_steps: int = 8,
    baseline: bool = True,
    image_size: int = 256,
    upsample: str = "transpose",
    model: str | None = None,
) -> dict:
    """Latency of one 256x256 image (batch 1) and full G+D training steps per second; also
    what colour hints cost (the same model with hint channels, given 8 hints). ``model``
    times a saved model (a name or folder) instead of a fresh one of the given shape."""
    dev = pick_device(device)
    torch.manual_seed(0)
    if model:
        generator, cfg, _ = load_pretrained(model)
        image_size = cfg.image_size
    else:
        cfg = ModelConfig(ngf=ngf, image_size=image_size, upsample=upsample)
        generator = build_generator(cfg)
    result: dict = {"device": describe(dev), "model": model or "fresh", "ngf": cfg.ngf, "image_size": image_size,
                    "upsample": cfg.upsample, "params_G": count_params(generator),
                    "params_D": count_params(build_discriminator(cfg))}

    result |= _bench_inference(generator, cfg, dev, precision, runs, baseline)

    if train_steps > 0:
        result |= _bench_training(cfg, dev, precision, train_steps, baseline)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if dev.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(dev) / 2**20, 1)
    return result

