"""A training stage for a borrowed GPU machine: it only runs, and it ends on time.

Packed chunks (:mod:`pix2pix.training.packed`) are decoded once into the card's memory; every
batch is then drawn there (:mod:`pix2pix.training.gpu_augment`), so the GPU never waits on a
CPU. The step is the trainer's own (:class:`~pix2pix.training.objective.Pix2Pix`), in bf16
where the card has it, channels-last, with the batch size chosen by timing a few on a copy of
the networks and ``torch.compile`` kept when it turns out faster within the stage.

Before ``seconds`` have passed (and every ``save_every`` seconds), the stage writes to its
output folder what resuming needs, in files small enough to come back from a lent machine:
G and its moving average in fp16, split under ``split_mb`` each, D in fp16, and ``stage.json``
(steps, images seen, the settings, where the time went). The next stage resumes from that
folder; :func:`export` turns it into a model folder that the app loads and that
``train --init`` continues from on a CPU, D included.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from ..config import ModelConfig, ModelInfo, TrainConfig, from_dict
from ..hardware import pick_device, precision_name, resolve_precision
from ..images.imaging import atomic_write_bytes
from ..io import DISCRIMINATOR_FILE, load_pretrained, save_pretrained
from ..models import extra_layers, with_hint_channels
from .gpu_augment import training_batch
from .objective import Pix2Pix, StepForm
from .packed import decode

log = logging.getLogger(__name__)

STATE_FILE = "stage.json"
BATCHES = (16, 32, 64, 128, 256)
SAVE_MARGIN = 1.25  # the last save starts this many save-durations before the deadline


@dataclass
class StageConfig:
    """What one stage does; ``seconds`` bounds the whole command, decoding and saving included."""

    chunks: list[Path]
    out: Path
    seconds: float = 540.0
    steps: int = 0  # stop after this many steps instead (tests; 0: by the clock)
    resume: Path | None = None  # a stage folder to continue
    init: str | None = None  # a model to start G from (a shipped name, a run or model folder)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(ngf=32, ndf=64, upsample="resize", hint_channels=4))
    batch: int = 0  # 0: the smallest batch within 10 % of the best throughput
    lr: float = 0.0  # 0: 2e-4 x sqrt(batch / 4), at most 6e-4
    ema: float = 0.999
    precision: str = "auto"
    compile: str = "auto"  # auto: timed against eager within the stage
    device: str = "auto"
    seed: int = 0
    save_every: float = 120.0
    split_mb: float = 15.5


def _save_split(tensors: dict[str, torch.Tensor], folder: Path, stem: str, limit: int) -> list[Path]:
    """``tensors`` in fp16 across ``stem-NNN.safetensors`` files of at most ``limit`` bytes each."""
    files, part, size = [], {}, 0

    def flush():
        path = folder / f"{stem}-{len(files):03d}.safetensors"
        atomic_write_bytes(path, save(part))
        files.append(path)

    for k, v in tensors.items():
        v = v.detach().cpu().contiguous()
        v = v.half() if v.is_floating_point() and "running_" not in k else v
        n = v.numel() * v.element_size()
        if part and size + n > limit - 4096:
            flush()
            part, size = {}, 0
        part[k], size = v, size + n
    if part:
        flush()
    for old in folder.glob(f"{stem}-*.safetensors"):  # from an earlier save with more parts
        if old not in files:
            old.unlink()
    return files


def _load_split(folder: Path, stem: str) -> dict[str, torch.Tensor]:
    files = sorted(folder.glob(f"{stem}-*.safetensors"))
    if not files:
        raise FileNotFoundError(f"no {stem}-*.safetensors in {folder}")
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out |= {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(f)).items()}
    return out


class Stage:
    """One stage's networks, data and clock (see the module)."""

    def __init__(self, cfg: StageConfig):
        self.cfg, self.started = cfg, time.time()
        self.timings: dict[str, float] = {}
        self.device = pick_device(cfg.device)
        self.dtype = resolve_precision("bf16" if cfg.precision == "auto" and self.device.type == "cuda"
                                       else "fp32" if cfg.precision == "auto" else cfg.precision,
                                       self.device, training=True)
        self.g = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.state = json.loads((cfg.resume / STATE_FILE).read_text()) if cfg.resume else {}
        self.model_cfg = from_dict(ModelConfig, self.state["model"]) if cfg.resume else cfg.model
        with self._timed("decode"):
            self.data = decode(cfg.chunks).to(self.device)
        if self.data.photos.shape[-1] != self.model_cfg.image_size:
            raise ValueError(f"the chunks are {self.data.photos.shape[-1]} px, the model {self.model_cfg.image_size}")

    def _timed(self, what: str):
        stage = self

        class Clock:
            def __enter__(self):
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                stage.timings[what] = stage.timings.get(what, 0.0) + time.perf_counter() - self.t

        return Clock()

    def left(self) -> float:
        return self.cfg.seconds - (time.time() - self.started)

    def _objective(self, batch: int, lr: float, form: StepForm = StepForm(True, "fused")) -> Pix2Pix:
        tcfg = TrainConfig(batch_size=batch, lr=lr, ema=self.cfg.ema, decay_from=1.0, hints=True, epochs=1)
        generator = None
        if self.cfg.init and not self.cfg.resume:
            generator, self.model_cfg, _ = load_pretrained(self.cfg.init)
            generator = generator.train() if self.model_cfg.hint_channels else with_hint_channels(generator.train())
            self.model_cfg = generator.cfg
        fused = form if self.device.type == "cuda" else replace(form, adam="loop")
        return Pix2Pix(self.model_cfg, tcfg, self.device, generator=generator, amp_dtype=self.dtype, form=fused)

    def _batch(self, n: int) -> tuple[torch.Tensor, ...]:
        """A class model is not told classes here (the chunks carry none): the stage trains
        its guessing, and its class layers' weights stay as they were."""
        idx = torch.randint(0, len(self.data.kind), (n,), generator=self.g, device=self.device)
        a, b, hints = training_batch(self.data.photos[idx], self.data.inputs[idx], self.data.kind[idx], self.g)
        if self.model_cfg.classes:
            hints = extra_layers(self.model_cfg, hints.shape[-1], n, hints)
        return a, b, hints

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def measure_batch(self) -> int:
        """The smallest batch within 10 % of the best images/s, timed on a throwaway copy."""
        if self.cfg.batch or self.cfg.steps:
            return self.cfg.batch or 4
        rates = {}
        with self._timed("measure batch"):
            for b in BATCHES:
                try:
                    trial = self._objective(b, 2e-4)
                    for i in range(5):
                        if i == 2:
                            self._sync()
                            t = time.perf_counter()
                        trial.step(*self._batch(b))
                    self._sync()
                    rates[b] = 3 * b / (time.perf_counter() - t)
                except torch.OutOfMemoryError:
                    break
                finally:
                    trial = None
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
        best = max(rates.values())
        chosen = min(b for b, r in rates.items() if r >= 0.9 * best)
        log.info("batch: %d (%s)", chosen, ", ".join(f"{b}: {r:.0f} img/s" for b, r in rates.items()))
        self.state["batch_rates"] = {str(b): round(r, 1) for b, r in rates.items()}
        return chosen

    def build(self) -> None:
        """The stage's networks: fresh, from ``init``, or as the resumed stage left them."""
        batch = int(self.state.get("batch") or 0) or self.measure_batch()
        lr = self.cfg.lr or float(self.state.get("lr") or 0) or min(6e-4, 2e-4 * math.sqrt(batch / 4))
        self.batch, self.lr = batch, lr
        self.model = self._objective(batch, lr)
        if self.cfg.resume:
            for name, net in (("G", self.model.G), ("G_ema", self.model.G_ema), ("D", self.model.D)):
                net.load_state_dict(_load_split(self.cfg.resume, name))
        self.step = int(self.state.get("step", 0))
        self.images = int(self.state.get("images", 0))

    def _compiled(self, on: bool) -> None:
        m = self.model
        if on:
            m.G_train, m.D_train = torch.compile(m.G), torch.compile(m.D)
            m.D_frozen = m.D_train
        else:
            m.G_train, m.D_train, m.D_frozen = m.G, m.D, m.D

    def _steps(self, n: int) -> float:
        """``n`` training steps; their seconds (device work included)."""
        self._sync()
        t = time.perf_counter()
        for _ in range(n):
            self.model.step(*self._batch(self.batch))
            self.step += 1
            self.images += self.batch
        self._sync()
        seconds = time.perf_counter() - t
        self.timings["train"] = self.timings.get("train", 0.0) + seconds
        return seconds

    def _choose_compile(self, block: int) -> None:
        """auto: a block of eager steps, then compiled ones (the first builds); the faster stays."""
        mode = self.cfg.compile
        if mode == "off" or self.cfg.steps or mode == "auto" and self.device.type != "cuda":
            self.state["compiled"] = False
            return
        self._steps(2)
        eager = self._steps(block) / block
        self._compiled(True)
        t = time.perf_counter()
        self._steps(1)
        self.timings["compile"] = time.perf_counter() - t
        compiled = self._steps(block) / block
        keep = mode == "on" or compiled < eager
        self._compiled(keep)
        self.state["compiled"] = keep
        self.state["step_ms"] = {"eager": round(1000 * eager, 2), "compiled": round(1000 * compiled, 2)}
        log.info("torch.compile: %.1f ms a step against %.1f eager (built in %.0f s): %s", 1000 * compiled,
                 1000 * eager, self.timings["compile"], "kept" if keep else "not kept")

    def run(self) -> dict:
        """Train until ``steps`` or the clock says to save for the last time; returns stage.json."""
        self.build()
        self._choose_compile(block=20)
        block, last_save, save_s = 1, time.time(), 5.0  # a save's seconds: measured from the first one on
        while True:
            if self.cfg.steps and self.step >= self.cfg.steps:
                break
            n = min(block, self.cfg.steps - self.step) if self.cfg.steps else block
            per_step = self.timings.get("train", 0.0) / max(self.step - int(self.state.get("step0", 0)), 1)
            if not self.cfg.steps and self.left() < SAVE_MARGIN * save_s + 2 * per_step * n + 2:
                break
            seconds = self._steps(n)
            block = max(1, min(100, int(2.0 * n / max(seconds, 1e-6))))  # about 2 s between looks at the clock
            if time.time() - last_save > self.cfg.save_every:
                save_s = self.save()
                last_save = time.time()
        self.save()
        return self.state

    def save(self) -> float:
        """What resuming needs, into ``out`` (each file written whole); returns its seconds."""
        t = time.perf_counter()
        out, limit = self.cfg.out, int(self.cfg.split_mb * (1 << 20))
        out.mkdir(parents=True, exist_ok=True)
        m = self.model
        _save_split(m.G.state_dict(), out, "G", limit)
        _save_split(m.G_ema.state_dict(), out, "G_ema", limit)
        _save_split(m.D.state_dict(), out, "D", limit)
        wall = time.time() - self.started
        self.state |= {"step": self.step, "images": self.images, "batch": self.batch, "lr": self.lr,
                       "model": asdict(self.model_cfg), "precision": precision_name(self.dtype),
                       "device": str(self.device), "pairs": len(self.data.kind), "sources": self.data.sources,
                       "seconds": round(wall, 1), "images_per_s": round(self.images_this_stage / max(wall, 1e-9), 1),
                       "busy": round(self.timings.get("train", 0.0) / max(wall, 1e-9), 3),
                       "timings": {k: round(v, 1) for k, v in self.timings.items()}}
        atomic_write_bytes(out / STATE_FILE, (json.dumps(self.state, indent=1) + "\n").encode())
        self.timings["save"] = self.timings.get("save", 0.0) + time.perf_counter() - t
        return time.perf_counter() - t

    @property
    def images_this_stage(self) -> int:
        return self.images - int(self.state.get("images0", 0))


