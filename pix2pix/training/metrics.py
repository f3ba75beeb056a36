"""Image-quality metrics on images in [0, 1]: mean absolute error, PSNR and SSIM.

All three are computed per image and averaged by the caller, so figures do not depend on
the batch size. SSIM follows Wang et al. 2004 (11x11 Gaussian window, sigma 1.5,
K1=0.01, K2=0.03), averaged over the RGB channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _gaussian_window(size: int = 11, sigma: float = 1.5, device=None) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]  # (1, 1, size, size)


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B,) mean absolute error."""
    return (pred - target).abs().flatten(1).mean(1)


def psnr(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B,) PSNR in dB (data range 1)."""
    mse = (pred - target).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / (mse + eps))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [0, 1] -> (B,) structural similarity, mean over channels and pixels."""
    c = pred.shape[1]
    win = _gaussian_window(device=pred.device).expand(c, 1, -1, -1)
    pred, target = pred.float(), target.float()

    def blur(x):
        return F.conv2d(x, win, groups=c)  # 'valid' windows only, as in the reference code

    mu_x, mu_y = blur(pred), blur(target)
    sxx = blur(pred * pred) - mu_x**2
    syy = blur(target * target) - mu_y**2
    sxy = blur(pred * target) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s.flatten(1).mean(1)


def image_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image l1/psnr/ssim for (B, 3, H, W) tensors in [-1, 1]."""
    p = pred.float().clamp(-1, 1).add(1).div(2)
    t = target.float().clamp(-1, 1).add(1).div(2)
    return {"l1": l1(p, t), "psnr": psnr(p, t), "ssim": ssim(p, t)}


class MetricAverager:
    """Accumulates per-image metrics and reports their means."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.n = 0

    def update(self, values: dict[str, torch.Tensor]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.sum())
        self.n += int(next(iter(values.values())).numel())

    def result(self) -> dict[str, float]:
        return {k: v / max(self.n, 1) for k, v in self.sums.items()} | {"n": self.n}
