"""What the discriminator is shown: differentiable augmentation of its inputs, and its losses.

- DiffAugment (Zhao, Liu, Lin, Zhu, Han, "Differentiable Augmentation for Data-Efficient GAN
  Training", NeurIPS 2020): D sees real and generated pairs through the same kind of random
  translation, cutout and colour change, drawn anew for every batch. The transforms are
  differentiable, so G learns through them; D can no longer memorise a small training set.
  For a conditional pair both halves move together (translation, cutout), and colour changes
  the photo alone (the drawing is black on white).
- Hinge loss (Lim and Ye 2017; Miyato et al. 2018) beside the paper's non-saturating BCE.
- R1 (Mescheder, Geiger, Nowozin 2018): a penalty on D's gradient at real pairs, applied
  lazily every few steps at a proportionally larger weight (Karras et al. 2020).

Random numbers come from torch's generator, so a seeded run stays deterministic and a
resumed one continues exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import DIFFAUGMENT_PARTS as POLICIES


def parse_policy(policy: str) -> tuple[str, ...]:
    """"color,translation,cutout" -> its parts, checked ("" -> none)."""
    parts = tuple(p.strip() for p in policy.split(",") if p.strip())
    if unknown := set(parts) - set(POLICIES):
        raise ValueError(f"unknown DiffAugment part(s) {', '.join(sorted(unknown))}; known: {', '.join(POLICIES)}")
    return parts


def _colour(x: torch.Tensor) -> torch.Tensor:
    """Brightness, saturation and contrast, each drawn per image (as in DiffAugment)."""
    b = x.shape[0]
    x = x + (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(b, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translate(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, whole pixels, zeros where it moved from."""
    b, _, h, w = x.shape
    shift = torch.stack([torch.randint(-int(w * ratio), int(w * ratio) + 1, (b,), device=x.device),
                         torch.randint(-int(h * ratio), int(h * ratio) + 1, (b,), device=x.device)], 1)
    theta = torch.zeros(b, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = -2 * shift.to(x.dtype) / torch.tensor([w, h], device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ``ratio`` of the size at a random place in each image."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = ((ys - cy).abs() <= ch // 2) & ((xs - cx).abs() <= cw // 2)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def diff_augment(condition: torch.Tensor, image: torch.Tensor, policy: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """The pair through one random draw of ``policy``: colour on the image, the rest on both alike."""
    if not policy:
        return condition, image
    if "color" in policy:
        image = _colour(image)
    pair = torch.cat([condition, image.to(condition.dtype)], 1)
    if "translation" in policy:
        pair = _translate(pair)
    if "cutout" in policy:
        pair = _cutout(pair)
    c = condition.shape[1]
    return pair[:, :c], pair[:, c:]


def _scales(logits) -> list[torch.Tensor]:
    return list(logits) if isinstance(logits, (list, tuple)) else [logits]


def d_losses(real, fake, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """D's loss on real and on generated pairs, averaged over D's scales."""
    real, fake = _scales(real), _scales(fake)
    if kind == "hinge":
        lr = sum(F.relu(1 - r.float()).mean() for r in real) / len(real)
        lf = sum(F.relu(1 + f.float()).mean() for f in fake) / len(fake)
        return lr, lf
    lr = sum(F.binary_cross_entropy_with_logits(r.float(), torch.ones_like(r, dtype=torch.float32)) for r in real)
    lf = sum(F.binary_cross_entropy_with_logits(f.float(), torch.zeros_like(f, dtype=torch.float32)) for f in fake)
    return lr / len(real), lf / len(fake)


def g_loss(fake, kind: str) -> torch.Tensor:
    """G's adversarial loss: non-saturating BCE, or the hinge generator loss (-D)."""
    fake = _scales(fake)
    if kind == "hinge":
        return sum(-f.float().mean() for f in fake) / len(fake)
    return sum(F.binary_cross_entropy_with_logits(f.float(), torch.ones_like(f, dtype=torch.float32))
               for f in fake) / len(fake)


def r1_penalty(D, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of |d D(condition, image) / d image|^2 (summed over D's scales)."""
    image = image.detach().float().requires_grad_(True)
    logits = _scales(D(condition.float(), image))
    (grad,) = torch.autograd.grad(sum(x.float().sum() for x in logits), image, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()
