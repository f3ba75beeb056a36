"""Background training for the app: one run at a time, in a thread, observable and stoppable.

The app's fine-tune tab starts a run here and polls :meth:`TrainingJobs.snapshot`; drawing
keeps working meanwhile because inference runs on the request threads (both share the
CPU, so both slow down, but neither blocks the other).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from pix2pix.config import ModelConfig, ModelInfo, TrainConfig
from pix2pix.errors import Pix2PixError
from pix2pix.training.priority import YieldToRequests
from pix2pix.training.progress import MonitorState, RunMonitor

log = logging.getLogger(__name__)


class JobBusy(Pix2PixError, RuntimeError):
    """A run is already in progress."""


class TrainingJobs:
    """Owns at most one training thread; every method is safe to call from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._monitor = RunMonitor()

    @property
    def running(self) -> bool:
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(
        self,
        data: str | Path,
        out: str | Path,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        *,
        init: str | Path | None = None,
        info: ModelInfo | None = None,
        on_end=None,
    ) -> RunMonitor:
        """Start a run in the background; raises :class:`JobBusy` if one is going.

        ``on_end(state)`` is called on the training thread once the run has ended (the
        app uses it to refresh its model list).
        """
        from pix2pix.training.trainer import Trainer  # here, not at import: a page asking how the run goes needs no torch

        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise JobBusy("A training run is already in progress: stop it or wait for it to finish.")
            self._stop = threading.Event()
            self._monitor = monitor = RunMonitor()
            monitor.update(status="starting", message="Scanning the data…", run_dir=Path(out))
            # The app's run steps aside while someone draws or calls the API (pix2pix.training.priority).
            callbacks = [monitor, YieldToRequests(self._stop)]
            trainer = Trainer(data, out, model_cfg, train_cfg, init=init, info=info, callbacks=callbacks, stop=self._stop)
            self._thread = threading.Thread(target=self._run, args=(trainer, monitor, on_end), name="pix2pix-train", daemon=True)
            self._thread.start()
            return monitor

    def _run(self, trainer, monitor: RunMonitor, on_end) -> None:
        try:
            trainer.fit()
        except Exception as e:  # reported through the monitor; the app must not crash
            log.exception("training failed")
            monitor.update(status="failed", message=f"Failed: {e}")
        if on_end is not None:
            try:
                on_end(monitor.snapshot())
            except Exception:
                log.exception("on_end callback failed")

    def stop(self) -> bool:
        """Ask the run to stop after its current step; True if one was running."""
        if not self.running:
            return False
        self._stop.set()
        self._monitor.stopping()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    def snapshot(self) -> MonitorState:
        return self._monitor.snapshot()
