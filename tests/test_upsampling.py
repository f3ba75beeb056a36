"""The resize decoder's summed-tap form computes the same function and the same gradients as the
resize + 3x3 conv it stands for, so a training step may run either."""

import pytest
import torch
import torch.nn as nn

from pix2pix.config import ModelConfig
from pix2pix.models import build_generator
from pix2pix.upsampling import UpStage, upsampler

RESIZE = ModelConfig(ngf=8, ndf=8, image_size=32, upsample="resize")


def _run(module: nn.Module, x: torch.Tensor, *args):
    """Output, input gradient and parameter gradients under a fixed, uneven loss."""
    module.zero_grad()
    x = x.clone().requires_grad_(True)
    torch.manual_seed(1)  # the same dropout masks
    y = module(x, *args)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return [y.detach(), x.grad, *(p.grad.clone() for p in module.parameters())]


@pytest.mark.parametrize("out_ch", [3, 16])  # a sub-pixel conv (few outputs) and a transposed one
def test_a_folded_stage_matches_resize_then_conv(out_ch):
    torch.manual_seed(0)
    stage = UpStage(nn.ReLU(), *upsampler(12, out_ch, "resize", bias=True), nn.Tanh())  # as the image head
    x = torch.randn(2, 12, 9, 7)  # odd sizes reach the borders' zero padding on every side
    plain = _run(stage, x)
    stage.fold_from = 1
    folded = _run(stage, x)
    assert folded[0].shape == (2, out_ch, 18, 14)
    for a, b in zip(plain, folded):
        assert torch.allclose(a, b, atol=1e-5 * max(1.0, a.abs().max().item())), (a - b).abs().max()


def test_a_folded_generator_trains_on_the_same_gradients_and_skips_the_resized_maps():
    torch.manual_seed(0)
    G = build_generator(RESIZE).train()
    resizes = []
    for m in G.modules():
        if isinstance(m, nn.Upsample):
            m.register_forward_hook(lambda *_: resizes.append(1))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    plain = _run(G, x)
    assert len(resizes) == len(G.up) + 1
    resizes.clear()
    G.fold_resizes(4)  # the levels whose input is 4 px or wider
    folded = _run(G, x)
    assert 0 < len(resizes) < len(G.up) + 1
    for a, b in zip(plain, folded):
        assert torch.allclose(a, b, atol=1e-5 * max(1.0, a.abs().max().item())), (a - b).abs().max()
    assert "fold" not in "".join(G.state_dict())  # a way of running, not saved with the weights
