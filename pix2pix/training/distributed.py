"""Where a run's processes are: its rank under ``torchrun`` (DistributedDataParallel), its
device, and the process group, made and torn down safely."""

from __future__ import annotations

import contextlib
import gc
import os

import torch
import torch.distributed as dist

from ..config import TrainConfig
from ..hardware import pick_device, resolve_precision


def dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def rank0_value(value: int, world: int, device: torch.device) -> int:
    """``value`` as rank 0 has it, on every rank (itself without DDP)."""
    if world == 1:
        return value
    flag = torch.tensor([float(value)], device=device if dist.get_backend() == "nccl" else "cpu")
    dist.broadcast(flag, 0)
    return int(flag.item())


def pick_run_device(cfg: TrainConfig, world: int, local_rank: int) -> tuple[torch.device, torch.dtype | None]:
    """The device (under torchrun with CUDA: this process's GPU) and the autocast dtype."""
    device = pick_device(cfg.device)
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device, resolve_precision(cfg.precision, device, training=True)


@contextlib.contextmanager
def process_group(world: int, device: torch.device):
    """Under torchrun, the process group, created here unless the caller made one.

    A group created here is destroyed here, after a barrier and a garbage collection. A
    gloo worker thread lets go of a finished collective (and of the Python tensors it used,
    which takes the GIL) only after ``wait()`` has returned; if the interpreter is
    finalizing by then, that thread is killed inside a noexcept destructor and the process
    aborts ("terminate called without an active exception"). So a collective on Python
    tensors must never be the last thing before exit: the barrier carries none and makes
    every rank finish its last one first, and the collection runs while the interpreter is
    whole.
    """
    own = world > 1 and not dist.is_initialized()
    if own:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    ok = False
    try:
        yield
        ok = True
    finally:
        if own:
            if ok:  # after a failure the other ranks may never reach a barrier
                dist.barrier()
                gc.collect()
            dist.destroy_process_group()
