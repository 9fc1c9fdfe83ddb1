"""Feature accentuation: the target rises, the image stays the photo, more reg keeps it closer."""

from __future__ import annotations

import sys

import pytest
import torch

import featurevis as fv
from featurevis.cli import main
from featurevis.core.errors import FeaturevisError
from featurevis.core.images import fit_size

SIZE = 80


@pytest.fixture(scope="module")
def accentuations(lite0, photos):
    """chelsea accentuated toward 'tiger' (stripes) at three strengths of the pull back to the photo."""
    torch.set_num_threads(1)
    photo = photos["chelsea"]
    return {reg: fv.accentuate(lite0, photo, 'class:"tiger"', reg=reg, size=SIZE, steps=32, progress=False)
            for reg in (0.25, 1.0, 4.0)}  # fmt: skip


def test_accentuation_raises_the_target_and_stays_near_the_photo(accentuations):
    r = accentuations[1.0]
    assert r.image.shape == r.photo.shape and r.photo.shape[-1] == SIZE
    assert r.target_end > r.target_start + 5, r  # a class logit, measured on the 8-bit image
    assert r.ssim > 0.6, r
    assert torch.equal(r.image, torch.round(r.image * 255) / 255)  # what was measured is what is saved


def test_a_larger_reg_keeps_the_image_closer(accentuations):
    ssims = [accentuations[reg].ssim for reg in (0.25, 1.0, 4.0)]
    rises = [accentuations[reg].target_end - accentuations[reg].target_start for reg in (0.25, 1.0, 4.0)]
    assert ssims[0] < ssims[1] < ssims[2], ssims
    assert ssims[2] > 0.85
    assert rises[0] > rises[2] > 0, rises  # and gives up some of the rise for it


def test_the_change_map_shows_where_the_photo_changed(accentuations):
    r = accentuations[0.25]
    change = r.change
    assert change.shape == r.photo.shape[-2:] and (change >= 0).all() and change.max() > 0.05
    same = fv.AccentuationResult(photo=r.photo, image=r.photo, target="t", target_start=0, target_end=0, ssim=1)
    assert same.change.abs().max() == 0
    assert r.panel().shape[-1] == 3 * SIZE + 4  # photo | accentuation | change map


def test_channels_and_neurons_are_targets_too(lite0, photos, one_thread):
    photo = fit_size(photos["astronaut"], 64)
    for target in ("_blocks.8:12", "_blocks.10:5@2,2"):
        r = fv.accentuate(lite0, photo, target, size=64, steps=24, progress=False)
        assert r.target_end > r.target_start, r


def test_bad_arguments_fail_before_work(tiny, monkeypatch):
    photo = torch.rand(1, 3, 32, 32)
    for reg in (float("nan"), float("inf"), -1.0):
        with pytest.raises(FeaturevisError, match="reg"):
            fv.accentuate(tiny, photo, "conv2:1", reg=reg, progress=False)
    with pytest.raises(FeaturevisError, match="lr"):
        fv.accentuate(tiny, photo, "conv2:1", reg=100.0, progress=False)  # the pull would overshoot
    with pytest.raises(FeaturevisError, match="SSIM"):
        fv.accentuate(tiny, photo, "conv2:1", size=5, progress=False)
    monkeypatch.setitem(sys.modules, "skimage.metrics", None)
    with pytest.raises(FeaturevisError, match="scikit-image"):
        fv.accentuate(tiny, photo, "conv2:1", progress=False)


def test_cli_writes_the_panel_and_the_image(tmp_path, capsys, photos, one_thread):
    src = tmp_path / "coffee.png"
    fv.save_image(fit_size(photos["coffee"], 64)[0], src)
    out = tmp_path / "acc.jpg"
    rc = main(["accentuate", str(src), "_blocks.8:3", "--size", "48", "--steps", "4", "-q", "-o", str(out)])
    assert rc == 0 and out.exists() and (tmp_path / "acc-image.png").exists()
    text = capsys.readouterr().out
    assert "_blocks.8:3" in text and "SSIM" in text and "->" in text
