"""Exact rewrites of a trained generator for inference: the same function, fewer operations.

Both hold for eval mode only and change the output by rounding alone (``tests/test_infer.py``
holds them to 1e-4 of the model as trained):

- BatchNorm folded into the convolution before it.
- Nearest x2 resize then a 3x3 convolution (the checkerboard-free decoder) as one 4x4
  stride-2 transposed convolution, or, with only a few output channels (the image head: RGB),
  as a sub-pixel convolution; :mod:`pix2pix.upsampling` says why both are exact. On the
  project's 2-core AVX-512 box the shipped model's head took 2.7 ms as a transposed conv and
  1.7 ms as a sub-pixel one (whether that holds elsewhere is measured: it is a form of its
  own, see ``Sketch2Image``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from ..upsampling import is_plain_3x3, is_plain_resize, subpixel_weight, transposed_weight


def _fold(conv: nn.Module, bn: nn.BatchNorm2d) -> nn.Module:
    """conv -> BN(eval) as one conv with adjusted weights and bias (exact up to rounding)."""
    conv = copy.deepcopy(conv)
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    out_dim = 0 if isinstance(conv, nn.Conv2d) else 1  # ConvTranspose weights are (in, out, k, k)
    shape = [1] * conv.weight.dim()
    shape[out_dim] = -1
    conv.weight = nn.Parameter(conv.weight.detach() * scale.view(shape), requires_grad=False)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach(), requires_grad=False)
    return conv


def _pairs(module: nn.Module, first: type | tuple, second: type):
    """(Sequential, index) for every ``first`` directly followed by a ``second``."""
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if isinstance(seq[i], first) and isinstance(seq[i + 1], second):
                yield seq, i


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every (conv, BatchNorm) pair inside a Sequential fused.

    Dropout layers stay, so the seeded test-time noise still works on the fused model.
    """
    module = copy.deepcopy(module)
    for seq, i in list(_pairs(module, (nn.Conv2d, nn.ConvTranspose2d), nn.BatchNorm2d)):
        seq[i] = _fold(seq[i], seq[i + 1])
        seq[i + 1] = nn.Identity()
    return module


def _as_transposed(conv: nn.Conv2d) -> nn.ConvTranspose2d:
    weight = transposed_weight(conv.weight.detach())  # (in, out, 4, 4)
    out = nn.ConvTranspose2d(conv.in_channels, conv.out_channels, 4, stride=2, padding=1,
                             bias=conv.bias is not None).to(conv.weight.device)
    out.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
    if conv.bias is not None:
        out.bias = nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
    return out


def _as_subpixel(conv: nn.Conv2d) -> nn.Sequential:
    """(resize x2, ``conv``) as a 3x3 conv making the 4 phases of each output channel, then a
    pixel shuffle, whose channel order (channel, row phase, column phase) this matches."""
    weight = subpixel_weight(conv.weight.detach())
    out = nn.Conv2d(conv.in_channels, 4 * conv.out_channels, 3, padding=1,
                    bias=conv.bias is not None).to(conv.weight.device)
    out.weight = nn.Parameter(weight.contiguous(), requires_grad=False)
    if conv.bias is not None:
        out.bias = nn.Parameter(conv.bias.detach().repeat_interleave(4), requires_grad=False)
    return nn.Sequential(out, nn.PixelShuffle(2))


def _resizes(module: nn.Module) -> list:
    """(Sequential, index) of every nearest x2 resize followed by a plain 3x3 conv."""
    return [(seq, i) for seq, i in _pairs(module, nn.Upsample, nn.Conv2d)
            if is_plain_resize(seq[i]) and is_plain_3x3(seq[i + 1])]


def has_resizes(module: nn.Module) -> bool:
    """Whether :func:`resize_as_transposed` would rewrite anything in ``module`` (without the copy)."""
    return bool(_resizes(module))


def resize_as_transposed(module: nn.Module, *, subpixel_up_to: int = 0) -> nn.Module:
    """A copy of ``module`` with every (nearest x2 resize, 3x3 conv) pair inside a Sequential
    replaced by the equivalent transposed conv, or by the sub-pixel conv where the conv has at
    most ``subpixel_up_to`` output channels; a module without such pairs comes back as is."""
    if not _resizes(module):
        return module
    module = copy.deepcopy(module)
    for seq, i in _resizes(module):
        conv = seq[i + 1]
        seq[i] = _as_subpixel(conv) if conv.out_channels <= subpixel_up_to else _as_transposed(conv)
        seq[i + 1] = nn.Identity()
    return module
