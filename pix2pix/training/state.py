"""What a training run saves and reads back: the checkpoint's contents, checked before
anything is built from them, and the random generators that make a resumed run continue
exactly as if it had never stopped."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import torch

from ..config import PRECISIONS, ConfigError, ModelConfig, ModelInfo, TrainConfig, from_dict
from ..errors import Pix2PixError
from ..io import load_checkpoint


# 2: the step alone places a run. Version 1 (still read) also held epoch and batch_in_epoch.
CHECKPOINT_VERSION = 2
class TrainingError(Pix2PixError, RuntimeError):
    """A run that cannot start or continue; the message is meant for the user."""


def read_checkpoint(path: Path) -> dict:
    """A run's checkpoint, or a :class:`TrainingError` that says why it cannot be resumed."""
    if not path.exists():
        raise TrainingError(f"Nothing to resume: {path} does not exist.")
    try:
        state = load_checkpoint(path)
    except ValueError as e:
        raise TrainingError(str(e)) from None
    if not isinstance(state, dict) or not isinstance(state.get("version", 1), int):
        raise TrainingError(f"{path} is not a checkpoint of this project.")
    if state.get("version", 1) > CHECKPOINT_VERSION:
        raise TrainingError(f"{path} was written by a newer version of this project; update it to resume this run.")
    try:
        _check_state(state)
    except (ConfigError, KeyError, TypeError, ValueError) as e:
        raise TrainingError(f"{path} cannot be resumed: {e}") from None
    return state


def _check_state(state: dict) -> None:
    """What a checkpoint says is checked before anything is built from it: its configs pass
    the same checks as a new run's, and its counters are whole numbers in range."""
    for key in ("model_config", "train_config", "info"):
        if not isinstance(state[key], dict):
            raise ValueError(f"its {key} is not a table of settings")
    from_dict(ModelConfig, state["model_config"])
    from_dict(TrainConfig, state["train_config"])
    from_dict(ModelInfo, state["info"])
    if state.get("precision", "fp32") not in PRECISIONS or state.get("precision") == "auto":
        raise ValueError(f"its number format is not one this project knows: {state['precision']!r}")
    if not isinstance(state.get("data", ""), str):
        raise ValueError(f"its data folder is not a path: {state['data']!r}")
    for key, low in (("step", 0), ("steps_per_epoch", 1), ("loss_steps", 0), ("world_size", 1)):
        value = state.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{key} must be a whole number of at least {low}, got {value!r}")


def rng_state(device: torch.device) -> dict:
    state = {"rng_torch": torch.get_rng_state(), "rng_python": random.getstate()}
    if device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["rng_torch"])
    random.setstate(state["rng_python"])
    if "rng_cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["rng_cuda"], device)


def check_place(state: dict, steps_per_epoch: int, path: Path) -> None:
    """A checkpoint's step places it only with the epoch length it was written with."""
    step, spe = state["step"], steps_per_epoch
    place = (state["epoch"], state["batch_in_epoch"]) if "batch_in_epoch" in state else divmod(step, spe)  # version 1
    if state.get("steps_per_epoch", spe) != spe or divmod(step, spe) != tuple(place):
        raise TrainingError(f"{path} does not fit this run's {spe} steps per epoch: resume it with the same data, "
                            f"batch size and number of processes ({state.get('world_size', 'unknown')}).")


def io_failure(e: OSError, out: Path, step: int, saved_step: int) -> str:
    """What failed and what was kept, for a file error during a run."""
    kept = (f"the checkpoint of step {saved_step} in {out} is intact: free the space or fix the folder, then resume it"
            if saved_step else "nothing was saved")
    return f"Training stopped at step {step}: could not write {e.filename or out} ({e.strerror or e}); {kept}."


def model_info(info: ModelInfo, step: int, epochs: int, records: list[dict]) -> ModelInfo:
    """What the saved model says of itself: its steps and epochs, and the validation L1 of
    the latest epoch validated by ``step`` (what tells one fine-tuned model from another)."""
    extra = {k: v for k, v in info.extra.items() if k != "val_l1"}
    judged = [r for r in records if r["step"] <= step and "val_l1" in r]
    if judged:
        extra["val_l1"] = round(float(judged[-1]["val_l1"]), 4)
    return replace(info, steps=step, epochs=epochs, extra=extra)
