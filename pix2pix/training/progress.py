"""Training events and the callbacks that consume them.

The trainer knows nothing about terminals or web pages: it emits these events to a list of
:class:`Callback` objects. The command line uses :class:`TqdmCallback`; the app's
fine-tune tab uses :class:`RunMonitor` (thread-safe state it polls).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# The losses a step reports: always these four, plus G_FM with the feature-matching loss.
LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")
ALL_LOSS_NAMES = (*LOSS_NAMES, "G_FM")


def emit(callbacks, name: str, *args) -> None:
    """Call ``name`` on every callback; a broken progress display must not kill a long run."""
    for cb in callbacks:
        try:
            getattr(cb, name)(*args)
        except Exception:
            log.exception("callback %s.%s failed", type(cb).__name__, name)


@dataclass
class RunStart:
    run_dir: Path
    data_summary: str
    device: str
    precision: str
    n_train: int
    n_val: int
    steps_per_epoch: int
    total_steps: int  # 0: not known yet (a run of so many minutes, set once it has been timed)
    epochs: int
    start_step: int = 0
    start_epoch: int = 0


@dataclass
class StepEvent:
    step: int  # optimizer steps done so far (1-based after the first step)
    total: int  # 0: not known yet, as in RunStart
    epoch: int  # 0-based epoch the step belongs to
    losses: dict[str, float]
    lr: float
    images_per_s: float
    eta_s: float


@dataclass
class EpochEvent:
    epoch: int  # 1-based: the epoch just completed (or a finished run's partial last one)
    step: int
    losses: dict[str, float]  # means over the epoch (across a stop and resume too)
    val: dict[str, float]  # l1, psnr, ssim, n (empty without a validation split)
    sample: Path | None
    elapsed_s: float


@dataclass
class RunEnd:
    status: str  # "finished" | "stopped" | "failed"
    step: int
    epoch: int  # epochs completed
    model_dir: Path | None = None
    checkpoint: Path | None = None
    error: str | None = None
    elapsed_s: float = 0.0


class Callback:
    """Override what you need; every method is called on the training thread."""

    def on_start(self, ev: RunStart) -> None: ...

    def on_step(self, ev: StepEvent) -> None: ...

    def on_epoch(self, ev: EpochEvent) -> None: ...

    def on_checkpoint(self, path: Path, step: int) -> None: ...

    def on_phase(self, phase: str) -> None:
        """What the run is doing between steps ("saving", "validating", ...; "" when it is
        back to training)."""

    def on_end(self, ev: RunEnd) -> None: ...


class TqdmCallback(Callback):
    """A terminal progress bar with rate and ETA; epoch results go to the log."""

    def __init__(self) -> None:
        self.bar = None

    def on_start(self, ev: RunStart) -> None:
        from tqdm.auto import tqdm

        log.info("data: %s", ev.data_summary)
        log.info(
            "training on %s (%s): %d train / %d val pairs, %d steps per epoch, %s",
            ev.device, ev.precision, ev.n_train, ev.n_val, ev.steps_per_epoch,
            f"{ev.total_steps} steps in all" if ev.total_steps else "the length set once the run is timed",
        )
        self.bar = tqdm(total=ev.total_steps or None, initial=ev.start_step, unit="step", dynamic_ncols=True)

    def on_step(self, ev: StepEvent) -> None:
        if self.bar is None:
            return
        if ev.total and self.bar.total != ev.total:  # a timed run's length is now known
            self.bar.total = ev.total
        self.bar.update(ev.step - self.bar.n)
        self.bar.set_postfix(
            epoch=ev.epoch + 1, L1=f"{ev.losses.get('G_L1', 0):.3f}", D=f"{ev.losses.get('D_real', 0) + ev.losses.get('D_fake', 0):.3f}",
            img_s=f"{ev.images_per_s:.2f}", refresh=False,
        )

    def on_epoch(self, ev: EpochEvent) -> None:
        val = " ".join(f"val_{k}={v:.4f}" for k, v in ev.val.items() if k != "n")
        msg = f"epoch {ev.epoch} step {ev.step}: " + " ".join(f"{k}={v:.4f}" for k, v in ev.losses.items())
        (self.bar.write if self.bar else log.info)(msg + (f" | {val}" if val else ""))

    def on_end(self, ev: RunEnd) -> None:
        if self.bar is not None:
            self.bar.close()
        if ev.status == "failed":
            log.error("training failed at step %d: %s", ev.step, ev.error)
        else:
            log.info("training %s at step %d after %.0f s; model: %s", ev.status, ev.step, ev.elapsed_s, ev.model_dir)


@dataclass
class MonitorState:
    status: str = "idle"  # idle | starting | running | stopping | finished | stopped | failed
    step: int = 0
    total: int = 0
    epoch: int = 0
    eta_s: float = 0.0
    images_per_s: float = 0.0
    message: str = ""
    phase: str = ""  # what the run does between steps: "saving", "validating", ...; "" while training
    data_summary: str = ""
    history: list[dict] = field(default_factory=list)  # per step: step + losses
    val: dict[str, float] = field(default_factory=dict)
    sample: Path | None = None
    model_dir: Path | None = None
    run_dir: Path | None = None
    started: float = 0.0


class RunMonitor(Callback):
    """Keeps the latest state of a run for another thread to read (the app polls it)."""

    def __init__(self, max_points: int = 2000) -> None:
        self._lock = threading.Lock()
        self._state = MonitorState()
        self.max_points = max_points

    def snapshot(self) -> MonitorState:
        with self._lock:
            s = self._state
            return MonitorState(**{**s.__dict__, "history": list(s.history), "val": dict(s.val)})

    def update(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self._state, k, v)

    def stopping(self) -> None:
        """A stop was asked for: the run ends after its current step, with a checkpoint."""
        with self._lock:
            if self._state.status in ("starting", "running"):
                self._state.status = "stopping"
                self._state.message = "Stopping after the current step…"

    def on_phase(self, phase: str) -> None:
        self.update(phase=phase)

    def on_start(self, ev: RunStart) -> None:
        with self._lock:
            s = self._state
            s.total, s.step, s.data_summary, s.run_dir, s.started = (ev.total_steps, ev.start_step, ev.data_summary,
                                                                     ev.run_dir, time.time())
            if s.status != "stopping":  # a stop asked for while the run was being set up still holds
                s.status, s.message = "running", f"Training on {ev.device} ({ev.precision})."

    def on_step(self, ev: StepEvent) -> None:
        with self._lock:
            s = self._state
            s.step, s.total, s.epoch, s.eta_s, s.images_per_s = ev.step, ev.total, ev.epoch, ev.eta_s, ev.images_per_s
            s.history.append({"step": ev.step, **ev.losses})
            if len(s.history) > self.max_points:  # keep every other point: bounded memory
                s.history = s.history[::2]

    def on_epoch(self, ev: EpochEvent) -> None:
        self.update(val=dict(ev.val), sample=ev.sample)

    def on_end(self, ev: RunEnd) -> None:
        msg = {"finished": "Finished.", "stopped": "Stopped; the last checkpoint and model are kept."}.get(
            ev.status, f"Failed: {ev.error}"
        )
        self.update(status=ev.status, model_dir=ev.model_dir, message=msg, step=ev.step, phase="")
