"""The pix2pix networks: U-Net generator, PatchGAN discriminator and the GAN loss.

References:
- Isola, Zhu, Zhou, Efros. "Image-to-Image Translation with Conditional Adversarial
  Networks", CVPR 2017 (appendix 6.1.1 for the layer tables).
- The authors' PyTorch code (``unet_256`` and the ``basic`` 70x70 PatchGAN), whose layer
  layout this follows exactly, so parameter counts agree: 54,413,955 for the generator at
  ngf=64 and 2,768,705 for the discriminator at ndf=64.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import HINT_CHANNELS, ModelConfig
from .upsampling import UpStage, upsampler


def _down(in_ch: int, out_ch: int, *, act: bool, norm: bool) -> nn.Sequential:
    """Encoder step: [LeakyReLU] -> 4x4 stride-2 conv -> [BatchNorm].

    The activation comes first because each block's input is the previous block's
    pre-activation output, which the skip connection carries to the decoder unchanged.
    """
    layers: list[nn.Module] = []
    if act:
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    # No bias on any encoder conv: the reference omits it everywhere (BatchNorm would
    # cancel it on most layers), and matching it keeps the parameter counts comparable.
    layers.append(nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1, bias=False))
    if norm:
        layers.append(nn.BatchNorm2d(out_ch))
    return nn.Sequential(*layers)


def _up(in_ch: int, out_ch: int, *, dropout: float, mode: str) -> nn.Sequential:
    """Decoder step: ReLU -> x2 upsampling conv -> BatchNorm [-> Dropout]."""
    layers: list[nn.Module] = [nn.ReLU(inplace=True), *upsampler(in_ch, out_ch, mode, bias=False),
                               nn.BatchNorm2d(out_ch)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return UpStage(*layers)


class _GradInLayout(torch.autograd.Function):
    """Identity forward; the gradient is made contiguous in the layout of the tensor it is for.

    A skip connection's concatenation hands each of its inputs a channel slice of its own
    gradient: contiguous in no layout. BatchNorm's backward then copies it to NCHW and takes
    a slow path for a channels-last input: 15-20 ms instead of 2 for a (4, 32, 128, 128)
    activation on a 2-core CPU, about 50 ms of a 440 ms training step of the fashion model.
    Same values, another memory order."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) \
            and not x.is_contiguous() else torch.contiguous_format
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=ctx.layout)


def _concat(parts: list[torch.Tensor]) -> torch.Tensor:
    """Channel concatenation whose backward gives each part a gradient in its own layout."""
    if torch.is_grad_enabled():
        parts = [_GradInLayout.apply(t) if t.requires_grad else t for t in parts]
    return torch.cat(parts, dim=1)


