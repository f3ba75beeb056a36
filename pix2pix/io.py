"""Models and checkpoints on disk.

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
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .config import ModelConfig, ModelInfo, from_dict
from .imaging import atomic_write_bytes
from .models import UNetGenerator, build_generator

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
REPO_ROOT = Path(__file__).resolve().parent.parent
WEIGHTS_DIR = REPO_ROOT / "weights"


def runs_dir() -> Path:
    """Where fine-tuned models live (``runs/`` beside the repo, or ``$PIX2PIX_RUNS``)."""
    return Path(os.environ.get("PIX2PIX_RUNS", REPO_ROOT / "runs"))


class ModelNotFound(ValueError):
    pass


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
    return folder


def read_config(folder: str | Path) -> tuple[ModelConfig, ModelInfo]:
    path = Path(folder) / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelNotFound(f"{folder} has no {CONFIG_FILE}: not a saved pix2pix model") from None
    except json.JSONDecodeError as e:
        raise ModelNotFound(f"{path} is not valid JSON ({e})") from None
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise ModelNotFound(f"{path} was written by a newer version of this project")
    try:
        return from_dict(ModelConfig, data["model"]), from_dict(ModelInfo, data.get("info", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise ModelNotFound(f"{path} does not describe a model ({e})") from None


def resolve_model(ref: str | Path) -> Path:
    """A shipped model's name, a model folder, a run folder or a weights file -> the model
    folder (the one holding ``config.json`` and ``model.safetensors``)."""
    path = Path(ref).expanduser()
    candidates = []
    if path.exists():
        candidates = [path.parent] if path.is_file() else [path, path / "model"]
    elif "/" not in str(ref) and "\\" not in str(ref):
        candidates = [WEIGHTS_DIR / str(ref), runs_dir() / str(ref) / "model"]
    for c in candidates:
        if (c / CONFIG_FILE).is_file() and (c / WEIGHTS_FILE).is_file():
            return c
    known = ", ".join(e.name for e in list_models()) or "none installed"
    raise ModelNotFound(f"No model at {ref!r} (available models: {known}).")


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


@dataclass
class ModelEntry:
    name: str
    path: Path
    info: ModelInfo
    config: ModelConfig
    shipped: bool


def list_models() -> list[ModelEntry]:
    """Every model available: shipped ones in ``weights/``, then fine-tuned ones in ``runs/``."""
    entries = []
    sources = [(p, True) for p in sorted(WEIGHTS_DIR.glob(f"*/{CONFIG_FILE}"))]
    sources += [(p, False) for p in sorted(runs_dir().glob(f"*/model/{CONFIG_FILE}"))]
    for cfg_path, shipped in sources:
        folder = cfg_path.parent
        if not (folder / WEIGHTS_FILE).is_file():
            continue
        try:
            cfg, info = read_config(folder)
        except ModelNotFound as e:
            log.warning("ignoring %s", e)
            continue
        name = folder.name if shipped else folder.parent.name
        entries.append(ModelEntry(name, folder, info, cfg, shipped))
    return entries


# ---------------------------------------------------------------------------- checkpoints


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
