"""Typed configuration: the single source of truth for models and training runs.

``asdict()`` of these goes into a saved model's ``config.json`` and into every checkpoint,
so a model can always be rebuilt from what is on disk without any code-side defaults.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import Pix2PixError

DIRECTIONS = ("AtoB", "BtoA")
INPUT_KINDS = ("sketch", "labels", "image")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
UPSAMPLES = ("transpose", "resize")
HINT_CHANNELS = 4  # colour hints: RGB where painted (0 elsewhere) and a 0/1 mask
GAN_LOSSES = ("bce", "hinge")
DIFFAUGMENT_PARTS = ("color", "translation", "cutout")


class ConfigError(Pix2PixError, ValueError):
    """A configuration value out of range; the message names the setting."""


def option(default: Any, help: str, *, choices: tuple | None = None, flag: str | None = None,
           group: str = "", label: str = "") -> Any:
    """A config field that also describes itself: the command line and the app's forms read
    its default, ``choices``, ``help`` and ``label`` from here instead of restating them.
    ``flag`` overrides the derived ``--field-name``; ``group`` is the ``--help`` section."""
    meta = {"help": help, "choices": choices, "flag": flag, "group": group, "label": label}
    return field(default=default, metadata=meta)


@dataclass
class ModelConfig:
    """Architecture of the generator/discriminator pair (pix2pix, Isola et al. 2017)."""

    in_channels: int = 3
    out_channels: int = 3
    ngf: int = option(64, "generator width: filters in the first encoder layer (32 trains well on a CPU)",
                      group="model", label="Generator width (ngf)")
    ndf: int = option(64, "discriminator width (smaller trains faster)", group="model",
                      label="Discriminator width (ndf)")
    n_layers_d: int = 3  # 3 -> the 70x70 PatchGAN
    image_size: int = option(256, "image size, a power of two (the U-Net halves it log2(size) times)",
                             flag="--size", group="model")
    dropout: float = 0.5  # in the three innermost decoder blocks
    upsample: str = option("transpose", "decoder upsampling: transpose (the paper's 4x4 transposed convolutions) or "
                           "resize (nearest-neighbour x2, then a 3x3 convolution: no checkerboard artefacts)",
                           choices=UPSAMPLES, group="model")
    hint_channels: int = 0  # 4 for a colour-hint model (hint RGB + mask beside the input), else 0
    classes: list[str] = field(default_factory=list)  # a class model: one input layer per class it is told

    def __post_init__(self) -> None:
        _check_types(self)
        _check_choices(self)
        _at_most(self, ngf=1024, ndf=1024, image_size=4096, n_layers_d=8, in_channels=64, out_channels=64)
        if self.hint_channels not in (0, HINT_CHANNELS):
            raise ConfigError(f"hint_channels must be 0 or {HINT_CHANNELS}, got {self.hint_channels}")
        if self.image_size < 32 or self.image_size & (self.image_size - 1):
            raise ConfigError(f"the image size must be a power of two >= 32, got {self.image_size}")
        _at_least(self, in_channels=1, out_channels=1, ngf=1, ndf=1, n_layers_d=1)
        self.classes = check_classes(self.classes)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout:g}")

    @property
    def num_downs(self) -> int:
        return int(math.log2(self.image_size))

    @property
    def extra_channels(self) -> int:
        """Input layers beside the drawing: the colour hints, then one per class."""
        return self.hint_channels + len(self.classes)


MAX_CLASSES = 16


def check_classes(classes) -> list[str]:
    """Class names as a model keeps them: distinct, plain words, at most :data:`MAX_CLASSES`;
    a comma-separated string is split."""
    if isinstance(classes, str):
        classes = [c for c in (part.strip() for part in classes.split(",")) if c]
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise ConfigError(f"classes must be a list of names, got {classes!r}")
    classes = [c.strip().lower() for c in classes]
    if len(set(classes)) != len(classes) or not all(c.replace("-", "").replace("_", "").isalnum() for c in classes):
        raise ConfigError(f"class names must be distinct words (letters, digits, - or _), got {', '.join(classes)}")
    if len(classes) > MAX_CLASSES:
        raise ConfigError(f"at most {MAX_CLASSES} classes, got {len(classes)}")
    return classes


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
            raise ConfigError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.input_kind not in INPUT_KINDS:
            raise ConfigError(f"input_kind must be one of {INPUT_KINDS}, got {self.input_kind!r}")
        self.palette = [
            c if isinstance(c, LabelClass) else LabelClass(int(c["id"]), str(c["name"]), tuple(c["color"]))
            for c in self.palette
        ]
        self.palette = [LabelClass(c.id, c.name, tuple(int(v) for v in c.color)) for c in self.palette]


@dataclass
class TrainConfig:
    """Hyper-parameters and bookkeeping of one training run (paper defaults)."""

    epochs: int = option(200, "epochs to train (with --resume: extend the run to this many)", group="length",
                         label="Epochs")
    steps: int = option(0, "optimizer steps to train instead of epochs (0: use --epochs)", group="length",
                        label="Steps")
    minutes: float = option(0.0, "train for about this many minutes instead of --epochs (0: off): the run is timed "
                                 "over its first minute, its length in steps is set from that speed, and the "
                                 "learning-rate decay follows it; --steps, if given, wins", group="length",
                            label="Minutes")
    batch_size: int = option(1, "pairs per optimizer step", group="optimisation", label="Batch size")
    lr: float = option(2e-4, "Adam learning rate of both networks", group="optimisation", label="Learning rate")
    beta1: float = option(0.5, "Adam beta1", group="optimisation")
    beta2: float = option(0.999, "Adam beta2", group="optimisation")
    lambda_l1: float = option(100.0, "weight of the L1 loss against the GAN loss", group="optimisation")
    decay_from: float = option(0.5, "fraction of training after which the learning rate decays linearly to 0 "
                                    "(1: constant)", group="optimisation")
    precision: str = option("auto", "autocast precision (auto: the fastest this machine runs well)",
                            choices=PRECISIONS, group="optimisation")
    device: str = option("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:1 or mps", group="optimisation")
    seed: int = option(0, "seed of the initial weights, the data order and the augmentation", group="optimisation")
    workers: int = option(-1, "data-loader processes (-1: the faster of none and a few, tried in the run's first steps "
                              "and remembered for this machine)", group="optimisation")
    compile: str = option("auto", "torch.compile both networks: auto (timed once on this machine; taken for runs long "
                                  "enough to pay for building it), on or off", choices=("auto", "on", "off"),
                          group="optimisation")
    direction: str = option("AtoB", "AtoB: the A side (left half, A/ folder) is the input", choices=DIRECTIONS,
                            group="data", label="Direction")
    load_size: int = option(0, "resize before the random crop (0: image size * 286 / 256)", group="data")
    no_flip: bool = option(False, "no random horizontal flips", group="data")
    val_fraction: float = option(0.1, "fraction held out for validation when the data has no val/ folder",
                                 group="data", label="Validation fraction")
    val_max: int = option(200, "validate on at most this many pairs", group="data")
    outlines: bool = option(False, "the data holds photos only: draw the inputs as outlines from them", group="data",
                            label="Photos only: draw the inputs as outlines from the photos")
    photo_aspect: float = option(0.0, "with --outlines: restore squashed photos to this width/height first",
                                 group="data")
    input_kind: str = option("auto", "what the inputs are (auto: detect from the data)",
                             choices=("auto", *INPUT_KINDS), group="data", label="The inputs are")
    save_every: int = option(1, "epochs between checkpoints", group="outputs")
    save_minutes: float = option(0.0, "also save a checkpoint (and the model) every this many minutes, mid-epoch too "
                                      "(0: off): a long epoch on a CPU then loses little to a kill", group="outputs")
    sample_every: int = option(1, "epochs between validation and sample grids", group="outputs")
    bn_images: int = option(256, "training images used to re-estimate BatchNorm statistics before saving",
                            group="outputs")
    hints: bool = option(False, "train a colour-hint model: hints are sampled from each target photo, none for "
                              "some pairs (with --init from a model without hints, its new input weights start at "
                              "zero, so it starts as that model)", group="recipe", label="Colour hints")
    ema: float = option(0.0, "decay of an exponential moving average of the generator's weights, used for "
                             "validation, samples and the saved model (0: off; 0.999 averages about the last "
                             "1,000 steps)", group="recipe")
    feature_matching: float = option(0.0, "weight of the discriminator feature-matching loss (pix2pixHD: 10; 0: off)",
                                     group="recipe")
    gan_loss: str = option("bce", "adversarial loss: bce (the paper's, non-saturating) or hinge", choices=GAN_LOSSES,
                           group="recipe")
    diffaugment: str = option("", "DiffAugment of D's inputs, real and generated alike: comma-separated parts of "
                                  "color,translation,cutout ('': off)", group="recipe")
    spectral_norm: bool = option(False, "spectral normalization on every conv of D (and no BatchNorm in D)",
                                 group="recipe")
    classes: str = option("", "a class channel: comma-separated names of what the pairs show (e.g. shoe,bag,flat,"
                              "figure), read from the data's labels (a source's \"class\" in mix.json, or labels.csv "
                              "beside the images); pairs of another or no class, and a share of the others, are shown as "
                              "unknown, so the model also guesses when not told ('': off)", group="recipe")
    grow: bool = option(False, "progressive growing: add a U-Net level to the --init model and train at twice its "
                               "image size (a run at --size 128 first, then this one at 256); the new level "
                               "starts with no say in the output", group="recipe")
    d_scales: int = option(1, "discriminators: 1 (the paper's PatchGAN) or 2 (a second one at half resolution, "
                              "as pix2pixHD)", group="recipe")
    r1: float = option(0.0, "weight of the R1 penalty on D's gradient at real pairs (0: off; 1-10 typical)",
                       group="recipe")
    r1_every: int = option(16, "apply R1 every this many steps, weighted up as much (lazy regularization)",
                           group="recipe")

    def __post_init__(self) -> None:
        _check_types(self)
        _check_choices(self)
        _at_least(self, batch_size=1, epochs=0, steps=0, save_every=1, sample_every=1, val_max=0, bn_images=0,
                  load_size=0, workers=-1, photo_aspect=0.0, minutes=0.0, save_minutes=0.0)
        _at_most(self, batch_size=4096, epochs=1_000_000, steps=10**9, workers=64, minutes=1_000_000.0)
        if self.epochs < 1 and self.steps < 1 and not self.minutes > 0:
            raise ConfigError("train for at least one epoch, one step or a few minutes")
        _at_least(self, lr=0.0, val_fraction=0.0, decay_from=0.0)
        if not self.lr > 0:
            raise ConfigError(f"the learning rate must be positive, got {self.lr:g}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"the validation fraction must be in [0, 1), got {self.val_fraction:g}")
        if not 0.0 <= self.decay_from <= 1.0:
            raise ConfigError(f"decay_from must be in [0, 1], got {self.decay_from:g}")
        _at_least(self, ema=0.0, feature_matching=0.0, r1=0.0, r1_every=1, d_scales=1)
        _at_most(self, d_scales=3, r1_every=10_000)
        parts = [p.strip() for p in self.diffaugment.split(",") if p.strip()]
        if unknown := set(parts) - set(DIFFAUGMENT_PARTS):
            raise ConfigError(f"DiffAugment knows {', '.join(DIFFAUGMENT_PARTS)}; not {', '.join(sorted(unknown))}")
        self.classes = ",".join(check_classes(self.classes))
        if not self.ema < 1.0:
            raise ConfigError(f"ema must be below 1 (0: off), got {self.ema:g}")
        if self.outlines and self.direction != "AtoB":
            raise ConfigError("outlines are drawn from the photos, so the direction must be AtoB")


# Named sets of settings (`train --recipe NAME`); flags given explicitly win over them.
# "paper": Isola et al. as published (what the tutorial teaches). "clean": what the ablation
# on the fashion data chose (README, "Colour hints and the training recipe"): the
# resize-convolution decoder (no checkerboard; validation L1 -4 %, SSIM +7 % at equal steps)
# and a moving average of G (neutral at 800 steps, kept for longer runs). Feature matching
# stays available but off: at equal steps it cost L1 and SSIM there. "v2": clean, with the
# two discriminator options that won the equal-time ablation on the six fashion sources
# (README, "The recipe, chosen at equal time"): DiffAugment of D's inputs (rainbow speckle
# 2.26 -> 1.56 x real photos, L1 -4 %) and spectral normalization in D (L1 -5 %, broad
# strokes -10 %, shape IoU 0.871 -> 0.889). Hinge loss changed nothing; it stays off.
RECIPES: dict[str, dict[str, Any]] = {
    "paper": {"upsample": "transpose", "ema": 0.0, "feature_matching": 0.0},
    "clean": {"upsample": "resize", "ema": 0.999, "feature_matching": 0.0},
    "v2": {"upsample": "resize", "ema": 0.999, "feature_matching": 0.0,
           "diffaugment": "color,translation,cutout", "spectral_norm": True},
}


def _called(cfg, name: str) -> str:
    """How a message names a field: its form label where it has one ("Learning rate (lr)"),
    so both the Fine-tune form and the command line recognise it; else its name."""
    label = _field(type(cfg), name).metadata.get("label", "")
    spaced = name.replace("_", " ")
    if not label or len(label) > 40:
        return spaced
    return label if spaced.lower() in label.lower() else f"{label} ({spaced})"


def _check_types(cfg) -> None:
    """Each field holds what its default is: a whole number where an int is expected (3.0
    from a form becomes 3; 3.5 or "3" are refused), a number, a string or a yes/no, so a
    hand-edited checkpoint or config cannot smuggle in ``epochs="10"``."""
    for f in dataclasses.fields(cfg):
        value, kind = getattr(cfg, f.name), type(f.default)
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int and isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            setattr(cfg, f.name, int(value))
            ok = True
        elif kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        elif kind is str:
            ok = isinstance(value, str)
        else:
            continue
        if not ok:
            what = {bool: "yes or no", int: "a whole number", float: "a finite number", str: "text"}[kind]
            raise ConfigError(f"{_called(cfg, f.name)} must be {what}, got {value!r}")


def _at_most(cfg, **highs: float) -> None:
    for name, high in highs.items():
        if getattr(cfg, name) > high:
            raise ConfigError(f"{_called(cfg, name)} must be at most {high:g}, got {getattr(cfg, name)!r}")


def _check_choices(cfg) -> None:
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        if choices and getattr(cfg, f.name) not in choices:
            raise ConfigError(f"{f.name} must be one of {', '.join(map(str, choices))}; got {getattr(cfg, f.name)!r}")


def _at_least(cfg, **lows: float) -> None:
    for name, low in lows.items():
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{_called(cfg, name)} must be a number, got {value!r}")
        if value < low:
            raise ConfigError(f"{_called(cfg, name)} must be at least {low:g}, got {getattr(cfg, name)!r}")


def default(cls, name: str) -> Any:
    """The default of one config field (what a form starts with)."""
    return _field(cls, name).default


def describe(cls, name: str) -> dict[str, Any]:
    """A field's ``help``, ``choices``, ``label``, ``flag`` and ``group`` as written in :func:`option`."""
    return dict(_field(cls, name).metadata)


def _field(cls, name: str) -> dataclasses.Field:
    try:
        return cls.__dataclass_fields__[name]
    except KeyError:
        raise AttributeError(f"{cls.__name__} has no field {name!r}") from None


def from_dict(cls, data: dict[str, Any]):
    """Build a dataclass from a dict, ignoring keys this version does not know."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


__all__ = ["MAX_CLASSES", "ConfigError", "LabelClass", "ModelConfig", "ModelInfo", "TrainConfig", "asdict",
           "check_classes", "default", "describe", "from_dict", "option"]
