"""Image-quality metrics on images in [0, 1]: mean absolute error, PSNR and SSIM, and two
that say what a product picture looks like.

All are computed per image and averaged by the caller, so figures do not depend on the
batch size. SSIM follows Wang et al. 2004 (11x11 Gaussian window, sigma 1.5, K1=0.01,
K2=0.03), averaged over the RGB channels.

- ``shape_iou``: the IoU of the picture's non-white area with the target's (product photos
  on white): 1 when the object keeps its shape, lower when colour bleeds onto the background
  or parts go missing.
- ``chroma_detail``: the "rainbow speckle" measure. The colour (YCbCr chroma) of the picture
  minus its own blur at sigma 2 px, as a magnitude, averaged over the target's object: fine
  colour variation. Real product photos have little (a garment is mostly one colour in
  smooth shading); a generator's iridescent speckle has much. Measured 3 px inside the object's edge. Reported beside the same
  figure of the real targets (``chroma_detail_real``), so their ratio says how far from
  photo-like the colour texture is (1: like the photos).
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


WHITE_TOL = 0.12  # how far (max channel, on [0, 1]) from white a pixel may be and still be background
CHROMA_SIGMA = 2.0


def non_white(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, H, W) bool: the object, on a white studio background."""
    return (1 - x).amax(1) > WHITE_TOL


def shape_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) IoU of the non-white areas (1 where both are all white)."""
    a, b = non_white(pred), non_white(target)
    inter, union = (a & b).flatten(1).sum(1).float(), (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(3 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    x = F.pad(x, (radius,) * 4, mode="replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def interior(mask: torch.Tensor, margin: int = 3) -> torch.Tensor:
    """(B, H, W) bool: the pixels of ``mask`` at least ``margin`` px from its edge."""
    outside = (~mask).float()[:, None]
    return ~(F.max_pool2d(outside, 2 * margin + 1, stride=1, padding=margin)[:, 0] > 0)


def chroma_detail(x: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """(B,) mean high-pass chroma magnitude of ``x`` over ``where`` (B, H, W) (all pixels
    where ``where`` is empty)."""
    r, g, b = x.float().unbind(1)
    chroma = torch.stack([-0.1687 * r - 0.3313 * g + 0.5 * b, 0.5 * r - 0.4187 * g - 0.0813 * b], 1)
    detail = (chroma - _blur(chroma, CHROMA_SIGMA)).norm(dim=1)
    where = torch.where(where.flatten(1).any(1)[:, None, None], where, torch.ones_like(where))
    return (detail * where).flatten(1).sum(1) / where.flatten(1).sum(1)


def image_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image metrics (see the module) for (B, 3, H, W) tensors in [-1, 1]."""
    p = pred.float().clamp(-1, 1).add(1).div(2)
    t = target.float().clamp(-1, 1).add(1).div(2)
    obj = interior(non_white(t))  # the object's own colour edge is no speckle
    return {"l1": l1(p, t), "psnr": psnr(p, t), "ssim": ssim(p, t), "shape_iou": shape_iou(p, t),
            "chroma_detail": chroma_detail(p, obj), "chroma_detail_real": chroma_detail(t, obj)}


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
