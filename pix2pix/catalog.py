"""Where models are and what they are, read from their ``config.json`` alone.

Kept free of torch so that listing models (the app's pickers, ``python -m pix2pix models``)
is instant; loading the weights is :mod:`pix2pix.io`'s job.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .config import ModelConfig, ModelInfo, from_dict
from .errors import Pix2PixError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
LABELS_FILE = "label_names.txt"  # label models only: "id name #rrggbb" per class
MAX_NAME_BYTES = 255  # a model's name is a folder name: no file system allows a longer one
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
# Installed with pip, the shipped models are inside the package; in a checkout, beside it.
INSTALLED = (PACKAGE_DIR / "weights").is_dir()


def weights_dir() -> Path:
    """Where shipped models live (``weights/`` of the checkout or of the installed package,
    or ``$PIX2PIX_WEIGHTS``)."""
    default = PACKAGE_DIR / "weights" if INSTALLED else REPO_ROOT / "weights"
    return Path(os.environ.get("PIX2PIX_WEIGHTS", default))


def runs_dir() -> Path:
    """Where fine-tuned models live (``runs/`` of the checkout, or of the current folder when
    installed, where ``train`` writes them; or ``$PIX2PIX_RUNS``)."""
    default = Path.cwd() / "runs" if INSTALLED else REPO_ROOT / "runs"
    return Path(os.environ.get("PIX2PIX_RUNS", default))


def cache_dir() -> Path:
    """This user's small per-machine files: measured fast paths, the app's request marker
    (``~/.cache/pix2pix``, or ``$PIX2PIX_CACHE_DIR``)."""
    return Path(os.environ.get("PIX2PIX_CACHE_DIR") or Path.home() / ".cache" / "pix2pix")


class ModelNotFound(Pix2PixError, ValueError):
    """No usable model at a given name or path; the message says why."""


def read_config(folder: str | Path) -> tuple[ModelConfig, ModelInfo]:
    path = Path(folder) / CONFIG_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelNotFound(f"{folder} has no {CONFIG_FILE}: not a saved pix2pix model") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelNotFound(f"{path} is not valid JSON ({e})") from None
    if not isinstance(data, dict) or data.get("format_version", 0) > FORMAT_VERSION:
        raise ModelNotFound(f"{path} was written by a newer version of this project, or is not a model config")
    try:
        return from_dict(ModelConfig, data["model"]), from_dict(ModelInfo, data.get("info", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise ModelNotFound(f"{path} does not describe a model ({e})") from None


def resolve_model(ref: str | Path) -> Path:
    """A shipped model's name, a model folder, a run folder or a weights file -> the model
    folder (the one holding ``config.json`` and ``model.safetensors``)."""
    path = Path(ref).expanduser()
    if path.exists():
        for c in [path.parent] if path.is_file() else [path, path / "model"]:
            if _is_model(c):
                return c
    elif (folder := installed(str(ref))) is not None:
        return folder
    known = ", ".join(e.name for e in list_models()) or "none installed"
    raise ModelNotFound(f"No model at {ref!r} (available models: {known}).")


def _is_model(folder: Path) -> bool:
    return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()


def installed(name: str) -> Path | None:
    """The folder of the installed model called ``name`` (shipped before fine-tuned), or None.

    Names only, never paths; and no config is read, so a per-request lookup costs two stats.
    """
    too_long = len(name.encode(errors="replace")) > MAX_NAME_BYTES  # the OS would raise, not answer
    if not name or name in {".", ".."} or "/" in name or "\\" in name or too_long:
        return None
    return next((c for c in (weights_dir() / name, runs_dir() / name / "model") if _is_model(c)), None)


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
    sources = [(p, True) for p in sorted(weights_dir().glob(f"*/{CONFIG_FILE}"))]
    sources += [(p, False) for p in sorted(runs_dir().glob(f"*/model/{CONFIG_FILE}"))]
    for cfg_path, shipped in sources:
        folder = cfg_path.parent
        if not _is_model(folder):
            continue
        try:
            cfg, info = read_config(folder)
        except ModelNotFound as e:
            log.warning("ignoring %s", e)
            continue
        name = folder.name if shipped else folder.parent.name
        entries.append(ModelEntry(name, folder, info, cfg, shipped))
    return entries
