"""The picture metrics: shape IoU against the object, and the rainbow-speckle measure."""

import torch

from pix2pix.training.metrics import chroma_detail, image_metrics, interior, non_white


def product(colour=(0.8, -0.6, -0.6), size: int = 64) -> torch.Tensor:
    t = torch.ones(1, 3, size, size)
    t[:, :, 16:48, 20:44] = torch.tensor(colour)[None, :, None, None]
    return t


def test_the_same_picture_scores_a_perfect_shape_and_the_photos_own_speckle():
    m = image_metrics(product(), product())
    assert m["shape_iou"].item() == 1.0 and m["l1"].item() == 0
    assert torch.equal(m["chroma_detail"], m["chroma_detail_real"])


def test_colour_bleeding_onto_the_background_lowers_the_shape_iou():
    bled = product()
    bled[:, :, 10:54, 12:52] = torch.tensor([0.8, -0.6, -0.6])[None, :, None, None]
    assert image_metrics(bled, product())["shape_iou"].item() < 0.6


def test_rainbow_speckle_has_far_more_chroma_detail_than_smooth_shading():
    g = torch.Generator().manual_seed(0)
    smooth = product()
    smooth[:, :, 16:48, 20:44] *= torch.linspace(0.7, 1.0, 24)  # shading: no colour change
    speckled = smooth.clone()
    speckled[:, :, 16:48, 20:44] += 0.3 * (torch.rand(1, 3, 32, 24, generator=g) - 0.5)
    where = interior(non_white((product() + 1) / 2))
    calm = chroma_detail((smooth + 1) / 2, where).item()
    rainbow = chroma_detail((speckled.clamp(-1, 1) + 1) / 2, where).item()
    assert rainbow > 5 * calm
