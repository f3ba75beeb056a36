"""The files of one training run, and what the trainer judges a model by before saving it.

    run.json          configuration, data summary            split.json   validation list
    log.jsonl         one line per epoch: losses, val metrics samples/     epoch_NNNN.png grids
    checkpoints/last.pt  everything needed to resume          model/       the generator, safetensors

Every file is written atomically, except the log, which is appended to line by line (a
line cut short by a kill is dropped when the run resumes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..config import ModelInfo, TrainConfig
from .data import DataScan, Pair, read_palette, write_split
from ..images.imaging import atomic_write_bytes, sample_grid, save_image, to_pil
from .metrics import MetricAverager, image_metrics


class RunFolder:
    """Where a run's files go; writes run.json, split.json and the log."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.checkpoint = self.root / "checkpoints" / "last.pt"
        self.model = self.root / "model"
        self.log = self.root / "log.jsonl"
        self.split = self.root / "split.json"

    def sample(self, epoch: int) -> Path:
        return self.root / "samples" / f"epoch_{epoch:04d}.png"

    def begin(self, found: DataScan, val_pairs: list[Pair], **run: object) -> None:
        """A new run: the validation list, and run.json (the data summary plus ``run``)."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_split(self.split, found.root, val_pairs)
        data = {"data": str(found.root), "scan": found.to_dict(), **run, "created": time.strftime("%Y-%m-%d %H:%M:%S")}
        atomic_write_bytes(self.root / "run.json", (json.dumps(data, indent=2) + "\n").encode())

    def append_log(self, record: dict) -> None:
        with open(self.log, "a") as f:
            f.write(json.dumps(record) + "\n")

    def trim_log(self, step: int, steps_per_epoch: int) -> None:
        """Keep the records of the epochs completed by ``step``: later ones will be redone,
        and a record of a run's partial last epoch is rewritten when that epoch completes."""
        if not self.log.exists():
            return
        keep = []
        for line in self.log.read_text().splitlines():
            try:
                at = json.loads(line)["step"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a kill
            if at <= step and at % steps_per_epoch == 0:
                keep.append(line)
        atomic_write_bytes(self.log, ("\n".join(keep) + "\n" if keep else "").encode())

    def records(self) -> list[dict]:
        """The log's records, less a line cut short by a kill."""
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int):
                found.append(record)
        return found

    def save_samples(self, epoch: int, rows: list) -> Path:
        return save_image(sample_grid(rows), self.sample(epoch))


def describe_run(base: ModelInfo | None, found: DataScan, cfg: TrainConfig, name: str) -> ModelInfo:
    """The saved model's info: what it was trained on and what its inputs are."""
    base = base or ModelInfo()
    kind = cfg.input_kind
    if kind == "auto":
        drawn = cfg.outlines or any(s.outlines or s.frame == "sketch" for s in found.sources)
        kind = "labels" if found.labels else "sketch" if drawn else base.input_kind
    palette = base.palette
    if kind == "labels" and not palette and found.labels:
        palette = read_palette(found)
    counts = ", ".join(f"{len(p)} {s}" for s, p in found.splits.items())
    return replace(
        base, name=name, description=base.description or f"Trained on {found.root.name} ({counts})",
        direction=cfg.direction, input_kind=kind, palette=palette, trained_on=f"{found.root.name}: {found.layout}, {counts}",
    )


# ---------------------------------------------------------------------------- judging a model


def recalibrate_bn(G: torch.nn.Module, dataset: Dataset, keys: list[int], batch_size: int, device: torch.device,
                   generator: torch.Generator, *, stop: Callable[[], bool] | None = None, enough: int = 0) -> int:
    """Re-estimate G's BatchNorm statistics for its current weights on ``dataset[keys]``,
    before it is judged or saved (inference runs in eval mode, on these statistics);
    returns how many images it used.

    The running averages kept during training trail weights that a GAN moves fast:
    measured on the fashion run, a checkpoint whose eval-mode output had fallen to L1
    0.29 (batch statistics: 0.096) came back to 0.093 after this. Training itself never
    reads them, so overwriting them changes nothing else. The caller keeps the training
    run's random generators out of it (dropout draws here).

    ``stop`` (a stop was asked for) ends the pass early once ``enough`` images are in: the
    statistics are then a plain average over fewer images, still usable.
    """
    seen = 0

    def batches():
        nonlocal seen
        for batch in DataLoader(Subset(dataset, keys), batch_size=batch_size, generator=generator):
            yield batch
            seen += len(batch[0])
            if stop is not None and seen >= enough and stop():
                return

    if not keys:
        return seen
    # As torch's update_bn, but a hint or class model gets its extra layers as in training: the
    # statistics must hold for drawings with colour strokes too, not only for bare ones.
    norms = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over every batch
    was_training = G.training
    G.train()
    with torch.no_grad():
        for a, _, *extra in batches():
            G(a.to(device), *(e.to(device) for e in extra))
    for m, momentum in momenta.items():
        m.momentum = momentum
    G.train(was_training)
    return seen


@torch.no_grad()
def judge(G: torch.nn.Module, val: Dataset | None, show: Dataset, *, device: torch.device,
          batch_size: int, generator: torch.Generator, rows: int = 4,
          stop: Callable[[], bool] | None = None) -> tuple[dict[str, float], list] | None:
    """G's validation metrics on ``val`` (empty without one) and sample-grid rows
    (input, target, output) of the first pairs of ``show``; G is in eval mode meanwhile.
    Always in fp32, whatever the training precision: bf16 can move a trained model's
    outputs far (a hint model's by 0.1 on average), and these figures must be the ones a user
    of the model gets. None if ``stop`` (a stop was asked for) cut it short."""
    G.eval()
    try:
        metrics: dict[str, float] = {}
        if val is not None:
            avg = MetricAverager()
            for a, b, *extra in DataLoader(val, batch_size=batch_size, generator=generator):
                if stop is not None and stop():
                    return None
                fake = G(a.to(device, memory_format=torch.channels_last), *(e.to(device) for e in extra))
                avg.update(image_metrics(fake.float().cpu(), b))
            metrics = avg.result()
        grid = []
        for a, b, *extra in (show[i] for i in range(min(rows, len(show)))):
            fake = G(a[None].to(device, memory_format=torch.channels_last), *(e[None].to(device) for e in extra))
            grid.append((to_pil(a), to_pil(b), to_pil(fake[0].float())))
    finally:
        G.train()
    return metrics, grid
