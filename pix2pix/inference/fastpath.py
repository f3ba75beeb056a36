"""``precision="auto"`` chosen by measuring, not by guessing from the CPU's features.

bf16 autocast halved U-Net time on one AVX-512 box and cost 20 % on another; the same
flags tell them apart no better than a coin. So where bf16 is a real candidate (a CPU with
bf16 in hardware), the candidates are timed on the model at hand, interleaved run by run,
and the faster is kept. The answer is cached per machine, torch version, thread count and
model shape in ``~/.cache/pix2pix/fast_paths.json`` (``PIX2PIX_CACHE_DIR`` moves it), so
the measuring (well under a second for inference, a few training steps for training)
happens once.
"""

from __future__ import annotations

import json
import logging
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..catalog import cache_dir
from ..hardware import Precision, cpu_has_native_bf16, fast_dtype
from ..images.imaging import atomic_write_bytes

log = logging.getLogger(__name__)

CACHE_FILE = "fast_paths.json"
CANDIDATES_VERSION = 2  # raised when a candidate's meaning changes (2: bf16 weights, not autocast)


def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        return ""


def machine_key() -> str:
    """What a timing depends on besides the model: the CPU, torch, and the threads it may use."""
    return (f"{_cpu_name() or platform.processor() or platform.machine()}|{torch.backends.cpu.get_cpu_capability()}|"
            f"torch {torch.__version__}|{torch.get_num_threads()} threads|v{CANDIDATES_VERSION}")


def _read_cache() -> dict:
    try:
        data = json.loads(cache_path().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, value: str | float) -> None:
    data = _read_cache()
    data[key] = value
    try:
        atomic_write_bytes(cache_path(), json.dumps(data, indent=1, sort_keys=True).encode())
    except OSError as e:  # a read-only home only costs a measurement next time
        log.debug("could not cache the fast path (%s)", e)


def recall(key: str):
    """What was measured and kept under ``key`` on this machine (None: nothing yet)."""
    return _read_cache().get(key)


def keep(key: str, value: str | float) -> None:
    """Remember a measured answer (a choice or a number) under ``key``."""
    _write_cache(key, value)


MEASURED: dict[str, dict[str, float]] = {}  # key -> each candidate's median seconds, as last timed here


def fastest(candidates: dict[str, Callable[[], object]], *, key: str, runs: int = 5, warmup: int = 1,
            default: str | None = None) -> str:
    """The name of the fastest candidate (median over ``runs`` interleaved runs), from the
    cache when ``key`` was measured before; with ``default``, that one instead of measuring
    (for work too short to pay for it). A candidate that fails is out of the running."""
    cached = _read_cache().get(key)
    if cached in candidates:
        return cached
    if default is not None:
        return default
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(warmup + runs):
        for name, fn in candidates.items():
            if name not in times:
                continue
            start = time.perf_counter()
            try:
                fn()
            except RuntimeError as e:
                log.info("%s is not usable here (%s)", name, e)
                del times[name]
                continue
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(t) for name, t in times.items() if t}
    best = min(medians, key=medians.get)
    MEASURED[key] = medians
    log.info("fast path for %s: %s (%s)", key.split("|", 5)[-1], best,
             ", ".join(f"{n} {m * 1000:.1f} ms" for n, m in medians.items()))
    _write_cache(key, best)
    return best


def remembered(key: str, measure: Callable[[], float]) -> float:
    """A measured number (how far bf16 moves one weights file's output), kept in the cache."""
    cached = _read_cache().get(key)
    if isinstance(cached, (int, float)) and not isinstance(cached, bool):
        return float(cached)
    value = measure()
    if value == value:  # not NaN: JSON has no NaN, and a failed measurement should run again
        _write_cache(key, value)
    return value


def shape_key(cfg, batch: int = 1) -> str:
    """A model's shape as the cache key names it (a ModelConfig)."""
    return (f"ngf{cfg.ngf} ndf{cfg.ndf} {cfg.image_size}px {cfg.upsample} hints{cfg.hint_channels} "
            f"{'classes' + str(len(cfg.classes)) + ' ' if cfg.classes else ''}"
            f"batch{batch}")


AGREE_TOL = 0.01  # mean |output - fp32 output| on [-1, 1] that a faster number format may cost


def _formats(device: torch.device, deviation: Callable[[Precision], float] | None, what: str,
             inner: bool) -> list[Precision]:
    """The number formats worth timing here: on a CPU with bf16 in hardware fp32 and bf16;
    on a GPU its one known answer (bf16 or fp16); elsewhere fp32 (emulated bf16 is many times
    slower). A format whose ``deviation`` is over AGREE_TOL is dropped, whatever its speed;
    with ``inner`` (a U-Net's inference) the same format in its inner levels alone is tried
    next, beside fp32."""
    candidate = fast_dtype(device) if device.type != "cpu" else torch.bfloat16 if cpu_has_native_bf16() else None
    if candidate is None:
        return [Precision()]
    for option in [Precision(candidate), *([Precision(candidate, inner=True)] if inner else [])]:
        if deviation is None:
            break
        moved = deviation(option)
        log.info("fast path for %s: %s moves the output by %.4f (at most %.2f)", what, option.name, moved, AGREE_TOL)
        if moved <= AGREE_TOL:
            break
    else:
        return [Precision()]
    if device.type != "cpu" and not option.inner:
        return [option]
    return [Precision(), option]


def auto_path(device: torch.device, what: str, make_run: Callable[[Precision, str], Callable[[], object]],
              *, forms: tuple[str, ...] = ("",), formats: list[Precision] | None = None,
              deviation: Callable[[Precision], float] | None = None, inner: bool = False,
              **timing) -> tuple[Precision, str]:
    """The number format and model form (``forms`` names exact rewrites of one model; ""
    is the model as it is) that run ``make_run(precision, form)()`` fastest here, timed
    against each other once per machine, work and candidate set, and cached. ``what`` names
    the work and model shape in the cache key. ``formats`` fixes the number format; by
    default it is chosen here too (``inner``: see :func:`_formats`).

    ``deviation(precision)`` (inference) measures how far this model's output in that format
    lies from fp32. Two models of one shape share the timing, not their weights (bf16 moved
    a colour-hint model's output by 0.12 on average, a plain one's by 0.003), so the caller
    keys that on the weights (see :func:`remembered`)."""
    formats = formats or _formats(device, deviation, what, inner)
    runs = {f"{p.name} {form}".strip(): (p, form) for p in formats for form in forms}
    if len(runs) == 1:
        return next(iter(runs.values()))
    key = f"{machine_key()}|{what}|{','.join(runs)}"
    if (cached := _read_cache().get(key)) in runs:  # before making the candidates: they cost copies of the model
        return runs[cached]
    best = fastest({name: make_run(*choice) for name, choice in runs.items()}, key=key, **timing)
    return runs[best]


def auto_dtype(device: torch.device, what: str, make_run: Callable[[torch.dtype | None], Callable[[], object]],
               *, deviation: Callable[[torch.dtype], float] | None = None, **timing) -> torch.dtype | None:
    """``precision="auto"`` for a model with one form, in one format throughout (training):
    see :func:`auto_path`."""
    moved = None if deviation is None else lambda p: deviation(p.dtype)
    return auto_path(device, what, lambda p, _form: make_run(p.dtype), deviation=moved, **timing)[0].dtype
