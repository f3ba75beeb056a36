"""Which device and number format to use on the machine at hand."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import torch

from .config import ConfigError

log = logging.getLogger(__name__)


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU; or exactly what was asked for."""
    if preference not in ("auto", ""):
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA GPU is available")
        if device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError("MPS was requested but is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """True on CPUs with bf16 arithmetic in hardware (AVX-512 BF16 or AMX).

    Elsewhere autocast to bf16 is emulated and many times *slower* than fp32 (measured
    here on an AVX2-only CPU: about 100x), so it must never be the default there.
    """
    try:
        caps = torch._C._cpu._get_cpu_capability()
    except AttributeError:  # a torch without the private query: stay on the safe side
        return False
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def fast_dtype(device: torch.device, *, training: bool = False) -> torch.dtype | None:
    """Reduced precision that is actually faster here, or None for plain fp32.

    CUDA: bf16 where supported (no loss scaling needed), else fp16. CPU: bf16 only with
    hardware support. MPS: fp32 (autocast support there is still partial).
    """
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float16
    if device.type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return None


_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def precision_name(dtype: torch.dtype | None) -> str:
    """The autocast dtype's name as the flags spell it (None = fp32)."""
    return next(name for name, d in _DTYPES.items() if d == dtype)


@dataclass(frozen=True)
class Precision:
    """A number format for a model's forward pass: ``dtype`` (None: fp32) throughout or, with
    ``inner``, only in the U-Net's inner levels (see :mod:`pix2pix.inference.mixed`)."""

    dtype: torch.dtype | None = None
    inner: bool = False

    @property
    def name(self) -> str:
        return precision_name(self.dtype) + ("-inner" if self.inner and self.dtype is not None else "")


def resolve_precision(name: str, device: torch.device, *, training: bool = False) -> torch.dtype | None:
    """'auto' | 'fp32' | 'bf16' | 'fp16' -> autocast dtype (None = fp32)."""
    if name == "auto":
        return fast_dtype(device, training=training)
    if name == "fp32":
        return None
    dtype = _DTYPES[name]
    if device.type == "cpu" and dtype == torch.float16:
        raise ConfigError("fp16 is not supported on the CPU; use bf16 or fp32")
    return dtype


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads, {torch.backends.cpu.get_cpu_capability()})"
    return device.type
