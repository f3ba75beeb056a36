"""How a training step runs fastest on the machine at hand: measured once, remembered.

What is fast differs from machine to machine, so nothing here is guessed from features.
The step's own options are timed on throwaway copies of the networks with a synthetic
batch, interleaved run by run (:func:`pix2pix.inference.fastpath.fastest`), and the answer
is cached per machine, torch version, thread count and model shape:

- the memory layout of the networks: channels-last or NCHW;
- Adam as a loop over the parameters, ``foreach`` or ``fused``;
- a resize decoder's large levels as they are written or in their summed-tap form
  (:mod:`pix2pix.upsampling`; on the 2-core CPU this project grew on, 4-6 % off a step);
- ``torch.compile`` of both networks, for runs long enough to pay for the compilation
  (timed with its build time; on the 2-core CPU this project grew on it built in about
  75 s and then ran a step 1.4x slower, so it is not taken there).

Where the loader runs, in the step's process or in worker processes, depends on the data
as much as on the machine, so it is decided inside the run itself (:class:`LoaderTrial`):
its first steps alternate between the two and the faster is kept. A run's batches do not
depend on the number of loader processes, so the trial costs nothing but its timing.

None of these changes what a step computes, only how fast: a seeded run gives the same
numbers whichever is chosen (to float rounding, for a different layout or optimizer kernel).
"""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import replace

import torch

from ..config import ModelConfig, TrainConfig
from ..inference import fastpath
from ..inference.fastpath import fastest, machine_key, shape_key
from ..io import load_discriminator
from .objective import Pix2Pix, StepForm

log = logging.getLogger(__name__)

ADAM_KINDS = ("loop", "foreach", "fused")
COMPILE_MIN_STEPS = 2000  # shorter runs never pay back a compilation measured in minutes on a CPU
# Measuring times about 25 steps (number format, layout, optimizer): a shorter run takes what
# was measured before, or the defaults, rather than spend most of itself measuring.
MEASURE_MIN_STEPS = 300


def worth_measuring(planned_steps: int) -> bool:
    """``planned_steps`` 0: not known yet (a run of so many minutes), which is measured."""
    return planned_steps == 0 or planned_steps >= MEASURE_MIN_STEPS


def step_timer(model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device, dtype: torch.dtype | None):
    """form -> a function running one full step of a fresh copy of the networks in that form.
    The copy is built on the first call (a warm-up, untimed): an answer from the cache, or a
    run too short to measure, builds none."""
    s = model_cfg.image_size
    batch = [torch.zeros(cfg.batch_size, c, s, s) for c in (model_cfg.in_channels, model_cfg.out_channels)]
    if model_cfg.extra_channels:
        batch.append(torch.zeros(cfg.batch_size, model_cfg.extra_channels, s, s))

    def make(form: StepForm):
        built = []

        def run():
            if not built:
                built.append(Pix2Pix(model_cfg, replace(cfg, precision="fp32"), device, amp_dtype=dtype, form=form))
            return built[0].step(*batch)

        return run

    return make


def measured_form(model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device, dtype: torch.dtype | None,
                  planned_steps: int) -> StepForm:
    """The fastest :class:`StepForm` for these networks, this batch size and number format
    here, from the cache when it was measured before; the run's random generators are left
    as they were. ``planned_steps``: how long the run is (0: unknown), which decides whether
    compiling is worth timing at all."""
    what = f"train step {shape_key(model_cfg, cfg.batch_size)} {dtype or 'fp32'}"
    make = step_timer(model_cfg, cfg, device, dtype)
    key = f"{machine_key()}|{what}"
    short = not worth_measuring(planned_steps)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        layout = fastest({"channels-last": make(StepForm(True)), "nchw": make(StepForm(False))},
                         key=f"{key}|layout", runs=2, warmup=1, default="channels-last" if short else None)
        form = StepForm(layout == "channels-last")
        adam = fastest({k: make(replace(form, adam=k)) for k in ADAM_KINDS}, key=f"{key}|adam", runs=2, warmup=1,
                       default=StepForm.adam if short else None)
        form = replace(form, adam=adam)
        if model_cfg.upsample == "resize":
            decoder = fastest({"folded": make(replace(form, folded=True)), "resized": make(form)},
                              key=f"{key}|decoder", runs=2, warmup=1, default="resized" if short else None)
            form = replace(form, folded=decoder == "folded")
        if cfg.compile == "on" or cfg.compile == "auto" and planned_steps >= COMPILE_MIN_STEPS:
            form = replace(form, compiled=_compile_pays(make, form, key, planned_steps, forced=cfg.compile == "on"))
    log.info("training step: %s", form.name)
    return form


