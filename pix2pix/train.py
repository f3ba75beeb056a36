"""Training: the pix2pix objective (:class:`Pix2Pix`) and the loop around it (:class:`Trainer`).

One step updates D on a detached fake, then freezes D and updates G with the
non-saturating adversarial loss plus lambda * L1 (lambda = 100), D's objective halved, Adam
(2e-4, betas 0.5/0.999), as in the paper and the reference code.

The trainer runs single-process or under ``torchrun`` (DistributedDataParallel, detected
from ``RANK``/``WORLD_SIZE``; rank 0 alone writes files and emits events). A run folder:

    run.json          configuration, data summary            split.json   validation list
    log.jsonl         one line per epoch: losses, val metrics samples/     epoch_NNNN.png grids
    checkpoints/last.pt  everything needed to resume          model/       the generator, safetensors
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader

from .config import ModelConfig, ModelInfo, TrainConfig, from_dict
from .data import (
    DataError,
    DataScan,
    EpochSampler,
    PairedDataset,
    read_palette,
    read_split,
    scan,
    split_validation,
    write_split,
)
from .errors import Pix2PixError
from .hardware import describe, pick_device, resolve_precision
from .imaging import atomic_write_bytes, sample_grid, save_image, to_pil
from .io import load_checkpoint, load_pretrained, save_checkpoint, save_pretrained
from .metrics import MetricAverager, image_metrics
from .models import adversarial_loss, build_discriminator, build_generator
from .progress import Callback, EpochEvent, RunEnd, RunStart, StepEvent

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")


class TrainingError(Pix2PixError, RuntimeError):
    """A run that cannot start or continue; the message is meant for the user."""


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


class Pix2Pix:
    """Generator, discriminator, their optimizers and one training step."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        device: torch.device,
        *,
        generator: nn.Module | None = None,
        amp_dtype: torch.dtype | None = None,
    ):
        self.cfg, self.tcfg, self.device = model_cfg, train_cfg, device
        self.G = (generator or build_generator(model_cfg)).to(device).train()
        self.D = build_discriminator(model_cfg).to(device).train()
        if device.type != "mps":  # faster convolutions on CPU (oneDNN) and GPU (cuDNN)
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        betas = (train_cfg.beta1, train_cfg.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=train_cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=train_cfg.lr, betas=betas)
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        # Set by the trainer under DDP; the step uses the raw D for G's update so no
        # gradient sync hooks run for D's (frozen) parameters there.
        self.G_train, self.D_train = self.G, self.D

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update then one G update on a batch; inputs (B, C, S, S) in [-1, 1]."""
        real_a = real_a.to(self.device, non_blocking=True, memory_format=torch.channels_last)
        real_b = real_b.to(self.device, non_blocking=True, memory_format=torch.channels_last)
        with self.autocast():
            fake_b = self.G_train(real_a)

        # D: real pairs -> 1, generated pairs -> 0; halved, as in the paper.
        set_requires_grad(self.D, True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            pred_fake = self.D_train(real_a, fake_b.detach())
            pred_real = self.D_train(real_a, real_b)
        loss_d_fake = adversarial_loss(pred_fake, real=False)
        loss_d_real = adversarial_loss(pred_real, real=True)
        self.scaler.scale(0.5 * (loss_d_fake + loss_d_real)).backward()
        self.scaler.step(self.opt_D)

        # G: fool D (non-saturating) and stay close to the target in L1.
        set_requires_grad(self.D, False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            pred = self.D(real_a, fake_b)
        loss_g_gan = adversarial_loss(pred, real=True)
        loss_g_l1 = F.l1_loss(fake_b.float(), real_b.float())
        self.scaler.scale(loss_g_gan + self.tcfg.lambda_l1 * loss_g_l1).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        return {"G_GAN": loss_g_gan.detach(), "G_L1": loss_g_l1.detach(), "D_real": loss_d_real.detach(), "D_fake": loss_d_fake.detach()}


def lr_factor(step: int, total: int, decay_from: float) -> float:
    """Constant, then linear decay to zero over the last (1 - decay_from) of training."""
    start = int(total * decay_from)
    if step < start or total <= start:
        return 1.0
    return max(0.0, (total - step) / (total - start))


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def default_workers(n_pairs: int, outlines: bool) -> int:
    """Loader processes: none for small sets or off the main thread (the app trains in a
    thread, where forking is unsafe); otherwise a few, leaving cores for the maths."""
    if threading.current_thread() is not threading.main_thread() or n_pairs < 64:
        return 0
    cpus = os.cpu_count() or 1
    return max(1, min(4 if outlines else 2, cpus // 2))


class Trainer:
    """Trains a pix2pix model on a folder of pairs into a run folder.

    ``Trainer(data, out, model_cfg, train_cfg).fit()`` starts a run; ``Trainer.resume(out)``
    continues one from its last checkpoint. ``stop`` (a ``threading.Event``) ends a run
    cleanly after the current step, keeping a checkpoint and a usable model.
    """

    def __init__(
        self,
        data: str | Path | None,
        out: str | Path,
        model_cfg: ModelConfig | None = None,
        train_cfg: TrainConfig | None = None,
        *,
        init: str | Path | None = None,
        resume: bool = False,
        callbacks: list[Callback] | tuple = (),
        stop: threading.Event | None = None,
        info: ModelInfo | None = None,
        val_list: list[str] | None = None,
    ):
        self.out = Path(out)
        self.data = Path(data) if data is not None else None
        self.model_cfg = model_cfg or ModelConfig()
        self.train_cfg = train_cfg or TrainConfig()
        self.init = init
        self.resume_run = resume
        self.callbacks = list(callbacks)
        self.stop = stop or threading.Event()
        self.info = info
        self.val_list = val_list
        self.extend: dict[str, int] = {}
        self.rank, self.world, self.local_rank = _dist_env()
        self.is_main = self.rank == 0

    @classmethod
    def resume(cls, out: str | Path, *, epochs: int = 0, steps: int = 0, **kwargs) -> "Trainer":
        """Continue the run in ``out``; ``epochs``/``steps`` (if given) extend its length."""
        trainer = cls(None, out, resume=True, **kwargs)
        trainer.extend = {"epochs": epochs, "steps": steps}
        return trainer

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    # ------------------------------------------------------------------ events

    def _emit(self, name: str, *args) -> None:
        if not self.is_main:
            return
        for cb in self.callbacks:
            try:
                getattr(cb, name)(*args)
            except Exception:  # a broken progress display must not kill a long run
                log.exception("callback %s.%s failed", type(cb).__name__, name)

    # ------------------------------------------------------------------ setup

    def _load_resume_state(self) -> dict | None:
        if not self.resume_run:
            if self.checkpoint_path.exists():
                raise TrainingError(
                    f"{self.out} already holds a training run. Use --resume {self.out} to continue it, "
                    "or choose another output folder."
                )
            return None
        if not self.checkpoint_path.exists():
            raise TrainingError(f"Nothing to resume: {self.checkpoint_path} does not exist.")
        state = load_checkpoint(self.checkpoint_path)
        if state.get("version", 0) > CHECKPOINT_VERSION:
            raise TrainingError(f"{self.checkpoint_path} was written by a newer version of this project.")
        saved = from_dict(TrainConfig, state["train_config"])
        # A resumed run keeps its configuration; only its length may be extended.
        self.train_cfg = replace(saved, **{k: v for k, v in self.extend.items() if v})
        self.model_cfg = from_dict(ModelConfig, state["model_config"])
        self.info = from_dict(ModelInfo, state["info"])
        if self.data is None:
            self.data = Path(state["data"])
        return state

    def _scan(self) -> DataScan:
        try:
            result = scan(self.data, outlines=self.train_cfg.outlines)
        except DataError as e:
            raise TrainingError(str(e)) from None
        return result

    def _make_info(self, result: DataScan) -> ModelInfo:
        cfg = self.train_cfg
        base = self.info or ModelInfo()
        kind = cfg.input_kind
        if kind == "auto":
            kind = "labels" if result.labels else "sketch" if cfg.outlines else base.input_kind
        palette = base.palette
        if kind == "labels" and not palette and result.labels:
            palette = read_palette(result)
        counts = ", ".join(f"{len(p)} {s}" for s, p in result.splits.items())
        return replace(
            base,
            name=self.out.name,
            description=base.description or f"Trained on {result.root.name} ({counts})",
            direction=cfg.direction,
            input_kind=kind,
            palette=palette,
            trained_on=f"{result.root.name}: {result.layout}, {counts}",
        )

    def _pair_loader(self, train: bool):
        if not self.train_cfg.outlines:
            return None
        from .pairs import OutlinePairMaker

        maker = OutlinePairMaker(
            size=self.model_cfg.image_size,
            cache_dir=self.out / "cache" / "outlines",
            augment=train,
            aspect=self.train_cfg.photo_aspect or None,
        )
        return lambda pair, rng: maker(pair.a, rng)

    # ------------------------------------------------------------------ run

    def fit(self) -> RunEnd:
        """Train to the end (or until stopped); returns how the run ended."""
        started = time.time()
        own_group = False
        step = epoch = 0
        try:
            if self.world > 1 and not dist.is_initialized():
                backend = "nccl" if torch.cuda.is_available() else "gloo"
                dist.init_process_group(backend)
                own_group = True
            end = self._fit(started)
        except Exception as e:
            step, epoch = getattr(self, "_step", 0), getattr(self, "_epoch", 0)
            end = RunEnd("failed", step, epoch, error=str(e) or type(e).__name__, elapsed_s=time.time() - started)
            self._emit("on_end", end)
            raise
        finally:
            if own_group:
                dist.destroy_process_group()
        self._emit("on_end", end)
        return end

    def _fit(self, started: float) -> RunEnd:
        state = self._load_resume_state()
        cfg = self.train_cfg
        if self.data is None:
            raise TrainingError("No data folder given.")
        if cfg.outlines and cfg.direction != "AtoB":
            raise TrainingError("--outlines makes the inputs from the photos: the direction must be AtoB.")

        device = pick_device(cfg.device)
        if device.type == "cuda" and self.world > 1:
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        amp_dtype = resolve_precision(cfg.precision, device, training=True)
        torch.manual_seed(cfg.seed + self.rank)
        random.seed(cfg.seed + self.rank)

        # Data: detect, split, record the split so a resumed or repeated run uses the same.
        result = self._scan()
        if self.init and self.info is None:
            _, init_cfg, init_info = load_pretrained(self.init)
            self.info = replace(init_info, extra=dict(init_info.extra))
        split_file = self.out / "split.json"
        val_list = self.val_list
        if state is not None and split_file.exists():
            val_list = read_split(split_file)
        try:
            train_pairs, val_pairs = split_validation(result, cfg.val_fraction, cfg.seed, val_list)
        except DataError as e:
            raise TrainingError(str(e)) from None
        if not train_pairs:
            raise TrainingError(f"No training pairs left in {result.root} after the validation split.")
        info = self.info if state is not None else self._make_info(result)
        self.info = info
        labels = info.input_kind == "labels"

        train_ds = PairedDataset(
            train_pairs, image_size=self.model_cfg.image_size, load_size=cfg.load_size, train=True,
            direction=cfg.direction, labels=labels, flip=not cfg.no_flip, pair_loader=self._pair_loader(True), seed=cfg.seed,
        )
        val_ds = (
            PairedDataset(val_pairs[: cfg.val_max], image_size=self.model_cfg.image_size, train=False,
                          direction=cfg.direction, labels=labels, pair_loader=self._pair_loader(False))
            if val_pairs else None
        )
        sampler = EpochSampler(len(train_ds), seed=cfg.seed, rank=self.rank, world=self.world)
        steps_per_epoch = -(-sampler.per_rank() // cfg.batch_size)
        total = cfg.steps if cfg.steps > 0 else cfg.epochs * steps_per_epoch
        n_epochs = -(-total // steps_per_epoch)
        workers = cfg.workers if cfg.workers >= 0 else default_workers(len(train_ds), cfg.outlines)

        # Models: fresh, from --init (the architecture comes from the saved model), or resumed.
        generator = None
        if self.init and state is None:
            generator, self.model_cfg, _ = load_pretrained(self.init)
            generator.train()
            log.info("starting the generator from %s", self.init)
        model = self.model = Pix2Pix(self.model_cfg, cfg, device, generator=generator, amp_dtype=amp_dtype)
        sched_G = torch.optim.lr_scheduler.LambdaLR(model.opt_G, lambda s: lr_factor(s, total, cfg.decay_from))
        sched_D = torch.optim.lr_scheduler.LambdaLR(model.opt_D, lambda s: lr_factor(s, total, cfg.decay_from))
        step = epoch = batch_in_epoch = 0
        elapsed_before = 0.0
        if state is not None:
            model.G.load_state_dict(state["G"])
            model.D.load_state_dict(state["D"])
            model.opt_G.load_state_dict(state["opt_G"])
            model.opt_D.load_state_dict(state["opt_D"])
            sched_G.load_state_dict(state["sched_G"])
            sched_D.load_state_dict(state["sched_D"])
            if state.get("scaler"):
                model.scaler.load_state_dict(state["scaler"])
            step, epoch, batch_in_epoch = state["step"], state["epoch"], state["batch_in_epoch"]
            elapsed_before = float(state.get("elapsed_s", 0.0))
            torch.set_rng_state(state["rng_torch"])
            random.setstate(state["rng_python"])
            for sched in (sched_G, sched_D):  # the total may have grown: recompute lr now
                for group, base_lr in zip(sched.optimizer.param_groups, sched.base_lrs):
                    group["lr"] = base_lr * lr_factor(step, total, cfg.decay_from)
            log.info("resuming %s at step %d (epoch %d)", self.out, step, epoch + 1)
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [device.index] if device.type == "cuda" else None
            model.G_train = DDP(model.G, device_ids=ids)
            model.D_train = DDP(model.D, device_ids=ids)

        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if state is None:
                write_split(split_file, result.root, val_pairs)
                self._write_run_json(result, info)
            else:
                self._trim_log(step)
        self._emit("on_start", RunStart(
            self.out, result.summary(), describe(device), {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype],
            len(train_pairs), len(val_pairs), steps_per_epoch, total, n_epochs, step, epoch,
        ))

        self._step, self._epoch = step, epoch
        status = "finished"
        t0, step0 = time.time(), step
        rate = 0.0
        while step < total and status == "finished":
            sampler.set_epoch(epoch, batch_in_epoch * cfg.batch_size)
            loader = DataLoader(train_ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=workers,
                                persistent_workers=False, pin_memory=device.type == "cuda", drop_last=False)
            sums = {k: 0.0 for k in LOSS_NAMES}
            n_batches = 0
            for real_a, real_b in loader:
                t_step = time.time()
                losses = model.step(real_a, real_b)
                sched_G.step()
                sched_D.step()
                step += 1
                batch_in_epoch += 1
                n_batches += 1
                values = {k: float(v) for k, v in losses.items()}
                for k, v in values.items():
                    sums[k] += v
                dt = time.time() - t_step
                inst = real_a.shape[0] * self.world / max(dt, 1e-9)
                rate = inst if rate == 0 else 0.9 * rate + 0.1 * inst
                per_step = (time.time() - t0) / max(step - step0, 1)
                self._step = step
                self._emit("on_step", StepEvent(step, total, epoch, values, sched_G.get_last_lr()[0], rate, per_step * (total - step)))
                if step >= total or self._should_stop():
                    break
            finished_epoch = batch_in_epoch >= steps_per_epoch
            if self._should_stop() and step < total:
                status = "stopped"
            if finished_epoch:
                epoch += 1
                batch_in_epoch = 0
            self._epoch = epoch
            last = step >= total or status == "stopped"
            validate = self.is_main and n_batches and (finished_epoch or last) and (last or epoch % cfg.sample_every == 0)
            save = finished_epoch and epoch % cfg.save_every == 0 or last
            if self.is_main and (validate or save):
                self._recalibrate(model, train_ds, epoch)
            if validate:
                self._end_of_epoch(model, val_ds, train_ds, epoch, step, {k: v / n_batches for k, v in sums.items()},
                                   elapsed_before + time.time() - started, sched_G.get_last_lr()[0])
            if save:
                self._save(model, sched_G, sched_D, info, step, epoch, batch_in_epoch, elapsed_before + time.time() - started)

        model_dir = self.out / "model"
        return RunEnd(status, step, epoch, model_dir=model_dir, checkpoint=self.checkpoint_path,
                      elapsed_s=elapsed_before + time.time() - started)

    def _should_stop(self) -> bool:
        flag = self.stop.is_set()
        if self.world > 1:  # all ranks must agree, or the next all-reduce hangs
            t = torch.tensor([1.0 if flag else 0.0])
            dist.all_reduce(t)
            flag = bool(t.item() > 0)
        return flag

    # ------------------------------------------------------------------ outputs

    def _write_run_json(self, result: DataScan, info: ModelInfo) -> None:
        run = {
            "data": str(result.root),
            "scan": result.to_dict(),
            "model_config": asdict(self.model_cfg),
            "train_config": asdict(self.train_cfg),
            "info": asdict(info),
            "init": str(self.init) if self.init else None,
            "world_size": self.world,
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        atomic_write_bytes(self.out / "run.json", (json.dumps(run, indent=2) + "\n").encode())

    def _trim_log(self, step: int) -> None:
        """Drop log lines written after the checkpoint we resume from (they will be redone)."""
        path = self.out / "log.jsonl"
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    keep.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a kill
        atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())

    def _recalibrate(self, model: Pix2Pix, train_ds: PairedDataset, epoch: int) -> None:
        """Re-estimate G's BatchNorm statistics for its current weights before it is judged or
        saved (inference runs in eval mode, on these statistics).

        The running averages kept during training trail weights that a GAN moves fast:
        measured on the fashion run, a checkpoint whose eval-mode output had fallen to L1
        0.29 (batch statistics: 0.096) came back to 0.093 after this. Training itself never
        reads them, so overwriting them changes nothing else; the RNG is forked so the run
        continues exactly as it would have.
        """
        n = min(self.train_cfg.bn_images, len(train_ds))
        if n <= 0:
            return
        order = torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(self.train_cfg.seed))[:n]
        keys = (order + epoch * len(train_ds)).tolist()  # fresh jitter each time, reproducible
        loader = DataLoader(torch.utils.data.Subset(train_ds, keys), batch_size=self.train_cfg.batch_size)
        devices = [model.device] if model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            update_bn(loader, model.G, device=model.device)

    @torch.no_grad()
    def _end_of_epoch(self, model: Pix2Pix, val_ds, train_ds, epoch: int, step: int, losses: dict, elapsed: float, lr: float) -> None:
        G = model.G
        G.eval()
        val: dict[str, float] = {}
        try:
            if val_ds is not None:
                avg = MetricAverager()
                loader = DataLoader(val_ds, batch_size=max(1, min(8, self.train_cfg.batch_size * 2)), shuffle=False)
                for a, b in loader:
                    with model.autocast():
                        fake = G(a.to(model.device, memory_format=torch.channels_last))
                    avg.update(image_metrics(fake.float().cpu(), b))
                val = avg.result()
            show = val_ds if val_ds is not None else PairedDataset(train_ds.pairs, image_size=train_ds.image_size, train=False,
                                                                  direction=train_ds.direction, labels=train_ds.labels,
                                                                  pair_loader=self._pair_loader(False))
            rows = []
            for i in range(min(4, len(show))):
                a, b = show[i]
                with model.autocast():
                    fake = G(a[None].to(model.device, memory_format=torch.channels_last))
                rows.append((to_pil(a), to_pil(b), to_pil(fake[0].float())))
            sample = save_image(sample_grid(rows), self.out / "samples" / f"epoch_{epoch:04d}.png")
        finally:
            G.train()
        record = {"epoch": epoch, "step": step, "time": round(elapsed, 1), "lr": lr, **{f"loss_{k}": v for k, v in losses.items()}}
        record |= {f"val_{k}": v for k, v in val.items()}
        record["sample"] = sample.relative_to(self.out).as_posix()
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        self._emit("on_epoch", EpochEvent(epoch, step, losses, val, sample, elapsed))

    def _save(self, model: Pix2Pix, sched_G, sched_D, info: ModelInfo, step: int, epoch: int, batch_in_epoch: int, elapsed: float) -> None:
        if self.is_main:
            state = {
                "version": CHECKPOINT_VERSION,
                "step": step,
                "epoch": epoch,
                "batch_in_epoch": batch_in_epoch,
                "data": str(self.data),
                "model_config": asdict(self.model_cfg),
                "train_config": asdict(self.train_cfg),
                "info": asdict(info),
                "G": model.G.state_dict(),
                "D": model.D.state_dict(),
                "opt_G": model.opt_G.state_dict(),
                "opt_D": model.opt_D.state_dict(),
                "sched_G": sched_G.state_dict(),
                "sched_D": sched_D.state_dict(),
                "scaler": model.scaler.state_dict() if model.scaler.is_enabled() else {},
                "rng_torch": torch.get_rng_state(),
                "rng_python": random.getstate(),
                "elapsed_s": elapsed,
            }
            # The model first: a kill between the two leaves a model at least as new as
            # the checkpoint, never a checkpoint pointing past the model.
            save_pretrained(model.G, self.model_cfg, replace(info, steps=step, epochs=epoch), self.out / "model")
            save_checkpoint(self.checkpoint_path, state)
            self._emit("on_checkpoint", self.checkpoint_path, step)
        if self.world > 1:
            dist.barrier()
