"""Requests first: the app's own fine-tune steps aside while someone is drawing.

On a small CPU a training step and a drawing's result share the same cores. With a
fine-tune running, a stroke's result took 172 ms instead of 106 on the project's 2-core
box. Lowering the training thread's priority is not enough, because its steps hold the
cores for hundreds of milliseconds at a time. So each answer to a user marks the process as
busy (:func:`interactive`), and the app's training run, between two steps, waits until
nothing has been asked for ``GRACE`` seconds (:class:`YieldToRequests`): while someone draws,
strokes and short pauses alike, it stands still. The wait is bounded, so a stream of API
calls slows a run down to a step every ``LONGEST_WAIT`` seconds without stopping it.
"""

from __future__ import annotations

import contextlib
import threading
import time

from .progress import Callback, StepEvent

GRACE = 2.0  # s without requests before training goes on: a drawing session, strokes and the pauses between them
LONGEST_WAIT = 10.0  # s at most between two steps, so a stream of requests slows training but never stops it

_lock = threading.Lock()
_running = 0
_last_end = float("-inf")


@contextlib.contextmanager
def interactive():
    """Around the work a user is waiting for (a drawing's result, an API call)."""
    global _running, _last_end
    with _lock:
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            _last_end = time.monotonic()


def busy(grace: float = GRACE) -> bool:
    """Is a request running, or did one end less than ``grace`` seconds ago?"""
    with _lock:
        return _running > 0 or time.monotonic() - _last_end < grace


class YieldToRequests(Callback):
    """A training callback: after each step, wait while :func:`busy` (at most ``longest``
    seconds, and not at all once ``stop`` is set). ``waited`` adds up the time given away."""

    def __init__(self, stop: threading.Event, grace: float = GRACE, longest: float = LONGEST_WAIT):
        self.stop, self.grace, self.longest = stop, grace, longest
        self.waited = 0.0

    def on_step(self, ev: StepEvent) -> None:
        start = time.monotonic()
        while busy(self.grace) and not self.stop.is_set() and time.monotonic() - start < self.longest:
            self.stop.wait(0.01)
        self.waited += time.monotonic() - start
