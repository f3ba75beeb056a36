import math

import pytest
import torch
import torch.nn as nn

from pix2pix.config import ModelConfig
from pix2pix.models import (
    adversarial_loss,
    build_discriminator,
    build_generator,
    count_params,
    set_dropout,
)


@pytest.mark.parametrize("ngf,expected", [(64, 54_413_955), (32, 13_608_259)])
def test_generator_matches_reference_unet_256(ngf, expected):
    assert count_params(build_generator(ModelConfig(ngf=ngf))) == expected


def test_discriminator_is_the_70x70_patchgan():
    d = build_discriminator(ModelConfig())
    assert count_params(d) == 2_768_705
    x = torch.zeros(2, 3, 256, 256)
    assert d(x, x).shape == (2, 1, 30, 30)


def test_generator_shapes_and_range():
    g = build_generator(ModelConfig(ngf=8, in_channels=1, out_channels=3)).eval()
    x = torch.rand(2, 1, 256, 256) * 2 - 1
    y = g(x)
    assert y.shape == (2, 3, 256, 256)
    assert y.min() >= -1 and y.max() <= 1


def test_paper_layer_layout():
    g = build_generator(ModelConfig(ngf=64))
    convs = [m for m in g.down.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    ups = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [u.out_channels for u in ups] == [512, 512, 512, 512, 256, 128, 64, 3]
    # no BatchNorm on the first encoder layer; dropout in exactly three decoder layers
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.down[0].modules())
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3
    assert isinstance(g.head[-1], nn.Tanh)


def test_smaller_images_use_fewer_levels():
    g = build_generator(ModelConfig(ngf=8, image_size=64))
    assert len(g.down) == 6
    assert g(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError):
        ModelConfig(image_size=100)


def test_init_is_normal_0_002():
    g = build_generator(ModelConfig(ngf=32))
    w = torch.cat([m.weight.flatten() for m in g.modules() if isinstance(m, nn.Conv2d)])
    assert abs(w.mean().item()) < 1e-3
    assert w.std().item() == pytest.approx(0.02, rel=0.05)


def test_dropout_toggle_leaves_batchnorm_frozen():
    g = build_generator(ModelConfig(ngf=8)).eval()
    set_dropout(g, True)
    assert all(m.training for m in g.modules() if isinstance(m, nn.Dropout))
    assert not any(m.training for m in g.modules() if isinstance(m, nn.BatchNorm2d))


def test_adversarial_loss_targets():
    """Binary cross-entropy on logits: ln 2 when undecided, ~0 when right, large when wrong."""
    confident_real = torch.full((1, 1, 30, 30), 10.0)
    assert adversarial_loss(confident_real, real=True) < 1e-3
    assert adversarial_loss(confident_real, real=False) > 5
    undecided = torch.zeros(2, 1, 30, 30)
    for real in (True, False):
        assert adversarial_loss(undecided, real=real).item() == pytest.approx(math.log(2), rel=1e-6)
    logits = torch.zeros(1, 1, 4, 4, requires_grad=True)
    adversarial_loss(logits, real=True).backward()
    assert (logits.grad < 0).all()  # minimising it pushes the logits toward "real"
