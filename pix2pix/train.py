"""Training runs: :class:`Trainer` drives the :class:`~pix2pix.objective.Pix2Pix` objective
over a folder of pairs and writes a run folder (:mod:`pix2pix.run_folder`).

It runs single-process or under ``torchrun`` (DistributedDataParallel, detected from
``RANK``/``WORLD_SIZE``; rank 0 alone writes files and emits events).

The loop counts optimizer steps only; the epoch and the position in it follow from the
step, so a checkpoint is placed by its step alone, and a run that was stopped, interrupted
or killed continues exactly as if it never had been.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from .config import HINT_CHANNELS, PRECISIONS, ConfigError, ModelConfig, ModelInfo, TrainConfig, from_dict
from .data import (DataError, DataScan, EpochSampler, Pair, PairedDataset, outline_pairs, read_split, scan,
                   split_validation)
from .errors import Pix2PixError
from .fastpath import auto_dtype, shape_key
from .hardware import describe, pick_device, precision_name, resolve_precision
from .io import load_checkpoint, load_pretrained, save_checkpoint, save_pretrained
from .hints import HintSampling
from .models import with_hint_channels
from .objective import Pix2Pix, lr_factor
from .progress import Callback, EpochEvent, RunEnd, RunStart, StepEvent, emit
from .run_folder import RunFolder, describe_run, judge, recalibrate_bn

log = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_VERSION", "Pix2Pix", "Trainer", "TrainingError", "lr_factor", "read_checkpoint"]

# 2: the step alone places a run. Version 1 (still read) also held epoch and batch_in_epoch.
CHECKPOINT_VERSION = 2
# A stop re-estimates BatchNorm statistics on this many images, not bn_images: it saves in a
# second or two (256 took 10-15 s on two CPU cores) and the model is still usable.
STOP_BN_IMAGES = 16


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


def default_workers(n_pairs: int, outlines: bool) -> int:
    """Loader processes: none for small sets or off the main thread (the app trains in a
    thread, where forking is unsafe); otherwise a few, leaving cores for the maths."""
    if threading.current_thread() is not threading.main_thread() or n_pairs < 64:
        return 0
    cpus = os.cpu_count() or 1
    return max(1, min(4 if outlines else 2, cpus // 2))


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _seed(*parts: int) -> int:
    return hash(parts) & 0x7FFF_FFFF_FFFF  # ints hash alike in every process


def _generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(_seed(*parts))


def _untouched_rng(device: torch.device):
    """Evaluation must not move the training run's random generators (dropout draws)."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


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
    minute (the first half warms up: workers start, the outline cache fills, kernels are chosen)."""

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


def _rank0_value(value: int, world: int, device: torch.device) -> int:
    """``value`` as rank 0 has it, on every rank (itself without DDP)."""
    if world == 1:
        return value
    flag = torch.tensor([float(value)], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.broadcast(flag, 0)
    return int(flag.item())


def pick_run_device(cfg: TrainConfig, world: int, local_rank: int) -> tuple[torch.device, torch.dtype | None]:
    """The device (under torchrun with CUDA: this process's GPU) and the autocast dtype."""
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device, resolve_precision(cfg.precision, device, training=True)


def measured_training_dtype(model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    """``precision="auto"`` for training: the faster of fp32 and bf16 for full steps of
    these networks at this batch size, timed on throwaway copies (see :mod:`pix2pix.fastpath`);
    the run's own random generators are left as they were."""
    s = model_cfg.image_size

    def make_run(dtype):
        model = Pix2Pix(model_cfg, replace(cfg, precision="fp32"), device, amp_dtype=dtype)
        batch = [torch.zeros(cfg.batch_size, c, s, s) for c in (model_cfg.in_channels, model_cfg.out_channels)]
        if model_cfg.hint_channels:
            batch.append(torch.zeros(cfg.batch_size, model_cfg.hint_channels, s, s))
        return lambda: model.step(*batch)

    with _untouched_rng(device):
        return auto_dtype(device, f"train {shape_key(model_cfg, cfg.batch_size)}", make_run, runs=2, warmup=1)


def _rng_state(device: torch.device) -> dict:
    state = {"rng_torch": torch.get_rng_state(), "rng_python": random.getstate()}
    if device.type == "cuda":
        state["rng_cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["rng_torch"])
    random.setstate(state["rng_python"])
    if "rng_cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["rng_cuda"], device)


def _check_place(state: dict, steps_per_epoch: int, path: Path) -> None:
    """A checkpoint's step places it only with the epoch length it was written with."""
    step, spe = state["step"], steps_per_epoch
    place = (state["epoch"], state["batch_in_epoch"]) if "batch_in_epoch" in state else divmod(step, spe)  # version 1
    if state.get("steps_per_epoch", spe) != spe or divmod(step, spe) != tuple(place):
        raise TrainingError(f"{path} does not fit this run's {spe} steps per epoch: resume it with the same data, "
                            f"batch size and number of processes ({state.get('world_size', 'unknown')}).")


@contextlib.contextmanager
def process_group(world: int, device: torch.device):
    """Under torchrun, the process group, created here unless the caller made one.

    A group created here is destroyed here, after a barrier and a garbage collection. A
    gloo worker thread lets go of a finished collective (and of the Python tensors it used,
    which takes the GIL) only after ``wait()`` has returned; if the interpreter is
    finalizing by then, that thread is killed inside a noexcept destructor and the process
    aborts ("terminate called without an active exception"). So a collective on Python
    tensors must never be the last thing before exit: the barrier carries none and makes
    every rank finish its last one first, and the collection runs while the interpreter is
    whole.
    """
    own = world > 1 and not dist.is_initialized()
    if own:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    ok = False
    try:
        yield
        ok = True
    finally:
        if own:
            if ok:  # after a failure the other ranks may never reach a barrier
                dist.barrier()
                gc.collect()
            dist.destroy_process_group()


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


@dataclass
class RunData:
    """The data side of a run: its pairs, data sets and sampler, and the steps per epoch."""

    found: DataScan
    train_pairs: list[Pair]
    val_pairs: list[Pair]
    train_ds: PairedDataset
    val_ds: PairedDataset | None
    show_ds: PairedDataset  # what the sample grids show: validation pairs, else training pairs
    sampler: EpochSampler
    steps_per_epoch: int
    workers: int

    def loader(self, epoch: int, pos: int, batch_size: int, *, seed: int, pin_memory: bool = False) -> DataLoader:
        """This rank's batches of ``epoch`` from batch ``pos`` on. The loader seeds its workers
        from a generator of its own: drawing from the global one, which drives dropout, would
        make a run that restarted mid-epoch differ from one that did not."""
        self.sampler.set_epoch(epoch, pos * batch_size)
        return DataLoader(self.train_ds, batch_size=batch_size, sampler=self.sampler, num_workers=self.workers,
                          pin_memory=pin_memory, generator=_generator(seed, epoch, pos))


def scan_and_split(data: Path | None, cfg: TrainConfig, val_list: list[str] | None) -> tuple[DataScan, tuple[list, list]]:
    """What the data folder holds, and its (train, val) pairs."""
    if data is None:
        raise TrainingError("No data folder given.")
    try:
        found = scan(data, outlines=cfg.outlines)
        train_pairs, val_pairs = split_validation(found, cfg.val_fraction, cfg.seed, val_list)
    except DataError as e:
        raise TrainingError(str(e)) from None
    if not train_pairs:
        raise TrainingError(f"No training pairs left in {found.root} after the validation split.")
    return found, (train_pairs, val_pairs)


def load_init(ref: str | Path, info: ModelInfo | None) -> tuple[torch.nn.Module, ModelConfig, ModelInfo]:
    """The --init generator in training mode, its architecture, and the info the run starts
    from: ``info`` if given, else the init model's (palette, input kind)."""
    generator, model_cfg, init_info = load_pretrained(ref)
    log.info("starting the generator from %s", ref)
    return generator.train(), model_cfg, info or replace(init_info, extra=dict(init_info.extra))


def _outline_loader(cfg: TrainConfig, size: int, cache: Path, train: bool):
    return outline_pairs(size, photo_aspect=cfg.photo_aspect, cache_dir=cache, augment=train) if cfg.outlines else None


def build_data(found: DataScan, split: tuple[list[Pair], list[Pair]], cfg: TrainConfig, size: int, *,
               labels: bool, cache: Path, hints: bool = False, rank: int = 0, world: int = 1) -> RunData:
    """Data sets for a split of ``found``: the training set jittered (seeded per epoch and
    index; with ``hints``, colour hints sampled from each target), validation and sample
    sets plain; ``cache``: where outline extractions go."""
    train_pairs, val_pairs = split
    common = dict(image_size=size, direction=cfg.direction, labels=labels)
    plain = dict(train=False, pair_loader=_outline_loader(cfg, size, cache, False), **common)
    train_ds = PairedDataset(train_pairs, load_size=cfg.load_size, train=True, flip=not cfg.no_flip, seed=cfg.seed,
                             pair_loader=_outline_loader(cfg, size, cache, True),
                             hints=HintSampling() if hints else None, **common)
    val_ds = PairedDataset(val_pairs[: cfg.val_max], **plain) if val_pairs else None
    sampler = EpochSampler(len(train_ds), seed=cfg.seed, rank=rank, world=world)
    return RunData(
        found, train_pairs, val_pairs, train_ds, val_ds, val_ds or PairedDataset(train_pairs, **plain), sampler,
        steps_per_epoch=-(-sampler.per_rank() // cfg.batch_size),
        workers=cfg.workers if cfg.workers >= 0 else default_workers(len(train_ds), cfg.outlines),
    )


class Judging:
    """The judging half of :class:`Trainer` (it uses the trainer's run, data, model and
    counters): BatchNorm statistics, validation, and the validation a stop put off."""

    def _stop_asked(self) -> bool:
        """A stop asked for while judging: only a single process may act on it there (under
        DDP the ranks agree on a stop at the next step, in _should_stop)."""
        return self.world == 1 and self.stop.is_set()

    def _catch_up(self) -> str | None:
        """A run stopped at the end of an epoch validates that epoch now, as the uninterrupted
        run did then; "stopped" if it is stopped again meanwhile."""
        epoch, pos = divmod(self.step, self.steps_per_epoch)
        due = self.step > 0 and pos == 0 and epoch % self.train_cfg.sample_every == 0
        if not self.is_main or not due or any(r["step"] == self.step for r in self.run.records()):
            return None
        self._recalibrate(epoch)
        if self._validate(epoch, stop=self._stop_asked):
            return None
        self.save()
        return "stopped"

    def _recalibrate(self, epoch: int, *, quick: bool = False, stop=None) -> None:
        """G's BatchNorm statistics for its weights now (see run_folder.recalibrate_bn), from
        the same training images each time, with the jitter of ``epoch``; ``quick`` (a stop)
        or ``stop`` (a stop asked for meanwhile): from the first few of them only."""
        cfg, ds = self.train_cfg, self.run_data.train_ds
        keys = (torch.randperm(len(ds), generator=_generator(cfg.seed))[: cfg.bn_images] + epoch * len(ds)).tolist()
        self._emit("on_phase", "re-estimating BatchNorm statistics")
        with _untouched_rng(self.device):
            recalibrate_bn(self.model.G_eval, ds, keys[:STOP_BN_IMAGES] if quick else keys, cfg.batch_size,
                           self.device, _generator(cfg.seed), stop=stop, enough=STOP_BN_IMAGES)

    def _validate(self, epoch: int, stop=None) -> bool:
        """Metrics, sample grid and log record of a completed epoch (or of a run's partial last
        one); False, with nothing written, if ``stop`` cut it short."""
        self._emit("on_phase", "validating")
        with _untouched_rng(self.device):
            judged = judge(self.model.G_eval, self.run_data.val_ds, self.run_data.show_ds,
                           device=self.device, batch_size=max(1, min(8, self.train_cfg.batch_size * 2)),
                           generator=_generator(self.train_cfg.seed), stop=stop)
        if judged is None:
            return False
        val, rows = judged
        sample = self.run.save_samples(epoch, rows)
        losses = {k: v / max(self.loss_steps, 1) for k, v in self.loss_sums.items()}
        record = {"epoch": epoch, "step": self.step, "time": round(self.elapsed, 1), "lr": self.model.lr,
                  **{f"loss_{k}": v for k, v in losses.items()}, **{f"val_{k}": v for k, v in val.items()},
                  "sample": sample.relative_to(self.out).as_posix()}
        self.run.append_log(record)
        self._emit("on_epoch", EpochEvent(epoch, self.step, losses, val, sample, self.elapsed))
        self._emit("on_phase", "")
        return True


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
        self.rank, self.world, self.local_rank = _dist_env()
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
        """Continue the run in ``out`` with its own configuration. ``epochs`` or ``steps`` (if
        given) set a new length, and the learning-rate decay follows it; ``data``: the data
        folder, if it has moved. Other keywords as for the constructor."""
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

    # ------------------------------------------------------------------ run

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
        self._timer = LengthTimer(cfg.minutes)
        while self.step < self.total:
            epoch, pos = divmod(self.step, self.steps_per_epoch)
            if batches is None or pos == 0:
                batches = iter(self.run_data.loader(epoch, pos, cfg.batch_size, seed=cfg.seed,
                                                    pin_memory=self.device.type == "cuda"))
            if pos == 0:
                self.loss_sums, self.loss_steps = {}, 0
            batch = next(batches)  # (input, target) or, for a hint model, (input, target, hints)
            t = time.time()
            losses = self.model.step(*batch)
            self.step += 1
            if self.total == UNTIMED:
                self._time_length()
            self._report_step(epoch, losses, batch[0].shape[0] / max(time.time() - t, 1e-9), step0)

            finished = self.step == self.total
            stopping = not finished and self._should_stop()
            epoch_done = self.step % self.steps_per_epoch == 0
            validate = finished or epoch_done and (epoch + 1) % cfg.sample_every == 0
            save = finished or stopping or epoch_done and (epoch + 1) % cfg.save_every == 0
            # A stop saves at once: a quick BatchNorm estimate, and the epoch's validation (if
            # due, or cut short by the stop) is done when the run resumes (see _catch_up).
            if self.is_main and (validate or save):
                self._recalibrate(epoch + 1, quick=stopping, stop=None if finished else self._stop_asked)
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
        total = _rank0_value(self._timer.length(self.step, self.elapsed), self.world, self.device)
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
        if self.init and not resuming:  # read once: weights, architecture and info
            generator, self.model_cfg, self.info = load_init(self.init, self.info)
        if cfg.hints and not self.model_cfg.hint_channels:  # a hint model (from --init: starts as that model)
            generator = with_hint_channels(generator) if generator is not None else None
            self.model_cfg = replace(self.model_cfg, hint_channels=HINT_CHANNELS)
        if not resuming:
            self.info = describe_run(self.info, found, cfg, self.out.name)
        self.run_data = build_data(found, split, cfg, self.model_cfg.image_size, labels=self.info.input_kind == "labels",
                                   cache=self.out / "cache" / "outlines", hints=self.model_cfg.hint_channels > 0,
                                   rank=self.rank, world=self.world)
        self.steps_per_epoch = self.run_data.steps_per_epoch
        self.total = cfg.steps if cfg.steps > 0 else UNTIMED if cfg.minutes > 0 else cfg.epochs * self.steps_per_epoch
        if cfg.precision == "auto" and self.world == 1:  # under DDP every rank must agree: the known answer
            chosen = (self._resume_state or {}).get("precision")  # a resumed run keeps its number format
            self.amp_dtype = (resolve_precision(chosen, self.device, training=True) if chosen
                              else measured_training_dtype(self.model_cfg, cfg, self.device))
        self.model = Pix2Pix(self.model_cfg, cfg, self.device, generator=generator, amp_dtype=self.amp_dtype,
                             total_steps=self.total)
        if resuming:
            self.load_state_dict(self._resume_state)
            self._resume_state = None
            log.info("resuming %s at step %d (epoch %d)", self.out, self.step, self.epochs_done + 1)
        if self.world > 1:
            self.model.distribute()
            self._stop_flag = torch.zeros(1, device=self.device if dist.get_backend() == "nccl" else "cpu")
        self._prepare_folder()
        total = 0 if self.total == UNTIMED else self.total  # 0: set by timing the run (minutes)
        self._emit("on_start", RunStart(
            self.out, found.summary(), describe(self.device), precision_name(self.amp_dtype), len(split[0]),
            len(split[1]), self.steps_per_epoch, total, -(-total // self.steps_per_epoch), self.step,
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

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """What a run needs to continue exactly: the step (which places it), the objective's
        state, the random generators, this epoch's loss sums so far, and the configs."""
        return {
            "version": CHECKPOINT_VERSION, "step": self.step, "steps_per_epoch": self.steps_per_epoch,
            "precision": precision_name(self.amp_dtype),
            "world_size": self.world, "data": str(self.data), "model_config": asdict(self.model_cfg),
            "train_config": asdict(self.train_cfg), "info": asdict(self.info), "elapsed_s": self.elapsed,
            "loss_sums": dict(self.loss_sums), "loss_steps": self.loss_steps, **_rng_state(self.device), **self.model.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue from ``state`` (a :meth:`state_dict`, or a version-1 checkpoint) once the
        run is built. Only rank 0's generators are saved: other ranks reseed from the step."""
        step = state["step"]
        _check_place(state, self.steps_per_epoch, self.run.checkpoint)
        if step > self.total:
            raise TrainingError(f"{self.out} is at step {step}, past the {self.total} steps asked for.")
        self.model.load_state_dict(state)
        self.step, self.elapsed_before = step, float(state.get("elapsed_s", 0.0))
        self.saved_step = step
        self.loss_sums = {k: float(v) for k, v in state.get("loss_sums", {}).items()}
        self.loss_steps = int(state.get("loss_steps", 0))
        if self.rank == 0:
            _restore_rng(state, self.device)
        else:
            torch.manual_seed(_seed(self.train_cfg.seed, self.rank, step))

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
            self.saved_step = self.step
            self._emit("on_checkpoint", self.run.checkpoint, self.step)
            self._emit("on_phase", "")
        if self.world > 1:
            dist.barrier()

    def _emit(self, name: str, *args) -> None:
        if self.is_main:
            emit(self.callbacks, name, *args)
