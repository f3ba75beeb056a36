"""Inference: a loaded, cached generator that turns a PIL image into a PIL image.

The fast path is chosen for the hardware: BatchNorm folded into the convolutions and
channels-last memory everywhere; bf16 autocast on CPUs with native bf16; fp16/bf16 on
CUDA GPUs. ``tests/test_infer.py`` checks it against plain fp32 within a stated tolerance.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path

import torch
import torch.nn as nn
from PIL import Image

from .config import ModelConfig, ModelInfo
from .hardware import pick_device, precision_name, resolve_precision
from .imaging import to_pil, to_rgb, to_tensor
from .catalog import resolve_model
from .io import load_pretrained
from .models import set_dropout
from .palette import snap_to_palette

# Fast path vs fp32, mean absolute difference on the [-1, 1] output scale: the bound the
# tests hold the reduced-precision paths to (bf16 keeps ~3 significant digits).
FAST_PATH_TOLERANCE = {"fp32": 1e-4, "bf16": 0.03, "fp16": 0.01}


def _fold(conv: nn.Module, bn: nn.BatchNorm2d) -> nn.Module:
    """conv -> BN(eval) as one conv with adjusted weights and bias (exact up to rounding)."""
    conv = copy.deepcopy(conv)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    out_dim = 0 if isinstance(conv, nn.Conv2d) else 1  # ConvTranspose weights are (in, out, k, k)
    shape = [1] * conv.weight.dim()
    shape[out_dim] = -1
    conv.weight = nn.Parameter(conv.weight.detach() * scale.view(shape), requires_grad=False)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach(), requires_grad=False)
    return conv


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every (conv, BatchNorm) pair inside a Sequential fused.

    Valid for eval-mode BatchNorm only, which is how inference runs; dropout layers stay,
    so the seeded test-time noise still works on the fused model.
    """
    module = copy.deepcopy(module)
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(seq[i + 1], nn.BatchNorm2d):
                seq[i] = _fold(seq[i], seq[i + 1])
                seq[i + 1] = nn.Identity()
    return module


class Sketch2Image:
    """A generator on its device, ready for images of any size and mode.

    ``__call__`` is deterministic by default; ``seed=N`` switches on the paper's
    test-time noise (dropout) with that seed, so each seed gives a different variation.
    Thread-safe: calls on one instance are serialized.
    """

    def __init__(
        self,
        generator: nn.Module,
        cfg: ModelConfig,
        info: ModelInfo,
        *,
        device: str | torch.device = "auto",
        precision: str = "auto",
        path: Path | None = None,
    ):
        self.cfg, self.info, self.path = cfg, info, path
        self.device = pick_device(str(device)) if not isinstance(device, torch.device) else device
        self.dtype = resolve_precision(precision, self.device)
        generator = generator.eval()
        if precision != "fp32":
            generator = fold_batchnorm(generator)
        self.fused = precision != "fp32"
        self.generator = generator.to(self.device, memory_format=torch.channels_last).eval()
        for p in self.generator.parameters():
            p.requires_grad_(False)
        self._lock = threading.Lock()

    @classmethod
    def load(cls, ref: str | Path, *, device: str = "auto", precision: str = "auto") -> "Sketch2Image":
        generator, cfg, info = load_pretrained(ref)
        return cls(generator, cfg, info, device=device, precision=precision, path=resolve_model(ref))

    @property
    def size(self) -> int:
        return self.cfg.image_size

    @property
    def precision(self) -> str:
        return precision_name(self.dtype)

    def prepare(self, image: Image.Image, *, raw: bool = False) -> Image.Image:
        """Any image -> exactly what this model takes: the one place an input is prepared.

        Sketch models: the drawing is normalized (cropped to its content, lines cleaned up
        and set to the pen width; ``raw`` skips that). Label models: colours snapped to the
        palette after a nearest-neighbour resize, so no blended colours. Then RGB on white
        at the model's square size."""
        image = to_rgb(image)
        s = self.size
        kind = self.info.input_kind
        if kind == "labels" and self.info.palette:
            return snap_to_palette(image.resize((s, s), Image.Resampling.NEAREST), self.info.palette)
        if kind == "sketch" and not raw:
            from .sketch import normalize_sketch

            image = to_rgb(normalize_sketch(image, s))
        if image.size != (s, s):
            image = image.resize((s, s), Image.Resampling.BICUBIC)
        return image

    def generate(self, prepared: Image.Image, *, seed: int | None = None) -> Image.Image:
        """The image for an input that :meth:`prepare` made (RGB, the model's size)."""
        if prepared.size != (self.size, self.size) or prepared.mode != "RGB":
            raise ValueError(f"generate() takes the output of prepare(): an RGB {self.size}x{self.size} image, "
                             f"got {prepared.mode} {prepared.width}x{prepared.height}")
        return to_pil(self.run(to_tensor(prepared).unsqueeze(0), seed)[0])

    @torch.inference_mode()
    def run(self, batch: torch.Tensor, seed: int | None = None) -> torch.Tensor:
        """(B, C, S, S) in [-1, 1] -> (B, C, S, S) in [-1, 1], float32 on the CPU."""
        batch = batch.to(self.device, memory_format=torch.channels_last)
        with self._lock:
            noise = seed is not None
            set_dropout(self.generator, noise)
            try:
                with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                    if noise:
                        torch.manual_seed(seed)
                    with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
                        out = self.generator(batch)
            finally:
                set_dropout(self.generator, False)
        return out.float().cpu().contiguous()

    def __call__(self, image: Image.Image, *, seed: int | None = None) -> Image.Image:
        """prepare, then generate: any image in, the model's image out."""
        return self.generate(self.prepare(image), seed=seed)

    def many(self, images: list[Image.Image], *, seed: int | None = None, batch_size: int = 8) -> list[Image.Image]:
        out = []
        for i in range(0, len(images), batch_size):
            x = torch.stack([to_tensor(self.prepare(im)) for im in images[i : i + batch_size]])
            out += [to_pil(t) for t in self.run(x, seed)]
        return out


_cache: dict[tuple, Sketch2Image] = {}
_cache_lock = threading.Lock()


def get_model(ref: str | Path, *, device: str = "auto", precision: str = "auto") -> Sketch2Image:
    """Load once, then return the same instance for the same files (keyed by the resolved
    folder and the weights' modification time, so a re-trained model is picked up)."""
    folder = resolve_model(ref)
    weights = folder / "model.safetensors"
    key = (str(folder.resolve()), weights.stat().st_mtime_ns, device, precision)
    with _cache_lock:
        model = _cache.get(key)
        if model is None:
            for old in [k for k in _cache if k[0] == key[0]]:
                del _cache[old]  # an older version of the same model
            model = _cache[key] = Sketch2Image.load(folder, device=device, precision=precision)
        return model


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
