"""Models and checkpoints on disk (finding them by name is :mod:`pix2pix.catalog`'s job).

A saved model is a folder with ``model.safetensors`` (generator weights only) and
``config.json`` (format version, :class:`ModelConfig`, :class:`ModelInfo`). A checkpoint is
one ``torch.save`` dict of tensors and plain values (both networks, both optimizers, the
scheduler, counters, configs) read back with ``weights_only=True``. Nothing here ever
unpickles arbitrary objects, and every write goes to a temporary file that is renamed into
place, so a run killed at any instant leaves the previous file intact.
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .catalog import CONFIG_FILE, FORMAT_VERSION, LABELS_FILE, WEIGHTS_FILE, ModelNotFound, read_config, resolve_model
from .config import ModelConfig, ModelInfo
from .images.imaging import atomic_write_bytes
from .models import UNetGenerator, build_generator

log = logging.getLogger(__name__)

__all__ = ["ModelNotFound", "load_checkpoint", "load_pretrained", "load_state", "resolve_model", "save_checkpoint",
           "save_pretrained"]

# ---------------------------------------------------------------------------- models


def save_pretrained(
    generator: torch.nn.Module,
    cfg: ModelConfig,
    info: ModelInfo,
    folder: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write ``model.safetensors`` + ``config.json`` into ``folder``.

    ``dtype=torch.float16`` halves the file (the shipped models use it); BatchNorm
    statistics are kept in float32 either way since they are tiny and precision-sensitive.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    raw = getattr(generator, "module", generator)  # unwrap DistributedDataParallel
    tensors = {}
    for k, v in raw.state_dict().items():
        v = v.detach().to("cpu").contiguous()
        if v.is_floating_point() and "running_" not in k:
            v = v.to(dtype)
        tensors[k] = v.clone()
    meta = {"format": "pt", "pix2pix_format_version": str(FORMAT_VERSION)}
    atomic_write_bytes(folder / WEIGHTS_FILE, save(tensors, metadata=meta))
    config = {"format_version": FORMAT_VERSION, "model": asdict(cfg), "info": asdict(info)}
    atomic_write_bytes(folder / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
    if info.palette:  # the label classes, readable without JSON (and by the data loader)
        lines = [f"{c.id} {c.name} #{c.color[0]:02x}{c.color[1]:02x}{c.color[2]:02x}" for c in info.palette]
        atomic_write_bytes(folder / LABELS_FILE, ("\n".join(lines) + "\n").encode())
    return folder


def load_pretrained(ref: str | Path, device: str | torch.device = "cpu") -> tuple[UNetGenerator, ModelConfig, ModelInfo]:
    """Rebuild the generator from its config and load its weights; returns it in eval mode."""
    folder = resolve_model(ref)
    cfg, info = read_config(folder)
    generator = build_generator(cfg)
    try:
        tensors = load_file(str(folder / WEIGHTS_FILE))
    except (SafetensorError, OSError) as e:
        raise ModelNotFound(f"{folder / WEIGHTS_FILE} is not a readable safetensors file ({e})") from None
    load_state(generator, tensors, source=str(folder))
    return generator.to(device).eval(), cfg, info


def load_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` with an error that says what does not match, in plain words."""
    own = module.state_dict()
    missing = sorted(own.keys() - tensors.keys())
    unexpected = sorted(tensors.keys() - own.keys())
    wrong = sorted(k for k in own.keys() & tensors.keys() if own[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        def few(keys):
            return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
        problems = []
        if missing:
            problems.append(f"missing {few(missing)}")
        if unexpected:
            problems.append(f"unexpected {few(unexpected)}")
        if wrong:
            problems.append(f"wrong shape for {few(wrong)}")
        raise ModelNotFound(f"Weights in {source} do not fit the architecture in its config: " + "; ".join(problems))
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()})


# ---------------------------------------------------------------------------- checkpoints


DISCRIMINATOR_FILE = "discriminator.safetensors"  # beside a model: the D it was trained against (fp16)


def load_discriminator(ref: str | Path, D: torch.nn.Module) -> bool:
    """Load the D saved beside the model ``ref`` (a GPU stage's export) into ``D``; False,
    with ``D`` untouched, when there is none or it has another architecture."""
    try:
        folder = resolve_model(ref)
    except ModelNotFound:
        return False
    path = folder / DISCRIMINATOR_FILE
    if not path.is_file():
        return False
    try:
        tensors = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
        load_state(D, tensors, source=str(path))
    except (SafetensorError, OSError, ModelNotFound, RuntimeError) as e:
        log.warning("not using %s: %s", path, e)
        return False
    return True


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write a training checkpoint (tensors and plain Python values only)."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without unpickling arbitrary objects (``weights_only=True``)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"No checkpoint at {path}") from None
    except Exception as e:  # corrupt or foreign file: say so instead of a pickle trace
        raise ValueError(f"{path} is not a readable checkpoint ({type(e).__name__}: {e})") from None
