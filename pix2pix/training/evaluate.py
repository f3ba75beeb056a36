"""Evaluate a model (or a trivial baseline) on the pairs of a data folder."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader

from . import hints as hint_layers
from .data import DataError, Pair
from .dataset import PairedDataset, outline_pairs, source_pairs
from .mix import scan_data
from ..images.outline_store import OutlineStore
from ..images.imaging import sample_grid, save_image, to_pil
from ..inference.infer import Sketch2Image
from ..io import load_pretrained
from ..models import extra_layers
from .metrics import MetricAverager, image_metrics

log = logging.getLogger(__name__)

BASELINES = ("white", "mean", "input")


@dataclass
class EvalData:
    pairs: list[Pair]
    train_pairs: list[Pair]  # what the baseline "mean" averages
    split: str


def select_pairs(data: str | Path, *, split: str = "auto", val_list: list[str] | None = None, outlines: bool = False,
                 source: str | None = None) -> tuple[EvalData, object]:
    """Pairs to evaluate on: the named split, or the pairs of a validation list, or (auto)
    test/, else val/, else every pair of the folder; of a mix, those of one ``source`` if named."""
    result = scan_data(data, outlines=outlines)
    if source is not None:
        result = _one_source(result, source)
    if val_list:  # exactly these names, from whichever split holds them
        wanted = set(val_list)
        chosen = [p for ps in result.splits.values() for p in ps if wanted & {p.key(result.root), p.a.name, p.name}]
        if not chosen:
            raise DataError(f"None of the names in the validation list are in {data}.")
        keep = set(map(id, chosen))
        return EvalData(chosen, [p for p in result.splits["train"] if id(p) not in keep], "val-list"), result
    if split == "auto":
        split = next((s for s in ("test", "val") if result.splits.get(s)), "train")
    if split == "all":
        pairs = [p for ps in result.splits.values() for p in ps]
    else:
        pairs = result.splits.get(split, [])
    if not pairs:
        raise DataError(f"No pairs in the {split!r} split of {data}.")
    return EvalData(pairs, result.splits["train"], split), result


def _one_source(result, name: str):
    """A mix's scan restricted to the pairs of the source called ``name``."""
    names = [s.name for s in result.sources]
    if name not in names:
        raise DataError(f"{result.root} has no source {name!r}" + (f" (its sources: {', '.join(names)})" if names else
                                                                    " (it is not a mix)"))
    i = names.index(name)
    return replace(result, splits={k: [p for p in v if p.source == i] for k, v in result.splits.items()})


def mean_image(dataset: PairedDataset, limit: int = 2000) -> torch.Tensor:
    """Mean target image over (at most ``limit`` of) a data set, (3, S, S) in [-1, 1]."""
    total, n = None, 0
    for i in range(min(len(dataset), limit)):
        _, b = dataset[i]
        total = b.clone() if total is None else total + b
        n += 1
    return total / max(n, 1)


NORMS = ("running", "image")


def _own_statistics(model: Sketch2Image):
    """The model with every BatchNorm normalizing by each image's own statistics, as the paper
    ran its generator at test time (batch statistics, batch size 1), dropout off."""
    generator, _, _ = load_pretrained(model.path)
    for m in generator.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.track_running_stats, m.running_mean, m.running_var = False, None, None

    @torch.no_grad()
    def predict(a, b, h, cls):
        extra = extra_layers(model.cfg, a.shape[-1], len(a), h if model.takes_hints else None, cls)
        return torch.cat([generator(a[i:i + 1]) if extra is None else generator(a[i:i + 1], extra[i:i + 1])
                          for i in range(len(a))])

    return predict


