"""The per-sample work of a training pair, done for a whole batch at once on the device.

What the CPU loader does one pair at a time with OpenCV (:mod:`pix2pix.images.strokes`,
:mod:`pix2pix.training.hints`), written as batched tensor operations so that a GPU stage never
waits on a CPU: the paper's jitter (resize to 286, random 256 crop, flip), an outline drawn
anew from its parts (a line left out here and there, small breaks, a simplified silhouette
now and then, a wobbling hand) and colour hints sampled from the photo (dabs, broad strokes
that spill past the outline, fills of a part). It draws at the pen width the app normalizes
every drawing to, which is what the CPU path's normalization makes of its varied widths.

Random numbers come from one ``torch.Generator`` on the device: a stage is reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .packed import PARTS

LOAD_RATIO = 286 / 256  # the paper's jitter: resize to 286, crop 256
PEN_PX = 3.0  # at 256: the app's normalized stroke width (pix2pix.images.strokes.STROKE_PX)
P_NONE, P_DABS = 0.3, 0.35  # per pair: no hints, dabs, else broad hints
MAX_DABS, MAX_BROAD = 10, 3
WHITE_TOL, COLOUR_TOL = 0.12, 0.25


def _rand(n: int, g: torch.Generator, device, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def jitter(photos: torch.Tensor, inputs: torch.Tensor, g: torch.Generator, *, train: bool = True
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (B, 3, S, S) photos and (B, 2, S, S) inputs -> float photos in [-1, 1] and float
    inputs (channel 0 in [0, 1], channel 1 the line ids), enlarged by 286/256, cropped back to
    S at the same random place and flipped alike (``train=False``: as they are)."""
    photo = photos.float() / 127.5 - 1
    inp = torch.stack([inputs[:, 0].float() / 255, inputs[:, 1].float()], 1)
    if not train:
        return photo, inp
    b, dev, crop = photos.shape[0], photos.device, photos.shape[-1]
    load = round(crop * LOAD_RATIO)
    scale = crop / load
    offset = ((load - crop + 1) * _rand(2 * b, g, dev).view(b, 2)).floor()  # whole pixels of the enlarged image
    flip = (_rand(b, g, dev) < 0.5).float() * -2 + 1
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 1, 1] = scale * flip, scale
    # normalized centre of the crop in the 286 image, mapped into the 256 source
    theta[:, :, 2] = (offset + crop / 2) / load * 2 - 1
    grid = F.affine_grid(theta, [b, 1, crop, crop], align_corners=False)
    photo = F.grid_sample(photo, grid, mode="bilinear", padding_mode="border", align_corners=False)
    inp = torch.cat([F.grid_sample(inp[:, :1], grid, mode="bilinear", padding_mode="zeros", align_corners=False),
                     F.grid_sample(inp[:, 1:], grid, mode="nearest", padding_mode="zeros", align_corners=False)], 1)
    return photo, inp


