"""Typed configuration: the single source of truth for models and training runs.

``asdict()`` of these goes into a saved model's ``config.json`` and into every checkpoint,
so a model can always be rebuilt from what is on disk without any code-side defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

DIRECTIONS = ("AtoB", "BtoA")
INPUT_KINDS = ("sketch", "labels", "image")


@dataclass
class ModelConfig:
    """Architecture of the generator/discriminator pair (pix2pix, Isola et al. 2017)."""

    in_channels: int = 3
    out_channels: int = 3
    ngf: int = 64  # generator width: filters in the first encoder layer
    ndf: int = 64  # discriminator width
    n_layers_d: int = 3  # 3 -> the 70x70 PatchGAN
    image_size: int = 256  # power of two; the U-Net has log2(image_size) down-samplings
    dropout: float = 0.5  # in the three innermost decoder blocks

    def __post_init__(self) -> None:
        if self.image_size < 32 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of two >= 32, got {self.image_size}")
        for name in ("in_channels", "out_channels", "ngf", "ndf", "n_layers_d"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def num_downs(self) -> int:
        return int(math.log2(self.image_size))


@dataclass
class LabelClass:
    """One class of a label-map input: the colour the model expects for it."""

    id: int
    name: str
    color: tuple[int, int, int]


@dataclass
class ModelInfo:
    """What a saved model is for: shown in the app and used to prepare its inputs."""

    name: str = ""
    description: str = ""
    direction: str = "AtoB"
    input_kind: str = "image"  # "sketch": pen drawings; "labels": colour label maps
    palette: list[LabelClass] = field(default_factory=list)  # for input_kind == "labels"
    background_label: int | None = None  # label id the canvas starts filled with
    trained_on: str = ""  # data set description
    steps: int = 0
    epochs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.input_kind not in INPUT_KINDS:
            raise ValueError(f"input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        self.palette = [
            c if isinstance(c, LabelClass) else LabelClass(int(c["id"]), str(c["name"]), tuple(c["color"]))
            for c in self.palette
        ]
        self.palette = [LabelClass(c.id, c.name, tuple(int(v) for v in c.color)) for c in self.palette]


@dataclass
class TrainConfig:
    """Hyper-parameters and bookkeeping of one training run (paper defaults)."""

    epochs: int = 200
    steps: int = 0  # if > 0, stop after this many optimizer steps instead of `epochs`
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_l1: float = 100.0
    decay_from: float = 0.5  # fraction of training after which lr decays linearly to 0; 1 = off
    direction: str = "AtoB"
    load_size: int = 0  # resize before the random crop; 0 -> image_size * 286 / 256
    no_flip: bool = False
    val_fraction: float = 0.1  # used only when the data has no val/ split
    val_max: int = 200  # validate on at most this many pairs per epoch
    seed: int = 0
    save_every: int = 1  # epochs between checkpoints (and at the end)
    sample_every: int = 1  # epochs between sample grids
    bn_images: int = 256  # training images used to re-estimate BatchNorm statistics before saving
    workers: int = -1  # data-loader processes; -1 -> automatic
    precision: str = "auto"  # "auto" | "fp32" | "bf16" | "fp16"
    device: str = "auto"
    outlines: bool = False  # the data is photos only: make the inputs with the outline extractor
    photo_aspect: float = 0.0  # with outlines: restore squashed photos to this width/height first
    input_kind: str = "auto"  # "auto" | "sketch" | "labels" | "image"

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if self.epochs < 1 and self.steps < 1:
            raise ValueError("train for at least one epoch or one step")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError("val_fraction must be in [0, 1)")
        if not 0.0 <= self.decay_from <= 1.0:
            raise ValueError("decay_from must be in [0, 1]")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ValueError(f"unknown precision {self.precision!r}")


def from_dict(cls, data: dict[str, Any]):
    """Build a dataclass from a dict, ignoring keys this version does not know."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


__all__ = ["ModelConfig", "ModelInfo", "LabelClass", "TrainConfig", "asdict", "from_dict"]
