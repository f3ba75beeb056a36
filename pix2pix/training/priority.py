"""Requests first: the app's own fine-tune steps aside while someone is drawing.

On a small CPU a training step and a drawing's result share the same cores. With a
fine-tune running, a stroke's result took 172 ms instead of 106 on the project's 2-core
box. Lowering the training thread's priority is not enough, because its steps hold the
cores for hundreds of milliseconds at a time. So each answer to a user marks the process as
busy (:func:`interactive`), and the app's training run, between two steps, waits until
nothing has been asked for ``GRACE`` seconds (:class:`YieldToRequests`): while someone draws,
strokes and short pauses alike, it stands still. The wait is bounded, so a stream of API
calls slows a run down to a step every ``LONGEST_WAIT`` seconds without stopping it.

A fine-tune started from the command line is another process. The app therefore also
touches a marker file (:func:`share`) as requests come and go, and a training run of any
process counts a marker touched less than ``GRACE`` seconds ago as a request.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from pathlib import Path

from ..catalog import cache_dir
from .progress import Callback, StepEvent

GRACE = 2.0  # s without requests before training goes on: a drawing session, strokes and the pauses between them
LONGEST_WAIT = 10.0  # s at most between two steps, so a stream of requests slows training but never stops it

log = logging.getLogger(__name__)

TOUCH_EVERY = 0.25  # s: how often a stream of requests updates the marker, at most
MARKER = "requests"

_lock = threading.Lock()
_running = 0
_last_end = float("-inf")
_shared: Path | None = None  # the marker this process touches, once it shares its requests
_touched = float("-inf")


def marker_path() -> Path:
    """The file whose modification time says when an app last answered someone."""
    return cache_dir() / MARKER


def share(path: Path | None = None) -> None:
    """Let training in other processes see this process's requests (the app calls this)."""
    global _shared
    _shared = path or marker_path()
    try:
        _shared.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        _shared = None
    _touch()


def _touch() -> None:
    """Mark the shared file as just used, at most every TOUCH_EVERY seconds (well within GRACE)."""
    global _touched, _shared
    now = time.monotonic()
    if _shared is None or now - _touched < TOUCH_EVERY:
        return
    _touched = now
    try:
        _shared.touch()
    except OSError:  # a read-only home: other processes just do not hear of requests
        _shared = None


@contextlib.contextmanager
def interactive():
    """Around the work a user is waiting for (a drawing's result, an API call)."""
    global _running, _last_end
    with _lock:
        _running += 1
    _touch()
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            _last_end = time.monotonic()
        _touch()


def busy(grace: float = GRACE, marker: Path | None = None) -> bool:
    """Is a request running, or did one end less than ``grace`` seconds ago, in this
    process or (``marker``, default :func:`marker_path`) in an app beside it?"""
    with _lock:
        if _running > 0 or time.monotonic() - _last_end < grace:
            return True
    try:
        return time.time() - os.stat(marker or marker_path()).st_mtime < grace
    except OSError:
        return False


class YieldToRequests(Callback):
    """A training callback: after each step, wait while :func:`busy` (at most ``longest``
    seconds, and not at all once ``stop`` is set). ``waited`` adds up the time given away."""

    def __init__(self, stop: threading.Event, grace: float = GRACE, longest: float = LONGEST_WAIT,
                 marker: Path | None = None):
        self.stop, self.grace, self.longest = stop, grace, longest
        self.marker = marker or marker_path()
        self.waited, self._told = 0.0, False

    def on_step(self, ev: StepEvent) -> None:
        start = time.monotonic()
        while busy(self.grace, self.marker) and not self.stop.is_set() and time.monotonic() - start < self.longest:
            if not self._told:
                log.info("pausing between steps while the app answers someone (up to %g s at a time)", self.longest)
                self._told = True
            self.stop.wait(0.01)
        self.waited += time.monotonic() - start
