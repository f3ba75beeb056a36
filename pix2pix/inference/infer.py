"""Inference: a loaded, cached generator that turns a PIL image into a PIL image.

The fast path is chosen for the hardware: BatchNorm folded into the convolutions and
channels-last memory everywhere; the weights in bf16 where that is measured faster and
moves the output little (CPUs with native bf16), fp16/bf16 on CUDA GPUs. Where bf16 moves
it too far, bf16 in the inner levels alone is the next candidate (:mod:`pix2pix.inference.mixed`).
``tests/test_infer.py`` checks it against plain fp32 within a stated tolerance.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from ..config import ModelConfig, ModelInfo
from .fastpath import AGREE_TOL, auto_path, machine_key, remembered, shape_key
from ..hardware import Precision, pick_device, resolve_precision
from ..errors import Superseded
from ..training.hints import from_image as hint_tensor
from ..images.imaging import ImageReadError, to_pil, to_rgb, to_tensor
from ..catalog import WEIGHTS_FILE, resolve_model
from ..io import load_pretrained
from .mixed import inner_in
from ..models import dropout_layers, extra_layers
from ..images.palette import snap_to_palette
from .rewrite import fold_batchnorm, has_resizes, resize_as_transposed
from ..images.page import Page
from ..images.sketch import Frame, drawn_region, frame_image, normalize_sketch

# Fast path vs fp32, mean absolute difference on the [-1, 1] output scale: the bound the
# tests hold the reduced-precision paths to (bf16 keeps ~3 significant digits).
FAST_PATH_TOLERANCE = {"fp32": 1e-4, "bf16": 0.03, "fp16": 0.01, "bf16-inner": AGREE_TOL}
SUBPIXEL_UP_TO = 4  # a decoder conv with at most this many output channels (an image: RGB) may run sub-pixel


@dataclass(frozen=True)
class Prepared:
    """An input exactly as the model takes it: the image (RGB, the model's size) and, for a
    hint model given hints, the hint layer framed like it (RGBA, same size)."""

    image: Image.Image
    hints: Image.Image | None = None
    left_out: dict[str, int] = field(default_factory=dict)  # of a page, by kind: not part of the drawing
    what: str = ""  # for a class model: the class it is told ("": not told, it guesses)

    def said(self) -> str:
        """What preparing left out of the page, as a sentence ("" when nothing)."""
        return Page(None, self.left_out).sentence()


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
        self.format = Precision(resolve_precision(precision, self.device))
        generator = generator.eval()
        self.fused = precision != "fp32"  # fp32 alone is the plain reference: the model as trained
        if self.fused:
            generator = fold_batchnorm(generator)
        self._lock = threading.Lock()
        self.form = ""  # the form of the model that runs: "" is as trained
        # Each form is made on first use (a copy of the model, ~85 ms): with the choice
        # cached, a start makes only the one that runs.
        self._makers = {"": lambda: generator}
        if self.fused and has_resizes(generator):
            self._makers["transposed"] = lambda: resize_as_transposed(generator)
            # and the image head as a sub-pixel conv: faster on some CPUs, so timed as well
            self._makers["subpixel"] = lambda: resize_as_transposed(generator, subpixel_up_to=SUBPIXEL_UP_TO)
        self._forms: dict[str, nn.Module] = {}
        self._nets: dict = {}  # (precision, form) -> that form in that number format
        if precision == "auto" or len(self._makers) > 1:  # by measuring this model here (cached), not by the CPU's flags
            self.format, self.form = auto_path(self.device, f"infer {shape_key(cfg)}", self._timed_forward,
                                               forms=tuple(self._makers), formats=None if precision == "auto"
                                               else [self.format], deviation=self._known_deviation,
                                               inner=hasattr(generator, "down"))
        self.generator = self._net(self.format, self.form)
        self._forms = {self.form: self.generator} if self.dtype is None else {}  # the rest go
        self._nets, self._makers = {}, {}
        self._stop = None  # while run() runs: says whether its caller has stopped waiting
        self._dropouts = dropout_layers(self.generator)  # found once, not by a walk of the model per call
        for block in [*getattr(self.generator, "down", ()), *getattr(self.generator, "up", ())]:
            block.register_forward_pre_hook(lambda *_: self._check_stop())  # a function: the model stays copyable

    def _set_dropout(self, enabled: bool) -> None:
        for m in self._dropouts:
            m.train(enabled)

    def _check_stop(self) -> None:
        """Between the U-Net's blocks: a request nobody waits for any more ends here, so a
        newer drawing waits a block (a millisecond or two) instead of a whole image."""
        if self._stop is not None and self._stop():
            raise Superseded()

    def _ready(self, generator: nn.Module) -> nn.Module:
        generator = generator.to(self.device, memory_format=torch.channels_last).eval()
        for p in generator.parameters():
            p.requires_grad_(False)
        return generator

    def _net(self, precision: Precision, form: str) -> nn.Module:
        """One form of the model with its weights in ``precision``. A model stored in the number
        format it runs in, rather than cast op by op under autocast, spares every call the
        casting of all its weights: 1.7x plain fp32 instead of 1.46x on a 2-core AVX-512 CPU."""
        if form not in self._forms:
            self._forms[form] = self._ready(self._makers[form]())
        if precision.dtype is None:
            return self._forms[form]
        if (precision, form) not in self._nets:
            net = self._forms[form]
            net = inner_in(net, precision.dtype) if precision.inner else copy.deepcopy(net).to(precision.dtype)
            self._nets[precision, form] = net
        return self._nets[precision, form]

    def _timed_forward(self, precision: Precision, form: str = "", x: torch.Tensor | None = None,
                       hints: torch.Tensor | None = None):
        """One forward pass in ``precision`` through one form of the model (of a blank input
        unless given), for choosing the fast path."""
        s = self.size
        net = self._net(precision, form)
        if x is None:
            x = torch.zeros(1, self.cfg.in_channels, s, s, device=self.device).to(memory_format=torch.channels_last)
            hints = extra_layers(self.cfg, s)
            hints = None if hints is None else hints.to(self.device)
        x = x.to(_input_dtype(precision))

        @torch.inference_mode()
        def forward():
            out = net(x) if hints is None else net(x, hints)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            return out

        return forward

    def _known_deviation(self, precision: Precision) -> float:
        """:meth:`_deviation`, measured once per weights file (its path, size and time) on a
        machine: a cold start then skips the model's two test runs and its bf16 copy."""
        weights = self.path / WEIGHTS_FILE if self.path is not None else None
        if weights is None or not weights.is_file():
            return self._deviation(precision)
        st = weights.stat()
        key = (f"{machine_key()}|deviation {precision.name}|{weights.resolve()}|{st.st_size}|"
               f"{st.st_mtime_ns}")
        return remembered(key, lambda: self._deviation(precision))

    def _deviation(self, precision: Precision) -> float:
        """Mean |output in ``precision`` - output in fp32| on a drawing: a white canvas with a
        dark frame and a cross, and, for a hint model, one colour patch."""
        s = self.size
        x = torch.ones(1, self.cfg.in_channels, s, s, device=self.device)
        x[..., s // 4:3 * s // 4, s // 4:3 * s // 4] = -1
        x[..., s // 4 + 3:3 * s // 4 - 3, s // 4 + 3:3 * s // 4 - 3] = 1
        x[..., s // 2 - 1:s // 2 + 1, :] = x[..., :, s // 2 - 1:s // 2 + 1] = -1
        hints = None
        if self.takes_hints:
            hints = torch.zeros(1, self.cfg.hint_channels, s, s, device=self.device)
            hints[:, :, s // 3:s // 3 + 8, s // 3:s // 3 + 8] = torch.tensor([0.6, -0.4, -0.4, 1.0]).view(1, 4, 1, 1)
        hints = extra_layers(self.cfg, s, 1, hints, [0] if self.cfg.classes else None)
        hints = None if hints is None else hints.to(self.device)
        with torch.inference_mode():
            x = x.to(memory_format=torch.channels_last)
            outputs = [self._timed_forward(p, self.form, x, hints)() for p in (Precision(), precision)]
        return (outputs[0].float() - outputs[1].float()).abs().mean().item()

    @classmethod
    def load(cls, ref: str | Path, *, device: str = "auto", precision: str = "auto") -> "Sketch2Image":
        generator, cfg, info = load_pretrained(ref)
        return cls(generator, cfg, info, device=device, precision=precision, path=resolve_model(ref))

    @property
    def size(self) -> int:
        return self.cfg.image_size

    @property
    def dtype(self) -> torch.dtype | None:
        """Of the weights, or of the inner ones (``format.inner``); None: fp32."""
        return self.format.dtype

    @property
    def precision(self) -> str:
        return self.format.name

    @property
    def takes_hints(self) -> bool:
        return self.cfg.hint_channels > 0

    @property
    def classes(self) -> list[str]:
        """What a class model can be told a drawing shows (empty: it is never told)."""
        return list(self.cfg.classes)

    def prepare(self, image: Image.Image, hints: Image.Image | None = None, *, raw: bool = False,
                keep_everything: bool = False, what: str | None = None) -> Prepared:
        """Any image (and hint layer) -> exactly what this model takes: the one place an
        input is prepared.

        Sketch models: the drawing is normalized (cropped to its content, lines cleaned up
        and set to the pen width; ``raw`` skips that). Label models: colours snapped to the
        palette after a nearest-neighbour resize, so no blended colours. Then RGB on white
        at the model's square size. ``hints`` (RGBA in the same pixel coordinates as
        ``image``: colour where painted, transparent elsewhere) goes through exactly the
        same crop and resize, so a hint painted inside a drawn shape stays inside it; models
        without hint channels ignore it. A sketch on a page loses what a person would not
        count as part of the drawing (notes, a border, swatches, specks), said in
        ``left_out``, unless ``keep_everything``. ``what``: the class a class model is told
        (one of :attr:`classes`; None or "": not told, the model guesses; ignored by others)."""
        what = (what or "").strip().lower() if self.cfg.classes else ""
        if what and what not in self.cfg.classes:
            raise ValueError(f"This model knows {', '.join(self.cfg.classes)}; not {what!r}.")
        s = self.size
        frame = None  # the drawing's crop; None: the whole image, stretched to the square
        left_out: dict[str, int] = {}
        if self.info.input_kind == "labels" and self.info.palette:
            seen = snap_to_palette(to_rgb(image).resize((s, s), Image.Resampling.NEAREST), self.info.palette)
        elif self.info.input_kind == "sketch" and not raw:
            seen, frame = normalize_sketch(image, s, return_frame=True, page=not keep_everything, left_out=left_out)
            seen = to_rgb(seen)
        else:
            seen = to_rgb(image)
            seen = seen if seen.size == (s, s) else seen.resize((s, s), Image.Resampling.BICUBIC)
        if hints is None or not self.takes_hints:
            return Prepared(seen, left_out=left_out, what=what)
        if hints.size != image.size:
            raise ImageReadError(f"The colour hints are {hints.width}x{hints.height} but the sketch is "
                                 f"{image.width}x{image.height}: paint them on an image of the sketch's size.")
        return Prepared(seen, frame_hints(hints, frame, s), left_out, what)

    def generate(self, prepared: Prepared, *, seed: int | None = None, stop=None) -> Image.Image:
        """The image for an input that :meth:`prepare` made; ``stop`` as for :meth:`run`."""
        image = prepared.image
        if image.size != (self.size, self.size) or image.mode != "RGB":
            raise ValueError(f"generate() takes the output of prepare(): an RGB {self.size}x{self.size} image, "
                             f"got {image.mode} {image.width}x{image.height}")
        hint = hint_tensor(prepared.hints, self.size)[None] if self.takes_hints else None
        cls = [prepared.what] if prepared.what else None
        return to_pil(self.run(to_tensor(image).unsqueeze(0), seed, hints=hint, stop=stop, cls=cls)[0])

    @torch.inference_mode()
    def run(self, batch: torch.Tensor, seed: int | None = None, hints: torch.Tensor | None = None,
            stop=None, cls: list | torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, S, S) in [-1, 1] [and hints (B, 4, S, S)] -> (B, C, S, S) in [-1, 1], float32 on the CPU.
        ``cls``: for a class model, each drawing's class (a name or index; -1 or None: not told).

        ``stop()``, if given, is asked between the network's blocks; once it says True the
        run ends with :class:`~pix2pix.errors.Superseded`."""
        hints = hints if self.takes_hints else None
        if hints is not None and self.info.input_kind == "sketch":
            hints = hints_inside(batch, hints)
        batch = batch.to(self.device, _input_dtype(self.format), memory_format=torch.channels_last)
        if self.cfg.classes:
            hints = extra_layers(self.cfg, batch.shape[-1], batch.shape[0], hints, cls)
        if hints is not None:
            hints = hints.to(self.device, memory_format=torch.channels_last)
        with self._lock:
            noise = seed is not None
            self._set_dropout(noise)
            self._stop = stop
            try:
                with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                    if noise:
                        torch.manual_seed(seed)
                    out = self.generator(batch) if hints is None else self.generator(batch, hints)
            finally:
                self._stop = None
                self._set_dropout(False)
        return out.float().cpu().contiguous()

    def __call__(self, image: Image.Image, hints: Image.Image | None = None, *, seed: int | None = None) -> Image.Image:
        """prepare, then generate: any image (and hint layer) in, the model's image out."""
        return self.generate(self.prepare(image, hints), seed=seed)


def hints_inside(sketches: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
    """The colour hints (B, 4, S, S) with what lies outside each drawn object cleared (see
    :func:`~pix2pix.images.sketch.drawn_region`): a broad stroke that runs over the outline
    colours the object, and the background stays white. Models learn this from their hint
    sampling, but not fully: on held-out items, three broad strokes kept 57 % of the object's
    shape (IoU) with the spill and 83 % without."""
    if not hints[:, -1].any():
        return hints
    ink = (sketches.detach().float().mean(1) < 0).cpu().numpy()
    region = torch.from_numpy(np.stack([drawn_region(m) for m in ink]))[:, None]
    return hints * region.to(hints.device, hints.dtype)


def _input_dtype(precision: Precision) -> torch.dtype:
    """What the model's input is cast to: fp32 where the outer blocks stay fp32."""
    return torch.float32 if precision.dtype is None or precision.inner else precision.dtype


def frame_hints(layer: Image.Image, frame: Frame | None, size: int) -> Image.Image:
    """A hint layer cropped and resized exactly as its sketch was (``frame`` None: the whole
    layer, stretched to the square). Box-averaged with premultiplied alpha (Pillow's RGBA
    resize): alpha becomes the painted fraction of each model pixel, so a brush stroke
    thinner than one of them still arrives, in its own colour, not blended toward black."""
    layer = layer.convert("RGBA")
    if frame is None:
        return layer.resize((size, size), Image.Resampling.BOX)
    return frame_image(layer, frame, size, fill=(0, 0, 0, 0), resample=Image.Resampling.BOX)


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