def _erode(mask: torch.Tensor) -> torch.Tensor:
    return -F.max_pool2d(-mask, 3, stride=1, padding=1)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).view(1, 1, 1, -1)
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _points(where: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One random pixel of each mask (B, H, W) (anywhere where a mask is empty): (B, 2) y, x."""
    b, h, w = where.shape
    weights = where.flatten(1).float() + 1e-6
    idx = torch.multinomial(weights, 1, generator=g).squeeze(1)
    return torch.stack([idx // w, idx % w], 1)


def _discs(centres: torch.Tensor, radius: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, K, 2) centres and (B, K) radii -> (B, H, W): inside any of each row's discs."""
    yy = torch.arange(h, device=centres.device).view(1, 1, h, 1)
    xx = torch.arange(w, device=centres.device).view(1, 1, 1, w)
    d2 = (yy - centres[..., 0, None, None]) ** 2 + (xx - centres[..., 1, None, None]) ** 2
    return (d2 <= radius[..., None, None] ** 2).any(1)


def draw_outlines(inp: torch.Tensor, kind: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(B, 2, H, W) jittered inputs -> (B, 3, H, W) drawings in [-1, 1]: parts roughened and
    drawn with the pen, finished drawings as they are."""
    b, _, h, w = inp.shape
    dev = inp.device
    sil = (inp[:, :1] > 0.5).float()
    simplify = (_rand(b, g, dev) < 0.2).view(b, 1, 1, 1)
    sil = torch.where(simplify, (_blur(sil, 3.0) >= 0.5).float(), sil)
    outline = (sil - _erode(sil)).squeeze(1) > 0
    ids = inp[:, 1].long().clamp(0, 255)
    keep = _rand(b * 256, g, dev).view(b, 256) >= 0.3
    lines = (ids > 0) & keep.gather(1, ids.flatten(1)).view(b, h, w)
    centre = outline | lines
    k = 6  # pen lifts: a few small discs erased along the lines, in about half of the drawings
    spots = torch.stack([_points(centre, g) for _ in range(k)], 1)
    radius = _rand(b * k, g, dev, 1.5, 3.5).view(b, k) * (_rand(b * k, g, dev).view(b, k) < 0.25).float()
    radius = radius * (_rand(b, g, dev) < 0.5).float().view(b, 1)
    centre = centre & ~_discs(spots, radius, h, w)
    pen = max(1, round(PEN_PX * h / 256)) | 1  # odd: centred on the line
    ink = F.max_pool2d(centre.float().unsqueeze(1), pen, stride=1, padding=pen // 2)
    ink = _wobble(ink, g)
    drawing = 1 - inp[:, :1]  # a finished drawing: ink is its darkness
    ink = torch.where((kind == PARTS).view(b, 1, 1, 1), ink, drawing)
    return (1 - ink.clamp(0, 1)).expand(-1, 3, -1, -1) * 2 - 1


def _wobble(ink: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """The ink moved along a smooth random field: a slow sway of 0.5-2.5 px and a faster shake."""
    b, _, h, w = ink.shape
    dev = ink.device
    amp = _rand(b, g, dev, 0.5, 2.5).view(b, 1, 1, 1)
    shake = _rand(b, g, dev, 0.0, 0.6).view(b, 1, 1, 1)
    field = sum(F.interpolate(torch.randn(b, 2, c, c, generator=g, device=dev) * a, size=(h, w), mode="bicubic",
                              align_corners=False) for c, a in ((4, amp), (24, shake)))
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h, device=dev), torch.linspace(-1, 1, w, device=dev), indexing="ij")
    grid = torch.stack([xx, yy], -1).unsqueeze(0) + field.permute(0, 2, 3, 1) * torch.tensor([2 / w, 2 / h], device=dev)
    return F.grid_sample(ink, grid, mode="bilinear", padding_mode="border", align_corners=True)


def sample_hints(target: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """(B, 3, H, W) photos in [-1, 1] -> (B, 4, H, W) hint layers: none for some pairs, else
    dabs of the local colour, or broad strokes and fills of a part that may spill onto the
    background (where the target stays white), as :mod:`pix2pix.training.hints` draws them."""
    b, _, h, w = target.shape
    dev = target.device
    local = _blur(target.float(), 3.0 * h / 256)
    obj = ((1 - target) / 2).amax(1) > WHITE_TOL
    style = _rand(b, g, dev)
    dabs = (style >= P_NONE) & (style < P_NONE + P_DABS)
    broad = style >= P_NONE + P_DABS
    n_dabs = torch.randint(1, MAX_DABS + 1, (b,), generator=g, device=dev)
    n_broad = torch.randint(1, MAX_BROAD + 1, (b,), generator=g, device=dev)
    hints = torch.zeros(b, 4, h, w, device=dev)
    yy = torch.arange(h, device=dev).view(1, h, 1).float()
    xx = torch.arange(w, device=dev).view(1, 1, w).float()
    for slot in range(MAX_DABS):
        active = (dabs & (slot < n_dabs)) | (broad & (slot < n_broad))
        if not bool(active.any()):
            break
        at = _points(obj, g)
        colour = local[torch.arange(b, device=dev), :, at[:, 0], at[:, 1]]  # (B, 3)
        close = (local - colour[:, :, None, None]).abs().amax(1) <= COLOUR_TOL
        dy, dx = yy - at[:, 0].view(b, 1, 1).float(), xx - at[:, 1].view(b, 1, 1).float()
        half = _rand(b, g, dev, 1.5, 4.5).view(b, 1, 1) * h / 256
        dab = (dy.abs() <= half) & (dx.abs() <= half) & obj & close
        angle = _rand(b, g, dev, 0, math.pi).view(b, 1, 1)
        along = dx * torch.cos(angle) + dy * torch.sin(angle)
        across = -dx * torch.sin(angle) + dy * torch.cos(angle)
        length = _rand(b, g, dev, 40, 200).view(b, 1, 1) * h / 256
        width = _rand(b, g, dev, 6, 22).view(b, 1, 1) * h / 256
        spill = (_rand(b, g, dev) < 0.7).view(b, 1, 1)
        part = obj & close
        allowed = part | (~obj & spill)
        stroke = (along.abs() <= length / 2) & (across.abs() <= width / 2) & allowed
        grown = F.max_pool2d(part.float().unsqueeze(1), 9, stride=1, padding=4).squeeze(1) > 0
        fill = torch.where(spill, grown, part) & allowed
        use_fill = (_rand(b, g, dev) < 0.4).view(b, 1, 1)
        footprint = torch.where(dabs.view(b, 1, 1), dab, torch.where(use_fill, fill, stroke)) & active.view(b, 1, 1)
        hints[:, :3] = torch.where(footprint.unsqueeze(1), colour[:, :, None, None], hints[:, :3])
        hints[:, 3] = torch.where(footprint, torch.ones_like(hints[:, 3]), hints[:, 3])
    return hints


def training_batch(photos: torch.Tensor, inputs: torch.Tensor, kind: torch.Tensor, g: torch.Generator,
                   *, with_hints: bool = True) -> tuple[torch.Tensor, ...]:
    """Decoded uint8 pairs -> (input drawing, target photo[, hints]), all float on their device."""
    target, inp = jitter(photos, inputs, g)
    drawing = draw_outlines(inp, kind, g)
    return (drawing, target, sample_hints(target, g)) if with_hints else (drawing, target)