def fast_objective(model_cfg: ModelConfig, cfg: TrainConfig, device: torch.device, dtype: torch.dtype | None,
                   total_steps: int, *, generator=None, planned: int = 0, world: int = 1, init=None) -> Pix2Pix:
    """A run's objective in the fastest form measured here (under DDP, where every rank must
    agree, the default form); with ``init``, D starts from the one saved beside that model, if
    there is one (a GPU stage's export), so the run continues that stage's GAN."""
    form = measured_form(model_cfg, cfg, device, dtype, planned) if world == 1 else StepForm()
    model = Pix2Pix(model_cfg, cfg, device, generator=generator, amp_dtype=dtype, total_steps=total_steps, form=form)
    if init is not None and load_discriminator(init, model.D):
        log.info("starting the discriminator from %s too", init)
    return model


def _compile_pays(make, form: StepForm, key: str, planned_steps: int, *, forced: bool) -> bool:
    """Whether compiling both networks pays for its build time over ``planned_steps``: the
    build and the step times are measured once per machine and shape (``forced``: compile
    whenever it builds at all)."""
    def seconds(name: str, fn) -> float:
        return fastpath.remembered(f"{key}|compile|{name}", fn)

    def build() -> float:
        start = time.perf_counter()
        try:
            compiled["run"] = make(replace(form, compiled=True))
            compiled["run"]()
        except Exception as e:  # noqa: BLE001 - a backend that cannot build here is simply not used
            log.info("torch.compile is not usable here (%s)", e)
            return float("inf")
        return time.perf_counter() - start

    def median_step(run) -> float:
        run()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    compiled: dict = {}
    build_s = seconds("build", build)
    if build_s == float("inf"):
        return False
    eager_s = seconds("eager", lambda: median_step(make(form)))
    compiled_s = seconds("compiled", lambda: median_step(compiled.get("run") or make(replace(form, compiled=True))))
    saved = (eager_s - compiled_s) * planned_steps
    log.info("torch.compile: %.0f s to build, %.0f ms a step against %.0f ms eager", build_s, 1000 * compiled_s,
             1000 * eager_s)
    return compiled_s < eager_s if forced else saved > build_s


class LoaderTrial:
    """Decides, inside a run, whether the loader runs in the step's process or in worker
    processes: the first steps alternate between them in blocks, each block's median step
    time is kept, and the faster is remembered for this machine and kind of data."""

    BLOCK = 6  # steps per block; the first of each block (a loader starting) is not timed
    ROUNDS = 2

    def __init__(self, candidates: list[int], what: str):
        self.candidates = list(dict.fromkeys(candidates))
        self.key = f"{machine_key()}|loader {what}|{','.join(map(str, self.candidates))}"
        cached = fastpath.recall(self.key)
        self.chosen: int | None = int(cached) if isinstance(cached, int) and cached in self.candidates else None
        if len(self.candidates) == 1:
            self.chosen = self.candidates[0]
        self.times: dict[int, list[float]] = {c: [] for c in self.candidates}
        self.done = 0

    def workers(self) -> int:
        """The loader processes for the next step."""
        if self.chosen is not None:
            return self.chosen
        block = self.done // self.BLOCK
        return self.candidates[block % len(self.candidates)]

    def timed(self, seconds: float) -> None:
        """One step's wall time (its batch's loading included) with :meth:`workers` loaders."""
        if self.chosen is not None:
            return
        if self.done % self.BLOCK:
            self.times[self.workers()].append(seconds)
        self.done += 1
        if self.done == self.BLOCK * len(self.candidates) * self.ROUNDS:
            medians = {c: statistics.median(t) for c, t in self.times.items()}
            self.chosen = min(medians, key=medians.get)
            log.info("loader: %s (%s)", "in the step's process" if self.chosen == 0 else f"{self.chosen} processes",
                     ", ".join(f"{c} workers {1000 * m:.0f} ms a step" for c, m in medians.items()))
            fastpath.keep(self.key, self.chosen)
