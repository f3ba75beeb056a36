"""Training runs: :class:`Trainer` drives the :class:`~pix2pix.training.objective.Pix2Pix` objective
over a folder of pairs and writes a run folder (:mod:`pix2pix.training.run_folder`).

It runs single-process or under ``torchrun`` (DistributedDataParallel, detected from
``RANK``/``WORLD_SIZE``; rank 0 alone writes files and emits events).

The loop counts optimizer steps only; the epoch and the position in it follow from the
step, so a checkpoint is placed by its step alone, and a run that was stopped, interrupted
or killed continues exactly as if it never had been.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
import torch.distributed as dist

from ..config import HINT_CHANNELS, ModelConfig, ModelInfo, TrainConfig, from_dict
from ..inference.fastpath import auto_dtype, shape_key
from ..hardware import describe, precision_name, resolve_precision
from ..images.outline_store import OutlineStore
from ..io import save_checkpoint, save_pretrained
from ..models import with_hint_channels
from .data import read_split
from .distributed import dist_env, pick_run_device, process_group, rank0_value
from .judging import Judging, untouched_rng
from .objective import Pix2Pix, StepForm, lr_factor
from .progress import Callback, RunEnd, RunStart, StepEvent, emit
from .run_data import build_data, load_init, scan_and_split, seed_of, with_classes
from .run_folder import RunFolder, describe_run
from .speed import fast_objective, step_timer, worth_measuring
from .state import (CHECKPOINT_VERSION, TrainingError, check_place, io_failure, model_info, read_checkpoint,
                    restore_rng, rng_state)

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_VERSION", "Pix2Pix", "Trainer", "TrainingError", "lr_factor", "read_checkpoint"]

UNTIMED = 10**9  # a --minutes run's length until its speed is known; the decay waits for it
TIMING_S = 60.0  # how long such a run is timed before its length is fixed (the second half counts)
TIMING_MARGIN = 0.97  # of the time left: validations and saves still to come


def timed_length(seconds_left: float, steps_timed: int, seconds_timed: float, step: int, window: float) -> int:
    """A ``--minutes`` run's length in steps, from ``steps_timed`` in ``seconds_timed``; 0
    while fewer than 3 steps or less than ``window`` seconds have been timed."""
    if steps_timed < 3 or seconds_timed < window:
        return 0
    return step + max(0, int(seconds_left * TIMING_MARGIN * steps_timed / seconds_timed))


class LengthTimer:
    """A ``--minutes`` run's length in steps, from its speed over the second half of its first
    minute (the first half warms up: workers start, the outline store fills, kernels are chosen)."""

    def __init__(self, minutes: float):
        self.minutes, self.started, self.mark = minutes, time.time(), None
        self.window = min(TIMING_S, minutes * 6) / 2  # a short run: half a tenth of its budget

    def length(self, step: int, elapsed: float) -> int:
        """The run's length, or 0 while it is still being timed."""
        now = time.time()
        if self.mark is None:
            if now - self.started >= self.window:
                self.mark = (step, now)
            return 0
        return timed_length(self.minutes * 60 - elapsed, step - self.mark[0], now - self.mark[1], step, self.window)


def measured_training_dtype(model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device,
                            measure: bool = True) -> torch.dtype | None:
    """``precision="auto"`` for training: the faster of fp32 and bf16 for full steps of
    these networks at this batch size, timed on throwaway copies (see :mod:`pix2pix.fastpath`);
    the run's own random generators are left as they were. ``measure=False`` (a short run):
    the answer measured before, or fp32."""
    def make_run(dtype):
        return step_timer(model_cfg, cfg, device, dtype)(StepForm())

    with untouched_rng(device):
        return auto_dtype(device, f"train {shape_key(model_cfg, cfg.batch_size)}", make_run, runs=2, warmup=1,
                          default=None if measure else "fp32")


def due(step: int, total: int, steps_per_epoch: int, cfg: TrainConfig, since_save: float,
        stopping: bool) -> tuple[bool, bool, bool]:
    """After ``step``: (validate, save, quick). A stop saves at once with a quick BatchNorm
    estimate, and the epoch's validation (if due, or cut short by the stop) is done when the
    run resumes (see ``_catch_up``); a save on the clock mid-epoch is quick too."""
    finished, epoch_done, epoch = step == total, step % steps_per_epoch == 0, (step - 1) // steps_per_epoch
    validate = finished or epoch_done and (epoch + 1) % cfg.sample_every == 0
    timed = not finished and 0 < cfg.save_minutes * 60 <= since_save
    save = finished or stopping or timed or epoch_done and (epoch + 1) % cfg.save_every == 0
    return validate, save, stopping or timed and not (validate or epoch_done)