def _predictor(model: Sketch2Image | None, baseline: str | None, mean: torch.Tensor | None = None,
               norm: str = "running"):
    """(inputs, targets, hints, classes) -> predictions, all (B, C, S, S) in [-1, 1]: the model
    (its BatchNorm on the statistics saved with it, or with ``norm="image"`` each image's own)
    or a trivial baseline (which ignores the hints and classes)."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if model is not None and baseline is None and norm == "image":
        return _own_statistics(model)
    if baseline == "white":
        return lambda a, b, h, cls: torch.ones_like(b)
    if baseline == "mean":
        return lambda a, b, h, cls: mean.expand_as(b)
    if baseline == "input":
        return lambda a, b, h, cls: a
    return lambda a, b, h, cls: model.run(a, hints=h, cls=cls)


HINT_STYLES = ("dabs", "strokes")


def target_hints(targets: torch.Tensor, first: int, n: int, seed: int, style: str = "dabs") -> torch.Tensor | None:
    """``n`` hints from each target (B, 3, S, S), pair ``first + i`` always drawing the same
    ones for the same ``seed``: "with hints" and "without" compare the same pairs. ``dabs``:
    ``n`` small dabs of the local colour; ``strokes``: ``n`` 10-px strokes of the object's
    colour straight across it and over its outline, as people paint with a broad brush."""
    if n <= 0:
        return None
    if style not in HINT_STYLES:
        raise ValueError(f"hint style must be one of {', '.join(HINT_STYLES)}, got {style!r}")
    draw = (lambda t, rng: hint_layers.sample(t, rng, n=n)) if style == "dabs" else \
        (lambda t, rng: hint_layers.strokes_across(t, rng, count=n))
    return torch.stack([draw(t, random.Random(f"{seed}:{first + i}")) for i, t in enumerate(targets)])


def _grid_row(a: torch.Tensor, b: torch.Tensor, pred: torch.Tensor, h: torch.Tensor | None) -> tuple:
    """input (with its hints painted over it) | target | prediction."""
    shown = to_pil(a)
    if h is not None:
        shown = Image.alpha_composite(shown.convert("RGBA"), hint_layers.to_image(h)).convert("RGB")
    return shown, to_pil(b), to_pil(pred)


def _score(ds: PairedDataset, predict, batch_size: int, hints: int, hint_seed: int, grid_rows: int,
           hint_style: str = "dabs", told: bool = True) -> tuple[dict, list]:
    """Metrics of ``predict`` over ``ds`` (with ``hints`` sampled hints per pair; each pair's
    class from the data's labels if ``told``) and the first grid rows."""
    avg = MetricAverager()
    rows, seen = [], 0
    for a, b in DataLoader(ds, batch_size=batch_size, shuffle=False):
        h = target_hints(b, seen, hints, hint_seed, hint_style)
        cls = [p.label for p in ds.pairs[seen:seen + len(a)]] if told else None
        seen += len(a)
        pred = predict(a, b, h, cls)
        avg.update(image_metrics(pred, b))
        for i in range(min(len(a), grid_rows - len(rows))):
            rows.append(_grid_row(a[i], b[i], pred[i], None if h is None else h[i]))
    return avg.result(), rows


def figures(out: dict) -> dict:
    """Averaged metrics, rounded, with the rainbow-speckle ratio: the outputs' chroma detail
    over the real photos' (see :mod:`pix2pix.training.metrics`)."""
    return {"n": out["n"], "l1": round(out["l1"], 5), "psnr": round(out["psnr"], 3), "ssim": round(out["ssim"], 4),
            "shape_iou": round(out["shape_iou"], 4), "chroma_detail": round(out["chroma_detail"], 5),
            "speckle": round(out["chroma_detail"] / max(out["chroma_detail_real"], 1e-9), 3)}


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
    hints: int = 0,
    hint_seed: int = 0,
    hint_style: str = "dabs",
    source: str | None = None,
    norm: str = "running",
    untold: bool = False,
) -> dict:
    """Mean L1 (on [0, 1]), PSNR (dB) and SSIM of the model's outputs against the targets.

    ``baseline`` replaces the model by a trivial predictor for comparison: ``white``
    (an all-white image), ``mean`` (the mean training target) or ``input`` (the input
    itself, e.g. the label map). ``grid``: also save the first ``grid_rows`` pairs as a
    sample grid (input | target | prediction), as in the model cards. ``hints``: give a hint
    model that many colour hints per pair, sampled from the target (reproducible with
    ``hint_seed``); models without hint channels and baselines ignore them. A class model is
    told each pair's class from the data's labels, unless ``untold`` (then it guesses)."""
    if model is None and baseline is None:
        raise ValueError("evaluate needs a model or a baseline")
    if hints and model is not None and not model.takes_hints:
        log.warning("%s takes no colour hints: evaluated without them", model.path)
    chosen, found = select_pairs(data, split=split, val_list=val_list, outlines=outlines, source=source)
    pairs = chosen.pairs[:limit] if limit else chosen.pairs
    size = model.size if model is not None else 256
    labels = model is not None and model.info.input_kind == "labels"
    pair_loader = (source_pairs(found.sources, size, store=OutlineStore()) if found.sources else
                   outline_pairs(size, photo_aspect=photo_aspect, store=OutlineStore()) if outlines else None)
    ds = PairedDataset(pairs, image_size=size, train=False, direction=direction, labels=labels, pair_loader=pair_loader)
    mean = None
    if baseline == "mean":
        mean = mean_image(PairedDataset(chosen.train_pairs, image_size=size, train=False, direction=direction,
                                        pair_loader=pair_loader))
    out, rows = _score(ds, _predictor(model, baseline, mean, norm), batch_size, hints, hint_seed, grid_rows if grid else 0,
                       hint_style, told=not untold)
    if grid:
        save_image(sample_grid(rows), grid)
    return {
        **figures(out),
        "hints": hints,
        **({"hint_seed": hint_seed, "hint_style": hint_style} if hints else {}),
        "split": chosen.split,
        **({"source": source} if source else {}),
        **({"norm": norm} if norm != "running" else {}),
        **({"classes": "untold" if untold else "told"} if model is not None and model.classes else {}),
        "data": str(data),
        "model": baseline and f"baseline:{baseline}" or str(model.path),
    }
