"""The pix2pix objective: both networks, their optimizers and learning-rate schedules, and
one training step.

A step updates D on a detached fake, then freezes D and updates G with the non-saturating
adversarial loss plus lambda * L1 (lambda = 100); D's objective is halved; Adam (2e-4,
betas 0.5/0.999), as in the paper and its reference code. The learning rate stays constant,
then decays linearly to zero over the last ``1 - decay_from`` of ``total_steps``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

from .config import ModelConfig, TrainConfig
from .models import adversarial_loss, build_discriminator, build_generator

LOSS_NAMES = ("G_GAN", "G_L1", "D_real", "D_fake")
STATE_KEYS = ("G", "D", "opt_G", "opt_D", "sched_G", "sched_D", "scaler")


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def lr_factor(step: int, total: int, decay_from: float) -> float:
    """Constant, then linear decay to zero over the last (1 - decay_from) of training."""
    start = int(total * decay_from)
    if step < start or total <= start:
        return 1.0
    return max(0.0, (total - step) / (total - start))


class Pix2Pix:
    """Generator, discriminator, their optimizers, schedules and grad scaler.

    ``total_steps`` is the run's length (0: constant learning rate); it may be changed
    between steps (a resumed run that was extended) and the decay follows it.
    ``state_dict()``/``load_state_dict()`` cover everything the objective owns.
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        device: torch.device,
        *,
        generator: nn.Module | None = None,
        amp_dtype: torch.dtype | None = None,
        total_steps: int = 0,
    ):
        self.cfg, self.tcfg, self.device = model_cfg, train_cfg, device
        self.G = (generator or build_generator(model_cfg)).to(device).train()
        self.D = build_discriminator(model_cfg).to(device).train()
        if device.type != "mps":  # faster convolutions on CPU (oneDNN) and GPU (cuDNN)
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        betas = (train_cfg.beta1, train_cfg.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=train_cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=train_cfg.lr, betas=betas)
        self.total_steps = total_steps
        self.sched_G = LambdaLR(self.opt_G, lambda step: self._lr_factor(step))
        self.sched_D = LambdaLR(self.opt_D, lambda step: self._lr_factor(step))
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        # What the step calls: the networks themselves, or their DDP wrappers (distribute()).
        # G's update calls the raw D, so no gradient-sync hooks run for D's frozen parameters.
        self.G_train, self.D_train = self.G, self.D

    def _lr_factor(self, step: int) -> float:
        return lr_factor(step, self.total_steps, self.tcfg.decay_from)

    @property
    def lr(self) -> float:
        return self.opt_G.param_groups[0]["lr"]

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def distribute(self) -> None:
        """Wrap both networks in DistributedDataParallel (the process group must exist)."""
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        self.G_train = DDP(self.G, device_ids=ids)
        self.D_train = DDP(self.D, device_ids=ids)

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """One D update, one G update and one schedule step; inputs (B, C, S, S) in [-1, 1]."""
        real_a = real_a.to(self.device, non_blocking=True, memory_format=torch.channels_last)
        real_b = real_b.to(self.device, non_blocking=True, memory_format=torch.channels_last)
        with self.autocast():
            fake_b = self.G_train(real_a)

        # D: real pairs -> 1, generated pairs -> 0; halved, as in the paper.
        set_requires_grad(self.D, True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            pred_fake = self.D_train(real_a, fake_b.detach())
            pred_real = self.D_train(real_a, real_b)
        loss_d_fake = adversarial_loss(pred_fake, real=False)
        loss_d_real = adversarial_loss(pred_real, real=True)
        self.scaler.scale(0.5 * (loss_d_fake + loss_d_real)).backward()
        self.scaler.step(self.opt_D)

        # G: fool D (non-saturating) and stay close to the target in L1.
        set_requires_grad(self.D, False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            pred = self.D(real_a, fake_b)
        loss_g_gan = adversarial_loss(pred, real=True)
        loss_g_l1 = F.l1_loss(fake_b.float(), real_b.float())
        self.scaler.scale(loss_g_gan + self.tcfg.lambda_l1 * loss_g_l1).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        self.sched_G.step()
        self.sched_D.step()
        losses = (loss_g_gan, loss_g_l1, loss_d_real, loss_d_fake)
        return {name: loss.detach() for name, loss in zip(LOSS_NAMES, losses)}

    def state_dict(self) -> dict:
        """Both networks (unwrapped), both optimizers, both schedules and the grad scaler."""
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "sched_G": self.sched_G.state_dict(),
            "sched_D": self.sched_D.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
        }

    def load_state_dict(self, state: dict) -> None:
        """The inverse of :meth:`state_dict`; extra keys are ignored, so a whole checkpoint
        can be passed. The learning rate is recomputed for the current ``total_steps``."""
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.sched_G.load_state_dict(state["sched_G"])
        self.sched_D.load_state_dict(state["sched_D"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        for sched in (self.sched_G, self.sched_D):  # the same expression LambdaLR.step uses
            for group, base_lr in zip(sched.optimizer.param_groups, sched.base_lrs):
                group["lr"] = base_lr * self._lr_factor(sched.last_epoch)
