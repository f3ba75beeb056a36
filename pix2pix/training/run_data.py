"""The data side of a run: its folder scanned and split, the training set jittered and seeded,
and the loader that serves one rank's batches from any step on."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from ..config import ModelConfig, ModelInfo, TrainConfig, check_classes
from ..io import load_pretrained
from .data import DataError, DataScan, Pair, split_validation
from .dataset import EpochSampler, PairedDataset, outline_pairs, source_pairs
from .mix import LABELS_FILE, scan_data
from ..models import grown, widened
from .hints import HintSampling
from .speed import LoaderTrial
from .state import TrainingError

log = logging.getLogger(__name__)

UNTOLD = 0.25  # a class model's training pairs shown with no class: it must still guess well


def seed_of(*parts: int) -> int:
    return hash(parts) & 0x7FFF_FFFF_FFFF  # ints hash alike in every process


def generator(*parts: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed_of(*parts))


def default_workers(n_pairs: int, outlines: bool) -> int:
    """Loader processes: none for small sets or off the main thread (the app trains in a
    thread, where forking is unsafe); otherwise a few, leaving cores for the maths."""
    if threading.current_thread() is not threading.main_thread() or n_pairs < 64:
        return 0
    cpus = os.cpu_count() or 1
    return max(1, min(4 if outlines else 2, cpus // 2))


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

    def loader_trial(self, cfg: TrainConfig) -> LoaderTrial:
        """Where the loader runs: the processes asked for, or with ``workers=-1`` the faster of
        the step's own process and :func:`default_workers` processes, tried in the run itself."""
        if cfg.workers >= 0:
            return LoaderTrial([cfg.workers], "")
        size = self.train_ds.image_size
        kind = "outlines" if cfg.outlines else "labels" if self.train_ds.labels else "pairs"
        what = f"{kind} {size}px batch{cfg.batch_size} hints{int(self.train_ds.hints is not None)}"
        return LoaderTrial([0, default_workers(len(self.train_ds), cfg.outlines)], what)

    def loader(self, epoch: int, pos: int, batch_size: int, *, seed: int, pin_memory: bool = False) -> DataLoader:
        """This rank's batches of ``epoch`` from batch ``pos`` on. The loader seeds its workers
        from a generator of its own: drawing from the global one, which drives dropout, would
        make a run that restarted mid-epoch differ from one that did not."""
        self.sampler.set_epoch(epoch, pos * batch_size)
        return DataLoader(self.train_ds, batch_size=batch_size, sampler=self.sampler, num_workers=self.workers,
                          pin_memory=pin_memory, generator=generator(seed, epoch, pos))


def scan_and_split(data: Path | None, cfg: TrainConfig, val_list: list[str] | None) -> tuple[DataScan, tuple[list, list]]:
    """What the data folder holds, and its (train, val) pairs."""
    if data is None:
        raise TrainingError("No data folder given.")
    try:
        found = scan_data(data, outlines=cfg.outlines, seed=cfg.seed)
        train_pairs, val_pairs = split_validation(found, cfg.val_fraction, cfg.seed, val_list)
    except DataError as e:
        raise TrainingError(str(e)) from None
    if not train_pairs:
        raise TrainingError(f"No training pairs left in {found.root} after the validation split.")
    return found, (train_pairs, val_pairs)


def load_init(ref: str | Path, info: ModelInfo | None, *, grow: bool = False
              ) -> tuple[torch.nn.Module, ModelConfig, ModelInfo]:
    """The --init generator in training mode (``grow``: with another level, for twice its image
    size), its architecture, and the info the run starts from: ``info`` if given, else the init
    model's (palette, input kind)."""
    generator, model_cfg, init_info = load_pretrained(ref)
    log.info("starting the generator from %s", ref)
    if grow:
        generator = grown(generator)
        log.info("grown from %d to %d px", model_cfg.image_size, generator.cfg.image_size)
        model_cfg = generator.cfg
    return generator.train(), model_cfg, info or replace(init_info, extra=dict(init_info.extra))


def with_classes(generator, model_cfg: ModelConfig, classes: str, train_pairs: list[Pair]):
    """(generator, config) of a class model for ``classes``, an --init model's own kept (see
    :func:`pix2pix.models.widened`). Every class must be shown by some training pair, or the
    model could never learn it."""
    names = check_classes(classes)
    counts = {c: sum(p.label == c for p in train_pairs) for c in names}
    if missing := [c for c, n in counts.items() if n == 0]:
        raise TrainingError(f"No training pair is labelled {', '.join(missing)}. Name each source's class in its "
                            f"mix.json entry, or give a {LABELS_FILE} (name,class) beside the images.")
    try:
        generator = widened(generator, classes=names) if generator is not None else None
    except ValueError as e:
        raise TrainingError(f"--classes {','.join(names)} does not fit the --init model: {e}") from None
    log.info("class layers: %s", ", ".join(f"{c} ({n} pairs)" for c, n in counts.items()))
    return generator, replace(model_cfg, classes=names)


def _pair_loader(found: DataScan, cfg: TrainConfig, size: int, store, train: bool):
    """How pairs are read: each source its own way in a mix, outlines drawn from photos, or as stored."""
    if found.sources:
        return source_pairs(found.sources, size, store=store, augment=train)
    return outline_pairs(size, photo_aspect=cfg.photo_aspect, store=store, augment=train) if cfg.outlines else None


def build_data(found: DataScan, split: tuple[list[Pair], list[Pair]], cfg: TrainConfig, size: int, *,
               labels: bool, store=None, hints: bool = False, rank: int = 0, world: int = 1,
               layers: ModelConfig | None = None) -> RunData:
    """Data sets for a split of ``found``: the training set jittered (seeded per epoch and
    index; with ``hints``, colour hints sampled from each target), validation and sample
    sets plain; ``store``: the outline store photos-only data reads its extractions from;
    ``layers``: a class model's config (every set then tells each pair's class; training
    leaves a share :data:`UNTOLD` untold)."""
    train_pairs, val_pairs = split
    common = dict(image_size=size, direction=cfg.direction, labels=labels, layers=layers)
    plain = dict(train=False, pair_loader=_pair_loader(found, cfg, size, store, False), **common)
    train_ds = PairedDataset(train_pairs, load_size=cfg.load_size, train=True, flip=not cfg.no_flip, seed=cfg.seed,
                             pair_loader=_pair_loader(found, cfg, size, store, True),
                             hints=HintSampling() if hints else None, untold=UNTOLD, **common)
    val_ds = PairedDataset(val_pairs[: cfg.val_max], **plain) if val_pairs else None
    sampler = EpochSampler(len(train_ds), seed=cfg.seed, rank=rank, world=world)
    return RunData(
        found, train_pairs, val_pairs, train_ds, val_ds, val_ds or PairedDataset(train_pairs, **plain), sampler,
        steps_per_epoch=-(-sampler.per_rank() // cfg.batch_size),
        workers=cfg.workers if cfg.workers >= 0 else default_workers(len(train_ds), cfg.outlines),
    )