def run_stage(cfg: StageConfig) -> dict:
    """One stage, start to end (see the module); returns what it wrote to ``stage.json``."""
    stage = Stage(cfg)
    stage.state["step0"], stage.state["images0"] = int(stage.state.get("step", 0)), int(stage.state.get("images", 0))
    return stage.run()


def export(stage_dir: Path, model_dir: Path, info: ModelInfo | None = None) -> Path:
    """A stage folder -> a model folder: G's moving average as the model (fp16), and D beside
    it, which ``train --init`` picks up so a CPU run continues the stage's GAN, not a new one."""
    state = json.loads((stage_dir / STATE_FILE).read_text())
    cfg = from_dict(ModelConfig, state["model"])
    from ..models import build_generator

    generator = build_generator(cfg)
    generator.load_state_dict(_load_split(stage_dir, "G_ema"))
    info = info or ModelInfo(input_kind="sketch", steps=int(state["step"]),
                             extra={"gpu_stage_images": int(state["images"])})
    save_pretrained(generator, cfg, info, model_dir, dtype=torch.float16)
    d = _load_split(stage_dir, "D")
    atomic_write_bytes(Path(model_dir) / DISCRIMINATOR_FILE, save({k: v.half() if v.is_floating_point() and "running_" not in k
                                                       else v for k, v in d.items()}))
    return Path(model_dir)