class UNetGenerator(nn.Module):
    """U-Net with skip connections by channel concatenation.

    At 256x256 the encoder is C64-C128-C256-C512-C512-C512-C512-C512 and the decoder
    CD512-CD512-CD512-C512-C256-C128-C64 followed by a transposed conv to the output
    channels and tanh; input and output are (B, C, H, W) in [-1, 1].

    ``upsample="resize"`` swaps every transposed conv for resize + 3x3 conv: 39,157,763
    parameters at ngf=64 (9,793,539 at ngf=32) instead of 54,413,955 (13,608,259).
    ``hint_channels=4`` adds colour hints as extra input channels (hint RGB, 0 where
    nothing is painted, and the 0/1 mask: 4 x 16 x ngf more weights in the first conv); no
    hints at all is the same as an empty layer. ``classes`` adds one constant layer per
    class after them: 1 in the layer of the class the drawing shows, 0 elsewhere; all 0 is
    "not told", and the model guesses from the drawing.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        ngf, n = cfg.ngf, cfg.num_downs
        # Encoder widths: ngf, 2ngf, 4ngf, then 8ngf for every remaining level.
        widths = [ngf * min(2**i, 8) for i in range(n)]
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            prev = cfg.in_channels + cfg.extra_channels if i == 0 else widths[i - 1]
            outer, inner = i == 0, i == n - 1
            self.down.append(_down(prev, w, act=not outer, norm=not (outer or inner)))
        # Decoder, innermost first. Level i maps widths[i] (doubled by the skip, except at
        # the bottleneck) back to widths[i - 1]. Dropout in the 8ngf -> 8ngf levels above
        # the innermost one: three of them at 256x256, as in the reference.
        self.up = nn.ModuleList()
        for i in range(n - 1, 0, -1):
            in_ch = widths[i] if i == n - 1 else widths[i] * 2
            use_dropout = 4 <= i <= n - 2
            self.up.append(_up(in_ch, widths[i - 1], dropout=cfg.dropout if use_dropout else 0.0, mode=cfg.upsample))
        self.head = UpStage(
            nn.ReLU(inplace=True),
            *upsampler(widths[0] * 2, cfg.out_channels, cfg.upsample, bias=True),
            nn.Tanh(),
        )

    def fold_resizes(self, from_side: int) -> UNetGenerator:
        """Run the resize decoder's levels whose input is at least ``from_side`` pixels wide
        (0: none) in the summed-tap form of :mod:`pix2pix.upsampling`: the same function and
        gradients, fewer operations. A choice of how to run, not saved with the weights."""
        for stage in [*self.up, self.head]:
            stage.fold_from = from_side
        return self

    def forward(self, x: torch.Tensor, hints: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, in_channels, H, W); hints: the extra layers (B, ``cfg.extra_channels``, H, W)
        of a hint or class model, colour hints first, then the class (None: none of either;
        see :func:`extra_layers`)."""
        if self.cfg.extra_channels:
            if hints is None:
                hints = x.new_zeros(x.shape[0], self.cfg.extra_channels, *x.shape[2:])
            x = torch.cat([x, hints.to(x.dtype)], dim=1)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        x = skips.pop()  # the bottleneck, (B, 8ngf, 1, 1) at 256x256
        for block in self.up:
            x = _concat([skips.pop(), block(x)])
        return self.head(x)


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: classifies overlapping 70x70 patches of an (input, output) pair.

    Takes the two images concatenated on channels, returns (B, 1, 30, 30) logits for a
    256x256 pair.
    """

    def __init__(self, cfg: ModelConfig, *, spectral: bool = False):
        """``spectral``: every conv spectrally normalized (Miyato et al. 2018) and no
        BatchNorm, the usual way of bounding D's Lipschitz constant instead."""
        super().__init__()
        ndf = cfg.ndf
        sn = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        layers: list[nn.Module] = [
            sn(nn.Conv2d(cfg.in_channels + cfg.out_channels, ndf, 4, stride=2, padding=1)),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        mult = 1
        for n in range(1, cfg.n_layers_d + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < cfg.n_layers_d else 1  # the last one keeps resolution
            layers += [
                sn(nn.Conv2d(ndf * prev, ndf * mult, 4, stride=stride, padding=1, bias=spectral)),
                nn.Identity() if spectral else nn.BatchNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
            ]
        layers.append(sn(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor, *, features: bool = False):
        """Patch logits; with ``features=True`` also the activations after each LeakyReLU,
        which the feature-matching loss compares between real and generated pairs."""
        x = _concat([condition, image])
        if not features:
            return self.net(x)
        found = []
        for layer in self.net:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                found.append(x)
        return x, found


class MultiScaleDiscriminator(nn.Module):
    """PatchGANs at full and at half resolution (pix2pixHD, Wang et al. 2018): the coarse one
    judges larger structure with the same layers. Returns a list of logits, one per scale
    (with ``features=True``: that list and every scale's activations, in one list)."""

    def __init__(self, cfg: ModelConfig, *, scales: int = 2, spectral: bool = False):
        super().__init__()
        self.scales = nn.ModuleList(PatchDiscriminator(cfg, spectral=spectral) for _ in range(scales))

    def forward(self, condition: torch.Tensor, image: torch.Tensor, *, features: bool = False):
        logits, found = [], []
        for i, d in enumerate(self.scales):
            if i:
                condition, image = (F.avg_pool2d(t, 3, stride=2, padding=1, count_include_pad=False)
                                    for t in (condition, image))
            out = d(condition, image, features=features)
            logits.append(out[0] if features else out)
            found += out[1] if features else []
        return (logits, found) if features else logits


def feature_matching_loss(fake: list[torch.Tensor], real: list[torch.Tensor]) -> torch.Tensor:
    """Mean L1 between D's activations on generated and real pairs, averaged over layers
    (pix2pixHD, Wang et al. 2018): G is pulled toward real statistics at every scale D sees,
    which steadies training where the adversarial signal alone is noisy."""
    return sum(F.l1_loss(f.float(), r.detach().float()) for f, r in zip(fake, real)) / len(fake)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """The paper's initialisation: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def build_generator(cfg: ModelConfig) -> UNetGenerator:
    g = UNetGenerator(cfg)
    init_weights(g)
    return g


def build_discriminator(cfg: ModelConfig, *, scales: int = 1, spectral: bool = False) -> nn.Module:
    """The paper's PatchGAN, or (``scales=2``) one per resolution; ``spectral`` as in
    :class:`PatchDiscriminator`."""
    d = PatchDiscriminator(cfg, spectral=spectral) if scales == 1 else \
        MultiScaleDiscriminator(cfg, scales=scales, spectral=spectral)
    init_weights(d)
    return d


def with_hint_channels(generator: UNetGenerator) -> UNetGenerator:
    """A hint model that starts as exactly ``generator``: the first conv gets weights for the
    hint channels set to zero, so its output is unchanged until training moves them."""
    return widened(generator, hint_channels=HINT_CHANNELS)


def widened(generator: UNetGenerator, *, hint_channels: int | None = None,
            classes: list[str] | None = None) -> UNetGenerator:
    """``generator`` with more extra input layers (colour hints, classes) that starts as
    exactly it: the first conv's weights for every new layer are zero, so the output is
    unchanged until training moves them. Classes it already has keep their weights."""
    old = generator.cfg
    hint_channels = old.hint_channels if hint_channels is None else hint_channels
    classes = old.classes if classes is None else list(classes)
    if hint_channels < old.hint_channels or not set(old.classes) <= set(classes):
        raise ValueError(f"a model for classes {', '.join(old.classes) or 'none'} with {old.hint_channels} hint layers "
                         f"cannot become one for {', '.join(classes) or 'none'} with {hint_channels}")
    if (hint_channels, classes) == (old.hint_channels, old.classes):
        return generator
    cfg = dataclasses.replace(old, hint_channels=hint_channels, classes=classes)
    expanded = UNetGenerator(cfg)
    state = dict(generator.state_dict())
    first = "down.0.0.weight"  # (out, in + hints + classes, 4, 4)
    w = state[first]
    zeros = w.new_zeros(w.shape[0], 1, *w.shape[2:])
    base, hints = w[:, :old.in_channels], w[:, old.in_channels:old.in_channels + old.hint_channels]
    hints = torch.cat([hints, *[zeros] * (hint_channels - old.hint_channels)], dim=1)
    own = {c: w[:, old.in_channels + old.hint_channels + i:][:, :1] for i, c in enumerate(old.classes)}
    state[first] = torch.cat([base, hints, *[own.get(c, zeros) for c in classes]], dim=1)
    expanded.load_state_dict(state)
    return expanded.train(generator.training)


def grown(generator: UNetGenerator) -> UNetGenerator:
    """``generator`` for twice its image size (progressive growing: 128 px first, then 256):
    one more U-Net level at the bottom, fresh, and every old weight in its place. The old
    bottleneck's decoder step takes the new level's output beside its old input, with zero
    weights for it, so the grown model starts as the small one (but for the BatchNorm the old
    bottleneck gains as an inner level) and learns what the new level adds."""
    small = generator.cfg
    big = build_generator(dataclasses.replace(small, image_size=2 * small.image_size))
    state = big.state_dict()
    for key, value in generator.state_dict().items():
        _, index, rest = key.split(".", 2) if key.startswith("up.") else (key, None, None)
        target = f"up.{int(index) + 1}.{rest}" if index is not None else key  # the decoder gains a step in front
        if state[target].shape == value.shape:
            state[target] = value
        else:  # the old bottleneck's upsampling conv: its input doubles (skip first, then the new level)
            dim = 1 if value.dim() == 4 and state[target].shape[1] != value.shape[1] else 0
            new = torch.zeros_like(state[target])
            new.narrow(dim, 0, value.shape[dim]).copy_(value)
            state[target] = new
    big.load_state_dict(state)
    return big.to(next(generator.parameters()).device).train(generator.training)


def extra_layers(cfg: ModelConfig, size: int, batch: int = 1, hints: torch.Tensor | None = None,
                 cls: torch.Tensor | list | None = None) -> torch.Tensor | None:
    """The generator's extra input layers (B, ``cfg.extra_channels``, S, S): ``hints``
    (B, 4, S, S) or none painted, then each pair's class as a one-hot layer. ``cls`` holds a
    class index per pair (-1: not told) or names; None: not told. None for a model that takes
    neither."""
    if not cfg.extra_channels:
        return None
    device = hints.device if hints is not None else None
    batch = hints.shape[0] if hints is not None else batch
    parts = []
    if cfg.hint_channels:
        parts.append(hints if hints is not None else torch.zeros(batch, cfg.hint_channels, size, size, device=device))
    if cfg.classes:
        index = torch.full((batch,), -1, dtype=torch.long) if cls is None else torch.as_tensor(
            [class_index(cfg.classes, c) for c in cls] if isinstance(cls, (list, tuple)) else cls, dtype=torch.long)
        index = index.cpu()
        told = (index >= 0).float().view(-1, 1, 1, 1)
        onehot = F.one_hot(index.clamp(min=0), len(cfg.classes)).float().view(-1, len(cfg.classes), 1, 1) * told
        parts.append(onehot.to(device).expand(-1, -1, size, size))
    return torch.cat(parts, dim=1)


def class_index(classes: list[str], name) -> int:
    """The layer of class ``name`` (-1: not one of them, or not told)."""
    if isinstance(name, (int, torch.Tensor)):
        return int(name)
    return classes.index(name) if name in classes else -1


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def adversarial_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """BCE with logits against an all-real or all-fake target (non-saturating for G)."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float())


def dropout_layers(module: nn.Module) -> list[nn.Dropout]:
    """The layers the paper's test-time noise switches on (BatchNorm stays frozen)."""
    return [m for m in module.modules() if isinstance(m, nn.Dropout)]


def set_dropout(module: nn.Module, enabled: bool) -> None:
    """Switch only the dropout layers: the paper's test-time noise keeps BatchNorm frozen."""
    for m in dropout_layers(module):
        m.train(enabled)