class Trainer(Judging):
    """Trains a pix2pix model on a folder of pairs into a run folder.

    ``Trainer(data, out, model_cfg, train_cfg).fit()`` starts a run; ``Trainer.resume(out)``
    continues one from its last checkpoint. Setting ``stop`` (a ``threading.Event``) ends a
    run after the current step, with a checkpoint and a usable model.
    """

    def __init__(self, data: str | Path | None, out: str | Path, model_cfg: ModelConfig | None = None,
                 train_cfg: TrainConfig | None = None, *, init: str | Path | None = None,
                 callbacks: list[Callback] | tuple = (), stop: threading.Event | None = None,
                 info: ModelInfo | None = None, val_list: list[str] | None = None):
        self.data = Path(data) if data is not None else None
        self.out, self.run = Path(out), RunFolder(out)
        self.model_cfg = model_cfg or ModelConfig()
        self.train_cfg = train_cfg or TrainConfig()
        self.init, self.info, self.val_list = init, info, val_list
        self.callbacks = list(callbacks)
        self.stop = stop or threading.Event()
        self.rank, self.world, self.local_rank = dist_env()
        self.is_main = self.rank == 0
        self.model: Pix2Pix | None = None
        self.step = self.total = self.steps_per_epoch = 0
        self.elapsed_before = 0.0  # seconds trained before this process (a resumed run)
        self.loss_sums, self.loss_steps = {}, 0  # this epoch's, so far
        self._resume_state: dict | None = None  # a checkpoint to continue from; see resume()
        self.saved_step = 0  # the step of the last checkpoint on disk

    @classmethod
    def resume(cls, out: str | Path, *, epochs: int = 0, steps: int = 0, data: str | Path | None = None,
               **kwargs) -> Trainer:
        """Continue the run in ``out`` with its own configuration; ``epochs`` or ``steps`` set a
        new length (the decay follows it), ``data`` a moved data folder; the rest as for __init__."""
        state = read_checkpoint(RunFolder(out).checkpoint)
        cfg = from_dict(TrainConfig, state["train_config"])
        if steps:
            cfg = replace(cfg, steps=steps)
        elif epochs:
            cfg = replace(cfg, epochs=epochs, steps=0, minutes=0.0)
        info = replace(from_dict(ModelInfo, state["info"]), name=Path(out).name)  # the folder may have been renamed
        trainer = cls(data or state["data"], out, from_dict(ModelConfig, state["model_config"]), cfg, info=info,
                      **kwargs)
        trainer._resume_state = state
        return trainer

    @property
    def epochs_done(self) -> int:
        return self.step // self.steps_per_epoch if self.steps_per_epoch else 0

    @property
    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self._started

    def fit(self) -> RunEnd:
        """Train to the planned length or until stopped; returns how the run ended."""
        self._started = time.time()
        try:
            self.device, self.amp_dtype = pick_run_device(self.train_cfg, self.world, self.local_rank)
            with process_group(self.world, self.device):
                self._setup()
                status = self._loop()
        except Exception as e:  # a file error (full or read-only disk, folder removed) becomes one clear line
            error = TrainingError(io_failure(e, self.out, self.step, self.saved_step)) if isinstance(e, OSError) else e
            end = RunEnd("failed", self.step, self.epochs_done, error=str(error) or type(e).__name__, elapsed_s=self.elapsed)
            self._emit("on_end", end)
            if error is e:
                raise
            raise error from e
        end = RunEnd(status, self.step, self.epochs_done, model_dir=self.run.model, checkpoint=self.run.checkpoint,
                     elapsed_s=self.elapsed)
        self._emit("on_end", end)
        return end

    def _loop(self) -> str:
        """One loop over steps; the epoch and the position in it are derived from the step."""
        cfg, batches = self.train_cfg, None
        if self.step < self.total and self._catch_up() == "stopped":
            return "stopped"
        self._rate, self._loop_started, step0 = 0.0, time.time(), self.step
        self._saved_at = time.time()
        self._timer = LengthTimer(cfg.minutes)
        trial = self.run_data.loader_trial(cfg)
        while self.step < self.total:
            epoch, pos = divmod(self.step, self.steps_per_epoch)
            if batches is None or pos == 0 or trial.workers() != self.run_data.workers:
                self.run_data.workers = trial.workers()  # the same batches, whoever loads them
                batches = iter(self.run_data.loader(epoch, pos, cfg.batch_size, seed=cfg.seed,
                                                    pin_memory=self.device.type == "cuda"))
            if pos == 0:
                self.loss_sums, self.loss_steps = {}, 0
            t = time.time()  # the step's time includes waiting for its batch: what a run's speed is
            batch = next(batches)  # (input, target) or, for a hint model, (input, target, hints)
            losses = self.model.step(*batch)
            trial.timed(time.time() - t)
            self.step += 1
            if self.total == UNTIMED:
                self._time_length()
            self._report_step(epoch, losses, batch[0].shape[0] / max(time.time() - t, 1e-9), step0)

            finished = self.step == self.total
            stopping = not finished and self._should_stop()
            validate, save, quick = due(self.step, self.total, self.steps_per_epoch, cfg,
                                        time.time() - self._saved_at, stopping)
            if self.is_main and (validate or save):
                self._recalibrate(epoch + 1, quick=quick, stop=None if finished else self._stop_asked)
                stopping = stopping or not finished and self._stop_asked()
            if self.is_main and validate and not stopping:
                stopping = not self._validate(epoch + 1, stop=None if finished else self._stop_asked)
            if save or stopping:
                self.save()
            if stopping:
                return "stopped"
        return "finished"

    def _time_length(self) -> None:
        """``minutes``: fix the length once timed (on every rank), in the config: a resume keeps it."""
        total = rank0_value(self._timer.length(self.step, self.elapsed), self.world, self.device)
        if total:
            self.total = self.model.total_steps = total  # the decay follows it
            self.train_cfg = replace(self.train_cfg, steps=total)
            log.info("timed: %d steps fit in %.1f minutes", total, self.train_cfg.minutes)

    def _report_step(self, epoch: int, losses: dict[str, torch.Tensor], images_per_s: float, step0: int) -> None:
        values = {k: float(v) for k, v in losses.items()}
        for k, v in values.items():
            self.loss_sums[k] = self.loss_sums.get(k, 0.0) + v
        self.loss_steps += 1
        inst = images_per_s * self.world
        self._rate = inst if self._rate == 0 else 0.9 * self._rate + 0.1 * inst
        timing = self.total == UNTIMED  # events say 0 until the length is known
        eta = (self.train_cfg.minutes * 60 - self.elapsed if timing
               else (time.time() - self._loop_started) / max(self.step - step0, 1) * (self.total - self.step))
        self._emit("on_step", StepEvent(self.step, 0 if timing else self.total, epoch, values, self.model.lr, self._rate, max(eta, 0.0)))

    def _should_stop(self) -> bool:
        """Has a stop been asked for? Under DDP every rank must agree, or the next collective hangs."""
        if self.world == 1:
            return self.stop.is_set()
        self._stop_flag.fill_(1.0 if self.stop.is_set() else 0.0)
        dist.all_reduce(self._stop_flag)
        return bool(self._stop_flag.item() > 0)

    def _setup(self) -> None:
        """Build the run in named steps; a resumed run then loads its checkpoint into it."""
        cfg, resuming, generator = self.train_cfg, self._resume_state is not None, None
        if not resuming and self.run.checkpoint.exists():
            raise TrainingError(f"{self.out} already holds a training run. Use --resume {self.out} to continue it, "
                                "or choose another output folder.")
        torch.manual_seed(cfg.seed + self.rank)
        random.seed(cfg.seed + self.rank)
        val_list = read_split(self.run.split) if resuming and self.run.split.exists() else self.val_list
        found, split = scan_and_split(self.data, cfg, val_list)
        if cfg.grow and not (self.init or resuming):
            raise TrainingError("--grow grows the --init model: give one (a run at --size 128, say)")
        if self.init and not resuming:  # read once: weights, architecture and info
            generator, self.model_cfg, self.info = load_init(self.init, self.info, grow=cfg.grow)
        if cfg.hints and not self.model_cfg.hint_channels:  # a hint model (from --init: starts as that model)
            generator = with_hint_channels(generator) if generator is not None else None
            self.model_cfg = replace(self.model_cfg, hint_channels=HINT_CHANNELS)
        if cfg.classes and not resuming:  # a class model (from --init: starts as that model)
            generator, self.model_cfg = with_classes(generator, self.model_cfg, cfg.classes, split[0])
        if not resuming:
            self.info = describe_run(self.info, found, cfg, self.out.name)
        self.run_data = build_data(found, split, cfg, self.model_cfg.image_size, labels=self.info.input_kind == "labels",
                                   store=OutlineStore(), hints=self.model_cfg.hint_channels > 0,
                                   rank=self.rank, world=self.world, layers=self.model_cfg)
        self.steps_per_epoch = self.run_data.steps_per_epoch
        self.total = cfg.steps if cfg.steps > 0 else UNTIMED if cfg.minutes > 0 else cfg.epochs * self.steps_per_epoch
        planned = 0 if self.total == UNTIMED else self.total  # 0: a run of so many minutes, not timed yet
        if cfg.precision == "auto" and self.world == 1:  # under DDP every rank must agree: the known answer
            chosen = (self._resume_state or {}).get("precision")  # a resumed run keeps its number format
            self.amp_dtype = (resolve_precision(chosen, self.device, training=True) if chosen
                              else measured_training_dtype(self.model_cfg, cfg, self.device, worth_measuring(planned)))
        self.model = fast_objective(self.model_cfg, cfg, self.device, self.amp_dtype, self.total, generator=generator,
                                    planned=planned, world=self.world,
                                    init=None if resuming else self.init)
        if resuming:
            self.load_state_dict(self._resume_state)
            self._resume_state = None
            log.info("resuming %s at step %d (epoch %d)", self.out, self.step, self.epochs_done + 1)
        if self.world > 1:
            self.model.distribute()
            self._stop_flag = torch.zeros(1, device=self.device if dist.get_backend() == "nccl" else "cpu")
        self._prepare_folder()
        self._emit("on_start", RunStart(
            self.out, found.summary(), describe(self.device), precision_name(self.amp_dtype), len(split[0]),
            len(split[1]), self.steps_per_epoch, planned, -(-planned // self.steps_per_epoch), self.step,
            self.epochs_done,
        ))

    def _prepare_folder(self) -> None:
        """A new run writes its description; a resumed one drops the log records it will redo."""
        if not self.is_main:
            return
        if self.step == 0:
            self.run.begin(self.run_data.found, self.run_data.val_pairs, model_config=asdict(self.model_cfg),
                           train_config=asdict(self.train_cfg), info=asdict(self.info),
                           init=str(self.init) if self.init else None, world_size=self.world)
        elif self.step < self.total:
            self.run.trim_log(self.step, self.steps_per_epoch)

    def state_dict(self) -> dict:
        """What a run needs to continue exactly: the step (which places it), the objective's
        state, the random generators, this epoch's loss sums so far, and the configs."""
        return {
            "version": CHECKPOINT_VERSION, "step": self.step, "steps_per_epoch": self.steps_per_epoch,
            "precision": precision_name(self.amp_dtype),
            "world_size": self.world, "data": str(self.data), "model_config": asdict(self.model_cfg),
            "train_config": asdict(self.train_cfg), "info": asdict(self.info), "elapsed_s": self.elapsed,
            "loss_sums": dict(self.loss_sums), "loss_steps": self.loss_steps, **rng_state(self.device), **self.model.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (a :meth:`state_dict`, or a version-1 checkpoint) once the
        run is built. Only rank 0's generators are saved: other ranks reseed from the step."""
        step = state["step"]
        check_place(state, self.steps_per_epoch, self.run.checkpoint)
        if step > self.total:
            raise TrainingError(f"{self.out} is at step {step}, past the {self.total} steps asked for.")
        self.model.load_state_dict(state)
        self.step, self.elapsed_before = step, float(state.get("elapsed_s", 0.0))
        self.saved_step = step
        self.loss_sums = {k: float(v) for k, v in state.get("loss_sums", {}).items()}
        self.loss_steps = int(state.get("loss_steps", 0))
        if self.rank == 0:
            restore_rng(state, self.device)
        else:
            torch.manual_seed(seed_of(self.train_cfg.seed, self.rank, step))

    def save(self) -> None:
        """The model, then the checkpoint (rank 0); every rank waits until both are written.

        The model goes first: a kill between the two leaves a model at least as new as the
        checkpoint, never a checkpoint pointing past the model."""
        if self.is_main:
            self._emit("on_phase", "saving")
            state = self.state_dict()
            save_pretrained(self.model.G_eval, self.model_cfg, model_info(self.info, self.step, self.epochs_done,
                                                                          self.run.records()),
                            self.run.model, dtype=torch.float16)
            save_checkpoint(self.run.checkpoint, state)
            self.saved_step, self._saved_at = self.step, time.time()
            self._emit("on_checkpoint", self.run.checkpoint, self.step)
            self._emit("on_phase", "")
        if self.world > 1:
            dist.barrier()

    def _emit(self, name: str, *args) -> None:
        if self.is_main:
            emit(self.callbacks, name, *args)
