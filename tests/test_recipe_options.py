"""The recipe's options for D: DiffAugment, hinge loss, spectral norm, a second scale, R1."""

import math

import pytest
import torch

from pix2pix.config import ConfigError, ModelConfig, TrainConfig
from pix2pix.models import adversarial_loss, build_discriminator, build_generator, grown
from pix2pix.training.augment import d_losses, diff_augment, g_loss, parse_policy, r1_penalty
from pix2pix.training.objective import Pix2Pix

TINY = ModelConfig(ngf=8, ndf=8, image_size=64)


def test_the_papers_loss_is_unchanged():
    logits = torch.randn(2, 1, 6, 6)
    real, fake = d_losses(logits, -logits, "bce")
    assert torch.allclose(real, adversarial_loss(logits, real=True)) and torch.allclose(fake, adversarial_loss(-logits, real=False))
    assert torch.allclose(g_loss(logits, "bce"), adversarial_loss(logits, real=True))


def test_hinge_losses():
    confident = torch.full((1, 1, 4, 4), 3.0)
    real, fake = d_losses(confident, -confident, "hinge")
    assert real.item() == 0 and fake.item() == 0  # beyond the margin: nothing to learn
    real, fake = d_losses(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), "hinge")
    assert real.item() == 1 and fake.item() == 1
    assert g_loss(confident, "hinge").item() == -3


def test_diffaugment_moves_both_halves_of_a_pair_alike_and_lets_gradients_through():
    torch.manual_seed(0)
    image = torch.rand(4, 3, 32, 32, requires_grad=True)
    condition = image.detach().clone()
    a, b = diff_augment(condition, image, parse_policy("translation,cutout"))
    assert torch.equal(a, b.detach())  # the same shift and the same hole in both
    assert not torch.equal(b.detach(), image.detach())
    b.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    _, coloured = diff_augment(condition, image, parse_policy("color"))
    assert not torch.allclose(coloured, image)  # colour changes the photo, never the drawing
    assert diff_augment(condition, image, ())[1] is image
    with pytest.raises(ValueError, match="colour"):
        parse_policy("colour")
    with pytest.raises(ConfigError, match="DiffAugment"):
        TrainConfig(diffaugment="translate")


def test_spectral_norm_and_a_second_scale():
    d = build_discriminator(ModelConfig(ndf=8), scales=2, spectral=True)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    assert any("parametrizations" in name for name, _ in d.named_parameters())
    logits = d(torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256))
    assert [x.shape[-1] for x in logits] == [30, 14]  # the paper's 30x30 patches, and at half resolution
    logits, feats = d(torch.rand(1, 3, 256, 256), torch.rand(1, 3, 256, 256), features=True)
    assert len(logits) == 2 and len(feats) == 8


def test_r1_penalises_the_gradient_at_real_pairs():
    torch.manual_seed(0)
    d = build_discriminator(ModelConfig(ndf=8))
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    penalty = r1_penalty(d, a, b)
    assert penalty.item() > 0 and math.isfinite(penalty.item())
    penalty.backward()
    assert d.net[0].weight.grad.abs().sum() > 0  # D learns from it (a bias that shifts every logit does not)


@pytest.mark.parametrize("options", [{"diffaugment": "color,translation,cutout"}, {"gan_loss": "hinge"},
                                     {"spectral_norm": True}, {"d_scales": 2}, {"r1": 5.0, "r1_every": 1}])
def test_each_option_trains(options):
    torch.manual_seed(0)
    model = Pix2Pix(TINY, TrainConfig(batch_size=2, epochs=1, **options), torch.device("cpu"))
    batch = [torch.rand(2, 3, 64, 64) * 2 - 1 for _ in range(2)]
    before = [p.detach().clone() for p in model.D.parameters()]
    for _ in range(2):
        losses = model.step(*batch)
    assert all(math.isfinite(v.item()) for v in losses.values())
    assert any(not torch.equal(b, p) for b, p in zip(before, model.D.parameters()))


@pytest.mark.parametrize("upsample", ["resize", "transpose"])
def test_a_grown_generator_starts_as_the_small_one(upsample):
    """128 px first, then 256: the grown model has one more level, every old weight in its place,
    and (in eval mode, where the old bottleneck's new BatchNorm is the identity) the same output."""
    torch.manual_seed(0)
    small = build_generator(ModelConfig(ngf=8, ndf=8, image_size=32, upsample=upsample, hint_channels=4))
    small.eval()
    big = grown(small).eval()
    assert big.cfg.image_size == 64 and len(big.down) == len(small.down) + 1 and big.cfg.hint_channels == 4
    assert torch.equal(big.down[0][0].weight, small.down[0][0].weight)
    assert torch.equal(big.head[-2].weight, small.head[-2].weight)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(big(x), small(x), atol=1e-5)
    big.train()
    out = big(x)
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    conv = next(m for m in big.up[1] if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    width = big.down[-2][1].out_channels  # the old bottleneck's: the skip half of the step's input
    new_half = conv.weight.grad[:, width:] if upsample == "resize" else conv.weight.grad[width:]
    assert new_half.abs().sum() > 0  # the new level's way into the decoder learns from the first step
