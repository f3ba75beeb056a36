"""Concurrent requests to one model, run as batches.

A web server answers many users at once, each on a thread of its own. Run one by one, their
images wait in line for the model; a (B, C, S, S) batch costs less than B single images on
a CPU (the shipped ngf-32 model on the project's 2-core box, 1 thread: 33 ms for one 256 px
image, about 24 ms per image in a batch of 4 to 8) and the answers are the same: exactly
with one thread per call, and to within one level of 255 with several, whose sums may run
in another order for a batch.
:class:`Batcher` gathers whatever arrived while the model was busy and runs it as the next
batch: an idle model starts at once, so a lone request waits for nothing, and under load
each batch holds everyone who queued meanwhile (up to ``max_batch``).

No thread of its own: the caller that finds the model idle runs the next batch and then
hands over, so the model runs on the request threads as before.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image

from ..errors import Superseded
from ..images.imaging import to_pil, to_tensor

log = logging.getLogger(__name__)

MAX_BATCH = 8  # beyond this a CPU gains nothing per image, and the batch's first answer waits longer


@dataclass(eq=False)
class _Request:
    prepared: object  # what the model's prepare() made
    seed: int | None
    stop: Callable[[], bool] | None = None  # True once the caller no longer wants the image
    done: bool = False
    result: Image.Image | None = None
    error: BaseException | None = field(default=None, repr=False)


class Batcher:
    """Runs ``model.generate`` for concurrent callers, batching those without a seed.

    A seeded request (the test-time noise) runs alone: dropout noise is drawn for the whole
    batch, so batching would change its answer. Thread-safe; ``generate`` blocks until the
    caller's own image is ready and raises the error its batch raised, if any.
    """

    def __init__(self, model, max_batch: int = MAX_BATCH):
        self._model = weakref.ref(model)  # the registry below keys on the model: no cycle
        self.max_batch = max(1, int(max_batch))
        self._pending: deque[_Request] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self.batches = 0  # counters, for logs and tests
        self.images = 0

    @property
    def model(self):
        return self._model()

    def generate(self, prepared, *, seed: int | None = None, stop: Callable[[], bool] | None = None) -> Image.Image:
        """The image for ``prepared`` (from ``model.prepare``), as ``model.generate`` gives it.
        ``stop()`` says when the caller no longer wants it: a request waiting for its turn is
        then dropped, and a batch of such requests only is stopped where it is, both with
        :class:`~pix2pix.errors.Superseded`."""
        request = _Request(prepared, seed, stop)
        with self._cond:
            self._pending.append(request)
            while not request.done:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                batch = self._take()
                self._cond.release()
                try:
                    self._run(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if request.error is not None:
            raise request.error
        return request.result

    def _take(self) -> list[_Request]:
        """The next batch, in arrival order: a seeded request alone, else up to ``max_batch``
        unseeded ones (seeded requests behind them keep their place)."""
        first = self._pending.popleft()
        if first.seed is not None:
            return [first]
        batch, kept = [first], deque()
        while self._pending and len(batch) < self.max_batch:
            request = self._pending.popleft()
            (batch if request.seed is None else kept).append(request)
        self._pending.extendleft(reversed(kept))
        return batch

    def _run(self, batch: list[_Request]) -> None:
        """One forward pass for the whole batch; each request gets its image or the error."""
        for r in [r for r in batch if r.stop is not None and r.stop()]:
            r.error, r.done = Superseded(), True
            batch.remove(r)
        if not batch:
            return
        stops = [r.stop for r in batch]
        stop = (lambda: all(s() for s in stops)) if all(stops) else None
        try:
            images = self._forward([r.prepared for r in batch], batch[0].seed, stop)
        except BaseException as e:  # handed to every caller of this batch, raised there
            for r in batch:
                r.error, r.done = e, True
            return
        for r, image in zip(batch, images):
            r.result, r.done = image, True
        self.batches += 1
        self.images += len(batch)
        log.debug("batch %d: %d image(s)", self.batches, len(batch))

    def _forward(self, prepared: list, seed: int | None, stop=None) -> list[Image.Image]:
        model = self.model
        if len(prepared) == 1:
            return [model.generate(prepared[0], seed=seed, stop=stop)]
        size = model.size
        for p in prepared:
            if p.image.size != (size, size) or p.image.mode != "RGB":
                raise ValueError(f"Batcher takes the output of prepare(): an RGB {size}x{size} image")
        batch = torch.stack([to_tensor(p.image) for p in prepared])  # (B, 3, S, S) in [-1, 1]
        cls = [getattr(p, "what", "") for p in prepared] if getattr(model, "classes", None) else None
        if getattr(model, "takes_hints", False):
            from ..training.hints import from_image

            hints = torch.stack([from_image(p.hints, size) for p in prepared])  # (B, 4, S, S)
            out = model.run(batch, seed, hints=hints, stop=stop, **({"cls": cls} if cls else {}))
        else:
            out = model.run(batch, seed, stop=stop, **({"cls": cls} if cls else {}))
        return [to_pil(t) for t in out]


_batchers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_batchers_lock = threading.Lock()


def batcher(model, max_batch: int = MAX_BATCH) -> Batcher:
    """The one :class:`Batcher` of ``model`` (made on first use, gone with the model)."""
    with _batchers_lock:
        found = _batchers.get(model)
        if found is None:
            found = _batchers[model] = Batcher(model, max_batch)
        return found
