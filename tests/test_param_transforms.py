from __future__ import annotations

import torch

from featurevis import transforms as T
from featurevis.core.params import FourierImage, PixelImage, decorrelated_to_rgb, rgb_to_decorrelated


def test_parameterizations_give_images_in_unit_range():
    g = torch.Generator().manual_seed(0)
    for p in (
        FourierImage(2, (32, 48), generator=g),
        PixelImage(2, 32, generator=g),
        PixelImage(1, 16, squash="clamp"),
        FourierImage(1, 16, decorrelate=False, squash="clamp"),
    ):
        img = p()
        assert img.shape[:2] in ((2, 3), (1, 3)) and img.min() >= 0 and img.max() <= 1


def test_fourier_seeded_and_differentiable():
    a = FourierImage(1, 32, generator=torch.Generator().manual_seed(3))
    b = FourierImage(1, 32, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a(), b())
    a().mean().backward()
    assert a.spectrum.grad.abs().sum() > 0


def test_fourier_gradient_favours_low_frequencies():
    # The 1/f scaling makes a low-frequency change cheaper: the same pixel loss moves the DC term most.
    p = FourierImage(1, 64, decorrelate=False)
    p()[:, 0].mean().backward()
    g = p.spectrum.grad[0, 0].norm(dim=-1)
    assert g[0, 0] > 10 * g[10:, 10:].max()


def test_colour_decorrelation_roundtrip():
    x = torch.randn(2, 3, 4, 5)
    torch.testing.assert_close(decorrelated_to_rgb(rgb_to_decorrelated(x)), x, atol=1e-5, rtol=1e-4)


def test_pixel_init_from_image():
    img = torch.rand(1, 3, 8, 8) * 0.9 + 0.05
    torch.testing.assert_close(PixelImage(1, 8, init=img)(), img, atol=1e-5, rtol=1e-4)


def test_pixel_init_and_start_agree_for_every_squash_and_colour_basis():
    """A photo given as ``init`` comes back as itself, and a fresh image starts mid-grey, however
    the pixels are squashed and in whichever colour basis they are stored."""
    photo = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.9 + 0.05
    for squash in ("sigmoid", "clamp"):
        for decorrelate in (False, True):
            kw = dict(squash=squash, decorrelate=decorrelate)
            torch.testing.assert_close(PixelImage(1, 8, init=photo, **kw)(), photo, atol=2e-3, rtol=0)
            start = PixelImage(1, 8, sd=0.0, **kw)()
            torch.testing.assert_close(start, torch.full_like(start, 0.5))


def test_transforms_seeded_shapes_and_gradients():
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    tf = T.standard(64)
    a = tf(x, torch.Generator().manual_seed(1))
    b = tf(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    assert a.shape[:2] == (2, 3) and 30 <= a.shape[-1] <= 80
    a.sum().backward()
    assert x.grad.abs().sum() > 0


def test_affine_changes_each_image_differently():
    x = torch.rand(1, 3, 32, 32).expand(2, 3, 32, 32)
    out = T.RandomAffine(scale=(0.8, 1.2), degrees=20)(x, torch.Generator().manual_seed(0))
    assert not torch.allclose(out[0], out[1])
    same = T.RandomAffine(scale=(1, 1), degrees=0)(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=1e-5)
