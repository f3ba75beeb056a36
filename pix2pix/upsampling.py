"""The decoder's x2 upsampling, and cheaper exact forms of the checkerboard-free one.

"Nearest x2 resize, then a 3x3 conv" (Odena, Dumoulin, Olah, Distill 2016) trains without
the transposed conv's checkerboard, but does 9 multiply-adds per output pixel and channel
pair on a map four times the source's size. Of the 3x3 taps an output pixel sees in the
resized map, those that land on the same source pixel can be summed ahead of time: the same
function is then a 4x4 stride-2 transposed conv (4 multiply-adds, no resized map), or, for a
conv with few output channels such as the image head, a 3x3 conv on the source that makes the
four output phases as channels followed by a pixel shuffle (transposed convs with three
outputs vectorize poorly on a CPU).

Inference rewrites a trained model into these forms once (:mod:`pix2pix.inference.rewrite`).
Training can run them too (:class:`UpStage`): the summed weights are rebuilt from the 3x3
ones at every call, so gradients reach the 3x3 weights exactly and what is saved is unchanged.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

# Output pixel 2m (2m+1) of "resize x2, then 3x3 conv, zero padding" reads source pixels
# m-1, m, m (m, m, m+1) through taps 0, 1, 2. A 4x4 stride-2 transposed conv with padding 1
# reaches 2m from sources m-1, m through its taps 3, 1, and 2m+1 from m, m+1 through 2, 0.
# So transposed tap k = sum of the 3x3 taps r with TAPS[k, r] = 1, in each direction.
TAPS = torch.tensor([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.float32)

# Output pixel 2m + a of "resize x2, then 3x3 conv" reads the source at offsets -1, 0, +1
# through the 3x3 taps with PHASES[a, offset, tap] = 1 (a = 0: m-1, m, m; a = 1: m, m, m+1).
PHASES = torch.tensor([[[1, 0, 0], [0, 1, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 0], [0, 0, 1]]], dtype=torch.float32)

# A conv with fewer output channels than this runs as a sub-pixel conv, the rest as transposed.
SUBPIXEL_BELOW = 8


def upsampler(in_ch: int, out_ch: int, mode: str, *, bias: bool) -> list[nn.Module]:
    """x2 upsampling: the paper's 4x4 stride-2 transposed conv, or nearest-neighbour resize
    then a 3x3 conv, which covers every output pixel evenly and so leaves no checkerboard."""
    if mode == "resize":
        return [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias)]
    return [nn.ConvTranspose2d(in_ch, out_ch, 4, stride=2, padding=1, bias=bias)]


def transposed_weight(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 conv's (out, in, 3, 3) weight as the equivalent transposed conv's (in, out, 4, 4)."""
    taps = TAPS.to(weight)
    return torch.einsum("kr,oirs,ls->iokl", taps, weight, taps)


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 conv's (out, in, 3, 3) weight as the (4 out, in, 3, 3) conv whose outputs, pixel
    shuffled, are the resized conv's: channel order (channel, row phase, column phase)."""
    phases = PHASES.to(weight)
    out, cin = weight.shape[:2]
    return torch.einsum("adr,oirs,bes->oabide", phases, weight, phases).reshape(4 * out, cin, 3, 3)


def is_plain_resize(m: nn.Module) -> bool:
    return (isinstance(m, nn.Upsample) and m.mode == "nearest" and m.size is None
            and m.scale_factor in (2, 2.0, (2, 2), (2.0, 2.0)))


def is_plain_3x3(c: nn.Module) -> bool:
    return (isinstance(c, nn.Conv2d) and c.kernel_size == (3, 3) and c.stride == (1, 1) and c.padding == (1, 1)
            and c.dilation == (1, 1) and c.groups == 1 and c.padding_mode == "zeros")


def resize_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(resize_x2(x))`` without the resized map, differentiable in ``conv``'s weights."""
    subpixel = conv.out_channels < SUBPIXEL_BELOW
    with torch.autocast(x.device.type, enabled=False):  # taps summed in fp32; the conv casts the sum once
        weight = (subpixel_weight if subpixel else transposed_weight)(conv.weight.float())
    if subpixel:
        bias = conv.bias.repeat_interleave(4) if conv.bias is not None else None
        return F.pixel_shuffle(F.conv2d(x, weight, bias, padding=1), 2)
    return F.conv_transpose2d(x, weight, conv.bias, stride=2, padding=1)


class UpStage(nn.Sequential):
    """A decoder step (a Sequential, so saved weights keep their names) whose resize + 3x3
    conv pair runs as one summed-tap conv on sources at least ``fold_from`` pixels wide
    (0: never, the default). On a 2-core CPU the large levels gain and the small ones, where
    rebuilding the weights costs more than the convolution saves, do not; training measures
    it (``pix2pix.training.speed``)."""

    fold_from: int = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.fold_from:  # inference, and training that measured no gain: a plain Sequential
            return super().forward(x)
        modules = list(self)
        i = 0
        while i < len(modules):
            m = modules[i]
            if (x.shape[-1] >= self.fold_from and i + 1 < len(modules)
                    and is_plain_resize(m) and is_plain_3x3(modules[i + 1])):
                x, i = resize_conv(x, modules[i + 1]), i + 2
            else:
                x, i = m(x), i + 1
        return x
