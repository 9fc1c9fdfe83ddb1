"""Caricatures: the image's activations at a layer point where the photo's do, and beyond."""

from __future__ import annotations

import pytest
import torch

import featurevis as fv
from featurevis.cli import main
from featurevis.core import objectives as O
from featurevis.core import transforms as T
from featurevis.core.engine import activations
from featurevis.core.images import fit_size
from featurevis.core.params import FourierImage, WithReference
from featurevis.recipes.caricature import activation_cosines

LAYERS = ["_blocks.4", "_blocks.10"]
SIZE = 80


@pytest.mark.parametrize("squash", ["sigmoid", "clamp"])
def test_from_image_draws_the_photo(squash):
    x = torch.rand(2, 3, 37, 50)
    p = FourierImage.from_image(x, squash=squash)
    assert p.batch == 2 and p.size == (37, 50)
    with torch.no_grad():
        assert (p() - x).abs().max() < (1.01e-3 if squash == "sigmoid" else 1e-5)


def test_paired_transforms_move_every_image_of_the_batch_alike():
    t = T.paired(64)
    t.transforms = [s for s in t.transforms if not isinstance(s, T.Noise)]  # noise is per pixel by design
    x = torch.rand(1, 3, 64, 64).expand(3, -1, -1, -1)
    for seed in range(4):
        out = t(x, torch.Generator().manual_seed(seed))
        assert torch.allclose(out[0], out[2], atol=1e-6)
    standard = T.standard(64)
    standard.transforms = [s for s in standard.transforms if not isinstance(s, T.Noise)]
    out = standard(x, torch.Generator().manual_seed(0))
    assert not torch.allclose(out[0], out[2], atol=1e-3)  # the render set moves each image its own way


def test_dot_compare_scores_the_reference_one_and_rewards_exaggeration():
    ref = torch.rand(1, 6, 4, 4)
    acts = {"l": torch.cat([ref, 2 * ref, -ref, ref])}
    values = O.dot_compare("l", 3, cossim_pow=2.0)(acts)
    assert values[3] == pytest.approx(1.0, abs=1e-5)
    assert values[1] == pytest.approx(2.0, abs=1e-5)  # same direction, twice as strong
    assert values[2] < 0  # opposite direction: clipped cosine keeps the sign of the dot product


def test_caricature_raises_the_cosine_to_the_photos_activations(lite0, photos, one_thread):
    photo = photos["chelsea"][..., :, 75:375]  # the cat's face, square
    r = fv.caricature(lite0, photo, ",".join(LAYERS), size=SIZE, steps=48, progress=False)
    assert r.layers == LAYERS and r.images.shape == (2, 3, SIZE, SIZE) and r.photo.shape == (1, 3, SIZE, SIZE)
    # a plain render of a random channel of each layer, at the same size, for scale
    renders = torch.cat(
        [fv.render(lite0, f"{name}:{7 * i + 3}", size=SIZE, steps=48, progress=False).images
         for i, name in enumerate(LAYERS)]
    )  # fmt: skip
    plain = activation_cosines(lite0, renders, r.photo, LAYERS)
    for name, start, end, other in zip(LAYERS, r.cosine_start, r.cosine, plain, strict=True):
        assert end > start + 0.3, (name, start, end)
        assert end > other + 0.3, (name, end, other)
        assert end > 0.5, (name, end)
    assert r.image.shape[-1] == 3 * SIZE + 2 * 2  # the strip: photo + two caricatures, 2 px gaps


def test_a_caricature_from_the_photo_exaggerates_it(lite0, photos, one_thread):
    photo = fit_size(photos["coffee"], 64)
    r = fv.caricature(lite0, photo, "_blocks.8", init="photo", size=64, steps=32, progress=False)
    assert r.cosine_start[0] > 0.99  # the start is the photo, drawn by the Fourier parameterization
    assert r.cosine[0] > 0.8  # the end still points where the photo's activations do ...
    acts = activations(lite0, torch.cat([r.images, r.photo]), ["_blocks.8"])
    assert float(O.dot_compare("_blocks.8", 1)(acts)[0]) > 0.95  # ... at least as strongly
    assert (r.images - r.photo).abs().mean() > 0.02  # and it is not the photo any more


def test_token_layers_caricature_as_patch_grids(one_thread):
    from tiny_vit import SIZE as VIT_SIZE
    from tiny_vit import TinyViT

    torch.manual_seed(0)
    vit = fv.FeatureModel(TinyViT(), input_size=VIT_SIZE, channels_last=False)
    photo = torch.rand(1, 3, 30, 44)
    r = fv.caricature(vit, photo, ["blocks.0.mlp.fc1", "blocks.1"], steps=24, lr=0.1, progress=False)
    assert r.images.shape == (2, 3, 22, 32)
    assert all(end > start for start, end in zip(r.cosine_start, r.cosine, strict=True)), r


def test_with_reference_appends_the_fixed_photo_and_trains_only_the_image():
    photo = torch.rand(1, 3, 16, 16)
    p = WithReference(FourierImage(2, 16), photo)
    out = p()
    assert p.batch == 3 and out.shape == (3, 3, 16, 16) and torch.equal(out[2], photo[0])
    assert [n for n, _ in p.named_parameters()] == ["param.spectrum"]


def test_cli_writes_the_strip_and_prints_the_cosines(tmp_path, capsys, photos, one_thread):
    src = tmp_path / "chelsea.png"
    fv.save_image(fit_size(photos["chelsea"], 64)[0], src)
    out = tmp_path / "strip.png"
    rc = main(
        ["caricature", str(src), "-l", "_blocks.2,_blocks.6", "--size", "48", "--steps", "4", "-q", "-o", str(out)]
    )
    assert rc == 0 and out.exists()
    text = capsys.readouterr().out
    assert "_blocks.2" in text and "_blocks.6" in text and "->" in text
    assert fv.load_image(out).shape[-1] == 3 * 48 + 4
