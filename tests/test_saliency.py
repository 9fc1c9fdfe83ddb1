"""Saliency: the gradients are right, the preconditioning smooths them, SmoothGrad finds the cat."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import featurevis as fv
from featurevis.cli import main
from featurevis.core.heatmaps import colorize
from featurevis.recipes.saliency import _zero_point, preconditioned

# Boxes on scikit-image's chelsea (451×300), as fractions (x0, y0, x1, y1): the cat's face
# (eyes, nose, mouth) and a strip of background at the right edge.
FACE = (100 / 451, 40 / 300, 370 / 451, 290 / 300)
BACKGROUND = (390 / 451, 0.0, 1.0, 1.0)


def test_gradient_is_the_logit_gradient(tiny, one_thread):
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    r = fv.saliency(tiny, photo, 3, samples=4)
    x = photo.clone().requires_grad_(True)
    tiny(x)["logits"][0, 3].backward()
    assert torch.allclose(r.gradient, x.grad, atol=1e-6)
    assert torch.allclose(r.grad_x_input, x.grad * (photo - _zero_point(tiny, photo)), atol=1e-6)
    assert r.image.shape == (3, 32, 5 * 32 + 8)  # photo + four views


def test_preconditioning_is_a_smoothing_positive_step():
    g = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    step = preconditioned(g)
    assert (step * g).sum() > 0  # J Jᵀ is positive semidefinite: still an ascent direction

    def high_freq_share(t):
        power = torch.fft.rfft2(t).abs().pow(2)
        fy, fx = torch.fft.fftfreq(64).abs()[:, None], torch.fft.rfftfreq(64)[None]
        return float(power[..., (fy > 0.25) | (fx > 0.25)].sum() / power.sum())

    assert high_freq_share(step) < 0.1 * high_freq_share(g)
    pixel = preconditioned(g, "pixel", decorrelate=False)  # no decorrelation here: J Jᵀ g is a multiple of g
    assert torch.allclose(pixel / pixel.norm(), g / g.norm(), atol=1e-5)


def test_zero_point_is_where_preprocessing_gives_zero(lite0, tiny):
    assert torch.allclose(_zero_point(lite0, torch.zeros(1)).flatten(), torch.full((3,), 127 / 255), atol=1e-6)
    assert torch.allclose(_zero_point(tiny, torch.zeros(1)).flatten(), torch.tensor([0.485, 0.456, 0.406]), atol=1e-6)


def test_saliency_falls_on_the_cat_in_chelsea(lite0, photos):
    r = fv.saliency(lite0, photos["chelsea"], samples=16)
    assert r.target == 285  # Egyptian cat
    for kind in ("smoothgrad", "preconditioned"):
        assert r.box_concentration(kind, FACE) > 1.3, kind
        assert r.box_concentration(kind, FACE, BACKGROUND) > 1.3, kind


def test_colorize_ramps_from_dark_to_bright():
    c = colorize(torch.linspace(0, 1, 5)[None])
    assert c.shape == (1, 3, 1, 5)
    assert (c.sum(1).diff() > 0).all()


def test_bad_arguments(tiny):
    photo = torch.rand(1, 3, 32, 32)
    with pytest.raises(fv.FeaturevisError, match="unknown class"):
        fv.saliency(tiny, photo, "zebra")
    with pytest.raises(fv.FeaturevisError, match="samples"):
        fv.saliency(tiny, photo, samples=0)
    with pytest.raises(fv.FeaturevisError, match="noise"):
        fv.saliency(tiny, photo, noise=-1)
    r = fv.saliency(tiny, photo, samples=1)
    with pytest.raises(fv.FeaturevisError, match="unknown saliency map"):
        r.heat("occlusion")


def test_cli_saliency_writes_panel_and_views(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (60, 40), (120, 60, 30)).save("p.png")
    assert main(["saliency", "p.png", "--samples", "2", "--separate", "--size", "48"]) == 0
    assert "wrote p-saliency.png" in capsys.readouterr().out
    assert Image.open("p-saliency.png").size == (5 * 48 + 8, 32)  # shrunk to 48, never enlarged
    for view in ("gradient", "preconditioned", "smoothgrad", "grad_x_input"):
        assert Image.open(f"p-saliency-{view}.png").size == (48, 32)


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.png"], "no such file"),
        (["p.png", "--target", "unicorn"], "unknown class 'unicorn'"),
        (["p.png", "--samples", "0"], "must be positive"),
        (["p.png", "-o", "p.txt"], "unknown image format"),
    ],
)
def test_cli_saliency_bad_input_is_one_line_exit_2(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (60, 40)).save("p.png")
    try:
        code = main(["saliency", *args])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
