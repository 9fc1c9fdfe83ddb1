"""Activation atlas (Carter et al. 2019) on the real lite0, at small sizes."""

from __future__ import annotations

import pytest
import torch

import featurevis as fv
from featurevis.core.photos import random_crops
from featurevis.core.visualize import direction_scores

pytest.importorskip("umap")

LAYER = "_blocks.8"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cat_and_rocket(photos) -> list[torch.Tensor]:
    """32 random crops of the cat, then 32 of the rocket (64: used as they are, not augmented)."""
    g = torch.Generator().manual_seed(0)
    crops = [random_crops([photos[name]], 32, 96, g) for name in ("chelsea", "rocket")]
    return list(torch.cat(crops).split(1))


@pytest.fixture(scope="module")
def small_atlas(lite0, cat_and_rocket):
    torch.set_num_threads(1)
    return fv.atlas(lite0, LAYER, cat_and_rocket, grid=4, per_image=8, size=48, steps=64, min_count=8, progress=False)


def test_atlas_lays_out_every_sample_and_draws_the_full_cells(small_atlas):
    r = small_atlas
    m = 64 * 8
    assert r.layout.shape == (m, 2) and r.kept.all() and len(r.samples) == m
    assert ((r.layout >= 0) & (r.layout <= 1)).all()
    assert r.settings["augmented"] is False
    assert len(r.cells) >= 4 and all(count >= 8 for _, _, count in r.cells)
    assert sum(count for *_, count in r.cells) <= m
    # a cell's direction is the mean of the samples that fall in it
    row, col, count = r.cells[0]
    inside = ((r.layout[:, 0] * 4).long().clamp(max=3) == col) & (((1 - r.layout[:, 1]) * 4).long().clamp(max=3) == row)
    assert int(inside.sum()) == count
    assert torch.allclose(r.directions[0], r.samples.values[inside].mean(0), atol=1e-5)
    assert r.image.shape == (3, 4 * 49 - 1, 4 * 49 - 1)


def test_atlas_cells_score_highest_on_their_own_direction(lite0, small_atlas):
    """Each cell's image scores its direction above the other directions' mean, and of all the
    atlas' images, a direction's own scores it highest. Not "each image's best direction is its
    own": neighbouring cells' directions are close by design (cosine up to 0.88 here), and on
    another CPU (an AMD EPYC; other float rounding) the images of 4 of 10 cells scored a
    neighbour's direction a little higher, their own second, while each direction's own image
    still scored it highest in 9 of 10."""
    r = small_atlas
    scores = direction_scores(lite0, r.images, LAYER, r.directions)  # [image, direction]
    own = scores.diag()
    others = (scores.sum(1) - own) / (len(own) - 1)
    assert (own > others).all(), scores
    assert (scores.argmax(0) == torch.arange(len(own))).float().mean() >= 0.75, scores


def test_class_atlas_keeps_the_samples_that_speak_for_the_class(lite0, cat_and_rocket):
    """On 32 cat crops and 32 rocket crops, a tabby atlas keeps the top quarter of positive
    gradient × activation, mostly from the cat (measured 0.72; half the samples are the cat's);
    another class keeps a different set; the plain atlas keeps everything."""
    kw = dict(grid=2, per_image=8, size=32, steps=1, min_count=1, progress=False)
    tabby = fv.atlas(lite0, LAYER, cat_and_rocket, class_="tabby", **kw)
    other = fv.atlas(lite0, LAYER, cat_and_rocket, class_="drilling platform", **kw)
    for r in (tabby, other):
        assert 0 < int(r.kept.sum()) <= 0.25 * len(r.kept) + 1
        assert (r.samples.attribution > 0).all()
        assert len(r.layout) == int(r.kept.sum())
    assert (tabby.samples.image < 32).float().mean() > 0.6
    both = int((tabby.kept & other.kept).sum())
    assert both < 0.5 * int((tabby.kept | other.kept).sum())
    assert tabby.class_name == "tabby" and "tabby" in repr(tabby)


def test_default_images_are_augmented_sample_photos(lite0, monkeypatch):
    from featurevis.recipes import atlas as atlas_module

    monkeypatch.setattr(atlas_module, "AUGMENTED", 12)  # the mechanics, not the 256 crops
    r = fv.atlas(lite0, LAYER, grid=2, per_image=4, size=32, steps=1, min_count=1, progress=False)
    assert r.settings["augmented"] is True and "random crops/flips of the sample photos" in r.settings["images"]
    assert len(r.kept) == 12 * 4 and r.timings["samples_per_s"] > 0


def test_a_folder_is_read_lazily_and_bad_folders_are_one_error(lite0, tmp_path, cat_and_rocket, monkeypatch):
    from featurevis.core import photos as photos_module
    from featurevis.recipes import atlas as atlas_module

    for i, crop in enumerate(cat_and_rocket[:6]):
        fv.save_image(crop, tmp_path / f"{i}.png")
    loaded = []
    real = photos_module.load_image
    monkeypatch.setattr(photos_module, "load_image", lambda p: loaded.append(p) or real(p))
    monkeypatch.setattr(atlas_module, "MIN_IMAGES", 4)  # 6 files: read one at a time, not augmented
    it = photos_module.iter_images(photos_module.folder_files(tmp_path))
    next(it)
    assert len(loaded) == 1  # nothing read ahead
    r = fv.atlas(lite0, LAYER, tmp_path, grid=2, per_image=4, size=32, steps=1, min_count=1, progress=False)
    assert len(r.kept) == 6 * 4 and r.settings["augmented"] is False
    (tmp_path / "empty").mkdir()
    with pytest.raises(fv.FeaturevisError, match="no images"):
        fv.atlas(lite0, LAYER, tmp_path / "empty", progress=False)
    with pytest.raises(fv.FeaturevisError, match="not a folder"):
        fv.atlas(lite0, LAYER, tmp_path / "missing", progress=False)
    with pytest.raises(fv.FeaturevisError, match="no spatial map"):
        fv.atlas(lite0, "_fc", tmp_path, progress=False)
