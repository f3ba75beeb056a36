"""The judging half of a run: BatchNorm statistics re-estimated, validation metrics and
sample grids, and the validation a stop put off."""

from __future__ import annotations

import torch

from .progress import EpochEvent
from .run_data import generator
from .run_folder import judge, recalibrate_bn

# A stop re-estimates BatchNorm statistics on this many images, not bn_images: it saves in a
# second or two (256 took 10-15 s on two CPU cores) and the model is still usable.
STOP_BN_IMAGES = 16


def untouched_rng(device: torch.device):
    """Evaluation must not move the training run's random generators (dropout draws)."""
    return torch.random.fork_rng(devices=[device] if device.type == "cuda" else [])


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
        keys = (torch.randperm(len(ds), generator=generator(cfg.seed))[: cfg.bn_images] + epoch * len(ds)).tolist()
        self._emit("on_phase", "re-estimating BatchNorm statistics")
        with untouched_rng(self.device):
            recalibrate_bn(self.model.G_eval, ds, keys[:STOP_BN_IMAGES] if quick else keys, cfg.batch_size,
                           self.device, generator(cfg.seed), stop=stop, enough=STOP_BN_IMAGES)

    def _validate(self, epoch: int, stop=None) -> bool:
        """Metrics, sample grid and log record of a completed epoch (or of a run's partial last
        one); False, with nothing written, if ``stop`` cut it short."""
        self._emit("on_phase", "validating")
        with untouched_rng(self.device):
            judged = judge(self.model.G_eval, self.run_data.val_ds, self.run_data.show_ds,
                           device=self.device, batch_size=max(1, min(8, self.train_cfg.batch_size * 2)),
                           generator=generator(self.train_cfg.seed), stop=stop)
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
