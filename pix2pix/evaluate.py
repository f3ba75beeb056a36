"""Evaluate a model (or a trivial baseline) on the pairs of a data folder."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .data import DataError, Pair, PairedDataset, scan, split_validation
from .imaging import sample_grid, save_image, to_pil
from .infer import Sketch2Image
from .metrics import MetricAverager, image_metrics

log = logging.getLogger(__name__)

BASELINES = ("white", "mean", "input")


@dataclass
class EvalData:
    pairs: list[Pair]
    train_pairs: list[Pair]  # what the baseline "mean" averages
    split: str


def select_pairs(data: str | Path, *, split: str = "auto", val_list: list[str] | None = None, outlines: bool = False) -> tuple[EvalData, object]:
    """Pairs to evaluate on: the named split, or the pairs of a validation list, or (auto)
    test/, else val/, else every pair of the folder."""
    result = scan(data, outlines=outlines)
    if val_list:
        train, val = split_validation(result, 0.0, 0, val_list)
        return EvalData(val, train, "val-list"), result
    if split == "auto":
        split = next((s for s in ("test", "val") if result.splits.get(s)), "train")
    if split == "all":
        pairs = [p for ps in result.splits.values() for p in ps]
    else:
        pairs = result.splits.get(split, [])
    if not pairs:
        raise DataError(f"No pairs in the {split!r} split of {data}.")
    return EvalData(pairs, result.splits["train"], split), result


def mean_image(dataset: PairedDataset, limit: int = 2000) -> torch.Tensor:
    """Mean target image over (at most ``limit`` of) a data set, (3, S, S) in [-1, 1]."""
    total, n = None, 0
    for i in range(min(len(dataset), limit)):
        _, b = dataset[i]
        total = b.clone() if total is None else total + b
        n += 1
    return total / max(n, 1)


def _outline_loader(size: int, photo_aspect: float):
    """Inputs drawn from photos-only data, exactly as the trainer draws validation inputs."""
    from .pairs import OutlinePairMaker

    maker = OutlinePairMaker(size=size, augment=False, aspect=photo_aspect or None)
    return lambda pair, rng: maker(pair.a, rng)


def _predictor(model: Sketch2Image | None, baseline: str | None, mean: torch.Tensor | None = None):
    """(inputs, targets) -> predictions, all (B, 3, S, S) in [-1, 1]: the model or a trivial baseline."""
    if baseline == "white":
        return lambda a, b: torch.ones_like(b)
    if baseline == "mean":
        return lambda a, b: mean.expand_as(b)
    if baseline == "input":
        return lambda a, b: a
    return lambda a, b: model.run(a)


def evaluate(
    model: Sketch2Image | None,
    data: str | Path,
    *,
    direction: str = "AtoB",
    split: str = "auto",
    val_list: list[str] | None = None,
    outlines: bool = False,
    photo_aspect: float = 0.0,
    baseline: str | None = None,
    batch_size: int = 8,
    limit: int = 0,
    grid: str | Path | None = None,
    grid_rows: int = 6,
) -> dict:
    """Mean L1 (on [0, 1]), PSNR (dB) and SSIM of the model's outputs against the targets.

    ``baseline`` replaces the model by a trivial predictor for comparison: ``white``
    (an all-white image), ``mean`` (the mean training target) or ``input`` (the input
    itself, e.g. the label map). ``grid``: also save the first ``grid_rows`` pairs as a
    sample grid (input | target | prediction), as in the model cards.
    """
    if model is None and baseline is None:
        raise ValueError("evaluate needs a model or a baseline")
    chosen, _ = select_pairs(data, split=split, val_list=val_list, outlines=outlines)
    pairs = chosen.pairs[:limit] if limit else chosen.pairs
    size = model.size if model is not None else 256
    labels = model is not None and model.info.input_kind == "labels"
    pair_loader = _outline_loader(size, photo_aspect) if outlines else None
    ds = PairedDataset(pairs, image_size=size, train=False, direction=direction, labels=labels, pair_loader=pair_loader)
    if baseline == "mean":
        train_ds = PairedDataset(chosen.train_pairs, image_size=size, train=False, direction=direction,
                                 pair_loader=pair_loader)
        predict = _predictor(model, baseline, mean_image(train_ds))
    else:
        predict = _predictor(model, baseline)
    avg = MetricAverager()
    rows = []
    for a, b in DataLoader(ds, batch_size=batch_size, shuffle=False):
        pred = predict(a, b)
        avg.update(image_metrics(pred, b))
        for i in range(min(len(a), grid_rows - len(rows)) if grid else 0):
            rows.append((to_pil(a[i]), to_pil(b[i]), to_pil(pred[i])))
    if grid:
        save_image(sample_grid(rows), grid)
    out = avg.result()
    return {
        "n": out["n"],
        "l1": round(out["l1"], 5),
        "psnr": round(out["psnr"], 3),
        "ssim": round(out["ssim"], 4),
        "split": chosen.split,
        "data": str(data),
        "model": baseline and f"baseline:{baseline}" or str(model.path),
    }
