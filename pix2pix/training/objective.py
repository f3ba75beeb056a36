"""The pix2pix objective: both networks, their optimizers and learning-rate schedules, and
one training step.

A step updates D on a detached fake, then freezes D and updates G with the non-saturating
adversarial loss plus lambda * L1 (lambda = 100); D's objective is halved; Adam (2e-4,
betas 0.5/0.999), as in the paper and its reference code. The learning rate stays constant,
then decays linearly to zero over the last ``1 - decay_from`` of ``total_steps``.

Two options beyond the paper (off by default, see ``config.RECIPES``): a feature-matching
loss on D's activations (pix2pixHD) and an exponential moving average of G's weights, which
is what validation, samples and the saved model use.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

from ..config import ModelConfig, TrainConfig
from ..models import build_discriminator, build_generator, feature_matching_loss
from .augment import d_losses, diff_augment, g_loss, parse_policy, r1_penalty
from .progress import ALL_LOSS_NAMES, LOSS_NAMES

STATE_KEYS = ("G", "D", "opt_G", "opt_D", "sched_G", "sched_D", "scaler", "G_ema")
EMA_WARMUP = 10  # the average's decay is min(ema, (1 + step) / (10 + step)): early weights fade fast


@dataclass(frozen=True)
class StepForm:
    """How the step runs (not what it computes)."""

    channels_last: bool = True
    adam: str = "loop"
    compiled: bool = False
    # A resize decoder's large levels in the summed-tap form (pix2pix.upsampling): from an
    # eighth of the image's side up, where it gains on a 2-core CPU; the small levels cost
    # more to rebuild weights for than they save.
    folded: bool = False

    @property
    def name(self) -> str:
        return (f"{'channels-last' if self.channels_last else 'nchw'} {self.adam} adam"
                f"{' folded decoder' if self.folded else ''}{' compiled' if self.compiled else ''}")


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
        form: StepForm = StepForm(),
    ):
        self.cfg, self.tcfg, self.device = model_cfg, train_cfg, device
        self.G = (generator or build_generator(model_cfg)).to(device).train()
        self.G.fold_resizes(model_cfg.image_size // 8 if form.folded else 0)
        self.D = build_discriminator(model_cfg, scales=train_cfg.d_scales,
                                     spectral=train_cfg.spectral_norm).to(device).train()
        self.augment = parse_policy(train_cfg.diffaugment)
        self.layout = torch.channels_last if form.channels_last and device.type != "mps" else torch.contiguous_format
        self.G = self.G.to(memory_format=self.layout)
        self.D = self.D.to(memory_format=self.layout)
        betas = (train_cfg.beta1, train_cfg.beta2)
        self.adam = {"foreach": {"foreach": True}, "fused": {"fused": True}}.get(form.adam, {"foreach": False})
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=train_cfg.lr, betas=betas, **self.adam)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=train_cfg.lr, betas=betas, **self.adam)
        self.total_steps = total_steps
        self.sched_G = LambdaLR(self.opt_G, lambda step: self._lr_factor(step))
        self.sched_D = LambdaLR(self.opt_D, lambda step: self._lr_factor(step))
        self.amp_dtype = amp_dtype
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        # What the step calls: the networks themselves, or their DDP wrappers (distribute()).
        # G's update calls the raw D, so no gradient-sync hooks run for D's frozen parameters.
        self.G_train, self.D_train = self.G, self.D
        if form.compiled:
            self.G_train, self.D_train = torch.compile(self.G), torch.compile(self.D)
        self.D_frozen = self.D_train if form.compiled else self.D  # what G's update judges with
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if train_cfg.ema > 0 else None
        self.loss_names = ALL_LOSS_NAMES if train_cfg.feature_matching > 0 else LOSS_NAMES

    @property
    def G_eval(self) -> nn.Module:
        """The generator that is judged and saved: the moving average when there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    @torch.no_grad()
    def _update_ema(self) -> None:
        step = self.sched_G.last_epoch
        decay = min(self.tcfg.ema, (1 + step) / (EMA_WARMUP + step))
        for avg, p in zip(self.G_ema.parameters(), self.G.parameters()):
            avg.lerp_(p, 1.0 - decay)
        for avg, b in zip(self.G_ema.buffers(), self.G.buffers()):  # BatchNorm statistics: G's own
            avg.copy_(b)

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

    def step(self, real_a: torch.Tensor, real_b: torch.Tensor, hints: torch.Tensor | None = None
             ) -> dict[str, torch.Tensor]:
        """One D update, one G update and one schedule step; inputs (B, C, S, S) in [-1, 1],
        ``hints`` (B, 4, S, S) for a hint model. D judges (input, output) pairs as in the
        paper: it never sees the hints, so following them is learnt through L1 alone."""
        real_a = real_a.to(self.device, non_blocking=True, memory_format=self.layout)
        real_b = real_b.to(self.device, non_blocking=True, memory_format=self.layout)
        with self.autocast():
            if hints is None:
                fake_b = self.G_train(real_a)
            else:
                fake_b = self.G_train(real_a, hints.to(self.device, non_blocking=True, memory_format=self.layout))
        loss_d_real, loss_d_fake, feats_real = self._update_d(real_a, real_b, fake_b)
        losses = self._update_g(real_a, real_b, fake_b, feats_real)
        self.scaler.update()
        self.sched_G.step()
        self.sched_D.step()
        if self.G_ema is not None:
            self._update_ema()
        losses[2:2] = [loss_d_real, loss_d_fake]
        return {name: loss.detach() for name, loss in zip(self.loss_names, losses)}

    def _d_view(self, real_a: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pair as D sees it: through DiffAugment's random draw when the recipe has it."""
        return diff_augment(real_a, image, self.augment)

    def _update_d(self, real_a, real_b, fake_b):
        """D: real pairs -> real, generated pairs -> fake; halved, as in the paper; with the
        recipe's R1 every ``r1_every`` steps. Returns both losses and D's view of the real pair
        (its activations, for feature matching)."""
        fm, cfg = self.tcfg.feature_matching, self.tcfg
        set_requires_grad(self.D, True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            pred_fake = self.D_train(*self._d_view(real_a, fake_b.detach()))
            pred_real = self.D_train(*self._d_view(real_a, real_b), features=fm > 0)
        feats_real = None
        if fm > 0:  # D's view of the real pair, before its update, as pix2pixHD takes it
            pred_real, feats_real = pred_real[0], [f.detach() for f in pred_real[1]]
        loss_d_real, loss_d_fake = d_losses(pred_real, pred_fake, cfg.gan_loss)
        loss_d = 0.5 * (loss_d_fake + loss_d_real)
        if cfg.r1 > 0 and self.sched_D.last_epoch % cfg.r1_every == 0:  # lazy: rarely, and weighted up
            loss_d = loss_d + 0.5 * cfg.r1 * cfg.r1_every * r1_penalty(self.D_train, real_a, real_b)
        self.scaler.scale(loss_d).backward()
        self.scaler.step(self.opt_D)
        return loss_d_real, loss_d_fake, feats_real

    def _update_g(self, real_a, real_b, fake_b, feats_real) -> list[torch.Tensor]:
        """G: fool D and stay close to the target in L1 (and D's activations, with feature
        matching). Returns G's losses in :data:`LOSS_NAMES` order, D's left out."""
        fm = self.tcfg.feature_matching
        set_requires_grad(self.D, False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            pred = self.D_frozen(*self._d_view(real_a, fake_b), features=fm > 0)
        if fm > 0:
            pred, feats_fake = pred
        loss_g_gan = g_loss(pred, self.tcfg.gan_loss)
        loss_g_l1 = F.l1_loss(fake_b.float(), real_b.float())
        losses = [loss_g_gan, loss_g_l1]
        loss_g = loss_g_gan + self.tcfg.lambda_l1 * loss_g_l1
        if fm > 0:
            losses.append(feature_matching_loss(feats_fake, feats_real))
            loss_g = loss_g + fm * losses[-1]
        self.scaler.scale(loss_g).backward()
        self.scaler.step(self.opt_G)
        return losses

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
            **({"G_ema": self.G_ema.state_dict()} if self.G_ema is not None else {}),
        }

    def load_state_dict(self, state: dict) -> None:
        """The inverse of :meth:`state_dict`; extra keys are ignored, so a whole checkpoint
        can be passed. The learning rate is recomputed for the current ``total_steps``."""
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        for opt, key in ((self.opt_G, "opt_G"), (self.opt_D, "opt_D")):
            opt.load_state_dict(state[key])
            for group in opt.param_groups:  # how Adam runs is this machine's choice, not the checkpoint's
                group.update({"foreach": None, "fused": None} | self.adam)
        self.sched_G.load_state_dict(state["sched_G"])
        self.sched_D.load_state_dict(state["sched_D"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.G_ema is not None:  # a run without one so far starts its average at G
            self.G_ema.load_state_dict(state.get("G_ema") or self.G.state_dict())
        for sched in (self.sched_G, self.sched_D):  # the same expression LambdaLR.step uses
            for group, base_lr in zip(sched.optimizer.param_groups, sched.base_lrs):
                group["lr"] = base_lr * self._lr_factor(sched.last_epoch)
